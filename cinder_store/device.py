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

"""An attached volume as positional reads and writes.

A device is opened *without* ``O_TRUNC`` and without ``O_CREAT``, ever: on
NFS-style backends the "device" is a regular file holding earlier data
(cubecos#1260).  All I/O is positional (``pread``/``pwrite``), so probing
the size never moves a read position (LP#2086759).  os-brick may hand back
a file object instead of a path (RBD without local attach); it is wrapped
with the same interface.
"""

import ctypes
import ctypes.util
import errno
import io
import os

from glance_store import exceptions

from cinder_store import utils


FLUSH_BEHIND = 32 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                     ctypes.c_uint]
    return func


_sync_file_range = _load_sync_file_range()


def start_writeback(fd, offset, length):
    """Ask the kernel to start writing a range back now, without waiting.

    The final fsync is still what makes the data durable; starting
    writeback early lets the device work while we are still hashing, so
    that fsync has little left to wait for.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class Device(object):
    """Interface: ``pread``, ``pwrite``, ``sync``, ``size``, ``close``."""

    def pread(self, length, offset):
        raise NotImplementedError

    def pwrite(self, data, offset):
        raise NotImplementedError

    def sync(self):
        raise NotImplementedError

    def size(self):
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def wait_for_size(self, min_bytes, timeout):
        """Wait until the device shows at least ``min_bytes``.

        Block devices of some transports (PowerFlex) show a new size only
        some time after the control plane extended them (LP#1959913).
        Regular files are exempt: a sparse file need not grow until written.
        """
        deadline = utils.Deadline(timeout)
        delay = 0.05
        while self.size() < min_bytes:
            if deadline():
                raise exceptions.StorageFull(
                    message='the attached device still shows %d bytes, '
                            '%d expected after extend, after %ss'
                            % (self.size(), min_bytes, timeout))
            utils.sleep(delay)
            delay = min(delay * 2, 1)


class FdDevice(Device):
    """A path opened with ``os.open``: a block device or a regular file."""

    def __init__(self, path, writable):
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC
        self.path = path
        self.fd = os.open(path, flags)
        self.is_file = os.path.isfile(path)
        self._unflushed = (0, 0)  # range written since the last writeback
        if not writable:
            try:
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            except OSError:
                pass  # advice only

    def pread(self, length, offset):
        return os.pread(self.fd, length, offset)

    def pwrite(self, data, offset):
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            if written == 0:
                raise OSError(errno.ENOSPC, 'device accepted 0 bytes')
            view = view[written:]
            offset += written
        self._flush_behind(offset - len(data), offset)

    def _flush_behind(self, start, end):
        first, last = self._unflushed
        if last != start:
            first = start  # not sequential: start a new window
        if end - first >= FLUSH_BEHIND:
            start_writeback(self.fd, first, end - first)
            first = end
        self._unflushed = (first, end)

    def sync(self):
        os.fsync(self.fd)

    def size(self):
        # fstat reports 0 for some block devices; lseek on the fd is what
        # the kernel knows, and pread/pwrite do not depend on the position.
        return os.lseek(self.fd, 0, os.SEEK_END)

    def wait_for_size(self, min_bytes, timeout):
        if self.is_file:
            return
        super(FdDevice, self).wait_for_size(min_bytes, timeout)

    def close(self):
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


class FileObjectDevice(Device):
    """A file-like object from os-brick (RBD); we do not own or close it."""

    def __init__(self, handle):
        self.handle = handle

    def _at(self, offset):
        self.handle.seek(offset)

    def pread(self, length, offset):
        self._at(offset)
        return self.handle.read(length)

    def pwrite(self, data, offset):
        self._at(offset)
        self.handle.write(data)

    def sync(self):
        flush = getattr(self.handle, 'flush', None)
        if flush:
            flush()
        fsync = getattr(self.handle, 'fsync', None)
        if fsync:
            fsync()

    def size(self):
        position = self.handle.tell()
        try:
            self.handle.seek(0, io.SEEK_END)
            return self.handle.tell()
        finally:
            self.handle.seek(position)

    def close(self):
        pass


def open_device(path_or_handle, writable):
    """A :class:`Device` for what os-brick returned as ``path``."""
    if isinstance(path_or_handle, (str, bytes, os.PathLike)):
        return FdDevice(path_or_handle, writable)
    return FileObjectDevice(path_or_handle)
