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

"""Small per-volume JSON records beside the locks, and who wrote them.

Glance workers on one host leave notes for each other (and for
``cinder-store-check``) in the lock directory: which shared read
attachment exists (:mod:`host_reads`), which upload is in progress
(:mod:`upload_records`).  A note names its writers by
:func:`process_id` and the host's :func:`boot_id`, so a note left by a
process that died, or before a reboot, is recognised as stale.  Notes
never hold credentials.
"""

import json
import logging
import os
from typing import Any

from cinder_store import host

LOG = logging.getLogger(__name__)

#: A record as stored: JSON, read back as a dict.
Record = dict[str, Any]


def _read_file(path: str) -> str:
    with open(path) as f:
        return f.read()


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def boot_id() -> str:
    """This boot of this host: records from before a reboot are stale."""
    try:
        return _read_file('/proc/sys/kernel/random/boot_id').strip()
    except OSError:
        return 'unknown'


def this_boot(record: Record) -> bool:
    """Was ``record`` written since this host booted?  Unknown is no."""
    current = boot_id()
    return current != 'unknown' and record.get('boot') == current


def written_elsewhere(record: Record | None) -> bool:
    """Was ``record`` written on another host?

    That happens with a lock directory shared between hosts by mistake.  A
    record naming no host (written before records named one) is this
    host's.
    """
    return (record is not None and record.get('host') is not None and
            record['host'] != host.hostname())


def pid_namespace() -> str:
    try:
        return os.readlink('/proc/self/ns/pid').split('[')[-1].rstrip(']')
    except OSError:
        return '0'


def process_id(pid: int | None = None) -> str | None:
    """``<pid namespace>:<pid>:<start time>``: unique on this host's boot."""
    pid = os.getpid() if pid is None else pid
    try:
        stat = _read_file('/proc/%d/stat' % pid)
    except OSError:
        return None
    # Field 22 (start time) counts after the ')' closing the command name.
    return '%s:%d:%s' % (pid_namespace(), pid,
                         stat.rsplit(')', 1)[1].split()[19])


def holder_alive(holder: str) -> bool:
    """Is the process ``holder`` names still running?

    A holder in another pid namespace (another container sharing the lock
    directory) cannot be seen from here and counts as alive.
    """
    namespace, pid, _start = holder.split(':')
    if namespace != pid_namespace():
        return True
    return process_id(int(pid)) == holder


class RecordFiles(object):
    """``<directory>/<prefix><volume id>.json``, written atomically, 0600.

    Callers serialise access with their own per-volume lock.  Records an
    earlier release wrote under ``legacy_prefix`` are read (and removed)
    as if written under ``prefix``; new ones always are.
    """

    def __init__(self, directory: str, prefix: str, kind: str,
                 legacy_prefix: str | None = None):
        self.directory = directory
        self.prefix = prefix
        self.kind = kind
        self.legacy_prefix = legacy_prefix

    def path(self, volume_id: str) -> str:
        return os.path.join(self.directory, self.prefix + volume_id + '.json')

    def _paths(self, volume_id: str) -> list[str]:
        prefixes = [self.prefix] + ([self.legacy_prefix]
                                    if self.legacy_prefix else [])
        return [os.path.join(self.directory, p + volume_id + '.json')
                for p in prefixes]

    def load(self, volume_id: str) -> Record | None:
        """The record, or None if there is none or it cannot be read."""
        for path in self._paths(volume_id):
            try:
                return json.loads(_read_file(path))
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as e:
                LOG.warning('Ignoring unreadable %s record of volume %s: %s',
                            self.kind, volume_id, e)
                return None
        return None

    def save(self, volume_id: str, record: Record) -> None:
        # Made on demand, like oslo.concurrency makes it for its locks.
        os.makedirs(self.directory, exist_ok=True)
        path = self.path(volume_id)
        tmp = path + '.tmp'
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            json.dump(record, f)
        os.replace(tmp, path)
        for legacy in self._paths(volume_id)[1:]:
            _remove_file(legacy)

    def remove(self, volume_id: str) -> None:
        for path in self._paths(volume_id):
            _remove_file(path)

    def volume_ids(self, backend: str | None = None) -> list[str]:
        """Ids of the volumes that have a record, sorted.

        With ``backend``, only records of that backend, of none named, or
        unreadable ones (so that they are reported).
        """
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        prefixes = [p for p in (self.prefix, self.legacy_prefix) if p]
        ids = sorted({n[len(p):-len('.json')] for n in names
                      for p in prefixes
                      if n.startswith(p) and n.endswith('.json')})
        if backend is None:
            return ids
        return [i for i in ids
                if (self.load(i) or {}).get('backend') in (None, backend)]
