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

"""Glance and Cinder workflows around cinder_store, through their REST APIs.

Interoperable import (glance-direct, web-download, copy-image), Cinder's
volume from image (clone and download) and upload to image (plain and
image_upload_use_cinder_backend), and Glance's location API.  Each test
checks the bytes and, through the base class, that no volume is left.
"""

import hashlib
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import time

import openstack

from cinder_store.tests.functional import base
from cinder_store.tests.functional import test_glance_api

# tools/stack lets Glance's web-download fetch from 127.0.0.1:18080; another
# cloud must allow a port and name it here.
LOCAL_STACK = bool(base.target() and base.target()[2] == 'stack-admin')
WEB_DOWNLOAD_PORT = int(os.environ.get(
    'CINDER_STORE_FUNCTIONAL_WEB_DOWNLOAD_PORT',
    '18080' if LOCAL_STACK else '0'))
# A clouds.yaml entry for Glance's own service user (role service): the
# location API is for services.  The local stack writes stack-glance.
SERVICE_CLOUD = os.environ.get(
    'CINDER_STORE_FUNCTIONAL_SERVICE_CLOUD',
    'stack-glance' if LOCAL_STACK else '')


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class WorkflowTestCase(test_glance_api.GlanceAPITestCase):

    def wait_until(self, what, condition, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        self.fail('%s: not after %ss' % (what, timeout))

    def stored_in(self, image_id, stores):
        """Wait until the image is active in exactly ``stores``."""
        def done():
            shown = self.show(image_id)
            if shown['status'] not in ('queued', 'importing', 'uploading',
                                       'active', 'saving'):
                self.fail('image %s went %s' % (image_id, shown['status']))
            if (shown['status'] == 'active' and
                    not shown.get('os_glance_importing_to_stores') and
                    set(filter(None, shown.get('stores', '').split(',')))
                    == set(stores)):
                return shown
            failed = shown.get('os_glance_failed_import')
            if failed:
                self.fail('import into %s failed' % failed)
        return self.wait_until('image %s in %s' % (image_id, stores), done)

    def stage(self, image_id, data):
        r = self.image.put('/images/%s/stage' % image_id, data=data,
                           headers={'Content-Type':
                                    'application/octet-stream'})
        self.assertEqual(204, r.status_code, r.text)

    def import_image(self, image_id, method, stores, **extra):
        body = {'method': dict(method), 'stores': list(stores)}
        body.update(extra)
        r = self.image.post('/images/%s/import' % image_id, json=body)
        self.assertEqual(202, r.status_code, r.text)

    def delete_from_store(self, image_id, store):
        r = self.image.delete('/stores/%s/%s' % (store, image_id))
        self.assertEqual(204, r.status_code, r.text)

    def our_store(self, role):
        """A cinder_store backend of the target in ``role``, or skip."""
        return self.backend_for(role)

    def volume_type(self, backend):
        return self.conf[backend].cinder_store_volume_type

    def wait_volumes(self, count):
        self.wait_until('%d image-volume(s)' % count,
                        lambda: len(self.my_volumes()) == count, 60)

    def new_volume(self, **kwargs):
        """A Cinder volume made by this test, deleted after it."""
        volume = self.cinder.volumes.create(**kwargs)
        self.addCleanup(self.delete_volume, volume.id)

        def settled():
            v = self.cinder.volumes.get(volume.id)
            if v.status in ('error', 'error_restoring'):
                self.fail('volume %s went %s' % (v.id, v.status))
            return v if v.status == 'available' else None
        return self.wait_until('volume %s available' % volume.id, settled)

    def delete_volume(self, volume_id):
        from cinderclient import exceptions as cinder_exc
        try:
            self.cinder.volumes.delete(volume_id)
        except cinder_exc.NotFound:
            return

        def gone():
            try:
                self.cinder.volumes.get(volume_id)
            except cinder_exc.NotFound:
                return True
        self.wait_until('volume %s deleted' % volume_id, gone, 60)


class TestImport(WorkflowTestCase):
    """Interoperable image import into cinder_store backends."""

    def test_glance_direct_into_one_store(self):
        data = base.pattern_bytes(5 * base.MiB + 3, seed=31)
        store = self.our_store('file')
        image_id = self.create()
        self.stage(image_id, data)
        self.import_image(image_id, {'name': 'glance-direct'}, [store])
        shown = self.stored_in(image_id, [store])
        self.assertEqual(len(data), shown['size'])
        self.assertEqual(sha256(data), self.download_sha256(image_id))

    def test_qcow2_import_is_converted_to_raw(self):
        # A real cloud image: a file system (mostly zeros) shipped as
        # qcow2; Glance's image_conversion plugin makes it raw, the only
        # format Cinder clones.  mke2fs -d fills it without mounting.
        for tool in ('mke2fs', 'qemu-img'):
            if not shutil.which(tool):
                self.skipTest('%s is not installed' % tool)
        store = self.our_store('rbd')
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        raw, qcow2 = os.path.join(tmp, 'disk.raw'), os.path.join(tmp, 'qcow2')
        tree = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run(['mke2fs', '-q', '-F', '-t', 'ext4', '-d', tree, raw,
                        '64M'], check=True)
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        raw, qcow2], check=True)
        with open(raw, 'rb') as f:
            data = f.read()
        image_id = self.create(disk_format='qcow2')
        with open(qcow2, 'rb') as f:
            self.stage(image_id, f)
        self.import_image(image_id, {'name': 'glance-direct'}, [store])
        shown = self.stored_in(image_id, [store])
        self.assertEqual(
            ('raw', len(data), len(data), hashlib.sha512(data).hexdigest()),
            (shown['disk_format'], shown['size'], shown['virtual_size'],
             shown['os_hash_value']))
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         self.download_sha256(image_id))
        used = self.assert_thin_and_cloned(store, raw, image_id)
        self.assert_no_larger_than_glance_rbd(qcow2, used)

    def assert_thin_and_cloned(self, store, raw, image_id):
        """The image-volume holds only objects with data; Cinder clones it.

        Needs the local stack's Ceph (the rbd CLI and the backend's
        cinder.conf section); elsewhere the checks are left out.  Returns
        what the image-volume allocates (None when not checked).
        """
        rbd = base.local_rbd(store)
        if rbd is None:
            return None
        (args, pool), (image_volume,) = rbd, self.my_volumes()

        def rbd_json(*more):
            return base.rbd_json(args, *more)
        image = '%s/volume-%s' % (pool, image_volume)
        info = rbd_json('info', image)
        used = base.rbd_used(args, image)
        objects = base.data_extents(raw, info['object_size'])
        # Every object the raw image has data in, at most: no zeros
        # written as data (the in-tree driver allocates the whole size).
        self.assertLessEqual(used, objects * info['object_size'])
        self.assertLess(used, os.path.getsize(raw))
        volume = self.new_volume(size=1, imageRef=image_id,
                                 volume_type=self.volume_type(store),
                                 name='from-image-%s' % image_id)
        parent = rbd_json('info', '%s/volume-%s' % (pool, volume.id))
        self.assertEqual('volume-%s' % image_volume,
                         parent.get('parent', {}).get('image'))
        # Cinder's RBD driver leaves the clone's snapshot on the
        # image-volume when the clone is deleted, and then keeps the
        # deleted image-volume as "<name>.deleted" for good: remove it.
        self.delete_volume(volume.id)
        snap = '%s@%s' % (image, parent['parent']['snapshot'])
        for action in ('unprotect', 'rm'):
            subprocess.run(args + ['snap', action, snap], check=True,
                           capture_output=True)
        self.assertEqual([], [s for s in rbd_json('snap', 'ls', image)
                              if s['name'].endswith('.clone_snap')])
        return used

    def assert_no_larger_than_glance_rbd(self, qcow2, used):
        """Glance's own thin rbd store allocates at least as much.

        The same import into it (a separate image: with an rbd location
        too, Cinder would clone from Glance's pool).  It skips only whole
        chunks of zeros; cinder_store writes nothing but data, so every
        object it allocates, Glance's store allocates too.
        """
        native = base.glance_rbd(self.conf)
        if native is None or used is None:
            return
        backend, args, pool = native
        image_id = self.create(disk_format='qcow2')
        with open(qcow2, 'rb') as f:
            self.stage(image_id, f)
        self.import_image(image_id, {'name': 'glance-direct'}, [backend])
        self.stored_in(image_id, [backend])
        self.assertLessEqual(used, base.rbd_used(args, '%s/%s' % (pool,
                                                                  image_id)))

    def test_glance_direct_into_several_stores(self):
        data = base.pattern_bytes(3 * base.MiB + 1, seed=32)
        stores = [self.our_store('block'), self.our_store('file')]
        image_id = self.create()
        self.stage(image_id, data)
        self.import_image(image_id, {'name': 'glance-direct'}, stores,
                          all_stores_must_succeed=True)
        self.stored_in(image_id, stores)
        self.assertEqual(2, len(self.my_volumes()))
        self.assertEqual(sha256(data), self.download_sha256(image_id))
        # The other copy on its own: drop the first store, read again.
        self.delete_from_store(image_id, stores[0])
        self.stored_in(image_id, stores[1:])
        self.wait_volumes(1)
        self.assertEqual(sha256(data), self.download_sha256(image_id))

    def test_one_store_failing_reverts_the_others(self):
        stores = [self.our_store('block'), self.our_store('file')]
        faults = base.local_volume_dir(stores[1])
        if faults is None:
            self.skipTest('fault injection needs the local stack')
        image_id = self.create()
        # Cinder retries a failed create on the backend: fail them all.
        path = os.path.join(faults, 'faults',
                            'create_volume@image-%s' % image_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('10')
        self.addCleanup(os.unlink, path)
        self.stage(image_id, base.pattern_bytes(base.MiB, seed=33))
        self.import_image(image_id, {'name': 'glance-direct'}, stores,
                          all_stores_must_succeed=True)

        def task_failed():
            tasks = self.image.get('/images/%s/tasks' % image_id).json()
            return any(t['status'] == 'failure' for t in tasks['tasks'])
        self.wait_until('the import task fails', task_failed)
        shown = self.show(image_id)
        self.assertNotEqual('active', shown['status'])
        self.assertEqual('', shown.get('stores', ''))
        self.wait_volumes(0)  # the first store's copy is reverted

    def test_web_download(self):
        if not WEB_DOWNLOAD_PORT:
            self.skipTest('set CINDER_STORE_FUNCTIONAL_WEB_DOWNLOAD_PORT to '
                          'a port Glance\'s import filtering allows on '
                          '127.0.0.1')
        data = base.pattern_bytes(4 * base.MiB + 7, seed=34)
        store = self.our_store('block')
        server = self.serve(data)
        image_id = self.create()
        self.import_image(image_id, {
            'name': 'web-download',
            'uri': 'http://127.0.0.1:%d/image.raw' % server.server_port},
            [store])
        self.stored_in(image_id, [store])
        self.assertEqual(sha256(data), self.download_sha256(image_id))

    def serve(self, data):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', WEB_DOWNLOAD_PORT), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server

    def test_copy_image_from_the_in_tree_driver(self):
        # The operator's migration recipe: copy, then drop the old copy.
        if 'upstream' not in self.conf.enabled_backends:
            self.skipTest('the target has no in-tree "upstream" backend')
        data = base.pattern_bytes(6 * base.MiB + 9, seed=35)
        store = self.our_store('block')
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, data,
                                          store='upstream').status_code)
        self.import_image(image_id, {'name': 'copy-image'}, [store])
        self.stored_in(image_id, ['upstream', store])
        self.delete_from_store(image_id, 'upstream')
        self.stored_in(image_id, [store])
        self.wait_volumes(1)  # the in-tree driver's volume is gone
        self.assertEqual(sha256(data), self.download_sha256(image_id))

    def test_copy_image_between_our_stores_with_the_source_warm(self):
        data = base.pattern_bytes(5 * base.MiB + 3, seed=36)
        # Several Glance hosts are alive: only multiattach ones stay warm
        source, target = self.our_store('multiattach'), self.our_store(
            'block')
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, data,
                                          store=source).status_code)
        # Downloads leave the source volume's read attachment warm
        self.assertEqual(sha256(data), self.download_sha256(image_id))
        self.import_image(image_id, {'name': 'copy-image'}, [target])
        self.stored_in(image_id, [source, target])
        self.assertEqual(sha256(data), self.download_sha256(image_id))
        self.delete_from_store(image_id, source)  # warm, released first
        self.stored_in(image_id, [target])
        self.wait_volumes(1)
        self.assertEqual(sha256(data), self.download_sha256(image_id))


class TestCinderWorkflows(WorkflowTestCase):
    """Cinder's image paths with images on cinder_store backends."""

    def image_on(self, store, data):
        """An image on ``store``, downloaded once: its volume kept warm."""
        image_id = self.create()
        self.assertEqual(204, self.upload(image_id, data,
                                          store=store).status_code)
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         self.download_sha256(image_id))
        (volume_id,) = self.my_volumes()
        return image_id, volume_id

    def volume_sha256(self, backend, volume, size):
        """sha256 of the first ``size`` bytes of a local-stack volume.

        Past the data written, a volume holds what its backend gives a new
        one: the stack's loop-file volumes hold old data (junk mode).
        """
        digest = hashlib.sha256()
        with open(self.volume_path(backend, volume), 'rb') as f:
            while size > 0:
                chunk = f.read(min(size, base.MiB))
                if not chunk:
                    break
                digest.update(chunk)
                size -= len(chunk)
        return digest.hexdigest()

    def volume_path(self, backend, volume):
        """A local-stack volume's file."""
        return os.path.join(base.local_volume_dir(backend),
                            'volume-%s.img' % volume.id)

    def volume_bytes(self, backend, volume, size):
        """The first ``size`` bytes of a local-stack volume's file."""
        with open(self.volume_path(backend, volume), 'rb') as f:
            return f.read(size)

    def clone_source(self, backend, volume):
        """The volume the stack's driver cloned ``volume`` from, if any."""
        path = os.path.join(base.local_volume_dir(backend), 'clones',
                            'volume-%s' % volume.id)
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def local_stack(self, *backends):
        if any(base.local_volume_dir(b) is None for b in backends):
            self.skipTest('reading volumes and clone records needs the '
                          'local stack')

    def volume_from_image(self, store, volume_store, size, seed):
        """An image on ``store``; a volume of ``volume_store``'s type from it.

        Returns the image's bytes, its image-volume's id and the volume.
        """
        self.local_stack(store, volume_store)
        data = base.pattern_bytes(size, seed=seed)
        image_id, image_volume = self.image_on(store, data)
        volume = self.new_volume(size=1, imageRef=image_id,
                                 volume_type=self.volume_type(volume_store),
                                 name='from-image-%s' % image_id)
        return data, image_volume, volume

    def test_volume_from_image_is_a_clone(self):
        store = self.our_store('block')
        data, image_volume, volume = self.volume_from_image(
            store, store, 3 * base.MiB + 11, seed=41)
        self.assertEqual('volume-%s' % image_volume,
                         self.clone_source(store, volume))
        self.assertEqual(data, self.volume_bytes(store, volume, len(data)))

    def test_volume_from_image_on_another_backend_is_downloaded(self):
        source, target = self.our_store('file'), self.our_store('block')
        data, _, volume = self.volume_from_image(source, target,
                                                 2 * base.MiB + 13, seed=42)
        self.assertIsNone(self.clone_source(target, volume))
        self.assertEqual(data, self.volume_bytes(target, volume, len(data)))

    def upload_to_image(self, volume, container_format):
        _, body = self.cinder.volumes.upload_to_image(
            volume, False, 'uploaded-%s' % volume.id, container_format,
            'raw', 'private', False)
        image_id = body['os-volume_upload_image']['image_id']
        self.image_ids.add(image_id)
        self.addCleanup(self.image.delete, '/images/%s' % image_id)

        def active():
            shown = self.show(image_id)
            if shown['status'] in ('killed', 'deleted'):
                self.fail('image %s went %s' % (image_id, shown['status']))
            return shown if shown['status'] == 'active' else None
        self.wait_until('image %s active' % image_id, active)
        # Cinder leaves the volume uploading until Glance answered
        self.wait_until('volume available', lambda: self.cinder.volumes.get(
            volume.id).status == 'available')
        return image_id

    def test_upload_volume_to_image_registers_a_clone(self):
        # image_upload_use_cinder_backend: Cinder clones the volume and
        # registers cinder://<clone> through Glance's location API.
        store = self.our_store('file')
        data, _, volume = self.volume_from_image(store, store,
                                                 2 * base.MiB + 17, seed=43)
        uploaded = self.upload_to_image(volume, 'bare')
        shown = self.show(uploaded)
        self.assertEqual(store, shown['stores'])  # the type that matches
        self.assertIn('uploaded-', shown['name'])
        self.assertEqual(data, self.volume_bytes(store, volume, len(data)))
        self.assertEqual(self.volume_sha256(store, volume, shown['size']),
                         self.download_sha256(uploaded))
        clones = [v for v in self.cinder.volumes.list(
            search_opts={'all_tenants': 1})
            if v.name == 'image-%s' % uploaded]
        self.assertEqual(1, len(clones))
        self.assertEqual('volume-%s' % volume.id,
                         self.clone_source(store, clones[0]))
        self.delete_when_read(uploaded)
        self.wait_volumes(1)  # the clone went with the image

    def delete_when_read(self, image_id):
        # Glance hashes a location Cinder adds in the background, through
        # cinder_store: until that read ends, the delete answers 409.
        def deleted():
            r = self.image.delete('/images/%s' % image_id)
            self.assertIn(r.status_code, (204, 409), r.text)
            return r.status_code == 204
        self.wait_until('image %s deleted' % image_id, deleted)

    def test_upload_volume_to_image_plain(self):
        # A container format other than bare takes Cinder's generic path
        # on the same backend: the bytes go through Glance into the
        # default store.
        store = self.our_store('block')
        data, _, volume = self.volume_from_image(store, store,
                                                 base.MiB + 19, seed=44)
        uploaded = self.upload_to_image(volume, 'ovf')
        shown = self.show(uploaded)
        self.assertEqual(self.conf.glance_store.default_backend,
                         shown['stores'])
        self.assertEqual(base.GiB, shown['size'])
        self.assertEqual(data, self.volume_bytes(store, volume, len(data)))
        self.assertEqual(self.volume_sha256(store, volume, base.GiB),
                         self.download_sha256(uploaded))


class TestLocationAPI(WorkflowTestCase):
    """A location added by a service through Glance's location API."""

    def setUp(self):
        super(TestLocationAPI, self).setUp()
        if not SERVICE_CLOUD:
            self.skipTest('set CINDER_STORE_FUNCTIONAL_SERVICE_CLOUD to a '
                          'cloud of Glance\'s service user')

    def test_service_adds_a_cinder_location(self):
        store = self.our_store('block')
        data = base.pattern_bytes(3 * base.MiB + 23, seed=51)
        image_id = self.create()
        url, size, _, multihash, _ = self.add(store, data, image_id=image_id)
        os.environ.setdefault('OS_CLIENT_CONFIG_FILE',
                              base.target()[1] or '')
        service = openstack.connect(cloud=SERVICE_CLOUD).image
        r = service.post('/images/%s/locations' % image_id, json={
            'url': url, 'validation_data': {'os_hash_algo': 'sha512',
                                            'os_hash_value': multihash}})
        self.assertEqual(202, r.status_code, r.text)
        shown = self.stored_in(image_id, [store])
        self.assertEqual(size, shown['size'])
        self.assertEqual(multihash, shown['os_hash_value'])
        self.assertEqual(sha256(data), self.download_sha256(image_id))
