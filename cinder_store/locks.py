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

"""This host's per-volume inter-process locks, in one lock directory.

oslo.concurrency external locks: a file per volume and purpose, named
``cinder_store-<volume>`` (attach and detach) and
``cinder_store-read-<volume>`` (joining and leaving a shared read).  The
directory may be shared by several backends (and by the records beside
the locks, :mod:`records`).
"""

import contextlib
import os

from oslo_concurrency import lockutils
from oslo_utils import uuidutils

PREFIX = 'cinder_store-'
_READS = 'read-'

#: Raised by a lock asked for with ``blocking=False`` that another holds
Busy = lockutils.AcquireLockFailedException


class VolumeLocks(object):
    """The locks of one lock directory (``lock_path``)."""

    def __init__(self, lock_path: str):
        self.lock_path = lock_path

    def lock_attach(self, volume_id: str) -> contextlib.AbstractContextManager:
        """Held around a connect, and around count + disconnect + delete."""
        return self._external_lock(volume_id)

    def lock_reads(self, volume_id: str, blocking: bool = True
                   ) -> contextlib.AbstractContextManager:
        """Held while joining or leaving this host's shared read.

        ``blocking=False``: raises :data:`Busy` at once if another holds
        it (a reader joining may hold it for a whole attach).
        """
        return self._external_lock(_READS + volume_id, blocking)

    def _external_lock(self, name, blocking=True):
        return lockutils.lock(name, lock_file_prefix=PREFIX, external=True,
                              lock_path=self.lock_path, blocking=blocking)

    def remove_locks(self, volume_id: str) -> None:
        """Remove the lock files of a volume that no longer exists."""
        for name in (volume_id, _READS + volume_id):
            lockutils.remove_external_lock_file(
                name, lock_file_prefix=PREFIX, lock_path=self.lock_path)

    def locked_volumes(self) -> list[str]:
        """Ids of the volumes that have lock files here, sorted.

        Every backend's, when several share the directory.
        """
        try:
            names = os.listdir(self.lock_path)
        except FileNotFoundError:
            return []
        ids = set()
        for name in names:
            for prefix in (PREFIX, PREFIX + _READS):
                rest = name[len(prefix):]
                if name.startswith(prefix) and uuidutils.is_uuid_like(rest):
                    ids.add(rest)
        return sorted(ids)
