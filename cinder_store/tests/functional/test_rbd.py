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

"""The store on Ceph RBD, attached in userspace (os-brick + librbd).

The whole store contract, plus what is RBD's own: workers killed
mid-transfer, images the in-tree driver wrote on the same Ceph, the Ceph
key kept out of logs and files, and the check's RBD findings.
"""

import hashlib
import logging
import os

import fixtures
from glance_store import exceptions
from glance_store import multi_backend

from cinder_store.devices import rbd
from cinder_store.tests.functional import base
from cinder_store.tests.functional import test_contract


class TestRBD(test_contract.StoreContract,
              test_contract.UnknownSizeContract, base.FunctionalTestCase):
    role = 'rbd'

    def volume_of(self, uri):
        return self.cinder.volumes.get(uri.rsplit('/', 1)[1])

    def keyring(self):
        store = multi_backend.get_store_from_store_identifier(self.backend)
        return store.maintenance().settings.rbd.keyring

    def test_reader_killed_mid_download_does_not_block_the_next(self):
        data = base.pattern_bytes(12 * base.MiB, seed=41)
        uri = self.add(self.backend, data)[0]
        self.kill_when_ready('reader', uri, self.backend, '1')
        # The dead reader's attachment is left: the volume is not
        # multiattach, so the next reader must repair it to attach.
        self.assertEqual(1, len(self.volume_of(uri).attachments))
        self.assertEqual((hashlib.sha256(data).hexdigest(), len(data)),
                         self.read(uri, self.backend))
        self.assertEqual([], self.volume_of(uri).attachments)
        self.delete(uri, self.backend)

    def test_image_whose_reader_was_killed_is_deleted(self):
        uri = self.add(self.backend, base.pattern_bytes(12 * base.MiB))[0]
        self.kill_when_ready('reader', uri, self.backend, '1')
        self.delete(uri, self.backend)
        # assert_nothing_leaked: the volume is gone

    def test_killed_upload_is_reclaimed_by_check_fix(self):
        image_id = self.new_image_id()
        self.kill_when_ready('uploader', self.backend, image_id)
        (volume_id,) = self.my_volumes()
        rc, out = self.check('--backend', self.backend, '--fix')
        self.assertEqual(0, rc, out)
        self.assertIn('  fixed  uploads       volume %s: deleted the volume'
                      % volume_id, out)
        # assert_nothing_leaked: the volume is gone

    def test_check_probes_ceph_and_reports_the_keyring(self):
        # TestRBD runs in one test worker (.stestr.conf): the probe can
        # only attach this test's volume.
        uri = self.add(self.backend, b'probe me')[0]
        self.addCleanup(self.delete, uri, self.backend)
        rc, out = self.check('--backend', self.backend, '--probe')
        self.assertEqual(0, rc, out)
        self.assertIn('  ok     ceph keyring  %s: client.' % self.keyring(),
                      out)
        self.assertIn('  ok     ceph          volume %s attached and read as '
                      'client.' % uri.rsplit('/', 1)[1], out)
        self.assertIn('  ok     rbd files     no temporary Ceph config', out)
        self.assert_detached(uri)

    def test_a_wrong_key_fails_the_upload_naming_the_keyring(self):
        bad = self.useFixture(fixtures.TempDir()).path + '/bad.keyring'
        with open(bad, 'w') as f:
            f.write('[client.cinderstack]\n\tkey = '
                    'AQBmZ8ZmAAAAABAAx1gyl3u0wzK6N3q8FwY2Lw==\n')
        store = multi_backend.get_store_from_store_identifier(self.backend)
        rbd = store.maintenance().settings.rbd
        self.useFixture(fixtures.MockPatchObject(rbd, 'keyring', bad))
        self.useFixture(fixtures.MockPatchObject(rbd, 'timeout', 3))
        image_id = self.new_image_id()
        error = self.assertRaises(exceptions.BackendException, self.add,
                                  self.backend, b'data', image_id=image_id)
        self.assertIn('did not accept the key in %s' % bad, str(error))
        # assert_nothing_leaked: its volume was deleted

    def test_check_removes_a_connect_file_a_killed_worker_left(self):
        # What a worker killed inside os-brick's connect leaves: its
        # temporary config (ours are marked), older than any connect.
        path = os.path.join(base.system_tmp(),
                            rbd.CONNECT_FILE_PREFIX + 'functional')
        with open(path, 'w') as f:
            f.write('[global]\nmon_host = 127.0.0.1:1\n%s\n'
                    % rbd.RBDClient.MARK)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        os.utime(path, (1, 1))
        rc, out = self.check('--backend', self.backend, '--fix')
        self.assertEqual(0, rc, out)
        self.assertIn('  fixed  rbd files     removed %s' % path, out)
        self.assertFalse(os.path.exists(path))

    def test_the_key_is_never_logged(self):
        logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        data = base.pattern_bytes(2 * base.MiB, seed=42)
        uri = self.add(self.backend, data)[0]
        self.read(uri, self.backend)
        self.delete(uri, self.backend)
        with open(self.keyring()) as f:
            (key,) = [line.split('=', 1)[1].strip() for line in f
                      if line.strip().startswith('key')]
        self.assertIn('connect_volume', logs.output)  # os-brick's trace
        self.assertNotIn(key, logs.output)


class TestUpstreamRBDImages(test_contract.TestUpstreamImages):
    """Images the in-tree driver wrote on the same Ceph, read by ours."""

    role = 'rbd'
    upstream = 'upstream-rbd'
