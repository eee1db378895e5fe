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
"""

import logging
import time
from typing import Any

from oslo_utils import excutils

from cinder_store import attachment
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
        with self.settings.locks.lock_reads(volume.id):
            record = self.files.load(volume.id)
            if records.written_elsewhere(record):
                return self._attach_unshared(cinder, volume, record)
            if record is not None:
                if self._record_usable(cinder, volume, record):
                    joined = _JoinedAttachment(self, cinder, volume, record)
                    record['holders'] = [
                        h for h in record['holders'] if records.holder_alive(h)
                    ] + [records.process_id()]
                    try:
                        self.files.save(volume.id, record)
                    except BaseException:
                        with excutils.save_and_reraise_exception():
                            joined.drop_own_handle()
                    LOG.debug('Joined attachment %s of volume %s held by '
                              'another process', record['attachment'],
                              volume.id)
                    return joined
                self._drop_stale(cinder, volume, record)
            return self._attach_recorded(cinder, volume)

    def _record_usable(self, cinder, volume, record):
        reason = rules.why_reader_record_stale(cinder, volume.id, record)
        if reason:
            LOG.info('Reader record of volume %s is stale: %s', volume.id,
                     reason)
        return reason is None

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
                    self._record_usable(cinder, volume, record)):
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
                device_info=recordable_device_info(att.device_info)))
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
            # Detach first, under the lock that keeps readers from joining:
            # if it fails the record must go on naming the attachment.
            if handle.detach_here():
                self.files.remove(volume_id)
            else:
                # Held by nobody now: the next reader, the image delete or
                # cinder-store-check --fix detaches it.
                self.files.save(volume_id, dict(record, holders=[]))

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
                cinder, readers.settings, volume, self.id)
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
