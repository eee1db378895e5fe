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

"""The same images through Glance's REST API (openstacksdk), end to end."""

import configparser
import contextlib
import hashlib
import os
import time

from cinderclient import exceptions as cinder_exc
from glance_store import multi_backend

from cinder_store import settings
from cinder_store.tests.functional import base
from cinder_store.tests.functional import stores


class GlanceAPITestCase(base.FunctionalTestCase):

    def setUp(self):
        super(GlanceAPITestCase, self).setUp()
        # One Glance host: these tests are about what one host does (the
        # several-hosts tests are test_glance_hosts).  On devstack, Glance
        # itself rather than Apache in front of it: Apache cut two
        # concurrent streamed downloads after 8 KiB, silently.
        hosts = stores.glance_hosts()
        self.image = base.glance_api(hosts[0]['url'] if hosts
                                     else stores.glance_own_url())

    def create(self, name='cinder-store-functional', disk_format='raw'):
        r = self.image.post('/images', json={
            'name': name, 'disk_format': disk_format,
            'container_format': 'bare'})
        self.assertEqual(201, r.status_code, r.text)
        image_id = r.json()['id']
        self.image_ids.add(image_id)
        self.addCleanup(self.image.delete, '/images/%s' % image_id)
        return image_id

    def upload(self, image_id, data, store=None):
        headers = {'Content-Type': 'application/octet-stream'}
        if store:
            headers['X-Image-Meta-Store'] = store
        return self.image.put('/images/%s/file' % image_id, data=data,
                              headers=headers)

    def show(self, image_id):
        return self.image.get('/images/%s' % image_id).json()

    def download_sha256(self, image_id):
        r = self.image.get('/images/%s/file' % image_id, stream=True)
        self.assertEqual(200, r.status_code)
        digest = hashlib.sha256()
        for chunk in r.iter_content(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()

    def attached(self, volume_id):
        try:
            return self.cinder.volumes.get(volume_id).attachments
        except cinder_exc.NotFound:  # an earlier image's, deleted since
            return []

    def glance_warm_idle(self, coordinated):
        """How long Glance keeps an unread attachment of ``block`` warm.

        From Glance's configuration file (the tests' own stores override
        it), or the default for a deployment ``coordinated`` or not.
        """
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(base.target()[0])
        value = conf.get(self.backend_for('block'),
                         'cinder_store_warm_read_idle', fallback=None)
        return settings.warm_idle_of(
            None if value is None else int(value), coordinated)

    def wait_detached(self, image_id, timeout=30):
        """Nothing attached once every Glance host was asked to let go.

        Glance's downloads leave their read attachment warm; an image
        delete asks the hosts to release it, as this does (with a
        coordination service), and what no reader holds goes.
        """
        members = multi_backend.get_store_from_store_identifier(
            self.backend_for('block')).maintenance().settings.membership
        if not members.coordinated:
            # Nobody can be asked: what Glance keeps warm goes when its
            # idle time runs out (devstack configures no coordination)
            timeout = max(timeout, self.glance_warm_idle(False) + 10)
        deadline = time.monotonic() + timeout
        volume_ids = self.my_volumes()
        with contextlib.ExitStack() as asking:
            for volume_id in volume_ids:
                asking.enter_context(members.releasing(volume_id))
            while time.monotonic() < deadline:
                if not any(self.attached(v) for v in volume_ids):
                    return
                time.sleep(0.2)
        self.fail('image %s still attached after %ss' % (image_id, timeout))


class TestGlanceAPI(GlanceAPITestCase):

    def test_stores_listed(self):
        stores = {s['id'] for s in
                  self.image.get('/info/stores').json()['stores']}
        self.assertLessEqual(set(base.our_backends(self.conf)), stores)

    def test_upload_download_delete_on_every_backend(self):
        data = base.pattern_bytes(9 * base.MiB + 5, seed=21)
        for store in base.our_backends(self.conf):
            image_id = self.create()
            r = self.upload(image_id, data, store=store)
            self.assertEqual(204, r.status_code, r.text)
            shown = self.show(image_id)
            self.assertEqual('active', shown['status'])
            self.assertEqual(store, shown['stores'])
            self.assertEqual(len(data), shown['size'])
            self.assertEqual(hashlib.md5(data).hexdigest(),
                             shown['checksum'])
            self.assertEqual(hashlib.sha512(data).hexdigest(),
                             shown['os_hash_value'])
            self.assertEqual(hashlib.sha256(data).hexdigest(),
                             self.download_sha256(image_id))
            self.wait_detached(image_id)
            self.assertEqual(204, self.image.delete(
                '/images/%s' % image_id).status_code)

    def test_default_backend_is_used_without_store_header(self):
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, b'tiny').status_code)
        self.assertEqual(self.conf.glance_store.default_backend,
                         self.show(image_id)['stores'])

    def test_image_attached_on_another_host_is_not_deleted(self):
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, b'held').status_code)
        (volume_id,) = self.my_volumes()
        held = self.cinder.attachments.create(
            volume_id, {'host': 'another-glance-host', 'ip': '192.0.2.7',
                        'initiator': 'iqn.2004-10.org.example:other'},
            mode='ro')
        self.addCleanup(self.detach_quietly, held['id'])
        self.cinder.attachments.complete(held['id'])  # it reads there now
        r = self.image.delete('/images/%s' % image_id)
        self.assertEqual(409, r.status_code, r.text)
        self.assertIn('attached elsewhere: %s (host another-glance-host)'
                      % held['id'], r.text)
        self.assertEqual('active', self.show(image_id)['status'])
        self.cinder.attachments.delete(held['id'])
        self.assertEqual(204, self.image.delete(
            '/images/%s' % image_id).status_code)

    def detach_quietly(self, attachment_id):
        try:
            self.cinder.attachments.delete(attachment_id)
        except cinder_exc.NotFound:
            pass

    def test_image_whose_volume_is_gone_is_deleted_cleanly(self):
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, b'gone').status_code)
        self.download_sha256(image_id)  # takes the volume's locks
        self.wait_detached(image_id)
        (volume_id,) = self.my_volumes()
        self.cinder.volumes.delete(volume_id)  # behind Glance's back
        deadline = time.monotonic() + 60
        while self.my_volumes() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(204, self.image.delete(
            '/images/%s' % image_id).status_code)
        lock_path = self.conf.oslo_concurrency.lock_path
        self.assertEqual([], [n for n in os.listdir(lock_path)
                              if volume_id in n])

    def test_abandoned_download_releases_attachment(self):
        image_id = self.create()
        self.upload(image_id, base.pattern_bytes(40 * base.MiB, seed=2))
        r = self.image.get('/images/%s/file' % image_id, stream=True)
        next(r.iter_content(1 << 20))
        r.close()
        self.wait_detached(image_id)

    def test_concurrent_downloads_share_one_attachment(self):
        # A boot storm in miniature: downloads open at once across
        # Glance's workers, of an image whose volume is not multiattach.
        # Two: devstack's Glance has two single-threaded uwsgi workers,
        # and a third request would wait for one of them.  Larger than
        # what socket and proxy buffers hold on loopback, so the reads
        # stay open.
        data = base.pattern_bytes(96 * base.MiB + 1, seed=23)
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, data).status_code)
        responses = [self.image.get('/images/%s/file' % image_id,
                                    stream=True) for _ in range(2)]
        firsts = [next(r.iter_content(1 << 20)) for r in responses]
        (volume_id,) = self.my_volumes()
        self.assertEqual(1, len(self.cinder.volumes.get(volume_id)
                                .attachments))
        expected = hashlib.sha256(data).hexdigest()
        for first, r in zip(firsts, responses):
            self.assertEqual(200, r.status_code)
            digest = hashlib.sha256(first)
            for chunk in r.iter_content(1 << 20):
                digest.update(chunk)
            self.assertEqual(expected, digest.hexdigest())
        self.wait_detached(image_id)
