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

"""What is done about what :mod:`recovery.rules` finds.

Every repair goes through the one detach
(:func:`connection.detach_attachment`) and the one reclaim
(:func:`reclaim_volume`), and forgets (a record, lock files) only after
the detach succeeded: a detach that fails raises, and whatever named the
attachment goes on naming it for the next try.
"""

import logging
import os
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Protocol

from glance_store import exceptions
import tenacity

from cinder_store import client
from cinder_store import connection
from cinder_store import metadata
from cinder_store import records
from cinder_store.recovery import rules
from cinder_store import settings
from cinder_store import upload_records
from cinder_store import utils

LOG = logging.getLogger(__name__)


class NotOrphaned(Exception):
    """The upload's record is live, or its volume is not its any more."""

    def __init__(self, subject: str, why: str = 'its upload is in progress'):
        super(NotOrphaned, self).__init__(
            '%s left alone: %s' % (subject, why))


class ReaderRecords(Protocol):
    """What a delete needs of this host's shared reads (:mod:`host_reads`)."""

    def repair_record(self, cinder: Any, volume: Any) -> list[str] | None:
        """Detach what a dead reader of this host left; see host_reads."""

    def recorded_attachment(self, volume_id: str) -> str | None:
        """The attachment this host's live readers hold, or None."""

    def release_warm(self, cinder: Any, volume_id: str, why: str) -> bool:
        """Detach this host's warm attachment of the volume, if any."""


# -- the one reclaim, and what Cinder holds for the dead ---------------------

def reclaim_volume(cinder: Any, settings: settings.Settings,
                   volume: Any,
                   attachment_ids: Iterable[str] | None = None,
                   disconnect: bool = True) -> int:
    """Detach a volume's attachments, delete it, forget its locks.

    The one way cinder_store gets rid of an image-volume: a failed
    upload's unwind, an orphaned upload's reclaim (cinder-store-check
    --fix), and an image delete that Cinder first refused for the
    attachments this host left (``attachment_ids``; by default every
    attachment Cinder lists, reservations left by a failed attach
    included).  With ``disconnect=False`` (after a reboot: a recorded
    device path may name another volume's device now) attachments are only
    deleted in Cinder.  A detach that fails raises before the delete: the
    volume and the attachment stay, named, for the next try.  Returns how
    many attachments it detached.
    """
    if attachment_ids is None:
        attachment_ids = [att.id for att in cinder.attachments_of(volume.id)]
    attachment_ids = list(attachment_ids)
    for attachment_id in attachment_ids:
        connection.detach_attachment(cinder, settings, volume,
                                     attachment_id, disconnect=disconnect)
    cinder.delete_volume(volume.id)
    settings.locks.remove_locks(volume.id)
    return len(attachment_ids)


def release_lost_attachment(cinder: Any, settings: settings.Settings,
                            volume: Any, attachment_id: str,
                            host_name: str) -> bool:
    """Delete, in Cinder only, an attachment of the lost ``host_name``.

    Its host connection went with the host: nothing is disconnected here.
    Only for a host fenced by the operator (``--lost-host``) or out of the
    coordination group for the grace (:mod:`membership`).  Returns True.
    """
    LOG.warning('Deleting attachment %s of volume %s: host %s that made '
                'it is lost', attachment_id, volume.id, host_name)
    connection.detach_attachment(cinder, settings, volume, attachment_id,
                                 disconnect=False)
    return True


def release_lost_holders(cinder: Any, settings: settings.Settings,
                         volume: Any, held: dict[str, str]) -> list[str]:
    """Release those of ``held`` (``{attachment id: host}``) lost hosts hold.

    Lost as ``settings.membership`` says (nobody without a coordination
    service).  Returns the attachment ids released.
    """
    if not held:
        return []
    lost = settings.membership.lost(held.values())
    return [attachment_id for attachment_id, holder in held.items()
            if holder in lost and release_lost_attachment(
                cinder, settings, volume, attachment_id, holder)]


def reclaim_abandoned(cinder: Any, settings: settings.Settings,
                      volume: Any, excluding: Any = None) -> list[str]:
    """Delete ``volume``'s abandoned attachments in Cinder; their ids.

    Which are abandoned is :func:`recovery.rules.abandoned_attachments`
    (``excluding``: the caller's own claim, for an attach that was just
    refused).  Only in Cinder: whichever host made one never completed
    it, and this host cannot tell whether it was itself (Cinder names no
    host for an attachment not yet attached).
    """
    ids = rules.abandoned_attachments(
        cinder, volume.id, settings.abandoned_after,
        claims=settings.live_claims(volume.id, excluding))
    for attachment_id in ids:
        LOG.warning('Deleting attachment %s of volume %s: nobody completed '
                    'it and its attacher died (no live process claims it, '
                    'or it is over %ss old)', attachment_id,
                    volume.id, settings.abandoned_after)
        connection.detach_attachment(cinder, settings, volume,
                                     attachment_id, disconnect=False)
    return ids


def release_reservations(cinder: Any, volume: Any,
                         error: BaseException) -> None:
    """Delete the reservations a failed attach left on an exclusive volume.

    When the backend fails inside ``attachment_create``, Cinder keeps the
    attachment ``reserved`` and the attacher never learns its id; which
    are leftovers is :func:`rules.leftover_reservations`.  A failure is
    logged and noted on ``error``, never raised.
    """
    try:
        leftovers = rules.leftover_reservations(cinder, volume)
        if leftovers is None:
            LOG.warning('Attach of multiattach volume %s failed; a reserved '
                        'attachment may be left in Cinder', volume.id)
            return
        for attachment_id in leftovers:
            cinder.attachment_delete(attachment_id)
    except Exception as cleanup_error:
        note = ('could not release reservations on volume %s: %r'
                % (volume.id, cleanup_error))
        LOG.error(note)
        error.add_note(note)


# -- shared reads -------------------------------------------------------------

def detach_stale_reader(cinder: Any, settings: settings.Settings,
                        volume: Any, record: records.Record) -> list[str]:
    """Detach what a stale reader record left; the ids it detached.

    The record is the caller's to remove, once this returns.  After a
    reboot the host device is gone and its recorded path may name another
    volume's device now: deleted in Cinder only, never disconnected.  A
    detach that fails raises (the record must go on naming it).
    """
    same_boot = records.this_boot(record)
    claims = settings.live_claims(volume.id)
    # It died while Cinder was making its attachment: Cinder finishes it
    # and live attachers claim theirs, then its own is told.
    leftovers = _when_told(
        lambda: rules.stale_reader_attachments(
            cinder, volume, record, settings.abandoned_after,
            claims=claims),
        'what a dead reader left of volume %s is told' % volume.id)
    for attachment_id in leftovers:
        connection.detach_attachment(
            cinder, settings, volume, attachment_id,
            record.get('device_info') if same_boot else None,
            disconnect=same_boot)
    return leftovers


#: Seconds a repair waits for what a dead attacher left to be told
SETTLE_WAIT = 15


def _when_told(look: Callable[[], list[str] | None], what: str,
               timeout: float = SETTLE_WAIT) -> list[str]:
    """``look()`` again while it answers None, up to ``timeout``.

    Then [] (nothing told): never fails for the wait.
    """
    try:
        found = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda found: found is None),
            stop=utils.Deadline(timeout),
            wait=tenacity.wait_exponential(multiplier=0.1, max=1),
            sleep=utils.sleep)(look)
    except tenacity.RetryError:
        LOG.info('Waited %ss; going on before %s', timeout, what)
        return []
    return found or []


# -- an image delete Cinder refused -------------------------------------------

def delete_refused_volume(cinder: Any, settings: settings.Settings,
                          readers: ReaderRecords, volume_id: str,
                          tries: int = 3) -> None:
    """Delete an image-volume Cinder refused to delete as it was.

    What this host left attached (a worker that died mid-transfer, or
    while Cinder was making its attachment) is detached, abandoned
    attachments of any host are deleted, and the delete is tried once
    more.  Raises ``InUseByStore`` if the volume is attached elsewhere,
    being attached, or read here by a live process, and detaches nothing
    then; ``NotFound`` if it is gone.  A reader that attaches between the
    look and the delete makes Cinder refuse again: the volume is looked
    at again (``tries`` times in all), and then it is that reader's
    ``InUseByStore``.  A refusal for another reason (snapshots...) comes
    back from the last delete.
    """
    for attempt in range(1, tries + 1):
        # A reader that ended meanwhile may have kept it warm again
        readers.release_warm(cinder, volume_id, 'its image is being deleted')
        volume = client.existing_volume(cinder, volume_id)
        if readers.repair_record(cinder, volume):
            volume = client.existing_volume(cinder, volume_id)
        if release_lost_holders(
                cinder, settings, volume,
                rules.attachments_elsewhere(volume)):
            volume = client.existing_volume(cinder, volume_id)
        volume = wait_for_release_elsewhere(cinder, settings, volume)
        left = _left_here(cinder, settings, readers, volume)
        try:
            reclaim_volume(cinder, settings, volume, left)
            return
        except exceptions.BackendException as error:
            if attempt == tries or not client.refused(error):
                raise
            LOG.info('Volume %s: Cinder refused its delete again (%s); '
                     'looking at its attachments again', volume_id, error)


#: Seconds an image delete waits for other hosts to release the volume
#: when it can ask them (a coordination service): their warm attachments
#: go within a second or two, live readers' when their reads end
RELEASE_WAIT = 10


def wait_for_release_elsewhere(cinder: Any, settings: settings.Settings,
                               volume: Any) -> Any:
    """``volume`` once other hosts let go of it, or after the wait.

    They may only keep it warm (:mod:`warm_reads`).  With a coordination
    service they are asked (:meth:`membership.Membership.releasing`) and
    waited for up to ``RELEASE_WAIT`` seconds; without, a warm one goes
    when its idle time ends: waited for up to ``settings.warm_idle`` plus
    two looks.  Returns the volume as Cinder then has it.
    """
    if not rules.attachments_elsewhere(volume):
        return volume
    wait: float = RELEASE_WAIT
    if not settings.membership.coordinated:
        wait = (settings.warm_idle + 2 * settings.WARM_LOOK_EVERY
                if settings.warm_idle else 0)
    if not wait:
        return volume
    LOG.info('Volume %s is attached on host(s) %s; asking them to let go '
             'and waiting up to %ss', volume.id, ', '.join(sorted(set(
                 rules.attachments_elsewhere(volume).values()))), wait)
    with settings.membership.releasing(volume.id):
        utils.wait_while(
            lambda: rules.attachments_elsewhere(
                cinder.get_volume(volume.id)),
            utils.Deadline(wait), 0.5)
    return client.existing_volume(cinder, volume.id)


def _left_here(cinder, settings, readers, volume):
    if volume.attachments:
        recorded = readers.recorded_attachment(volume.id)
        here = rules.attachments_here(volume, recorded)
        rules.refuse_delete_if_attached_elsewhere(volume, here)
        rules.refuse_delete_if_read_here(volume.id, recorded)
        LOG.warning('Volume %s: detaching the attachments this host left '
                    '(%s) to delete it', volume.id, ', '.join(sorted(here)))
        return sorted(here)
    reclaim_abandoned(cinder, settings, volume)
    rules.refuse_delete_if_being_attached(cinder, volume.id)
    # Nothing attached or being attached now: a read that held the volume
    # when Cinder refused (attached, or still attaching when the volume
    # was fetched) has ended since, as fault campaigns saw.
    return []


# -- uploads ------------------------------------------------------------------

def reclaim_orphaned_upload(cinder: Any, uploads: upload_records.Uploads,
                            volume_id: str) -> str:
    """Detach and delete an orphaned upload's volume, then its record.

    Returns what was done, for a person; raises
    :class:`exceptions.BackendException` if Cinder refuses, leaving the
    record for a later try.  A record that is not orphaned (any more), or
    whose volume now carries another image, is left alone:
    :class:`NotOrphaned`.
    """
    record, reason = uploads.inspect_upload(volume_id)
    subject = 'volume %s' % volume_id
    if record is None or reason is None:
        raise NotOrphaned(subject)
    try:
        volume = cinder.get_volume(volume_id)
    except exceptions.NotFound:
        uploads.forget_upload(volume_id)
        uploads.settings.locks.remove_locks(volume_id)
        return 'volume is gone: removed its record and locks'
    image = metadata.of_volume(volume).get(metadata.IMAGE_ID)
    if image != record.get('image'):
        raise NotOrphaned(subject, 'it now carries image %s, not %s'
                          % (image, record.get('image')))
    # After a reboot the device is gone and its path may now name
    # another volume's device: delete in Cinder, do not disconnect.
    detached = reclaim_volume(
        cinder, uploads.settings, volume,
        disconnect=records.this_boot(record))
    uploads.forget_upload(volume_id)
    return ('deleted the volume of image %s (%s) after detaching %d '
            'attachment(s)' % (record.get('image'), reason, detached))


def reclaim_cut_short_create(cinder: Any, uploads: upload_records.Uploads,
                             token: str) -> str:
    """Delete the volumes an orphaned creation record's call made.

    Every volume carrying the record's token in its metadata.  Returns
    what was done, for a person.  Raises :class:`NotOrphaned` while the
    record is live or a volume is still being created.
    """
    record, reason = uploads.inspect_creation(token)
    if record is None or reason is None:
        raise NotOrphaned('volume creation %s' % token)
    found = [v for v in cinder.volumes_tagged(metadata.UPLOAD_TOKEN, token)
             if v.status != 'deleting']
    if any(v.status == 'creating' for v in found):
        raise NotOrphaned('volume creation %s' % token,
                          'Cinder is still creating its volume')
    for volume in found:
        reclaim_volume(cinder, uploads.settings, volume,
                       disconnect=records.this_boot(record))
    uploads.forget_creation(token)
    if not found:
        return ('no volume was made for image %s (%s): removed the record'
                % (record.get('image'), reason))
    return 'deleted volume(s) %s of image %s (%s)' % (
        ', '.join(v.id for v in found), record.get('image'), reason)


# -- what no record names -----------------------------------------------------

def detach_unheld(cinder: Any, settings: settings.Settings, volume: Any,
                  attachment_ids: list[str]) -> None:
    """Detach attachments of this host no record names, as their holder would.

    ``attachment_ids`` come from :func:`rules.unheld_attachments`.
    """
    for attachment_id in attachment_ids:
        connection.detach_attachment(cinder, settings, volume, attachment_id)


def release_lost_host(cinder: Any, settings: settings.Settings,
                      volume: Any, host_name: str) -> str | None:
    """Release what the lost ``host_name`` held of ``volume``.

    Only on the operator's word that the host is gone for good (fenced,
    as a compute host is forced down before its instances are
    evacuated): its read attachments are deleted in Cinder (its devices
    went with it: nothing is disconnected here), and the volume of an
    upload it never finished (:func:`rules.unfinished_upload_of`) is
    deleted.  Returns what was done, for a person, or None if it held
    nothing.  Raises what Cinder raises, leaving the rest for a later
    try.
    """
    held = [a for a, h in rules.attachments_elsewhere(volume).items()
            if h == host_name]
    if rules.unfinished_upload_of(volume, host_name):
        # Every attachment of it is the uploader's, being made ones
        # included (killed inside the attach): Cinder lists them all.
        detached = reclaim_volume(cinder, settings, volume,
                                  disconnect=False)
        return ('deleted the volume of its unfinished upload of image %s '
                '(%d attachment(s) deleted first)' % (
                    metadata.of_volume(volume).get(metadata.IMAGE_ID),
                    detached))
    for attachment_id in held:
        release_lost_attachment(cinder, settings, volume,
                                attachment_id, host_name)
    return ('deleted its attachment(s) %s' % ', '.join(held)
            if held else None)


def release_lost_hosts(cinder: Any, settings: settings.Settings,
                       volumes: list[Any], lost: set[str]) -> bool:
    """Release what the ``lost`` hosts held of ``volumes``.

    For every volume one of them holds an attachment of, or left an
    unfinished upload on (:func:`rules.hosts_involved`):
    :func:`release_lost_host`.  A failure is logged and the rest goes on.
    Returns whether everything was released (False: try again later).
    """
    complete = True
    for volume in volumes:
        for host_name in sorted(rules.hosts_involved(volume) & lost):
            try:
                what = release_lost_host(cinder, settings, volume,
                                         host_name)
            except exceptions.NotFound:
                continue
            except Exception as error:
                LOG.warning('Could not release what lost host %s held of '
                            'volume %s: %s', host_name, volume.id, error)
                complete = False
                continue
            if what:
                LOG.warning('Lost host %s, volume %s: %s', host_name,
                            volume.id, what)
    return complete


def forget_gone_volumes(cinder: Any, settings: settings.Settings,
                        recorded: list[str]) -> list[str]:
    """Remove the lock files of volumes Cinder no longer has; their ids.

    Which are is :func:`rules.gone_locked_volumes` (``recorded``: the
    volumes this host's records name, which are their records' to
    clear).
    """
    gone = rules.gone_locked_volumes(cinder, settings.locks, recorded)
    for volume_id in gone:
        settings.locks.remove_locks(volume_id)
    return gone


def forget_gone_reader_volume(readers: Any, volume_id: str) -> None:
    """Forget the shared read record and locks of a volume Cinder lost.

    Cinder dropped its attachments with it: nothing is left to detach.
    """
    readers.discard_record(volume_id)
    readers.settings.locks.remove_locks(volume_id)


def remove_connect_files(paths: list[str]) -> None:
    """Remove stale temporary Ceph configs (rules.stale_connect_files).

    One removed meanwhile is no error.
    """
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def reclaim_unknown_image_volume(cinder: Any, settings: settings.Settings,
                                 volume: Any) -> int:
    """Delete an image-volume Glance will never know, detaching it first.

    Which are is :func:`rules.why_image_volume_unknown`.
    """
    return reclaim_volume(cinder, settings, volume)
