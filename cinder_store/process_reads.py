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

"""One read-only attachment per volume, shared by a process's readers.

Many instances booting from one image make Glance serve the same volume
to many clients at once.  Each reader attaching on its own would cost an
attach per download and, on a volume that is not multiattach, fail:
Cinder allows one attachment.  Here the first reader of a volume attaches
it, later readers in the same process join that attachment with their own
device handle, and the last one to leave detaches it.  Between processes
(Glance workers) the same is done by :mod:`host_reads`: a process's first
reader joins the host's attachment if another worker holds one.

A reader that is alone on the attachment when it starts reads with O_DIRECT
(fastest for one reader, and the page cache is left alone); a reader that
joins others reads through the page cache, so that what one of them read
serves the others (measured here: 16 readers of one image in memory,
~3.0 GB/s all O_DIRECT, ~4.0 GB/s this way).

A file object from os-brick (RBD attached in userspace) is shared the
same way: its reads are positional and thread-safe (:mod:`device`).
"""

from concurrent import futures
import logging
import threading
from typing import Any
from typing import Callable

from glance_store import exceptions

from cinder_store import contention
from cinder_store import devices
from cinder_store import host_reads

LOG = logging.getLogger(__name__)


class _Shared(object):
    """An attachment being opened or open, and how many readers hold it."""

    def __init__(self, volume):
        self.volume = volume
        self.users = 1
        self.ready = threading.Event()
        self.attachment: Any = None  # host_reads' handle, once joined
        self.error: BaseException | None = None


class ReadLease(object):
    """One reader's hold on a shared attachment.

    Offers what :class:`dataio.VolumeIterator` uses of an attachment:
    ``volume``, ``device`` (this reader's own handle) and ``close()``.
    """

    def __init__(self, readers, shared, cinder, device):
        self._readers = readers
        self._shared = shared
        self._cinder = cinder
        self.volume = shared.volume
        self.device = device

    def close(self):
        """Close this reader's device; detach if it was the last reader."""
        try:
            self.device.close()
        finally:
            self._readers.release_lease(self._shared, self._cinder)


class ProcessReads(object):
    """The read-only attachments of one backend in this process.

    ``acquire`` returns a :class:`ReadLease`; closing it is the caller's
    duty.  Every attachment opened here is detached when its last
    lease closes, also when readers fail or give up.
    """

    def __init__(self, host_reads: host_reads.HostReads):
        self._host_reads = host_reads
        self._lock = threading.Lock()
        self._volumes: dict[str, _Shared] = {}
        self._lookups: dict[str, futures.Future] = {}

    def lookup_volume(self, volume_id: str, fetch: Callable[[], Any]) -> Any:
        """``fetch()``'s volume, fetched once for concurrent readers.

        A volume this process has attached (or is attaching) for reading
        is not fetched again, and concurrent lookups of one volume share
        one ``fetch()`` and its outcome.  Only for callers whose
        ``fetch()`` uses the same identity whoever asks (service
        credentials): it is not a per-caller access check.
        """
        with self._lock:
            shared = self._volumes.get(volume_id)
            if shared is not None and shared.error is None:
                return shared.volume
            waiting = self._lookups.get(volume_id)
            if waiting is None:
                pending = self._lookups[volume_id] = futures.Future()
        if waiting is not None:
            return waiting.result()
        try:
            pending.set_result(fetch())
        except BaseException as error:
            pending.set_exception(error)
        finally:
            with self._lock:
                del self._lookups[volume_id]
        return pending.result()

    def acquire_lease(self, cinder: Any, volume: Any) -> ReadLease:
        # Another host may be waiting for this host's hold to end
        contention.yield_turn(cinder, self._host_reads.settings, volume,
                              lambda: self._held_here(volume.id))
        with self._lock:
            found = self._volumes.get(volume.id)
            opener = found is None
            if found is None:
                shared = self._volumes[volume.id] = _Shared(volume)
            else:
                shared = found
                shared.users += 1
        if opener:
            self._open_shared(shared, cinder, volume)
        else:
            self._join_shared(shared, volume)
        with self._lock:
            alone = shared.users == 1
        try:
            device = devices.open_device(shared.attachment.device_path,
                                         writable=False, direct=alone)
        except BaseException:
            self.release_lease(shared, cinder)
            raise
        return ReadLease(self, shared, cinder, device)

    def _held_here(self, volume_id):
        with self._lock:
            if volume_id in self._volumes:
                return True
        return self._host_reads.held_here(volume_id)

    def _open_shared(self, shared, cinder, volume):
        """Attach for everyone waiting on ``shared``; they wake either way."""
        try:
            shared.attachment = self._host_reads.join_read(cinder, volume)
        except BaseException as error:
            shared.error = error
            self._drop_shared(shared, volume.id)
            raise
        finally:
            shared.ready.set()

    def _drop_shared(self, shared, volume_id):
        with self._lock:
            if self._volumes.get(volume_id) is shared:
                del self._volumes[volume_id]

    def _join_shared(self, shared, volume):
        shared.ready.wait()
        if shared.error is not None:
            raise exceptions.BackendException(
                'attaching volume %s failed for a concurrent reader: %s'
                % (volume.id, shared.error))
        LOG.debug('Reading volume %s through shared attachment %s',
                  volume.id, shared.attachment.id)

    def release_lease(self, shared: _Shared, cinder: Any) -> None:
        """Drop one user; the last one detaches, with its own credentials.

        The last reader's request is the most recent, so its token is the
        one least likely to have expired during a long run of readers.
        """
        with self._lock:
            shared.users -= 1
            if shared.users:
                return
            if self._volumes.get(shared.volume.id) is shared:
                del self._volumes[shared.volume.id]
        shared.attachment.cinder = cinder
        shared.attachment.close()
