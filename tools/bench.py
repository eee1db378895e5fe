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

"""cinder_store vs the in-tree driver vs the device, in one run.

    tools/bench [--quick] [--rbd] [--sparse] [--reps N] [--json PATH]
                [--plot PATH]

Runs in the local stack's virtualenv against the running stack, through
glance_store's multi-store API: ``block`` (cinder_store) and ``upstream``
(glance_store's in-tree ``cinder`` driver) on the same Cinder backend.
With ``--rbd``, ``rbd`` and ``upstream-rbd`` on the stack's Ceph, and the
device limits are raw librbd (same chunk size, write + flush, read).
Repetitions are interleaved (ours, theirs, ours, ...); the table shows
medians and the spread of cinder_store's samples, JSON has every sample.
Every timed operation starts after an untimed ``sync``; reads start from a
dropped page cache.  ``--sparse`` runs only the real-image scenario: an
ext4 file system made by ``mke2fs -d`` from a directory tree (mostly
zeros), and a random image of the same size, added and read back by both
drivers, with the space each volume allocates for the image.
It reports; it asserts nothing about time.
"""

import argparse
import concurrent.futures
import contextlib
import errno
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid

from keystoneauth1 import session as ks_session
from oslo_context import context as oslo_context

from cinder_store import attachment
from cinder_store.findings import system
from cinder_store import maintenance
from local_stack import settings

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 4 * MiB
# Downloads through Glance per image (the median is reported): a worker's
# first request with a token waits for Keystone, whichever store it reads.
REST_READS = 3
WARM_REQUESTS = 40
# cinder_store's backend, the in-tree one on the same Cinder backend, and
# the one many readers share an image of; set by main()
OURS, THEIRS, SHARED = 'block', 'upstream', 'multiattach'
PLACEMENTS = {'block': ('block', 'upstream', 'multiattach'),
              'rbd': ('rbd', 'upstream-rbd', 'rbd')}


# -- instrumentation ---------------------------------------------------------

class CallCounter(object):
    """Counts HTTP requests to Cinder made through keystoneauth sessions."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()
        original = ks_session.Session.request

        def counting(session, url, method, *args, **kwargs):
            resp = original(session, url, method, *args, **kwargs)
            if ':8776' in (getattr(resp, 'url', '') or url):
                with self._lock:
                    self.count += 1
            return resp
        ks_session.Session.request = counting

    def measure(self, func):
        before = self.count
        result = func()
        return result, self.count - before


def returned_to_host():
    """Bytes the guest kernel has handed back to its hypervisor.

    Free page reporting; 0 where the kernel does not report.

    A page handed back costs a host fault on its next first touch (about
    400 MB/s seen here), which fresh volume files in memory and page cache
    pay, whichever driver writes them.
    """
    try:
        with open('/sys/module/page_reporting/parameters/reported_kib') as f:
            return int(f.read()) * 1024
    except (OSError, ValueError):
        return 0


def drop_caches():
    os.sync()
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('1')
        return True
    except OSError:
        return False


def timed(func):
    # Same clean slate for every timed operation: the in-tree driver leaves
    # its writes in the page cache (no fsync), and cached data of earlier
    # volumes slows this VM's storage down; flush and drop both, untimed.
    drop_caches()
    t0 = time.perf_counter()
    result = func()
    return time.perf_counter() - t0, result


class Source(object):
    """``size`` bytes of random-looking data, streamed like an upload."""

    def __init__(self, block, size):
        self.block = block
        self.size = size
        self.pos = 0

    def read(self, n=-1):
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        start = self.pos % len(self.block)
        if start + n <= len(self.block):
            data = self.block[start:start + n]
        else:
            data = (self.block[start:] + self.block)[:n]
        self.pos += n
        return data


# -- operations --------------------------------------------------------------

class Bench(object):

    def __init__(self, args):
        self.args = args
        self.conf = maintenance.load_stores(settings.GLANCE_CONF)
        self.ctx = oslo_context.RequestContext(project_id='bench')
        self.block = os.urandom(64 * MiB)
        self.calls = CallCounter()
        self.returned_at_start = returned_to_host()
        self.results = {'meta': {
            'placement': placement(), 'quick': args.quick,
            'reps': args.reps, 'page_cache': 'dropped before each read'
            if drop_caches() else 'NOT dropped (no permission)'},
            'rows': []}

    def store(self, backend):
        from glance_store import multi_backend
        return multi_backend.get_store_from_store_identifier(backend)

    def add(self, backend, size, declared=True):
        from glance_store import multi_backend
        src = Source(self.block, size)
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
        cinder = self.store(OURS).maintenance().bound_cinder(self.ctx)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                cinder.get_volume(uri.rsplit('/', 1)[1])
            except exceptions.NotFound:
                return
            time.sleep(0.05)

    # -- limits --------------------------------------------------------------

    def hash_rate(self, name, size):
        h = hashlib.new(name)
        data = memoryview(self.block)
        t0 = time.perf_counter()
        done = 0
        while done < size:
            start = done % len(data)
            h.update(data[start:start + CHUNK])
            done += CHUNK
        return size / (time.perf_counter() - t0)

    def raw_device(self, size, read=True):
        """Sequential write + fsync to a fresh volume, then read it back."""
        if self.args.rbd:
            return raw_librbd(size, read)
        backend = self.store(OURS).maintenance()
        cinder = backend.bound_cinder(self.ctx)
        volume = cinder.create_volume(size, 'bench-raw-%s' % uuid.uuid4(),
                                      {}, backend.volume_type)
        try:
            volume = cinder.wait_for_status(volume, 'creating', 'available')
            with attachment.Attachment(cinder, backend.settings, volume,
                                       True) as att:
                write_s, _ = timed(lambda: self._raw_write(att.device, size))
            if not read:
                return size / write_s, None
            drop_caches()
            with attachment.Attachment(cinder, backend.settings, volume,
                                       False) as att:
                read_s, _ = timed(lambda: self._raw_read(att.device, size))
        finally:
            self.delete(OURS, 'cinder://%s/%s' % (OURS, volume.id))
        return size / write_s, size / read_s

    def _raw_write(self, dev, size):
        buf = self.block[:CHUNK]
        for offset in range(0, size, CHUNK):
            dev.pwrite(buf, offset)
        dev.sync()

    def _raw_read(self, dev, size):
        for offset in range(0, size, CHUNK):
            dev.pread(CHUNK, offset)

    # -- scenarios -----------------------------------------------------------

    def interleave(self, func, reps):
        samples = {OURS: [], THEIRS: []}
        for _ in range(reps):
            for backend in (OURS, THEIRS):
                samples[backend].append(func(backend))
        return samples

    def add_get(self, size, reps, reads=3):
        """One volume at a time: add, read back ``reads`` times, delete."""
        def one(backend):
            t_add, uri = timed(lambda: self.add(backend, size))
            t_gets = [timed(lambda: self.get(backend, uri))[0]
                      for _ in range(reads)]
            self.delete(backend, uri)
            return size / t_add, [size / t for t in t_gets]
        samples = self.interleave(one, reps)
        adds = {b: [x[0] for x in v] for b, v in samples.items()}
        gets = {b: [g for x in v for g in x[1]] for b, v in samples.items()}
        return adds, gets

    def small_cycle(self, reps):
        def cycle(backend):
            def run():
                uri = self.add(backend, MiB)
                self.get(backend, uri)
                self.delete(backend, uri, wait=False)
                return uri
            t, uri = timed(run)
            self.wait_deleted(uri)  # Cinder's own async work, untimed
            return t
        return self.interleave(cycle, reps)

    def call_counts(self):
        out = {}
        for backend in (OURS, THEIRS):
            uri, add_calls = self.calls.measure(
                lambda: self.add(backend, MiB))
            _, get_calls = self.calls.measure(lambda: self.get(backend, uri))
            self.delete(backend, uri)
            out[backend] = (add_calls, get_calls)
        return out

    def unknown_size(self, size, reps):
        def one(backend):
            t, uri = timed(lambda: self.add(backend, size, declared=False))
            self.delete(backend, uri)
            return t
        return self.interleave(one, reps)

    def concurrent_adds(self, n, size):
        def run():
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                return list(pool.map(lambda _: self.add(OURS, size),
                                     range(n)))
        t, uris = timed(run)
        for uri in uris:
            self.delete(OURS, uri)
        return n * size / t

    def concurrent_gets(self, n, size):
        uri = self.add(SHARED, size)
        drop_caches()

        def run():
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                return sum(pool.map(lambda _: self.get(SHARED, uri),
                                    range(n)))
        t, total = timed(run)
        cinder = self.store(SHARED).maintenance().bound_cinder(self.ctx)
        leaked = cinder.get_volume(uri.rsplit('/', 1)[1]).attachments
        self.delete(SHARED, uri)
        return total / t, len(leaked)

    def peak_memory(self, size):
        tracemalloc.start()
        try:
            uri = self.add(OURS, size)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.delete(OURS, uri)
        return peak

    def sparse(self):
        """Real images: an ext4 file system mostly of zeros, and random.

        Each through glance_store's API, then through Glance's (HAProxy).
        With ``--rbd``, Glance's own rbd store (thin) is the limit column.
        """
        a = self.args
        size = 512 * MiB if a.quick else 2 * GiB
        reps = a.reps or 1
        print_header()
        with tempfile.TemporaryDirectory(dir=settings.STACK) as tmp:
            path, data_bytes = ext4_image(tmp, size, a.quick)
            images = (('ext4 %s, %d MiB of data' % (
                human(size), data_bytes // MiB), path),
                ('random %s' % human(size), None))
            for name, image in images:
                # cinder_store as it was before runs of zeros were found
                with writing_every_byte():
                    before = [self.sparse_cycle(OURS, size, image)
                              for _ in range(reps)]
                self.row('%s: add, every byte written' % name, 'MB/s',
                         [size / x[0] / 1e6 for x in before],
                         note='cinder_store before zeros were found')
                for how, cycle in (('', self.sparse_cycle),
                                   (', through Glance', self.rest_cycle)):
                    samples = self.interleave(
                        lambda backend: cycle(backend, size, image), reps)
                    native = None
                    if a.rbd:
                        native = [cycle(settings.GLANCE_RBD_BACKEND, size,
                                        image) for _ in range(reps)]
                    self.sparse_rows(name + how, size, samples, native)
        return self.results

    def sparse_rows(self, name, size, samples, native=None):
        mb = 1e6

        def med(values):
            return statistics.median(values) if values else None
        native = native or []
        note = "; limit: Glance's rbd store (thin)" if native else ''
        self.row('%s: add' % name, 'MB/s',
                 [size / x[0] / mb for x in samples[OURS]],
                 [size / x[0] / mb for x in samples[THEIRS]],
                 med([size / x[0] / mb for x in native]),
                 note='MB/s of virtual size' + note)
        self.row('%s: get' % name, 'MB/s',
                 [size / x[1] / mb for x in samples[OURS]],
                 [size / x[1] / mb for x in samples[THEIRS]],
                 med([size / x[1] / mb for x in native]), note=note[2:])
        self.row('%s: allocated' % name, 'MiB',
                 [x[2] / MiB for x in samples[OURS]],
                 [x[2] / MiB for x in samples[THEIRS]],
                 med([x[2] / MiB for x in native]), better='lower',
                 note="of the image's range" + note)
        if len(samples[OURS][0]) > 3:  # through Glance
            self.row('%s: first byte' % name, 's',
                     [x[3] for x in samples[OURS]],
                     [x[3] for x in samples[THEIRS]],
                     med([x[3] for x in native]), better='lower',
                     note='of a download (response headers)' + note)

    def rest_cycle(self, backend, size, path):
        """sparse_cycle through Glance's API (HAProxy), as a user would.

        The read time, and the time to the first byte (the response's
        headers: Glance's server sends them with the first chunk), are
        medians of :data:`REST_READS` downloads.
        """
        api = self.glance_api()
        r = api.post('/images', json={'name': 'bench-sparse',
                                      'disk_format': 'raw',
                                      'container_format': 'bare'})
        r.raise_for_status()
        image_id = r.json()['id']
        try:
            t0 = time.monotonic()
            r = api.put('/images/%s/file' % image_id,
                        data=self.chunks(size, path),
                        headers={'Content-Type': 'application/octet-stream',
                                 'X-Image-Meta-Store': backend})
            t_add = time.monotonic() - t0
            if r.status_code != 204:
                raise RuntimeError('upload to %s: HTTP %s' % (
                    backend, r.status_code))
            allocated = self.allocated(
                backend, self.location_of(api, image_id), size)
            reads = [self.rest_download(api, backend, image_id, size)
                     for _ in range(REST_READS)]
        finally:
            api.delete('/images/%s' % image_id)
        return (t_add, statistics.median(t for t, _ in reads), allocated,
                statistics.median(first for _, first in reads))

    def rest_download(self, api, backend, image_id, size):
        """(seconds, seconds to the response's headers) of one download."""
        drop_caches()
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
        if getattr(self, '_glance_api', None) is None:
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
        return contextlib.nullcontext(Source(self.block, size))

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
        t_add, uri = timed(add)
        try:
            allocated = self.allocated(backend, uri, size)
            drop_caches()
            t_get, _ = timed(lambda: self.get(backend, uri))
        finally:
            self.delete(backend, uri)
        return t_add, t_get, allocated

    def allocated(self, backend, uri, size):
        """Bytes the image's volume (or RBD image) allocates of ``size``."""
        if uri.startswith('rbd://'):  # fsid/pool/image/snapshot
            _, pool, name, _ = uri[len('rbd://'):].split('/')
            return rbd_allocated(pool, name, size)
        cinder = self.store(OURS).maintenance().bound_cinder(self.ctx)
        volume = cinder.get_volume(uri.rsplit('/', 1)[1])
        if self.args.rbd:
            return rbd_allocated(settings.CEPH_POOL, 'volume-%s' % volume.id,
                                 size)
        # host@backend#pool: the loop-file driver's directory
        cinder_backend = getattr(volume, 'os-vol-host-attr:host').split(
            '@')[1].split('#')[0]
        return file_allocated(os.path.join(
            settings.VOLUMES, cinder_backend,
            'volume-%s.img' % volume.id), size)

    # -- the run -------------------------------------------------------------

    def row(self, scenario, unit, ours, theirs=None, limit=None,
            better='higher', note=''):
        med = (lambda v: statistics.median(v) if isinstance(v, list)
               else v)
        o, t = med(ours), med(theirs) if theirs is not None else None
        ratio = None
        if t:
            ratio = o / t if better == 'higher' else t / o
        self.results['rows'].append({
            'scenario': scenario, 'unit': unit, 'ours': o, 'upstream': t,
            'limit': limit, 'ratio_to_upstream': ratio,
            'percent_of_limit': (None if not limit else 100 * o / limit
                                 if better == 'higher' else 100 * limit / o),
            'samples_ours': ours if isinstance(ours, list) else [ours],
            'samples_upstream': (theirs if isinstance(theirs, list)
                                 else [theirs]),
            'better': better, 'note': note})
        print_row(self.results['rows'][-1])

    def run(self):
        a = self.args
        big = 64 * MiB if a.quick else GiB
        reps = a.reps or (1 if a.quick else 3)
        mb = 1e6
        print('placement: %s; page cache: %s' % (
            self.results['meta']['placement'],
            self.results['meta']['page_cache']))
        print_header()
        md5 = self.hash_rate('md5', big) / mb
        sha = self.hash_rate('sha512', big) / mb
        self.row('md5, one core', 'MB/s', md5)
        self.row('sha512, one core', 'MB/s', sha)
        raws = [self.raw_device(big) for _ in range(reps)]
        raw_w = statistics.median(r[0] for r in raws) / mb
        raw_r = statistics.median(r[1] for r in raws) / mb
        device = 'raw librbd' if a.rbd else 'device'
        self.row('%s write+%s (fresh volume)' % (
            device, 'flush' if a.rbd else 'fsync'), 'MB/s',
            [r[0] / mb for r in raws])
        self.row('%s read' % device, 'MB/s', [r[1] / mb for r in raws])
        adds, gets = self.add_get(big, reps, reads=1 if a.quick else 3)
        add_limit = min(md5, sha, raw_w)
        self.row('add %s known size' % human(big), 'MB/s',
                 [x / mb for x in adds[OURS]], [x / mb for x in adds[THEIRS]],
                 add_limit, note='in-tree does not fsync')
        self.row('get %s' % human(big), 'MB/s',
                 [x / mb for x in gets[OURS]], [x / mb for x in gets[THEIRS]],
                 raw_r)
        cycles = self.small_cycle(2 if a.quick else 5)
        self.row('1 MiB add+get+delete', 's', cycles[OURS], cycles[THEIRS],
                 better='lower')
        counts = self.call_counts()
        self.row('Cinder calls per add', 'calls', counts[OURS][0],
                 counts[THEIRS][0], better='lower')
        self.row('Cinder calls per get', 'calls', counts[OURS][1],
                 counts[THEIRS][1], better='lower')
        unknown = (GiB + 64 * MiB) if a.quick else 3 * GiB
        raw_big = self.raw_device(unknown, read=False)[0] / mb
        self.row('%s write+%s (fresh %s volume)' % (
            device, 'flush' if a.rbd else 'fsync', human(unknown)),
            'MB/s', raw_big)
        times = self.unknown_size(unknown, 1 if a.quick else 2)
        self.row('add %s unknown size' % human(unknown), 's', times[OURS],
                 times[THEIRS], limit=unknown / mb / min(md5, sha, raw_big),
                 better='lower', note='limit: size / min(md5, sha512, '
                 'device write of this size)')
        n_add, add_size = (4, 16 * MiB) if a.quick else (8, 128 * MiB)
        agg = self.concurrent_adds(n_add, add_size) / mb
        self.row('%d concurrent adds (aggregate)' % n_add, 'MB/s', agg,
                 limit=raw_w)
        n_get, get_size = (8, 32 * MiB) if a.quick else (16, 256 * MiB)
        agg, leaked = self.concurrent_gets(n_get, get_size)
        self.row('%d concurrent gets, 1 %s image' % (
            n_get, 'RBD' if a.rbd else 'multiattach'), 'MB/s',
            agg / mb, limit=raw_r, note='%d attachments left' % leaked)
        self.results['meta']['guest_memory_returned_to_host_bytes'] = (
            returned_to_host() - self.returned_at_start)
        peak = self.peak_memory(64 * MiB if a.quick else 256 * MiB)
        self.results['meta']['add_peak_python_memory_bytes'] = peak
        print('peak Python memory during one add: %.1f MiB' % (peak / MiB))
        print('guest memory handed back to the host during the run '
              '(refaulted at first touch): %.1f GiB' % (
                  self.results['meta']['guest_memory_returned_to_host_bytes']
                  / GiB))
        return self.results


def human(n):
    return '%d GiB' % (n // GiB) if n % GiB == 0 else '%d MiB' % (n // MiB)


def raw_librbd(size, read=True):
    """librbd alone on the stack's Ceph: (write+flush B/s, read B/s)."""
    import rbd
    name = 'bench-raw-%s' % uuid.uuid4()
    block = os.urandom(CHUNK)
    with ceph_pool(settings.CEPH_POOL) as ioctx:
        rbd.RBD().create(ioctx, name, size)
        try:
            with rbd.Image(ioctx, name) as image:
                def write():
                    for offset in range(0, size, CHUNK):
                        image.write(block, offset)
                    image.flush()
                write_s, _ = timed(write)
                if not read:
                    return size / write_s, None

                def read_all():
                    for offset in range(0, size, CHUNK):
                        image.read(offset, CHUNK)
                read_s, _ = timed(read_all)
            return size / write_s, size / read_s
        finally:
            rbd.RBD().remove(ioctx, name)


@contextlib.contextmanager
def ceph_pool(pool):
    """An I/O context on the stack's Ceph ``pool``, as its client user."""
    import rados
    cluster = rados.Rados(conffile=settings.CEPH_CONF,
                          rados_id=settings.CEPH_USER)
    cluster.connect(timeout=10)
    try:
        with cluster.open_ioctx(pool) as ioctx:
            yield ioctx
    finally:
        cluster.shutdown()


@contextlib.contextmanager
def writing_every_byte():
    """cinder_store, in this process, writing zeros as data."""
    from cinder_store import dataio
    real = dataio.zero_runs
    dataio.zero_runs = lambda chunk, block=None: iter([(0, len(chunk),
                                                        False)])
    try:
        yield
    finally:
        dataio.zero_runs = real


def ext4_image(tmp, size, quick):
    """A ``size`` ext4 image holding a real directory tree; (path, data).

    ``mke2fs -d`` fills it without mounting; ``data`` is what it allocates.
    """
    import glance_store
    tree = os.path.dirname(os.path.dirname(glance_store.__file__))
    if quick:  # a few packages, not all of site-packages
        tree = os.path.join(tmp, 'tree')
        for name in ('cinder', 'glance', 'os_brick'):
            package = __import__(name).__file__
            shutil.copytree(os.path.dirname(package),
                            os.path.join(tree, name))
    path = os.path.join(tmp, 'ext4.img')
    subprocess.run(['mke2fs', '-q', '-F', '-t', 'ext4', '-d', tree, path,
                    '%dk' % (size // 1024)], check=True)
    return path, file_allocated(path, size)


def file_allocated(path, size):
    """Bytes of ``path``'s first ``size`` bytes that are not holes."""
    total, offset = 0, 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            total += end - start
            offset = end
    finally:
        os.close(fd)
    return total


def rbd_allocated(pool, name, size):
    """Bytes of the RBD image's first ``size`` bytes held in objects."""
    import rbd
    extents = []
    with ceph_pool(pool) as ioctx:
        with rbd.Image(ioctx, name, read_only=True) as image:
            image.diff_iterate(0, size, None, lambda o, n, e: e and
                               extents.append(n))
    return sum(extents)


def placement():
    if OURS == 'rbd':
        osd = os.path.join(settings.CEPH, 'osd')
        return 'Ceph RBD, one BlueStore OSD on a file in %s (%s)' % (
            osd, system.filesystem_type(osd) or '?')
    path = os.path.realpath(settings.VOLUMES)
    fstype = system.filesystem_type(path) or '?'
    return '%s (%s)' % (path, 'memory' if fstype == 'tmpfs' else fstype)


def fmt(v):
    if v is None:
        return '-'
    return '%.0f' % v if abs(v) >= 100 else '%.2f' % v


def spread(samples):
    samples = [x for x in samples if x is not None]
    if len(samples) < 2:
        return '-'
    return '%s-%s' % (fmt(min(samples)), fmt(max(samples)))


def print_header():
    print('%-40s %6s %10s %13s %10s %13s %10s %9s %8s  %s' % (
        'scenario', 'unit', 'cinder_st', '(spread)', 'upstream', '(spread)',
        'limit', 'ratio*', '%limit', 'note'))


def print_row(r):
    print('%-40s %6s %10s %13s %10s %13s %10s %9s %8s  %s' % (
        r['scenario'], r['unit'], fmt(r['ours']), spread(r['samples_ours']),
        fmt(r['upstream']), spread(r['samples_upstream']),
        fmt(r['limit']),
        '-' if r['ratio_to_upstream'] is None
        else '%.2fx' % r['ratio_to_upstream'],
        '-' if r['percent_of_limit'] is None
        else '%.0f%%' % r['percent_of_limit'], r['note']), flush=True)


def rst(results):
    """The table as reStructuredText, for doc/source/benchmark.rst."""
    head = ('scenario', 'unit', 'cinder_store', 'spread', 'upstream',
            'limit', 'ratio*', '% of limit', 'note')
    rows = [head] + [(
        r['scenario'], r['unit'], fmt(r['ours']), spread(r['samples_ours']),
        fmt(r['upstream']), fmt(r['limit']),
        '-' if r['ratio_to_upstream'] is None
        else '%.2fx' % r['ratio_to_upstream'],
        '-' if r['percent_of_limit'] is None
        else '%.0f%%' % r['percent_of_limit'], r['note'] or '-')
        for r in results['rows']]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    rule = ' '.join('=' * w for w in widths)
    lines = [rule, ' '.join(str(c).ljust(w) for c, w in zip(head, widths)),
             rule]
    lines += [' '.join(str(c).ljust(w) for c, w in zip(row, widths))
              for row in rows[1:]]
    lines.append(rule)
    return '\n'.join(line.rstrip() for line in lines) + '\n'


def plot(results, path):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    rows = [r for r in results['rows']
            if r['ratio_to_upstream'] or r['percent_of_limit']]
    fig, (ax1, ax2) = pyplot.subplots(1, 2, figsize=(13, 5))
    with_ratio = [r for r in rows if r['ratio_to_upstream']]
    ax1.barh([r['scenario'] for r in with_ratio],
             [r['ratio_to_upstream'] for r in with_ratio], color='tab:blue')
    ax1.axvline(1, color='grey', linestyle='--')
    ax1.set_title('cinder_store vs in-tree (x, higher is better)')
    with_limit = [r for r in rows if r['percent_of_limit']]
    ax2.barh([r['scenario'] for r in with_limit],
             [r['percent_of_limit'] for r in with_limit], color='tab:green')
    ax2.axvline(100, color='grey', linestyle='--')
    ax2.set_title('cinder_store, % of the limit')
    fig.suptitle('placement: %s' % results['meta']['placement'])
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='a smaller set for CI (under 3 minutes)')
    parser.add_argument('--rbd', action='store_true',
                        help='on the stack\'s Ceph: rbd vs upstream-rbd, '
                             'beside raw librbd')
    parser.add_argument('--sparse', action='store_true',
                        help='only real images: ext4 mostly of zeros, '
                             'and random, with the space allocated')
    parser.add_argument('--reps', type=int, default=0)
    parser.add_argument('--json', help='write the results as JSON here')
    parser.add_argument('--plot', help='write a PNG bar chart here')
    parser.add_argument('--rst', help='write the table as reST here')
    args = parser.parse_args()
    global OURS, THEIRS, SHARED
    OURS, THEIRS, SHARED = PLACEMENTS['rbd' if args.rbd else 'block']
    bench = Bench(args)
    results = bench.sparse() if args.sparse else bench.run()
    print('* ratio: cinder_store over upstream for throughput, upstream over '
          'cinder_store for times and call counts (>1: cinder_store better)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    if args.plot:
        plot(results, args.plot)
    if args.rst:
        with open(args.rst, 'w') as f:
            f.write(rst(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
