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

"""One read-only attachment per volume on this host, across processes.

Glance runs several workers; downloads of one image land on any of them.
Cinder allows one attachment of a volume that is not multiattach, so a
second worker attaching on its own would wait for the first download to
end, and fail after its retries when that download is long.  Here the
worker that attaches records the attachment in a small file beside the
locks (``<lock_path>/cinder_store-shared-read-<volume>.json``); other workers
join it and use the same device, and the last worker to leave detaches.

The file holds the Cinder attachment id, os-brick's device info (no
credentials: a worker that must detach an attachment it did not make asks
Cinder for the connection info; for a userspace RBD connection, which is a
file object of its process, only that it is one: each worker connects its
own, :class:`connection.Connection`) and the holders, each a process id with
its start time and pid namespace, so a worker that died is recognised and
dropped (one in another namespace cannot be checked and counts as alive),
and when the attach began (``since``): a worker killed before it learned
its attachment's id left one made since then that no live attacher
claims (:func:`recovery.rules.stale_reader_attachments`).
A record is trusted only if it was written since this host booted, has a
live holder and Cinder still shows its attachment attached to this volume;
otherwise its attachment is detached as a leftover and a fresh one is
made.  All of it happens under a per-volume inter-process lock.  A record
written on another host (a lock directory shared between hosts by
mistake) is never joined nor detached: this host then attaches on its
own, without sharing.

Warm: when the last reader leaves, the attachment may stay up, unheld,
for ``Settings.warm_idle`` seconds (the record says until when,
``warm_until``).  The next reader of any worker of this host joins it with
no Cinder call: the record also holds what a read needs of the volume
(``volume``; images are never rewritten) and, for a userspace transport,
the connection info without credentials (``connection``), and says when
Cinder last confirmed the attachment (``verified``), which
:func:`recovery.rules.trusted_without_cinder` weighs.  :mod:`warm_reads`
releases what is no longer worth keeping.
"""

import logging
import time
from typing import Any

from glance_store import exceptions
from oslo_utils import excutils

from cinder_store import attachment
from cinder_store import client
from cinder_store import connection
from cinder_store import devices
from cinder_store import host
from cinder_store import records
from cinder_store.recovery import repairs
from cinder_store.recovery import rules
from cinder_store import settings

LOG = logging.getLogger(__name__)

PREFIX = 'cinder_store-shared-read-'
# What releases before 2026.2 named them: still read, never written
LEGACY_PREFIX = 'cinder_store-readers-'


class HostReads(object):
    """Joins and leaves this host's shared read-only attachments.

    ``join`` returns a handle with ``id``, ``volume``, ``device_path``,
    ``cinder`` (the client the handle detaches with; settable) and
    ``close()`` (leave; the last process to leave detaches).
    """

    def __init__(self, settings: settings.Settings):
        self.settings = settings
        self.files = records.RecordFiles(settings.lock_path, PREFIX,
                                         'shared read', LEGACY_PREFIX)

    # -- joining -------------------------------------------------------------

    def join_read(self, cinder: Any,
                  volume: Any) -> '_OwnAttachment | _JoinedAttachment':
        """This process's hold on the host's read attachment of ``volume``.

        ``volume`` may be :meth:`recorded_volume`'s: it is fetched from
        Cinder only if a new attachment must be made.
        """
        with self.settings.locks.lock_reads(volume.id):
            record = self.files.load(volume.id)
            if records.written_elsewhere(record):
                return self._attach_unshared(
                    cinder, _fetch_current_volume(cinder, volume), record)
            if record is not None:
                if self._record_joinable(cinder, volume.id, record):
                    return self._join_recorded(cinder, volume, record)
                self._drop_stale(cinder,
                                 _fetch_current_volume(cinder, volume),
                                 record)
            return self._attach_recorded(
                cinder, _fetch_current_volume(cinder, volume))

    def _record_joinable(self, cinder, volume_id, record):
        """Trusted as it is, or confirmed by Cinder now (``verified``)."""
        if rules.trusted_without_cinder(record,
                                        self.settings.membership.trusts):
            return True
        if not self._record_usable(cinder, volume_id, record):
            return False
        record['verified'] = time.time()
        return True

    def _record_usable(self, cinder, volume_id, record):
        reason = rules.why_reader_record_stale(cinder, volume_id, record)
        if reason:
            LOG.info('Reader record of volume %s is stale: %s', volume_id,
                     reason)
        return reason is None

    def _join_recorded(self, cinder, volume, record):
        joined = _JoinedAttachment(self, cinder, volume, record)
        was_warm = record.pop('warm_until', None) is not None
        record['holders'] = [
            h for h in record['holders'] if records.holder_alive(h)
        ] + [records.process_id()]
        try:
            self.files.save(volume.id, record)
        except BaseException:
            with excutils.save_and_reraise_exception():
                joined.drop_own_handle()
        LOG.debug('Joined %s attachment %s of volume %s',
                  'warm' if was_warm else "another process's",
                  record['attachment'], volume.id)
        return joined

    def backend_records(self) -> dict[str, records.Record]:
        """This backend's records here, by volume id (read unlocked)."""
        found = {}
        for volume_id in self.recorded_volumes():
            record = self.files.load(volume_id)
            if record is not None and not records.written_elsewhere(record):
                found[volume_id] = record
        return found

    def confirm_record(self, cinder: Any, volume_id: str,
                       older_than: float = 0, blocking: bool = True) -> bool:
        """Ask Cinder whether ``volume_id``'s record still holds.

        Only if Cinder last confirmed it over ``older_than`` seconds ago
        (another worker may just have).  Confirmed: ``verified`` is now.
        Stale: undone as the next reader would (:meth:`repair_record`).
        Returns whether it held.  ``blocking=False``: raises
        :data:`locks.Busy` while a reader joins or leaves.
        """
        with self.settings.locks.lock_reads(volume_id, blocking):
            record = self.files.load(volume_id)
            if record is None or records.written_elsewhere(record):
                return False
            if ('device_info' not in record or  # its attacher records it
                    time.time() - record.get('verified', 0) <= older_than):
                return True
            reason = rules.why_reader_record_stale(cinder, volume_id, record)
            if reason is None:
                self.files.save(volume_id, dict(record,
                                                verified=time.time()))
                return True
        LOG.warning('Reader record of volume %s is stale: %s', volume_id,
                    reason)
        try:
            volume = client.existing_volume(cinder, volume_id)
        except exceptions.NotFound:
            repairs.forget_gone_reader_volume(self, volume_id)
            return False
        self.repair_record(cinder, volume)
        return False

    def recorded_volume(self, volume_id: str) -> 'RecordedVolume | None':
        """What this host's record says of ``volume_id``, if trusted.

        For a read that needs no Cinder call: the record must be one a
        reader would join as it is (:func:`rules.trusted_without_cinder`).
        """
        with self.settings.locks.lock_reads(volume_id):
            record = self.files.load(volume_id)
        if (record is None or records.written_elsewhere(record) or
                'volume' not in record or
                not rules.trusted_without_cinder(
                    record, self.settings.membership.trusts)):
            return None
        return RecordedVolume(record['volume'])

    # -- inspection, for cinder-store-check ----------------------------------

    def recorded_volumes(self) -> list[str]:
        """Ids of the volumes this backend has reader records for here."""
        return self.files.volume_ids(self.settings.backend)

    def inspect_record(self, cinder: Any, volume_id: str
                       ) -> tuple[records.Record | None, str | None]:
        """``(record, reason)``: reason is None while the record is live.

        Read-only; ``record`` is None when there is none (or unreadable).
        A record written on another host counts as live.
        """
        with self.settings.locks.lock_reads(volume_id):
            record = self.files.load(volume_id)
            if record is None or records.written_elsewhere(record):
                return record, None
            return record, rules.why_reader_record_stale(
                cinder, volume_id, record)

    def repair_record(self, cinder: Any, volume: Any) -> list[str] | None:
        """Undo a stale record as the next reader would.

        Its attachments are detached (not disconnected after a reboot) and
        the record removed.  Returns the ids of the attachments it found
        left, or None if there was no record to undo (none, live, or
        another host's).
        """
        with self.settings.locks.lock_reads(volume.id):
            record = self.files.load(volume.id)
            if (record is None or records.written_elsewhere(record) or
                    self._record_usable(cinder, volume.id, record)):
                return None
            return self._drop_stale(cinder, volume, record)

    def _drop_stale(self, cinder, volume, record):
        """Detach what a stale record left, then remove the record.

        Returns the ids detached.  A detach that fails raises and the
        record stays, held by nobody, naming the attachment for the next
        reader, the image delete or ``cinder-store-check --fix``.
        """
        try:
            detached = repairs.detach_stale_reader(cinder, self.settings,
                                                   volume, record)
        except BaseException:
            with excutils.save_and_reraise_exception():
                LOG.warning('Could not detach what the stale reader record '
                            'of volume %s left; keeping the record',
                            volume.id)
                self.files.save(volume.id, dict(record, holders=[]))
        self.files.remove(volume.id)
        return detached

    def _attach_unshared(self, cinder, volume, record):
        # Its holders' pids and device path mean nothing here; touching it
        # would detach a download on that host.
        LOG.warning('The reader record of volume %s was written on host '
                    '%s: is %s shared between hosts? Reading it without '
                    'sharing the attachment', volume.id, record.get('host'),
                    self.settings.lock_path)
        return attachment.Attachment(cinder, self.settings, volume,
                                     writable=False).open()

    def _attach_recorded(self, cinder, volume):
        # Recorded before Cinder makes the attachment, and again as soon as
        # it names it: a worker killed in between would otherwise leave an
        # attachment no record points to, and on a volume that is not
        # multiattach no later read could attach.
        record = {'boot': records.boot_id(), 'host': host.hostname(),
                  'backend': self.settings.backend, 'attachment': None,
                  'since': time.time(), 'holders': [records.process_id()]}
        self.files.save(volume.id, record)

        def record_id(att):
            self.files.save(volume.id, dict(record, attachment=att.id))

        att = attachment.Attachment(cinder, self.settings, volume,
                                    writable=False)
        try:
            att.open(record_id)
        except BaseException:
            with excutils.save_and_reraise_exception():
                self._record_failed_attach(volume.id, record, att)
        try:
            self.files.save(volume.id, dict(
                record, attachment=att.id,
                device_info=recordable_device_info(att.device_info),
                connection=recordable_connection(att.connection_info,
                                                 att.device_info),
                volume=RecordedVolume.facts_of(volume),
                verified=time.time()))
        except BaseException:
            with excutils.save_and_reraise_exception():
                att.close()
        return _OwnAttachment(self, att)

    def _record_failed_attach(self, volume_id, record, att):
        if att.stranded:
            # Its host connection would not go: held by nobody, the record
            # names it for the next reader, the delete or the check.
            self.files.save(volume_id, dict(record, attachment=att.id,
                                            holders=[]))
        else:
            self.files.remove(volume_id)

    # -- leaving -------------------------------------------------------------

    def leave_read(self, handle: '_OwnAttachment | _JoinedAttachment') -> None:
        """Drop this process; detach if no other live process holds it."""
        volume_id = handle.volume.id
        with self.settings.locks.lock_reads(volume_id):
            record = self.files.load(volume_id)
            if record is None or record['attachment'] != handle.id:
                handle.detach_here()  # not (or no longer) recorded: ours alone
                return
            # One entry per hold: this process may hold it twice for a
            # moment (its last reader leaving as its next one joins).
            holders = list(record['holders'])
            if records.process_id() in holders:
                holders.remove(records.process_id())
            holders = [h for h in holders if records.holder_alive(h)]
            if holders:
                record['holders'] = holders
                self.files.save(volume_id, record)
                handle.drop_own_handle()
                return
            members = self.settings.membership
            if (self.settings.warm_idle > 0 and 'device_info' in record and
                    rules.worth_keeping_warm(
                        bool(getattr(handle.volume, 'multiattach', False)),
                        members.alive_hosts, members.host_name)):
                self._keep_warm(handle, record)
                return
            # Detach first, under the lock that keeps readers from joining:
            # if it fails the record must go on naming the attachment.
            if handle.detach_here():
                self.files.remove(volume_id)
            else:
                # Held by nobody now: the next reader, the image delete or
                # cinder-store-check --fix detaches it.
                self.files.save(volume_id, dict(record, holders=[]))

    def _keep_warm(self, handle, record):
        """Leave the attachment up, unheld, for ``warm_idle`` seconds."""
        handle.drop_own_handle()
        now = time.time()
        self.files.save(handle.volume.id, dict(
            record, holders=[], last_read=now,
            warm_until=now + self.settings.warm_idle))
        LOG.debug('Keeping attachment %s of volume %s warm for %ss',
                  handle.id, handle.volume.id, self.settings.warm_idle)

    def release_warm(self, cinder: Any, volume_id: str,
                     why: str, blocking: bool = True) -> bool:
        """Detach this host's warm attachment of ``volume_id``, if any.

        Only one nobody holds (expired ones included): a live reader's
        stays.  ``why`` is logged.  Returns whether one was released; a
        detach that fails raises, and the record stays naming it.
        ``blocking=False``: raises :data:`locks.Busy` while a reader
        joins or leaves.
        """
        with self.settings.locks.lock_reads(volume_id, blocking):
            record = self.files.load(volume_id)
            if (record is None or records.written_elsewhere(record) or
                    'warm_until' not in record or
                    any(records.holder_alive(h)
                        for h in record.get('holders', ()))):
                return False
            LOG.info('Releasing warm attachment %s of volume %s: %s',
                     record.get('attachment'), volume_id, why)
            volume = (RecordedVolume(record['volume']) if 'volume' in record
                      else client.existing_volume(cinder, volume_id))
            self._drop_stale(cinder, volume, record)
            return True

    def held_here(self, volume_id: str) -> bool:
        """Does a live process of this host hold a read of ``volume_id``?"""
        with self.settings.locks.lock_reads(volume_id):
            record = self.files.load(volume_id)
        return (record is not None and not records.written_elsewhere(record)
                and any(records.holder_alive(h)
                        for h in record.get('holders', ())))

    def recorded_attachment(self, volume_id: str) -> str | None:
        """The attachment id this host recorded for ``volume_id``, or None."""
        with self.settings.locks.lock_reads(volume_id):
            record = self.files.load(volume_id)
        if record is None or records.written_elsewhere(record):
            return None
        return record.get('attachment')

    def discard_record(self, volume_id: str) -> None:
        """Forget the record of a volume whose attachments are going."""
        with self.settings.locks.lock_reads(volume_id):
            self.files.remove(volume_id)


def _fetch_current_volume(cinder, volume):
    """The volume as Cinder has it now (``volume`` may be recorded)."""
    if isinstance(volume, RecordedVolume):
        return client.existing_volume(cinder, volume.id)
    return volume


class RecordedVolume(object):
    """What a read needs of a volume, as its shared read record holds it.

    Image-volumes are never rewritten once stored, so what the record
    says stays true while the record does.
    """

    FIELDS = ('id', 'size', 'metadata', 'multiattach', 'volume_type',
              'shared_targets', 'service_uuid')

    def __init__(self, facts: dict[str, Any]):
        self.id: str = facts['id']
        self.attachments = None  # not recorded: ask Cinder
        self.encrypted = False
        for name in self.FIELDS[1:]:
            setattr(self, name, facts.get(name))

    @classmethod
    def facts_of(cls, volume: Any) -> dict[str, Any]:
        return {name: getattr(volume, name, None) for name in cls.FIELDS}


# What of a userspace connection's info another process needs to connect
# again: never a key, password or secret
_CONNECTION_KEYS = ('name', 'hosts', 'ports', 'cluster_name',
                    'auth_enabled', 'auth_username', 'volume_id',
                    'access_mode', 'discard', 'device_path')


def recordable_connection(connection_info: dict,
                          device_info: dict | None) -> dict | None:
    """The connection info a record may hold, for a userspace transport.

    Lets another worker connect its own (:class:`connection.Connection`)
    without asking Cinder.  None for other transports (the host's device
    is shared).
    """
    if not devices.is_userspace(device_info):
        return None
    data = host.connection_properties(connection_info)
    return {'driver_volume_type': connection_info.get('driver_volume_type'),
            'data': {k: data[k] for k in _CONNECTION_KEYS if k in data}}


def recordable_device_info(device_info: dict | None) -> dict | None:
    """os-brick's device info as a record may hold it.

    A userspace connection's is a file object of this process: recorded
    as ``{'userspace': True}`` (os-brick's disconnect of another process's
    needs nothing from it).
    """
    if devices.is_userspace(device_info):
        return {'userspace': True}
    return device_info


class _OwnAttachment(object):
    """This process made the attachment."""

    def __init__(self, readers, att):
        self._readers = readers
        self.attachment = att
        self.id = att.id
        self.volume = att.volume
        self.device_path = att.device_path

    @property
    def cinder(self):
        return self.attachment.cinder

    @cinder.setter
    def cinder(self, value):
        self.attachment.cinder = value

    def close(self):
        self._readers.leave_read(self)

    def drop_own_handle(self):
        self.attachment.close_keeping_attachment()

    def detach_here(self):
        """Whether the attachment is gone (failures are logged)."""
        return self.attachment.close()


class _JoinedAttachment(object):
    """Another process made the attachment; this one reads its device."""

    def __init__(self, readers, cinder, volume, record):
        self._readers = readers
        self.cinder = cinder
        self.volume = volume
        self.id = record['attachment']
        self.device_info = record['device_info']
        self._own = None
        if self.device_info.get('userspace'):
            self._own = connection.Connection(
                cinder, readers.settings, volume, self.id,
                record.get('connection'))
            self.device_path = self._own.device_path
        else:
            self.device_path = self.device_info['path']

    def close(self):
        self._readers.leave_read(self)

    def drop_own_handle(self):
        if self._own is not None:
            own, self._own = self._own, None
            own.close()

    def detach_here(self):
        """Whether the attachment is gone (failures are logged)."""
        try:
            self.drop_own_handle()
            connection.detach_attachment(
                self.cinder, self._readers.settings, self.volume, self.id,
                self.device_info)
        except Exception:
            LOG.exception('Detaching attachment %s of volume %s failed',
                          self.id, self.volume.id)
            return False
        return True
