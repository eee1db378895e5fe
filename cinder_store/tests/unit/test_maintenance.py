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

from glance_store import location as gs_location
from glance_store import multi_backend
from oslo_config import cfg

from cinder_store import glance
from cinder_store import host_reads
from cinder_store import maintenance
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
        self.assertEqual(view.lock_path, view.settings.lock_path)
        self.assertEqual('/etc/glance/rootwrap.conf', view.rootwrap_config)
        self.assertIsInstance(view.host_reads, host_reads.HostReads)
        self.assertIsInstance(view.glance_images(), glance.GlanceImages)
        self.assertEqual('testhost', view.connector_properties()['host'])

    def test_its_cinder_client_and_records_are_the_stores(self):
        url = self.add(b'12345')[0]
        volume_id = url.rsplit('/', 1)[1]
        self.assertEqual(
            volume_id,
            self.backend_view.bound_cinder().get_volume(volume_id).id)
        self.assertEqual([], self.backend_view.uploads.volume_ids())
        b''.join(self.store.get(self.location(volume_id))[0])
        self.assertIn(volume_id,
                      self.backend_view.settings.locks.locked_volumes())
        self.assertTrue(os.path.isdir(self.backend_view.lock_path))


class TestLoadStores(base.TestCase):

    def test_loads_every_store_of_a_glance_config(self):
        self.addCleanup(gs_location.SCHEME_TO_CLS_BACKEND_MAP.clear)
        path = os.path.join(self.tmp, 'glance-api.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nenabled_backends = images:file\n'
                    '[glance_store]\ndefault_backend = images\n'
                    '[images]\nfilesystem_store_datadir = %s\n' % self.tmp)
        # glance_store verifies the default store on its global CONF
        conf = self.useFixture(base.fixtures.MockPatch(
            'glance_store.multi_backend.CONF', cfg.ConfigOpts())).mock
        self.assertIs(conf, maintenance.load_stores(path, conf, overrides=[
            ('images', 'filesystem_store_chunk_size', 4096)]))
        self.assertEqual({'images': 'file'}, conf.enabled_backends)
        store = multi_backend.get_store_from_store_identifier('images')
        self.assertEqual(4096, store.WRITE_CHUNKSIZE)
