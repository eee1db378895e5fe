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

"""How the benchmark measures: clocks, caches, call counts, limits, images.

Every timed operation starts after an untimed ``sync`` and a dropped page
cache (:func:`timed`).  The limits are the device alone (a volume written
and read through cinder_store's own device, or raw librbd) and the hashes
on one core; the images are random data and a real ext4 file system.
"""

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import threading
import time
import uuid

from keystoneauth1 import session as ks_session

from local_stack import settings

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 4 * MiB


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


def hash_rate(block, name, size):
    """Bytes per second of the ``name`` hash over ``size`` bytes, one core."""
    h = hashlib.new(name)
    data = memoryview(block)
    t0 = time.perf_counter()
    done = 0
    while done < size:
        start = done % len(data)
        h.update(data[start:start + CHUNK])
        done += CHUNK
    return size / (time.perf_counter() - t0)


def write_device(dev, block, size):
    """Write ``size`` bytes of ``block`` sequentially, then sync."""
    buf = block[:CHUNK]
    for offset in range(0, size, CHUNK):
        dev.pwrite(buf, offset)
    dev.sync()


def read_device(dev, size):
    for offset in range(0, size, CHUNK):
        dev.pread(CHUNK, offset)


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
