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

"""What every attached volume offers: positional reads, writes, zeroing.

All I/O is positional (``pread``/``pwrite``), so probing the size never
moves a read position (LP#2086759).  The transports are
:mod:`devices.fd` (a path: block device or file) and :mod:`devices.rbd`
(librbd in userspace).
"""

import functools

from glance_store import exceptions

from cinder_store import utils

# The largest write of zeros where the device cannot zero by itself
ZERO_WRITE = 4 * 1024 * 1024


@functools.lru_cache(maxsize=4)
def zeros(length: int) -> bytes:
    """``length`` zero bytes, shared: reads of holes return the same object.

    A fresh zero buffer per read costs a page fault per page at first touch
    (about 400 MB/s on this project's VM); bytes never change, so one will do.
    """
    return bytes(length)


class Device(object):
    """An attached volume: positional reads, writes and zeroing."""

    def pread(self, length: int, offset: int) -> bytes:
        raise NotImplementedError

    def pwrite(self, data: bytes, offset: int) -> None:
        raise NotImplementedError

    def write_zeroes(self, offset: int, length: int) -> None:
        """Make ``length`` bytes from ``offset`` read as zeros.

        As cheaply as the device allows (a hole, the device's own zeroing);
        here, by writing zeros.  A failure raises like a failed write.
        """
        end = offset + length
        while offset < end:
            n = min(ZERO_WRITE, end - offset)
            self.pwrite(zeros(n), offset)
            offset += n

    def sync(self) -> None:
        raise NotImplementedError

    def size(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def wait_for_size(self, min_bytes: int, timeout: float) -> None:
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
