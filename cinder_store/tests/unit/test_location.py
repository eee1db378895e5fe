# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

import ddt
from glance_store import exceptions
from oslo_config import cfg

from cinder_store import location
from cinder_store.tests.unit import base


@ddt.ddt
class TestStoreLocation(base.TestCase):

    def parse(self, uri):
        loc = location.StoreLocation({}, cfg.ConfigOpts())
        loc.parse_uri(uri)
        return loc

    @ddt.data(('cinder://fast/%s' % base.UUID, 'fast'),
              ('cinder://%s' % base.UUID, None),
              ('cinder://fast//%s' % base.UUID, 'fast'))
    @ddt.unpack
    def test_valid(self, uri, backend):
        loc = self.parse(uri)
        self.assertEqual(base.UUID, loc.volume_id)
        self.assertEqual(backend, loc.backend)

    def test_round_trip_normalises(self):
        loc = self.parse('cinder://fast//%s' % base.UUID)
        self.assertEqual('cinder://fast/%s' % base.UUID, loc.get_uri())

    @ddt.data('cinder://fast/not-a-uuid', 'file:///x', 'cinder://',
              'cinder://fast/a/%s' % base.UUID,
              'cinder://fast/%s?x=1' % base.UUID,
              'cinder:///%s' % base.UUID, 'cinder_store://fast/%s' % base.UUID,
              'cinder://fast///%s' % base.UUID, None)
    def test_invalid_names_the_problem(self, uri):
        error = self.assertRaises(exceptions.BadStoreUri, self.parse, uri)
        self.assertIn('invalid cinder location', str(error))
