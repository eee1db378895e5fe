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
(:func:`attachment.detach_attachment`) and the one reclaim
(:func:`attachment.reclaim_volume`), and forgets (a record, lock files)
only after the detach succeeded: a detach that fails raises, and
whatever named the attachment goes on naming it for the next try.
"""

import logging
from typing import Any
from typing import Callable
from typing import Protocol

from glance_store import exceptions
import tenacity

from cinder_store import attachment
from cinder_store import client
from cinder_store import host
from cinder_store import records
from cinder_store.recovery import rules
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

    def repair(self, cinder: Any, volume: Any) -> list[str] | None:
        """Detach what a dead reader of this host left; see host_reads."""

    def recorded_attachment(self, volume_id: str) -> str | None:
        """The attachment this host's live readers hold, or None."""


# -- shared reads -------------------------------------------------------------

def detach_stale_reader(cinder: Any, settings: host.HostSettings,
                        volume: Any, record: records.Record) -> list[str]:
    """Detach what a stale reader record left; the ids it detached.

    The record is the caller's to remove, once this returns.  After a
    reboot the host device is gone and its recorded path may name another
    volume's device now: deleted in Cinder only, never disconnected.  A
    detach that fails raises (the record must go on naming it).
    """
    same_boot = records.this_boot(record)
    claims = settings.claims(volume.id)
    # It died while Cinder was making its attachment: Cinder finishes it
    # and live attachers claim theirs, then its own is told.
    leftovers = _when_told(
        lambda: rules.stale_reader_attachments(
            cinder, volume, record, settings.abandoned_after,
            claims=claims),
        'what a dead reader left of volume %s is told' % volume.id)
    for attachment_id in leftovers:
        attachment.detach_attachment(
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

def delete_refused_volume(cinder: Any, settings: host.HostSettings,
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
        volume = client.existing_volume(cinder, volume_id)
        if readers.repair(cinder, volume):
            volume = client.existing_volume(cinder, volume_id)
        if attachment.release_lost_holders(
                cinder, settings, volume,
                rules.attachments_elsewhere(volume)):
            volume = client.existing_volume(cinder, volume_id)
        left = _left_here(cinder, settings, readers, volume)
        try:
            attachment.reclaim_volume(cinder, settings, volume, left)
            return
        except exceptions.BackendException as error:
            if attempt == tries or not client.refused(error):
                raise
            LOG.info('Volume %s: Cinder refused its delete again (%s); '
                     'looking at its attachments again', volume_id, error)


def _left_here(cinder, settings, readers, volume):
    if volume.attachments:
        recorded = readers.recorded_attachment(volume.id)
        here = rules.attachments_here(volume, recorded)
        rules.refuse_delete_if_attached_elsewhere(volume, here)
        rules.refuse_delete_if_read_here(volume.id, recorded)
        LOG.warning('Volume %s: detaching the attachments this host left '
                    '(%s) to delete it', volume.id, ', '.join(sorted(here)))
        return sorted(here)
    attachment.reclaim_abandoned(cinder, settings, volume)
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
    record, reason = uploads.inspect(volume_id)
    subject = 'volume %s' % volume_id
    if record is None or reason is None:
        raise NotOrphaned(subject)
    try:
        volume = cinder.get_volume(volume_id)
    except exceptions.NotFound:
        uploads.end(volume_id)
        uploads.settings.remove_locks(volume_id)
        return 'volume is gone: removed its record and locks'
    image = (getattr(volume, 'metadata', None) or {}).get(
        'glance_image_id')
    if image != record.get('image'):
        raise NotOrphaned(subject, 'it now carries image %s, not %s'
                          % (image, record.get('image')))
    # After a reboot the device is gone and its path may now name
    # another volume's device: delete in Cinder, do not disconnect.
    detached = attachment.reclaim_volume(
        cinder, uploads.settings, volume,
        disconnect=records.this_boot(record))
    uploads.end(volume_id)
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
    found = [v for v in cinder.volumes_tagged(upload_records.TOKEN_KEY, token)
             if v.status != 'deleting']
    if any(v.status == 'creating' for v in found):
        raise NotOrphaned('volume creation %s' % token,
                          'Cinder is still creating its volume')
    for volume in found:
        attachment.reclaim_volume(cinder, uploads.settings, volume,
                                  disconnect=records.this_boot(record))
    uploads.created(token)
    if not found:
        return ('no volume was made for image %s (%s): removed the record'
                % (record.get('image'), reason))
    return 'deleted volume(s) %s of image %s (%s)' % (
        ', '.join(v.id for v in found), record.get('image'), reason)


# -- what no record names -----------------------------------------------------

def detach_unheld(cinder: Any, settings: host.HostSettings, volume: Any,
                  attachment_ids: list[str]) -> None:
    """Detach attachments of this host no record names, as their holder would.

    ``attachment_ids`` come from :func:`rules.unheld_attachments`.
    """
    for attachment_id in attachment_ids:
        attachment.detach_attachment(cinder, settings, volume, attachment_id)


def release_lost_host(cinder: Any, settings: host.HostSettings,
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
        detached = attachment.reclaim_volume(cinder, settings, volume,
                                             disconnect=False)
        return ('deleted the volume of its unfinished upload of image %s '
                '(%d attachment(s) deleted first)' % (
                    (volume.metadata or {}).get('glance_image_id'),
                    detached))
    for attachment_id in held:
        attachment.release_lost_attachment(cinder, settings, volume,
                                           attachment_id, host_name)
    return ('deleted its attachment(s) %s' % ', '.join(held)
            if held else None)


def release_lost_hosts(cinder: Any, settings: host.HostSettings,
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


def reclaim_unknown_image_volume(cinder: Any, settings: host.HostSettings,
                                 volume: Any) -> int:
    """Delete an image-volume Glance will never know, detaching it first.

    Which are is :func:`rules.why_image_volume_unknown`.
    """
    return attachment.reclaim_volume(cinder, settings, volume)
