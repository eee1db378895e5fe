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

"""The main job: one real image through Glance with cinder_store.

    tools/stack demo [--size-mib N] [--store BACKEND]

Creates an image, uploads it (Glance stores it with cinder_store on a
Cinder volume), checks Glance's checksums, downloads and verifies it,
deletes it, checks that no volume or attachment is left, and prints how
long each phase took.  Runs in the stack's virtualenv.
"""

import argparse
import hashlib
import os
import sys
import time

from cinderclient import client as cinder_client
import openstack


def phase(timings, name):
    class Timer(object):
        def __enter__(self):
            self.t0 = time.monotonic()

        def __exit__(self, *exc):
            timings.append((name, time.monotonic() - self.t0))
            print('  %-28s %7.2fs' % (name, timings[-1][1]), flush=True)
    return Timer()


class Source(object):
    """``size`` random-looking bytes streamed, hashed as Glance reads."""

    def __init__(self, size):
        self.left = size
        self.block = os.urandom(1 << 20)
        self.md5 = hashlib.md5()
        self.sha512 = hashlib.sha512()
        self.sha256 = hashlib.sha256()

    def __iter__(self):
        while self.left:
            chunk = self.block[:min(self.left, len(self.block))]
            self.left -= len(chunk)
            for h in (self.md5, self.sha512, self.sha256):
                h.update(chunk)
            yield chunk


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--size-mib', type=int, default=256)
    parser.add_argument('--store', default='block')
    args = parser.parse_args()
    conn = openstack.connect(cloud='stack-admin')
    cinder = cinder_client.Client('3.54', session=conn.session)
    size = args.size_mib << 20
    timings = []
    print('cinder_store demo: %d MiB image on store %r through Glance'
          % (args.size_mib, args.store))

    with phase(timings, 'create image record'):
        r = conn.image.post('/images', json={
            'name': 'cinder-store-demo', 'disk_format': 'raw',
            'container_format': 'bare'})
        r.raise_for_status()
        image_id = r.json()['id']
    source = Source(size)
    with phase(timings, 'upload (Glance -> volume)'):
        r = conn.image.put('/images/%s/file' % image_id, data=iter(source),
                           headers={'Content-Type':
                                    'application/octet-stream',
                                    'X-Image-Meta-Store': args.store})
        r.raise_for_status()
    with phase(timings, 'verify checksums'):
        shown = conn.image.get('/images/%s' % image_id).json()
        assert shown['status'] == 'active', shown['status']
        assert shown['stores'] == args.store, shown['stores']
        assert shown['size'] == size, (shown['size'], size)
        assert shown['checksum'] == source.md5.hexdigest()
        assert shown['os_hash_value'] == source.sha512.hexdigest()
        volume = cinder.volumes.list(search_opts={
            'all_tenants': 1, 'name': 'image-%s' % image_id})[0]
    with phase(timings, 'download and verify'):
        r = conn.image.get('/images/%s/file' % image_id, stream=True)
        r.raise_for_status()
        digest, got = hashlib.sha256(), 0
        for chunk in r.iter_content(4 << 20):
            digest.update(chunk)
            got += len(chunk)
        assert got == size and digest.hexdigest() == source.sha256.hexdigest()
    with phase(timings, 'delete'):
        conn.image.delete('/images/%s' % image_id).raise_for_status()
    with phase(timings, 'volume gone, nothing left'):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = [v for v in cinder.volumes.list(
                search_opts={'all_tenants': 1}) if v.id == volume.id]
            if not left:
                break
            time.sleep(0.1)
        assert not left, 'volume %s left behind' % volume.id
    total = sum(t for _, t in timings)
    up = dict(timings)['upload (Glance -> volume)']
    down = dict(timings)['download and verify']
    print('OK: image %s stored on volume %s, verified, deleted; %.2fs in '
          'all (upload %.0f MiB/s, download %.0f MiB/s)'
          % (image_id, volume.id, total, args.size_mib / up,
             args.size_mib / down))
    return 0


if __name__ == '__main__':
    sys.exit(main())
