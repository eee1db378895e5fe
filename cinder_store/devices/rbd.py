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

"""Ceph RBD attached in userspace (librbd): client settings and device.

os-brick attaches RBD without the kernel module by opening the image with
librbd and handing back a file object: it connects per process, with the
monitors, pool, image and client name Cinder sends (never a key).
:class:`RBDClient` adds what Cinder does not send and explains a connect
that fails; :class:`RBDDevice` reads and writes the image through librbd;
os-brick's temporary Ceph config of each connect is removed as soon as
librados has read it.
"""

import bisect
import errno
import io
import logging
import os
import socket
import tempfile
import threading
import time
from typing import Any

from cinder_store.devices import base
from cinder_store import host

LOG = logging.getLogger(__name__)

# librbd writes outstanding per device: with one, each 4 MiB write waits a
# round trip to the OSDs; two doubled raw write throughput here (239 ->
# 478 MB/s on one BlueStore OSD), more gained nothing.
RBD_WRITES_IN_FLIGHT = 2
# os-brick's temporary Ceph config for each userspace RBD connect
CONNECT_FILE_PREFIX = 'brickrbd_'


class RBDClient(object):
    """The Ceph client settings of a userspace RBD attach.

    Cinder sends the monitors, pool, image and client name, never a key
    (OSSN-0085).  os-brick writes ``keyring`` of the connection properties
    verbatim into the temporary Ceph config it makes for each connect
    (meant for a keyring's contents, as cinderlib sends them); given
    ``keyring = <path>`` there instead, librados reads the key from the
    operator's keyring file, so the key is never in a connection dict, a
    log line or a file we write.  Unset, the path is the one os-brick
    itself would read (``/etc/ceph/<cluster>.client.<user>.keyring``).
    ``timeout`` bounds a librados connect and each monitor and OSD
    operation (0: librados' own, 300 s for a connect, none for I/O).
    """

    MARK = '# cinder_store'

    def __init__(self, keyring: str | None = None, timeout: int = 0):
        self.keyring = keyring
        self.timeout = timeout

    @property
    def connect_time(self) -> int:
        """Seconds a connect may take before it fails (librados' own: 300)."""
        return self.timeout or 300

    def conf_lines(self, props: dict[str, Any]) -> str:
        keyring = self.keyring or '/etc/ceph/%s.client.%s.keyring' % (
            props.get('cluster_name') or 'ceph', props.get('auth_username'))
        lines = [self.MARK, 'keyring = %s' % keyring]
        if self.timeout:
            lines += ['%s = %d' % (name, self.timeout) for name in (
                'client_mount_timeout', 'rados_mon_op_timeout',
                'rados_osd_op_timeout')]
        return '\n'.join(lines)

    def explain_failure(self, connection_info: dict,
                        error: BaseException) -> str | None:
        """What an operator should do about a failed RBD connect, or None.

        librados answers "timed out" whether the monitors are unreachable
        or refuse the key; a TCP probe of each monitor tells which.
        """
        if connection_info.get('driver_volume_type', '').lower() != 'rbd':
            return None
        props = host.connection_properties(connection_info)
        if 'module required' in str(error):
            return ('the Ceph bindings are not importable by this Python '
                    '(%s): install python3-rados and python3-rbd for it'
                    % error)
        client = 'client.%s' % props.get('auth_username')
        keyring = self.conf_lines(props).splitlines()[1].split(' = ', 1)[1]
        monitors = list(zip(props.get('hosts') or (),
                            props.get('ports') or ()))
        reachable = [m for m in monitors if monitor_reachable(*m)]
        names = ', '.join('%s:%s' % m for m in monitors) or 'none'
        if not reachable:
            return ('cannot connect to Ceph: no monitor Cinder names (%s) '
                    'accepts a connection from this host; check routing '
                    'and firewalls to them (%s)' % (names, error))
        return ('cannot connect to Ceph as %s: its monitors (%s) answer but '
                'did not accept the key in %s within %ss; the file must '
                'hold %s\'s key ("ceph auth get %s" prints it) and be '
                'readable by this user (uid %d) (%s)' % (
                    client, names, keyring, self.connect_time, client,
                    client, os.geteuid(), error))

    def with_client_settings(self, connection_info: dict) -> dict[str, Any]:
        """What os-brick's connect takes, with these settings for RBD.

        A keyring Cinder did send (a cinderlib-style backend) is kept.
        """
        props = host.connection_properties(connection_info)
        if (connection_info.get('driver_volume_type', '').lower() != 'rbd'
                or props.get('keyring') is not None):
            return props
        return dict(props, keyring=self.conf_lines(props))


def monitor_reachable(address: str, port: str | int,
                      timeout: float = 2) -> bool:
    """Does a Ceph monitor at ``address``:``port`` accept TCP?"""
    try:
        socket.create_connection((address, int(port)), timeout).close()
        return True
    except (OSError, ValueError):
        return False


def remove_connect_files(device_info: dict | None) -> None:
    """Remove the temporary Ceph config os-brick wrote for a connect.

    librados read it when it connected; os-brick would remove it only at
    disconnect, so a worker killed in between would leave it behind.
    """
    conf = getattr((device_info or {}).get('path'), 'rbd_conf', None)
    if conf:
        try:
            os.unlink(conf)
        except FileNotFoundError:
            pass


def leftover_connect_files(min_age: float = 0, now: float | None = None,
                           directory: str | None = None) -> list[str]:
    """Paths of os-brick's temporary Ceph configs of our connects left over.

    :func:`remove_connect_files` removes each within milliseconds of its
    making; one older than ``min_age`` seconds was left by a worker killed
    inside a connect.  Ours are told from other users' (the in-tree
    driver's) by :attr:`RBDClient.MARK`; they hold no key.  os-brick
    writes them to the process's temporary directory, the default
    ``directory``.
    """
    directory = directory or tempfile.gettempdir()
    now = time.time() if now is None else now
    found = []
    for name in sorted(os.listdir(directory)):
        if not name.startswith(CONNECT_FILE_PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            if now - os.stat(path).st_mtime < min_age:
                continue
            with open(path) as f:
                if RBDClient.MARK in f.read():
                    found.append(path)
        except OSError:
            continue  # removed meanwhile, or not ours to read
    return found


class RBDDevice(base.Device):
    """A file object from os-brick: RBD attached in userspace, librbd.

    os-brick's ``RBDVolumeIOWrapper`` has one shared position, returns
    None from ``write`` and ``seek``, has no ``fileno`` (so no fsync and
    no O_DIRECT), raises on a read at or past the end and on a write past
    the end.  Where it exposes the librbd image (``rbd_image``), I/O goes
    to the image directly: reads are positional (readers may share the
    handle, each with a device of its own) and each read asks librbd for
    the next range of the same length ahead; writes are asynchronous with
    at most :data:`RBD_WRITES_IN_FLIGHT` outstanding, a failure raised by
    the next ``pwrite`` or by ``sync``.  A device serves one thread at a
    time.  Other file objects are used through seek +
    read/write under a lock.  ``sync`` waits for every write, then
    ``flush()``es (librbd's durability call).  We do not own the handle:
    ``close`` leaves it to os-brick's disconnect.
    """

    def __init__(self, handle):
        self.handle = handle
        self.image = getattr(handle, 'rbd_image', None)
        self._data_map: DataMap | None = None
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(RBD_WRITES_IN_FLIGHT)
        self._failures = []
        self._ahead = None  # a _PendingRead of the next range

    def pread(self, length, offset):
        if self.image is None:
            with self._lock:
                self.handle.seek(offset)
                return self.handle.read(length)
        # librbd refuses (EINVAL) a read that starts at or past the end
        size = self.image.size()
        length = min(length, size - offset)
        if length <= 0:
            return b''
        ahead, self._ahead = self._ahead, None
        if ahead is not None and (ahead.offset, ahead.length) == (offset,
                                                                  length):
            data = ahead.wait_for_data()
        else:
            if ahead is not None:
                ahead.done.wait()  # not what is asked: let it finish
            if self.data_map().has_data(offset, length):
                data = self.image.read(offset, length)
            else:
                # no object there: librbd reads zeros
                data = base.zeros(length)
        self._read_ahead(offset + length, min(length, size - offset -
                                              length))
        return data

    def data_map(self) -> 'DataMap':
        """Where the image has objects, asked of librbd once per device.

        Only images that no longer change are read (an image-volume is
        read-only once stored), so the map stays true.
        """
        if self._data_map is None:
            assert self.image is not None
            self._data_map = DataMap.of_rbd_image(self.image)
        return self._data_map

    def _read_ahead(self, offset, length):
        # Sequential readers ask for the next range next: asking librbd
        # for it now keeps two reads in flight (raw librbd here: 304 MB/s
        # one at a time, 419 MB/s two), without copying.
        if length <= 0 or not self.data_map().has_data(offset, length):
            return
        ahead = _PendingRead(offset, length)
        assert self.image is not None  # only file objects of librbd read so
        self.image.aio_read(offset, length, ahead.on_read_done)
        self._ahead = ahead

    def pwrite(self, data, offset):
        if self.image is None:
            with self._lock:
                self.handle.seek(offset)
                self.handle.write(data)
            return
        if not isinstance(data, bytes):
            data = bytes(data)  # librbd takes bytes only
        self._raise_failure()
        # An asynchronous write past the end is clipped, silently (its
        # completion says 0, as for a whole write): refuse it here.
        end = offset + len(data)
        if end > self.image.size():
            raise OSError(errno.ENOSPC, 'RBD image is %d bytes, a write '
                          'to %d would not fit' % (self.image.size(), end))
        self._slots.acquire()
        try:
            # ``data`` stays referenced by the callback until librbd is done
            self.image.aio_write(data, offset, lambda completion, d=data:
                                 self._on_write_done(completion, offset,
                                                     len(d)))
        except BaseException:
            self._slots.release()
            raise

    def write_zeroes(self, offset, length):
        if self.image is None or not hasattr(self.image, 'write_zeroes'):
            return super(RBDDevice, self).write_zeroes(offset, length)
        self._raise_failure()
        if offset + length > self.image.size():
            raise OSError(errno.ENOSPC, 'RBD image is %d bytes, zeroing to %d'
                          ' would not fit' % (self.image.size(),
                                              offset + length))
        # librbd deallocates whole objects and zeroes partial ones
        self.image.write_zeroes(offset, length)

    def _on_write_done(self, completion, offset, length):
        # librbd's callback thread: record, never raise
        ret = completion.get_return_value()
        if ret < 0:
            with self._lock:
                self._failures.append(OSError(
                    -ret, 'RBD write of %d bytes at offset %d failed: %s'
                    % (length, offset, os.strerror(-ret))))
        self._slots.release()

    def _raise_failure(self):
        with self._lock:
            if self._failures:
                raise self._failures[0]

    def _drain_writes(self):
        for _ in range(RBD_WRITES_IN_FLIGHT):
            self._slots.acquire()
        for _ in range(RBD_WRITES_IN_FLIGHT):
            self._slots.release()

    def sync(self):
        if self.image is not None:
            self._drain_writes()
            self._raise_failure()
        self.handle.flush()

    def size(self):
        if self.image is not None:
            return self.image.size()
        with self._lock:
            position = self.handle.tell()
            try:
                self.handle.seek(0, io.SEEK_END)
                return self.handle.tell()
            finally:
                self.handle.seek(position)

    def close(self):
        if self.image is not None:
            # no read or write may outlive the handle
            ahead, self._ahead = self._ahead, None
            if ahead is not None:
                ahead.done.wait()
            self._drain_writes()


class DataMap(object):
    """The ranges of a device that hold data; elsewhere it reads zeros.

    ``None`` extents: unknown, everything may hold data.
    """

    def __init__(self, extents: list[tuple[int, int]] | None):
        # sorted, non-overlapping (start, end)
        self._starts = [start for start, _ in extents or ()]
        self._ends = [end for _, end in extents or ()]
        self.known = extents is not None

    @classmethod
    def of_rbd_image(cls, image: Any) -> 'DataMap':
        extents: list[tuple[int, int]] = []

        def seen(offset, length, exists):
            if exists:
                extents.append((offset, offset + length))
        try:
            # whole objects: one question per object, none per sub-extent
            image.diff_iterate(0, image.size(), None, seen,
                               include_parent=True, whole_object=True)
        except Exception as e:
            LOG.debug('No allocation map of the RBD image (%s): every '
                      'range is read', e)
            return cls(None)
        extents.sort()
        return cls(extents)

    def has_data(self, offset: int, length: int) -> bool:
        """May ``length`` bytes from ``offset`` hold anything but zeros?"""
        if not self.known:
            return True
        # the last extent starting before the range's end
        i = bisect.bisect_left(self._starts, offset + length) - 1
        return i >= 0 and self._ends[i] > offset


class _PendingRead(object):
    """An asynchronous librbd read and, once done, its bytes or error."""

    def __init__(self, offset, length):
        self.offset = offset
        self.length = length
        self.done = threading.Event()
        self.data = None
        self.error = None

    def on_read_done(self, completion, data):
        # librbd's callback thread: record, never raise
        ret = completion.get_return_value()
        if ret < 0:
            self.error = OSError(-ret, 'RBD read of %d bytes at offset %d '
                                 'failed: %s' % (self.length, self.offset,
                                                 os.strerror(-ret)))
        else:
            self.data = data
        self.done.set()

    def wait_for_data(self):
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.data
