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

import os

from cinder_store import hostshare
from cinder_store.tests.unit import base


class TestMaintenance(base.StoreTestCase):

    def setUp(self):
        super(TestMaintenance, self).setUp()
        self.backend_view = self.store.maintenance()

    def test_what_a_tool_sees_of_the_backend(self):
        view = self.backend_view
        self.assertEqual('fast', view.backend)
        self.assertTrue(view.has_service_credentials)
        self.assertIsNone(view.volume_type)  # Cinder's default type
        self.assertEqual(self.tmp + '/locks', view.lock_path)
        self.assertEqual(view.lock_path, view.host.lock_path)
        self.assertEqual('/etc/glance/rootwrap.conf', view.rootwrap_config)
        self.assertIsInstance(view.shared_reads(), hostshare.HostReaders)
        self.assertEqual('testhost', view.connector()['host'])

    def test_its_cinder_client_and_records_are_the_stores(self):
        url = self.add(b'12345')[0]
        volume_id = url.rsplit('/', 1)[1]
        self.assertEqual(volume_id,
                         self.backend_view.cinder().get_volume(volume_id).id)
        self.assertEqual([], self.backend_view.uploads.volume_ids())
        b''.join(self.store.get(self.location(volume_id))[0])
        self.assertIn(volume_id, self.backend_view.host.locked_volumes())
        self.assertTrue(os.path.isdir(self.backend_view.lock_path))
