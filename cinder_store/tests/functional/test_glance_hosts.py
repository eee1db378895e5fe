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


"""Several Glance hosts on one Cinder: the local stack's HA tests.

The stack runs its Glance hosts behind HAProxy, each with its own host
name, locks and records, all members of one coordination group (etcd).
A host that dies or freezes is played by a helper process in a UTS
namespace of its own.  Skipped on a target with one Glance host.
"""

import concurrent.futures
import hashlib
import os
import shutil
import signal
import time
import uuid

import ddt
import fixtures

from cinder_store.tests.functional import base
from cinder_store.tests.functional import stores
from cinder_store.tests.functional import test_glance_api

BACKENDS = ('block', 'multiattach', 'rbd')


@ddt.ddt
class TestGlanceHosts(test_glance_api.GlanceAPITestCase):

    def setUp(self):
        super(TestGlanceHosts, self).setUp()
        self.hosts = stores.glance_hosts()
        if len(self.hosts) < 3:
            self.skipTest('needs the local stack with 3 Glance hosts (has '
                          '%d)' % len(self.hosts))
        self.apis = [base.glance_api(h['url']) for h in self.hosts]
        self.balanced = base.glance_api()  # the catalog's: HAProxy

    def stored(self, role, size, seed):
        """An image stored through host 1 on ``role``: (id, data sha256)."""
        store = self.backend_for(role)
        data = base.pattern_bytes(size, seed=seed)
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, data, store).status_code)
        return image_id, hashlib.sha256(data).hexdigest()

    def download(self, api, image_id, pace=0.0):
        """sha256 of the image read through ``api``, ``pace`` s per MiB."""
        r = api.get('/images/%s/file' % image_id, stream=True)
        self.assertEqual(200, r.status_code, r.text)
        digest = hashlib.sha256()
        for chunk in r.iter_content(1 << 20):
            digest.update(chunk)
            time.sleep(pace)
        return digest.hexdigest()

    def delete_through(self, api, image_id):
        self.assertEqual(204, api.delete('/images/%s' % image_id).status_code)

    @ddt.data(*BACKENDS)
    def test_upload_on_one_host_read_on_another_delete_on_a_third(self, role):
        image_id, sha = self.stored(role, 5 * base.MiB + 3, seed=51)
        self.assertEqual(sha, self.download(self.apis[1], image_id))
        self.wait_detached(image_id)
        self.delete_through(self.apis[2], image_id)

    @ddt.data(*BACKENDS)
    def test_boot_storm_across_hosts_through_haproxy(self, role):
        # Six downloads of ~3 s each through HAProxy, two per host, all
        # started at once.  On exclusive types the hosts take turns.
        image_id, sha = self.stored(role, 48 * base.MiB, seed=52)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            digests = list(pool.map(
                lambda _: self.download(self.balanced, image_id, 0.06),
                range(6)))
        self.assertEqual([sha] * 6, digests)
        self.wait_detached(image_id)

    def lost_host(self):
        """(host name, lock directory) for a helper playing a host."""
        name = 'lost-%s' % uuid.uuid4().hex[:8]
        return name, self.useFixture(fixtures.TempDir()).path

    def read_there(self, role, image_id):
        """A reader on another host, mid-read: (process, sync dir)."""
        uri = self.show(image_id)['direct_url']
        name, locks = self.lost_host()
        worker, sync = self.start_mid_transfer(
            'reader', uri, self.backend_for(role), '1', host_name=name,
            lock_path=locks)
        return worker, sync, locks

    @ddt.data('block', 'rbd')
    def test_a_killed_readers_host_strands_nothing(self, role):
        image_id, sha = self.stored(role, 8 * base.MiB, seed=53)
        worker, _, locks = self.read_there(role, image_id)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        shutil.rmtree(locks)  # its disk went with it
        # A survivor's reader waits for the lost host's turn, which ends
        # once it has been out of the group for the grace.
        self.assertEqual(sha, self.download(self.apis[1], image_id))
        self.wait_detached(image_id)
        self.delete_through(self.apis[2], image_id)

    @ddt.data('multiattach')  # others are not kept warm beside live hosts
    def test_a_lost_hosts_warm_attachment_is_released(self, role):
        image_id, sha = self.stored(role, 4 * base.MiB, seed=55)
        uri = self.show(image_id)['direct_url']
        name, locks = self.lost_host()
        worker, _ = self.warm_elsewhere(uri, self.backend_for(role), 300,
                                        True, host_name=name,
                                        lock_path=locks)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        shutil.rmtree(locks)  # its disk went with it
        # The survivors release it once the host is lost; a reader of an
        # exclusive volume meanwhile waits its turn.
        self.assertEqual(sha, self.download(self.apis[1], image_id))
        self.wait_detached(image_id, timeout=120)
        self.delete_through(self.apis[2], image_id)

    def test_a_killed_uploaders_volume_is_reclaimed(self):
        backend = self.backend_for('block')
        name, locks = self.lost_host()
        image_id = self.new_image_id()
        self.kill_when_ready('uploader', backend, image_id, host_name=name,
                             lock_path=locks)
        (volume_id,) = self.my_volumes()
        # No operator action: a surviving host's sweep deletes it.
        deadline = time.monotonic() + 120
        while volume_id in self.my_volumes():
            self.assertLess(time.monotonic(), deadline,
                            'volume %s of the lost upload is still there'
                            % volume_id)
            time.sleep(1)

    def test_a_frozen_host_serves_right_bytes_or_fails_cleanly(self):
        image_id, sha = self.stored('block', 8 * base.MiB, seed=54)
        worker, sync, _ = self.read_there('block', image_id)
        worker.send_signal(signal.SIGSTOP)
        try:
            # Past its grace the survivors take the volume
            self.assertEqual(sha, self.download(self.apis[1], image_id))
        finally:
            open(os.path.join(sync, 'go'), 'w').close()
            worker.send_signal(signal.SIGCONT)
        out, _ = worker.communicate(timeout=120)
        if worker.returncode == 0:
            self.assertEqual(sha, out.strip())
        self.wait_detached(image_id)
        self.delete_through(self.apis[2], image_id)
