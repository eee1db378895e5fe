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

"""``cinder-store-check`` against the real cloud, as an operator runs it."""

import json
import os
import time
import uuid

import fixtures
from glance_store import exceptions
from glance_store import multi_backend

from cinder_store import host
from cinder_store import host_reads
from cinder_store import metadata
from cinder_store import records
from cinder_store.recovery import rules
from cinder_store.tests.functional import base


class CheckCommandTest(base.FunctionalTestCase):

    def volume_of(self, uri):
        return self.cinder.volumes.get(uri.rsplit('/', 1)[1])

    def warn_then_fix(self, backend, warning, fixed):
        """The check warns ``warning``; with --fix it says ``fixed``."""
        rc, out = self.check('--backend', backend)
        self.assertEqual(0, rc, out)
        self.assertIn(warning, out)
        rc, out = self.check('--backend', backend, '--fix')
        self.assertEqual(0, rc, out)
        self.assertIn(fixed, out)
        return out

    def test_every_backend_is_usable(self):
        rc, out = self.check()
        self.assertEqual(0, rc, out)
        ours = base.our_backends(self.conf)
        for backend in ours:
            self.assertIn('backend %s\n' % backend, out)
        for topic in ('configuration', 'cinder', 'lock path', 'host',
                      'privileges'):
            # A lock path in memory is a warning (checkouts under a tmpfs)
            healthy = sum(out.count('  %-5s  %-13s' % (status, topic))
                          for status in ('ok', 'warn'))
            self.assertEqual(len(ours), healthy, out)

    def test_unknown_backend_is_named(self):
        rc, out = self.check('--backend', 'nope')
        self.assertNotEqual(0, rc)
        self.assertIn('nope is not a cinder_store backend', out)

    def test_fix_detaches_what_a_killed_worker_left(self):
        data = base.pattern_bytes(12 * base.MiB, seed=21)
        uri = self.add(self.backend, data)[0]
        self.addCleanup(self.delete, uri, self.backend)
        volume_id = uri.rsplit('/', 1)[1]
        self._kill_reader_mid_download(uri)
        self.assertEqual(1, len(self.volume_of(uri).attachments))

        rc, out = self.check('--backend', self.backend)
        self.assertEqual(0, rc, out)
        self.assertIn('  warn   shared reads  volume %s' % volume_id, out)
        self.assertIn('no live process holds it', out)
        self.assertEqual(1, len(self.volume_of(uri).attachments))

        rc, out = self.check('--backend', self.backend, '--fix')
        self.assertEqual(0, rc, out)
        self.assertIn('  fixed  shared reads  volume %s' % volume_id, out)
        self.assertEqual([], self.volume_of(uri).attachments)
        rc, out = self.check('--backend', self.backend)
        # Other tests may be reading other volumes of this backend now.
        self.assertNotIn(volume_id, out)
        self.assertEqual((base.hashlib.sha256(data).hexdigest(), len(data)),
                         self.read(uri, self.backend))

    def test_fix_deletes_the_volume_of_a_killed_upload(self):
        # On its own backend: a concurrent --fix of the block one (the
        # test above) leaves it be.
        backend = self.backend_for('file')
        image_id = self.new_image_id()
        self._kill_uploader_mid_write(backend, image_id)
        (volume_id,) = self.my_volumes()
        self.assertEqual(1, len(self.cinder.volumes.get(volume_id)
                                .attachments))

        out = self.warn_then_fix(
            backend, '  warn   uploads       volume %s: orphaned upload of '
            'image %s, its process' % (volume_id, image_id),
            '  fixed  uploads       volume %s: deleted the volume'
            % volume_id)
        self.assertIn('after detaching 1 attachment(s)', out)
        rc, out = self.check('--backend', backend)
        self.assertNotIn(volume_id, out)  # others may be uploading now
        # assert_nothing_leaked: the volume and its loop device are gone

    def test_fix_deletes_the_volume_of_a_create_cut_short(self):
        # The state a worker killed inside the create call leaves: its
        # record, and the volume Cinder made carrying the record's token.
        # On its own backend: the tests above --fix theirs concurrently.
        backend = self.backend_for('multiattach')
        store = multi_backend.get_store_from_store_identifier(backend)
        image_id = self.new_image_id()
        token = store.maintenance().uploads.record_creation(image_id)
        path = store.maintenance().uploads.creations.path(token)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        with open(path) as f:
            record = dict(json.load(f), holder='%s:999999999:1'
                          % records.pid_namespace())
        with open(path, 'w') as f:
            json.dump(record, f)
        api = store.maintenance().bound_cinder()
        volume = api.wait_for_status(api.create_volume(
            1, 'image-%s' % image_id, {'glance_image_id': image_id,
                                       metadata.UPLOAD_TOKEN: token},
            store.backend_conf.cinder_store_volume_type), 'creating',
            'available')

        self.warn_then_fix(
            backend, '  warn   uploads       volume creation %s: for image '
            '%s, cut short' % (token, image_id),
            '  fixed  uploads       volume creation %s: deleted volume(s) %s'
            % (token, volume.id))
        self.assertFalse(os.path.exists(path))
        # assert_nothing_leaked: the volume is gone

    def test_lost_host_procedure(self):
        # Another Glance host read an image of an exclusive type and began
        # an upload, then was lost for good: its attachment blocks every
        # read here and its volume would stay forever.
        backend = self.backend_for('block')
        store = multi_backend.get_store_from_store_identifier(backend)
        settings = store.maintenance().settings
        self.useFixture(fixtures.MockPatchObject(
            settings, 'exclusive_wait', 3))
        lost = 'lost-%s' % uuid.uuid4().hex[:8]
        data = base.pattern_bytes(2 * base.MiB, seed=41)
        uri = self.add(backend, data)[0]
        self.addCleanup(self.delete, uri, backend)
        volume_id = uri.rsplit('/', 1)[1]
        finished = self.cinder.volumes.get(volume_id)
        self.assertFalse(rules.unfinished_upload_of(finished,
                                                    host.hostname()))
        theirs = self.cinder.attachments.create(
            volume_id, {'host': lost, 'ip': '127.0.0.1', 'platform':
                        'x86_64', 'os_type': 'linux2', 'multipath': False},
            mode='ro')
        theirs = theirs['id']  # cinderclient returns a dict here
        self.cinder.attachments.complete(theirs)
        image_id = self.new_image_id()
        unfinished = self.cinder.volumes.create(
            1, name='image-%s' % image_id,
            volume_type=store.backend_conf.cinder_store_volume_type,
            metadata={'glance_image_id': image_id,
                      metadata.UPLOAD_HOST: lost})
        deadline = time.monotonic() + 60
        while self.cinder.volumes.get(unfinished.id).status != 'available':
            self.assertLess(time.monotonic(), deadline, 'never available')
            time.sleep(0.2)

        self.assertRaisesRegex(exceptions.BackendException,
                               'attached on host\\(s\\) %s' % lost,
                               self.read, uri, backend)
        rc, out = self.check('--backend', backend, '--lost-host', lost)
        self.assertEqual(0, rc, out)
        self.assertIn('lost host %s, volume %s: attachment(s) %s'
                      % (lost, volume_id, theirs), out)
        self.assertIn('lost host %s, volume %s: an unfinished upload'
                      % (lost, unfinished.id), out)
        rc, out = self.check('--backend', backend, '--lost-host', lost,
                             '--fix')
        self.assertEqual(0, rc, out)
        self.assertIn('  fixed  other hosts   lost host %s, volume %s: '
                      'deleted its attachment(s) %s'
                      % (lost, volume_id, theirs), out)
        self.assertIn('volume %s: deleted the volume of its unfinished '
                      'upload of image %s' % (unfinished.id, image_id), out)
        self.assertEqual((base.hashlib.sha256(data).hexdigest(), len(data)),
                         self.read(uri, backend))
        # assert_nothing_leaked: the unfinished upload's volume is gone

    def _kill_uploader_mid_write(self, backend, image_id):
        self.kill_when_ready('uploader', backend, image_id)

    def _kill_reader_mid_download(self, uri):
        self.kill_when_ready('reader', uri, self.backend, '1')
        store = multi_backend.get_store_from_store_identifier(self.backend)
        records = os.listdir(store.maintenance().lock_path)
        self.assertTrue(any(n.startswith(host_reads.PREFIX) for n in records))
