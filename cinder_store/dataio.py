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

"""Moving image bytes between a source and an attached device.

Writes run as three ordered lanes beside the thread reading the source:
md5 (+ signature verifier), the multihash, and the device write.  hashlib
releases the GIL on large buffers, so on two cores the hashes and the write
overlap the read.  At most ``depth`` chunks are in flight: memory stays
below ``(depth + 1) * chunk_size`` per upload.

Every byte is hashed, but runs of zeros (in :data:`ZERO_BLOCK` blocks) are
not written as data: on a volume that reads zeros where never written they
are skipped, elsewhere the device zeroes them as cheaply as it can
(:meth:`device.Device.write_zeroes`).
"""

import collections
from concurrent import futures
import errno
import hashlib
import logging
import threading
from typing import Any
from typing import BinaryIO
from typing import Callable
import weakref

from glance_store import exceptions
from oslo_utils import units

from cinder_store import devices

LOG = logging.getLogger(__name__)

CHUNK_SIZE = 4 * units.Mi
DEPTH = 8
# Zeros are found in blocks of this size, aligned to the chunk's start
ZERO_BLOCK = 64 * units.Ki


def _is_zero(data: bytes) -> bool:
    return data == devices.zeros(len(data))


def zero_runs(chunk: bytes, block: int = ZERO_BLOCK):
    """The runs of ``chunk``: ``(start, end, is_zero)`` tuples, in order.

    Runs are whole blocks of ``block`` bytes but for the chunk's last;
    blocks of the same kind next to each other are merged.
    """
    if _is_zero(chunk):
        yield 0, len(chunk), True
        return
    start, zero = 0, None
    for at in range(0, len(chunk), block):
        last = min(at + block, len(chunk)) - 1
        # Data blocks rarely start and end with zeros: no copy for them.
        # A slice and a compare are C speed; a memoryview compare is not.
        this = (chunk[at] == 0 and chunk[last] == 0 and
                _is_zero(chunk[at:last + 1]))
        if zero is not None and this != zero:
            yield start, at, zero
            start = at
        zero = this
    yield start, len(chunk), bool(zero)


def _map_os_error(error):
    if error.errno in (errno.ENOSPC, errno.EFBIG):
        return exceptions.StorageFull(message=str(error))
    if error.errno == errno.EACCES:
        return exceptions.StorageWriteDenied(message=str(error))
    return None


class _Lanes(object):
    """Ordered single-thread lanes with a bounded number of chunks."""

    def __init__(self, names: tuple[str, ...], depth: int):
        self._pools = {n: futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='cinder_store-' + n)
            for n in names}
        self._inflight: collections.deque[list[futures.Future]] = (
            collections.deque())
        self._depth = depth

    def submit(self, jobs: dict[str, Callable[[], Any]]) -> None:
        """Queue ``{lane: callable}`` for one chunk; wait if too many."""
        self._inflight.append([self._pools[n].submit(f)
                               for n, f in jobs.items()])
        while len(self._inflight) > self._depth:
            self._wait_oldest()

    def _wait_oldest(self):
        for future in self._inflight.popleft():
            future.result()

    def drain(self) -> None:
        while self._inflight:
            self._wait_oldest()

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


class ImageWriter(object):
    """Reads ``image_file``, hashes it, and writes it to devices.

    ``fill(device, capacity)`` may be called several times (the volume is
    grown in between); each call writes from where the last one stopped.
    Callers may rely on: every byte read is hashed exactly once and lands
    on the device exactly once, in order (runs of zeros as zeroing, or
    not at all with ``skip_zeros``); data longer or shorter than a
    declared size raises ``exceptions.Invalid``; ENOSPC/EFBIG raise
    ``StorageFull`` and EACCES ``StorageWriteDenied``.
    """

    def __init__(self, image_file: BinaryIO, declared_size: int,
                 hashing_algo: str, verifier: Any = None,
                 chunk_size: int = CHUNK_SIZE, depth: int = DEPTH):
        self.image_file = image_file
        self.declared_size = declared_size
        self.chunk_size = chunk_size
        self.depth = depth
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multihash = hashlib.new(hashing_algo)
        self.verifier = verifier
        self.bytes_read = 0
        self.bytes_written = 0
        self.zero_bytes = 0  # of bytes_written: zeroed or skipped
        self.eof = False
        self._pending = b''

    @property
    def checksum(self) -> str:
        return self.md5.hexdigest()

    @property
    def multihash_hex(self) -> str:
        return self.multihash.hexdigest()

    def _read_chunk(self):
        want = self.chunk_size
        if self.declared_size:
            # Read one byte past the declared size to detect excess data.
            want = min(want, self.declared_size - self.bytes_read + 1)
        chunk = self._read_full(want)
        if not chunk:
            self.eof = True
            self._check_final_size()
            return b''
        self.bytes_read += len(chunk)
        if self.declared_size and self.bytes_read > self.declared_size:
            raise exceptions.Invalid(
                'image data is longer than its declared size of %d bytes'
                % self.declared_size)
        return chunk

    def _read_full(self, want):
        # Network sources return short reads; whole chunks keep device
        # writes aligned (O_DIRECT) and hashing calls large.
        chunk = self.image_file.read(want)
        if not chunk or len(chunk) == want:
            return chunk
        parts = [chunk]
        got = len(chunk)
        while got < want:
            more = self.image_file.read(want - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b''.join(parts)

    def _check_final_size(self):
        if self.declared_size and self.bytes_read != self.declared_size:
            raise exceptions.Invalid(
                'image data is %d bytes, shorter than its declared size of '
                '%d bytes' % (self.bytes_read, self.declared_size))

    def _hash_md5(self, chunk):
        self.md5.update(chunk)
        if self.verifier is not None:
            self.verifier.update(chunk)

    def fill(self, device: devices.Device, capacity: int,
             skip_zeros: bool = False) -> bool:
        """Write until EOF or ``capacity`` bytes; True when all is written.

        Returns False when the source has more data than fits; the data
        already read but not yet written is kept for the next call.
        ``skip_zeros``: the device reads zeros wherever it was never
        written (a new thin volume), so runs of zeros are left unwritten.
        """
        lanes = _Lanes(('md5', 'multihash', 'write'), self.depth)
        try:
            done = self._fill_device(lanes, device, capacity, skip_zeros)
            lanes.drain()
            return done
        except OSError as error:
            raise _map_os_error(error) or error
        finally:
            lanes.shutdown()

    def _fill_device(self, lanes, device, capacity, skip_zeros):
        while True:
            chunk, self._pending = self._pending, b''
            if not chunk:
                if self.eof:
                    return True
                chunk = self._read_chunk()
                if not chunk:
                    return True
                lanes.submit({
                    'md5': lambda c=chunk: self._hash_md5(c),
                    'multihash': lambda c=chunk: self.multihash.update(c)})
            room = capacity - self.bytes_written
            if room <= 0:
                self._pending = chunk
                return False
            if len(chunk) > room:
                chunk, self._pending = chunk[:room], chunk[room:]
            offset = self.bytes_written
            self.bytes_written += len(chunk)
            lanes.submit({'write': lambda c=chunk, o=offset:
                          self._write_chunk(device, c, o, skip_zeros)})
            if self._pending:
                return False

    def _write_chunk(self, device, chunk, offset, skip_zeros):
        for start, end, zero in zero_runs(chunk):
            if not zero:
                whole = start == 0 and end == len(chunk)
                device.pwrite(chunk if whole else chunk[start:end],
                              offset + start)
                continue
            self.zero_bytes += end - start
            if not skip_zeros:
                device.write_zeroes(offset + start, end - start)


def _release_attachment(attachment, lock):
    with lock:
        if attachment[0] is None:
            return
        current, attachment[0] = attachment[0], None
    try:
        current.close()
    except Exception:
        LOG.exception('Releasing the attachment of volume %s failed',
                      current.volume.id)


class VolumeIterator(object):
    """Iterates ``length`` bytes from ``offset`` of an open attachment.

    The attachment is released as soon as the data is exhausted, when the
    consumer calls ``close()``, when a read fails, or when the consumer
    drops the iterator: it is never held by a forgotten iterator.
    """

    def __init__(self, attachment: Any, offset: int, length: int,
                 chunk_size: int = CHUNK_SIZE):
        self.offset = offset
        self.remaining = length
        self.chunk_size = chunk_size
        self._device = attachment.device
        self._holder = [attachment]
        self._lock = threading.Lock()
        self._pool = futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='cinder_store-read')
        self._ahead = None
        self._finalizer = weakref.finalize(
            self, _shut_down_reads_aside, self._holder, self._lock,
            self._pool)

    def __iter__(self) -> 'VolumeIterator':
        return self

    def _submit_read(self):
        n = min(self.chunk_size, self.remaining)
        if n <= 0:
            return None
        future = self._pool.submit(self._device.pread, n, self.offset)
        self.offset += n
        self.remaining -= n
        return future

    def __next__(self) -> bytes:
        if self._holder[0] is None:
            raise StopIteration
        try:
            current = self._ahead or self._submit_read()
            if current is None:
                raise StopIteration
            # read-ahead overlaps the consumer
            self._ahead = self._submit_read()
            data = current.result()
            if not data:
                raise exceptions.BackendException(
                    'short read: the attached volume ended before the '
                    'image did; the device is smaller than the image')
        except BaseException:
            self.close()
            raise
        if self._ahead is None:
            self.close()
        return data

    def close(self) -> None:
        """Stop reading ahead and release the attachment (idempotent)."""
        if self._finalizer.detach() is not None:
            _shut_down_reads(self._holder, self._lock, self._pool)


def _shut_down_reads(holder, lock, pool):
    pool.shutdown(wait=True, cancel_futures=True)
    _release_attachment(holder, lock)


def _shut_down_reads_aside(holder, lock, pool):
    # A dropped iterator is collected on whatever thread the garbage
    # collector runs, maybe one the release waits for (tooz's executor,
    # inside a call of its own: a deadlock seen under Glance): never
    # there.  The main thread (at exit, too) releases it itself.
    if threading.current_thread() is threading.main_thread():
        _shut_down_reads(holder, lock, pool)
        return
    threading.Thread(target=_shut_down_reads, args=(holder, lock, pool),
                     name='cinder_store-release', daemon=True).start()
