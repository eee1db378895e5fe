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

"""What the benchmark measures: the stores, and operations on them.

cinder_store's backend (``ours``), the in-tree driver's on the same Cinder
backend (``theirs``), and the one many readers share an image of
(``shared``), through glance_store's multi-store API, as Glance calls it,
or through Glance's REST API (behind the stack's HAProxy).
"""

import collections
import contextlib
import os
import statistics
import time
import uuid

from oslo_context import context as oslo_context

from benchmark import measure
from cinder_store import attachment
from cinder_store import maintenance
from local_stack import settings

MiB = measure.MiB
CHUNK = measure.CHUNK
# Downloads through Glance per image (the median is reported): a worker's
# first request with a token waits for Keystone, whichever store it reads.
REST_READS = 3
WARM_REQUESTS = 40

#: cinder_store's backend, the in-tree one on the same Cinder backend, and
#: the one many readers share an image of
Placement = collections.namedtuple('Placement', 'ours theirs shared rbd')
PLACEMENTS = {'block': Placement('block', 'upstream', 'multiattach', False),
              'rbd': Placement('rbd', 'upstream-rbd', 'rbd', True)}


class Subjects(object):
    """The stores under test, loaded as Glance loads them."""

    def __init__(self, placement):
        self.placement = placement
        # Every read here pays its attach, as before warm reads: the
        # figures compare the data paths, and an attachment left after
        # a run is a leak, never a warm one.  --downloads measures warm
        # reads through Glance.
        self.conf = maintenance.load_stores(
            settings.GLANCE_CONF,
            overrides=[(None, 'cinder_store_warm_read_idle', '0')])
        self.ctx = oslo_context.RequestContext(project_id='bench')
        self.block = os.urandom(64 * MiB)
        self._glance_api = None

    def store(self, backend):
        from glance_store import multi_backend
        return multi_backend.get_store_from_store_identifier(backend)

    def add(self, backend, size, declared=True):
        from glance_store import multi_backend
        src = measure.Source(self.block, size)
        return multi_backend.add_with_multihash(
            self.conf, str(uuid.uuid4()), src, size if declared else 0,
            backend, 'sha512', context=self.ctx)[0]

    def get(self, backend, uri):
        from glance_store import multi_backend
        it, length = multi_backend.get(uri, backend, context=self.ctx)
        n = 0
        for chunk in it:
            n += len(chunk)
        assert n == length
        return n

    def delete(self, backend, uri, wait=True):
        """Delete; unless told not to, wait until Cinder removed it."""
        from glance_store import multi_backend
        multi_backend.delete(uri, backend, context=self.ctx)
        if wait and uri.startswith('cinder://'):
            self.wait_deleted(uri)

    def wait_deleted(self, uri):
        from glance_store import exceptions
        cinder = self.store(
            self.placement.ours).maintenance().bound_cinder(self.ctx)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                cinder.get_volume(uri.rsplit('/', 1)[1])
            except exceptions.NotFound:
                return
            time.sleep(0.05)

    def raw_device(self, size, read=True):
        """Sequential write + fsync to a fresh volume, then read it back."""
        if self.placement.rbd:
            return measure.raw_librbd(size, read)
        backend = self.store(self.placement.ours).maintenance()
        cinder = backend.bound_cinder(self.ctx)
        volume = cinder.create_volume(size, 'bench-raw-%s' % uuid.uuid4(),
                                      {}, backend.volume_type)
        try:
            volume = cinder.wait_for_status(volume, 'creating', 'available')
            with attachment.Attachment(cinder, backend.settings, volume,
                                       True) as att:
                write_s, _ = measure.timed(lambda: measure.write_device(
                    att.device, self.block, size))
            if not read:
                return size / write_s, None
            measure.drop_caches()
            with attachment.Attachment(cinder, backend.settings, volume,
                                       False) as att:
                read_s, _ = measure.timed(lambda: measure.read_device(
                    att.device, size))
        finally:
            ours = self.placement.ours
            self.delete(ours, 'cinder://%s/%s' % (ours, volume.id))
        return size / write_s, size / read_s

    def rest_cycle(self, backend, size, path):
        """sparse_cycle through Glance's API (HAProxy), as a user would.

        The read time, and the time to the first byte (the response's
        headers: Glance's server sends them with the first chunk), are
        medians of :data:`REST_READS` downloads.
        """
        api = self.glance_api()
        image_id, t_add = self.rest_image(backend, size, path, 'bench-sparse')
        try:
            allocated = self.allocated(
                backend, self.location_of(api, image_id), size)
            reads = [self.rest_download(api, backend, image_id, size)
                     for _ in range(REST_READS)]
        finally:
            api.delete('/images/%s' % image_id)
        return (t_add, statistics.median(t for t, _ in reads), allocated,
                statistics.median(first for _, first in reads))

    def rest_image(self, backend, size, path=None, name='bench-download'):
        """An image stored in ``backend`` through Glance: (id, seconds).

        Its data: ``path``'s, or random.  The seconds are the upload's.
        """
        api = self.glance_api()
        r = api.post('/images', json={'name': name, 'disk_format': 'raw',
                                      'container_format': 'bare'})
        r.raise_for_status()
        image_id = r.json()['id']
        t0 = time.monotonic()
        r = api.put('/images/%s/file' % image_id,
                    data=self.chunks(size, path),
                    headers={'Content-Type': 'application/octet-stream',
                             'X-Image-Meta-Store': backend})
        seconds = time.monotonic() - t0
        if r.status_code != 204:
            self.rest_delete(image_id)
            raise RuntimeError('upload to %s: HTTP %s' % (backend,
                                                          r.status_code))
        return image_id, seconds

    def rest_delete(self, image_id):
        self.glance_api().delete('/images/%s' % image_id)

    def rest_download(self, api, backend, image_id, size):
        """(seconds, seconds to the response's headers) of one download."""
        measure.drop_caches()
        t0 = time.monotonic()
        r = api.get('/images/%s/file' % image_id, stream=True)
        t_first = time.monotonic() - t0
        got = sum(len(c) for c in r.iter_content(CHUNK))
        t_get = time.monotonic() - t0
        if got != size:
            raise RuntimeError('download from %s: %d of %d bytes' % (
                backend, got, size))
        return t_get, t_first

    def glance_api(self):
        """Glance's API through HAProxy, authenticated (untimed) once."""
        if self._glance_api is None:
            import openstack
            os.environ.setdefault('OS_CLIENT_CONFIG_FILE', settings.CLOUDS)
            self._glance_api = openstack.connect(cloud='stack-admin').image
            # Each Glance worker validates a token with Keystone once
            # (0.3-2 s here), then caches it: spend that before timing.
            for _ in range(WARM_REQUESTS):
                self._glance_api.get('/images?limit=1').raise_for_status()
        return self._glance_api

    def source(self, size, path):
        """The image as a file: ``path``, or random data if None."""
        if path:
            return open(path, 'rb')
        return contextlib.nullcontext(measure.Source(self.block, size))

    def chunks(self, size, path):
        with self.source(size, path) as source:
            while True:
                data = source.read(CHUNK)
                if not data:
                    return
                yield data

    def location_of(self, api, image_id):
        """The image's location URL (Glance shows it to admins)."""
        r = api.get('/images/%s' % image_id)
        r.raise_for_status()
        body = r.json()
        locations = body.get('locations') or []
        if locations:
            return locations[0]['url']
        return body['direct_url']

    def sparse_cycle(self, backend, size, path):
        """(add s, get s, bytes allocated) of one image on ``backend``."""
        from glance_store import multi_backend

        def add():
            with self.source(size, path) as source:
                return multi_backend.add_with_multihash(
                    self.conf, str(uuid.uuid4()), source, size, backend,
                    'sha512', context=self.ctx)[0]
        if path:
            with open(path, 'rb') as f:  # the source from the page cache
                while f.read(CHUNK):
                    pass
        t_add, uri = measure.timed(add)
        try:
            allocated = self.allocated(backend, uri, size)
            measure.drop_caches()
            t_get, _ = measure.timed(lambda: self.get(backend, uri))
        finally:
            self.delete(backend, uri)
        return t_add, t_get, allocated

    def allocated(self, backend, uri, size):
        """Bytes the image's volume (or RBD image) allocates of ``size``."""
        if uri.startswith('rbd://'):  # fsid/pool/image/snapshot
            _, pool, name, _ = uri[len('rbd://'):].split('/')
            return measure.rbd_allocated(pool, name, size)
        cinder = self.store(
            self.placement.ours).maintenance().bound_cinder(self.ctx)
        volume = cinder.get_volume(uri.rsplit('/', 1)[1])
        if self.placement.rbd:
            return measure.rbd_allocated(settings.CEPH_POOL,
                                         'volume-%s' % volume.id, size)
        # host@backend#pool: the loop-file driver's directory
        cinder_backend = getattr(volume, 'os-vol-host-attr:host').split(
            '@')[1].split('#')[0]
        return measure.file_allocated(os.path.join(
            settings.VOLUMES, cinder_backend,
            'volume-%s.img' % volume.id), size)
