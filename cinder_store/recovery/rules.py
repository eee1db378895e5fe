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

"""Whose a leftover is, and whether removing it is safe.

Every function here only looks: at a record, at what Cinder (or Glance)
says of a volume.  What is done about a leftover is in
:mod:`recovery.repairs`.  Each rule's docstring says when it applies and
why acting on it cannot hurt a live reader, upload or host.
"""

import datetime
import logging
import time
from typing import Any
from typing import Callable
from typing import Iterable

from glance_store import exceptions
from oslo_utils import timeutils

from cinder_store import client
from cinder_store.devices import rbd
from cinder_store import host
from cinder_store import metadata
from cinder_store import records

LOG = logging.getLogger(__name__)

#: Volume statuses that end when an attach or detach ends.
STUCK_STATUSES = ('attaching', 'reserved', 'detaching')

#: Image statuses in which a task of Glance may still register a location
#: of a volume it finished writing.
IMAGE_IMPORTING = ('uploading', 'importing')

#: Image statuses after which Glance never registers one.
IMAGE_ENDED = ('deleted', 'killed')


def age_of(timestamp: str, now: datetime.datetime | None = None) -> float:
    """Seconds since the ISO 8601 ``timestamp`` (as Cinder writes it)."""
    now = now or timeutils.utcnow()
    made = timeutils.normalize_time(timeutils.parse_isotime(timestamp))
    return (now - made).total_seconds()


def older_than(timestamp: str, max_age: float,
               now: datetime.datetime | None = None) -> bool:
    """Is the ISO 8601 ``timestamp`` (as Cinder writes it) over max_age s?"""
    return age_of(timestamp, now) > max_age


# -- attachments --------------------------------------------------------------

def attachments_here(volume: Any, recorded: str | None = None) -> set[str]:
    """Ids of the attachments of ``volume`` on this host.

    Cinder names each attachment's host (``host_name``).  An attachment
    whose host Cinder leaves empty (a Cinder from before it filled the
    field for the attachment API) is this host's only if it is
    ``recorded``, the attachment this host's shared reads recorded.
    """
    me = host.hostname()
    return {a['attachment_id'] for a in (volume.attachments or [])
            if a.get('host_name') == me or
            (not a.get('host_name') and a['attachment_id'] == recorded)}


def attachments_elsewhere(volume: Any) -> dict[str, str]:
    """``{attachment id: host}`` of ``volume``'s attachments on other hosts.

    Only those whose host Cinder names; attached ones only (Cinder lists
    those with the volume).
    """
    me = host.hostname()
    return {a['attachment_id']: a['host_name']
            for a in (volume.attachments or [])
            if a.get('host_name') and a['host_name'] != me}


def connection_shared(cinder: Any, volume: Any, attachment_id: str) -> bool:
    """Does this host hold another attachment of a multiattach ``volume``?

    Its attachments share one host connection: disconnecting it for
    ``attachment_id`` would pull the device from under the others.
    """
    if not getattr(volume, 'multiattach', False):
        return False
    fresh = cinder.get_volume(volume.id)
    return bool(attachments_here(fresh) - {attachment_id})


def leftover_reservations(cinder: Any, volume: Any) -> list[str] | None:
    """Reservations a failed attach of this process left; None: unknown.

    Cinder keeps the attachment ``reserved`` when the backend fails
    inside ``attachment_create``, and its attacher never learns its id.
    On an exclusive volume any reservation is such a leftover: nothing
    else can attach it while the attach failed.  On a multiattach volume
    it may be another host's in progress: unknown (None).
    """
    if getattr(volume, 'multiattach', False):
        return None
    return [a.id for a in cinder.attachments_of(volume.id)
            if getattr(a, 'status', None) == 'reserved']


def type_is_multiattach(volume_type: Any) -> bool:
    """Does this Cinder volume type make multiattach volumes?"""
    specs = getattr(volume_type, 'extra_specs', None)
    if specs is None and hasattr(volume_type, 'get_keys'):
        specs = volume_type.get_keys()
    return str((specs or {}).get('multiattach', '')).lower() == '<is> true'


def describe_attachments(volume: Any, ids: Iterable[str]) -> str:
    """``"<id> (host <name>), ..."`` for the attachments ``ids``."""
    hosts = {a['attachment_id']: a.get('host_name') or 'not reported'
             for a in (volume.attachments or [])}
    return ', '.join('%s (host %s)' % (i, hosts.get(i, 'not reported'))
                     for i in sorted(ids))


# With a coordination service: seconds after which an attachment left
# attaching that no live claim covers is abandoned.  Covers attaches by
# Cinder itself and by Glance hosts without coordination, which never
# claim theirs and complete them within seconds.
UNANNOUNCED_AGE = 30

# Seconds a Glance host's clock may be off Cinder's: a claim made at
# ``since`` covers attachments Cinder says it made from ``since`` minus
# this on.
CLOCK_SKEW = 5

#: ``claims`` of :func:`abandoned_attachments`: the live claims on a
#: volume's attachments being made, or None when unknown.
Claims = Callable[[], list[Any] | None]


def _claims_unknown() -> None:
    return None


def epoch_of(timestamp: str) -> float:
    """Seconds since the epoch of an ISO 8601 ``timestamp`` (Cinder's)."""
    return timeutils.parse_isotime(timestamp).timestamp()


def claim_covers(attachment_id: str, made: str, claims: Iterable[Any]) -> bool:
    """Does a live claim cover the attachment Cinder made at ``made``?

    A claim (:class:`membership.Claim`) covers the attachment it names;
    one that names none yet covers every attachment made since it sent
    the ``attachment_create`` Cinder has not answered (none between a
    refusal and its next try).
    """
    at = epoch_of(made)
    return any(c.attachment == attachment_id or
               (c.attachment is None and c.since is not None and
                c.since <= at + CLOCK_SKEW)
               for c in claims)


def abandoned_attachments(cinder: Any, volume_id: str, max_age: float,
                          now: datetime.datetime | None = None,
                          claims: Claims = _claims_unknown) -> list[str]:
    """Ids of ``volume_id``'s attachments whose attacher died, on any host.

    Applies to an attachment Cinder finished making (status
    ``attaching``, with ``attached_at``) more than ``max_age`` seconds ago
    that nobody completed.  Cinder refuses every new reservation of a
    volume one leaves ``attaching``.  Safe: a live attacher completes or
    deletes its attachment within seconds of ``attached_at``.

    Also to a reservation (status ``reserved``) Cinder kept when the
    backend failed to make the connection and whose attacher died before
    deleting it.  Cinder gives it no time, but leaves the volume
    ``reserved``: a volume in that status, unchanged for ``max_age`` (its
    ``updated_at``), holds only abandoned reservations, since a live
    attach moves it on and a new reservation changes ``updated_at``.

    With a coordination service, ``claims()`` lists the live claims on
    the volume's attachments being made (:meth:`membership.Membership.
    claims`: every cinder_store attacher claims from before
    ``attachment_create`` to ``attachment_complete``).  Then an
    ``attaching`` attachment older than :data:`UNANNOUNCED_AGE` that no
    live claim covers (:func:`claimed`) and that Cinder still shows
    ``attaching`` after that answer is abandoned: a dead attacher costs
    seconds, not ``max_age``, whatever live attachers of the volume do
    meanwhile.  ``claims()`` None (unknown): only ``max_age`` tells.

    One Cinder call, two when there are reservations or unclaimed
    attachments.
    """
    now = now or timeutils.utcnow()
    found, reserved, young = [], [], []
    for att in cinder.attachments_of(volume_id, detailed=True):
        status = getattr(att, 'status', None)
        made = getattr(att, 'attached_at', None)
        if status == 'attaching' and made and older_than(made, max_age, now):
            found.append(att.id)
        elif (status == 'attaching' and made and
              older_than(made, UNANNOUNCED_AGE, now)):
            young.append(att)
        elif status == 'reserved':
            reserved.append(att.id)
    found += unclaimed_attachments(cinder, volume_id, young, claims)
    if reserved and reserved_for_over(cinder.get_volume(volume_id),
                                      max_age, now):
        found += reserved
    return found


def reserved_for_over(volume: Any, seconds: float,
                      now: datetime.datetime | None = None) -> bool:
    """Has ``volume`` been ``reserved``, unchanged, for over ``seconds``?

    A live attach moves it on and a new reservation changes its
    ``updated_at``.
    """
    changed = getattr(volume, 'updated_at', None)
    return bool(volume.status == 'reserved' and changed and
                older_than(changed, seconds, now))


def unclaimed_attachments(cinder: Any, volume_id: str, candidates: list[Any],
                          claims: Claims) -> list[str]:
    """Ids of those ``candidates`` no live claim covers.

    ``candidates`` are attachments of the volume Cinder listed
    ``attaching``.  Listed again after the claims were asked for: one
    completed meanwhile (its attacher withdrew its claim) is no longer
    attaching.  None when the claims are unknown.
    """
    if not candidates:
        return []
    live = claims()
    if live is None:
        return []
    left = [a.id for a in candidates
            if not claim_covers(a.id, a.attached_at, live)]
    if not left:
        return []
    still = set(attachments_being_made(cinder, volume_id))
    return [a for a in left if a in still]


def attachments_being_made(cinder: Any, volume_id: str) -> list[str]:
    """Ids of the volume's attachments Cinder has not yet seen completed."""
    return [a.id for a in cinder.attachments_of(volume_id)
            if getattr(a, 'status', None) in ('reserved', 'attaching')]


def worth_waiting_for_attachment(cinder: Any, volume_id: str,
                                 claims: Claims,
                                 now: datetime.datetime | None = None
                                 ) -> bool:
    """Will an attachment of the volume being made soon be out of the way?

    Only when ``claims()`` are known (a coordination service).  Yes while
    a live claim is on the volume (its attacher completes or deletes it
    within seconds), while one is ``attaching`` (abandoned after
    :data:`UNANNOUNCED_AGE` when unclaimed: the next look deletes it), and
    while the volume has been ``reserved`` for less than that (Cinder may
    still be inside a dead attacher's ``attachment_create``).  No for an
    older reservation no live claim covers: the backend failed its
    connection and only its age releases it
    (:func:`abandoned_attachments`), so waiting cannot help.
    """
    live = claims()
    if live is None:
        return False
    statuses = {getattr(a, 'status', None)
                for a in cinder.attachments_of(volume_id)}
    if not statuses & {'reserved', 'attaching'}:
        return False
    if live or 'attaching' in statuses:
        return True
    return not reserved_for_over(cinder.get_volume(volume_id),
                                 UNANNOUNCED_AGE, now)


def unheld_attachments(cinder: Any, volume: Any, max_age: float,
                       now: datetime.datetime | None = None) -> list[str]:
    """This host's attachments of a volume no record of this host names.

    The caller has checked that no shared-read or upload record names
    ``volume``.  Applies to an attachment of this host made over
    ``max_age`` seconds ago.  Safe: every attachment cinder_store makes is
    named by a record while it is used, so one nothing names was left by a
    process that died where it could not be named (or by a tool).
    """
    here = attachments_here(volume)
    return [a.id for a in cinder.attachments_of(volume.id, detailed=True)
            if a.id in here and getattr(a, 'attached_at', None) and
            older_than(a.attached_at, max_age, now)]


# -- shared reads -------------------------------------------------------------

def why_reader_record_stale(cinder: Any, volume_id: str,
                            record: records.Record) -> str | None:
    """None if a reader record may be joined, else why not (for a person).

    A record of another host is the caller's business (never acted on).
    Stale: written before this host booted, cut short while attaching, no
    live holder and not warm (:func:`warm`), or its attachment is no
    longer attached to this volume.
    Its attachment (if any) is then nobody's: the holders are checked by
    process id, start time and pid namespace under the readers' lock.
    """
    if not records.this_boot(record):
        return 'written before this host last booted'
    if 'device_info' not in record:
        # Its writer held the lock the caller holds now until it had
        # written the whole record, or died.
        return 'its process (%s) stopped while %s' % (
            ', '.join(record.get('holders', ())) or 'unknown',
            'attaching' if record.get('attachment') else
            'Cinder was making its attachment')
    if not any(records.holder_alive(h) for h in record.get('holders', ())):
        if 'warm_until' not in record:
            return 'no live process holds it (holders: %s)' % (
                ', '.join(record.get('holders', ())) or 'none')
        if not warm(record):
            return 'kept warm until %s, and nobody read it since' % (
                time.strftime('%H:%M:%S', time.localtime(
                    record['warm_until'])))
    try:
        att = cinder.attachment_show(record['attachment'])
    except Exception as e:
        return 'its attachment %s is gone: %s' % (record['attachment'], e)
    if getattr(att, 'volume_id', None) != volume_id:
        return 'attachment %s belongs to volume %s' % (
            record['attachment'], getattr(att, 'volume_id', None))
    if getattr(att, 'status', None) != 'attached':
        return 'attachment %s is %s, not attached' % (
            record['attachment'], getattr(att, 'status', None))
    return None


def warm(record: records.Record, now: float | None = None) -> bool:
    """Is ``record`` a warm read attachment (kept, unread, not expired)?

    Warm: no live process holds it, and it is kept until ``warm_until``
    (seconds since the epoch), which has not passed.
    """
    now = time.time() if now is None else now
    return (record.get('warm_until', 0) > now and
            not any(records.holder_alive(h)
                    for h in record.get('holders', ())))


def worth_keeping_warm(multiattach: bool,
                       alive_hosts: Callable[[], set[str]],
                       this_host: str) -> bool:
    """Keep a read attachment warm once its last reader here is done?

    On a multiattach volume, yes: each host keeps its own.  On one that
    is not, only while no other Glance host is alive (``alive_hosts()``;
    an error counts as others): there a warm attachment makes every other
    host's reader wait for a handover, seconds longer than the attach it
    saves (measured through HAProxy on RBD: 7-11 s instead of 0.8 s).
    """
    if multiattach:
        return True
    try:
        return alive_hosts() <= {this_host}
    except Exception:
        return False


def trusted_without_cinder(record: records.Record,
                           trusts: Callable[[float], bool]) -> bool:
    """May a reader join ``record`` without asking Cinder about it?

    A record of this boot that names its device, held by a live process
    or warm, and confirmed by Cinder (``verified``) at a time
    ``trusts(verified)`` accepts: since this process's membership last
    lapsed (while it was out of the group, another host may have released
    this host's attachments as a lost host's).
    """
    return (records.this_boot(record) and 'device_info' in record and
            bool(record.get('attachment')) and
            (warm(record) or any(records.holder_alive(h)
                                 for h in record.get('holders', ()))) and
            trusts(record.get('verified', 0)))


def warm_to_release(found: dict[str, records.Record], limit: int,
                    wanted: Iterable[str], now: float | None = None
                    ) -> dict[str, str]:
    """Which warm read attachments of ``found`` to release now, and why.

    ``found``: this host's shared read records by volume id; ``wanted``:
    volumes another host waits for or deletes.  Released: those whose
    time ran out, those wanted, and beyond ``limit`` warm ones the least
    recently read.  A record a live process holds is never released
    here: its readers end first.
    """
    now = time.time() if now is None else now
    wanted = set(wanted)
    unheld = {v: r for v, r in found.items()
              if 'warm_until' in r and records.this_boot(r) and
              not any(records.holder_alive(h) for h in r.get('holders', ()))}
    why = {}
    for volume_id, record in unheld.items():
        if record['warm_until'] <= now:
            why[volume_id] = 'unread since %s' % time.strftime(
                '%H:%M:%S', time.localtime(record.get('last_read', 0)))
        elif volume_id in wanted:
            why[volume_id] = ('another host waits for it or deletes its '
                              'image')
    kept = sorted((r.get('last_read', 0), v) for v, r in unheld.items()
                  if v not in why)
    for _last_read, volume_id in kept[:max(0, len(kept) - limit)]:
        why[volume_id] = ('the least recently read of over %d warm '
                          'attachments' % limit)
    return why


def stale_reader_attachments(cinder: Any, volume: Any,
                             record: records.Record, max_age: float,
                             claims: Claims = _claims_unknown
                             ) -> list[str] | None:
    """Ids of the attachments a stale reader ``record`` left; None: not yet.

    The one it names, if it got that far.  A record written while Cinder
    was making the attachment names none, and Cinder names no host for an
    attachment not yet attached.  While Cinder is still making one
    (``reserved``: deleting it then would leave the volume ``reserved``
    for good), None: look again soon.  On a volume that is not
    multiattach (where nothing else can be attaching while that one
    exists) those being made are taken as its.  On a multiattach volume,
    those made since the record's attach began (``since``) that no live
    claim covers: its attacher is dead, and every live cinder_store
    attacher claims what it makes (with a coordination service;
    ``claims()`` None: unknown).  While such a one is claimed, None: a
    live attacher's completes within seconds, and an attacher refused
    meanwhile claims nothing between its tries.  Then the abandoned ones
    (:func:`abandoned_attachments`).
    """
    if record.get('attachment'):
        return [record['attachment']]
    if any(getattr(a, 'status', None) == 'reserved'
           for a in cinder.attachments_of(volume.id)):
        return None
    if not getattr(volume, 'multiattach', False):
        return attachments_being_made(cinder, volume.id)
    live = claims()  # one look, for every rule below

    def seen():
        return live
    since = record.get('since')
    candidates = ([] if since is None else
                  _attaching_since(cinder, volume.id, since))
    found = unclaimed_attachments(cinder, volume.id, candidates, seen)
    found += [a for a in abandoned_attachments(cinder, volume.id, max_age,
                                               claims=seen)
              if a not in found]
    if found:
        return found
    if live is not None and candidates:
        return None  # claimed for now: look again
    LOG.warning('A reader of multiattach volume %s died while Cinder was '
                'making its attachment; it is left until it counts as '
                'abandoned (%ss old, or with a coordination service %ss '
                'and claimed by no live attacher)', volume.id, max_age,
                UNANNOUNCED_AGE)
    return []


def unidentified_leftovers(cinder: Any, volume: Any, record: records.Record,
                           detached: list[str]) -> list[str]:
    """What a repaired record's dead reader may have left, untold.

    Attachments being made that could not be told from another's.  Only
    for a record that named no attachment, on a multiattach volume;
    they go once abandoned (:func:`abandoned_attachments`).
    """
    if record.get('attachment') or not getattr(volume, 'multiattach',
                                               False):
        return []
    return [a for a in attachments_being_made(cinder, volume.id)
            if a not in detached]


def _attaching_since(cinder, volume_id, since):
    """Attachments Cinder finished making from ``since`` on, uncompleted."""
    return [a for a in cinder.attachments_of(volume_id, detailed=True)
            if getattr(a, 'status', None) == 'attaching' and
            getattr(a, 'attached_at', None) and
            epoch_of(a.attached_at) >= since - CLOCK_SKEW]


# -- uploads ------------------------------------------------------------------

def why_upload_orphaned(record: records.Record) -> str | None:
    """None while an upload (or volume create) may still run, else why not.

    Orphaned: marked failed (its clean-up failed), written before this
    host booted, or its process is gone.  Glance never learns the volume
    of such an upload, so nothing else will ever delete it.  A record of
    another host is never orphaned: nothing here can tell.
    """
    if records.written_elsewhere(record):
        return None
    if record.get('failed'):
        return ('its upload failed and deleting the volume failed too: %s'
                % record['failed'])
    if not records.this_boot(record):
        return 'written before this host last booted'
    holder = record.get('holder')
    if not holder or not records.holder_alive(holder):
        return 'its process %s is gone' % holder
    return None


def image_of_volume(volume: Any) -> str | None:
    """The image an image-volume holds, or None if it is not one.

    Both cinder_store and the in-tree driver name it ``image-<id>`` and
    put ``glance_image_id`` in its metadata; other volumes of the type
    (a user's, Cinder's image cache) are never taken for one.
    """
    image_id = metadata.of_volume(volume).get(metadata.IMAGE_ID)
    if image_id and getattr(volume, 'name', None) == 'image-%s' % image_id:
        return image_id
    return None


def volume_idle(volume: Any, max_age: float,
                now: datetime.datetime | None = None) -> bool:
    """Has nothing happened to the volume for ``max_age`` seconds?

    Its ``updated_at`` (any status change: attach, detach, extend) or,
    never updated, its ``created_at``.
    """
    changed = (getattr(volume, 'updated_at', None) or
               getattr(volume, 'created_at', None))
    return changed is not None and older_than(changed, max_age, now)


def _locates_volume(locations: list[str], volume_id: str) -> bool:
    return any(url.startswith('cinder://') and
               url.rstrip('/').rsplit('/', 1)[-1] == volume_id
               for url in locations)


def unfinished_upload_of(volume: Any, host_name: str) -> bool:
    """Was ``volume`` being uploaded by ``host_name``, never finished?

    cinder_store names the uploading host in the volume's metadata at
    create (:data:`metadata.UPLOAD_HOST`) and sets the volume read-only
    once the image is stored; Cinder shows the flag among the metadata.
    Volumes made before the host was recorded never match.
    """
    said = metadata.of_volume(volume)
    return (said.get(metadata.UPLOAD_HOST) == host_name and
            str(said.get(metadata.READONLY, '')).lower() != 'true')


def hosts_involved(volume: Any) -> set[str]:
    """Other hosts that hold ``volume`` or left an upload unfinished on it.

    Those whose loss would strand it: :func:`attachments_elsewhere`, and
    the uploading host while the upload is unfinished.
    """
    involved = set(attachments_elsewhere(volume).values())
    uploader = metadata.of_volume(volume).get(metadata.UPLOAD_HOST)
    if uploader and uploader != host.hostname() and unfinished_upload_of(
            volume, uploader):
        involved.add(uploader)
    return involved


def why_image_volume_unknown(volume: Any, image: dict | None,
                             locations: list[str] | None, max_age: float,
                             now: datetime.datetime | None = None
                             ) -> str | None:
    """Why Glance will never know this image-volume, or None.

    ``volume`` is an image-volume (:func:`image_of_volume`), ``available``,
    that no upload record of this host names; ``image`` is Glance's view of
    its image (None: Glance has none), ``locations`` the URLs Glance keeps
    for it (None: Glance would not say).

    Unknown once nothing happened to the volume for ``max_age`` seconds
    (its ``updated_at``) and its image is gone from Glance, deleted or
    killed, still ``queued`` or ``saving``, or active without a location
    on this volume.  That is what a worker killed between ``add`` and
    Glance's database update leaves (the image stays ``saving``), and an
    image deleted while Cinder refused the volume delete.

    Safe: an upload in progress keeps its volume attached (``in-use``)
    except for seconds between steps, so its volume is never idle and
    available for ``max_age``; an import task (``uploading``,
    ``importing``), a delayed delete (``pending_delete``: the scrubber
    deletes it) and an image whose locations Glance would not show are
    never taken for unknown.
    """
    if not volume_idle(volume, max_age, now):
        return None
    image_id = image_of_volume(volume)
    if image is None:
        return 'Glance has no image %s' % image_id
    status = image.get('status')
    if status in IMAGE_ENDED:
        return 'its image %s is %s in Glance' % (image_id, status)
    if status in ('queued', 'saving'):
        return ('its image %s is still %s in Glance, the volume untouched '
                'for over %ss: the upload that wrote it ended without '
                'registering it' % (image_id, status, max_age))
    if status not in ('active', 'deactivated') or locations is None:
        return None
    if not _locates_volume(locations, volume.id):
        return 'its image %s (%s) is stored elsewhere: %s' % (
            image_id, status, ', '.join(locations) or 'no location')
    return None


def stale_connect_files(client: Any) -> list[str]:
    """os-brick's temporary Ceph configs a connect cut short left here.

    :func:`devices.rbd.remove_connect_files` removes each within
    milliseconds of its making; one older than twice the connect timeout
    of ``client`` (:class:`devices.rbd.RBDClient`) was left by a worker
    killed inside a connect.  They hold no key.
    """
    return rbd.leftover_connect_files(min_age=2 * client.connect_time)


def unrecorded_locked_volumes(locks: Any,
                              recorded: Iterable[str]) -> list[str]:
    """Volumes with lock files here that no record of ``recorded`` names.

    The candidates whose lock files may go once Cinder no longer has the
    volume (:func:`volume_gone`); a recorded volume is its record's to
    clear.  ``locks``: :class:`locks.VolumeLocks`.
    """
    recorded = set(recorded)
    return [v for v in locks.locked_volumes() if v not in recorded]


def gone_locked_volumes(cinder: Any, locks: Any,
                        recorded: Iterable[str]) -> list[str]:
    """Volumes with lock files here, no record, that Cinder no longer has.

    A volume that is gone is never attached again: its lock files are
    safe to remove.  One volume look-up per candidate.
    """
    return [v for v in unrecorded_locked_volumes(locks, recorded)
            if volume_gone(cinder, v)]


def volume_gone(cinder: Any, volume_id: str) -> bool:
    """Has Cinder deleted the volume, or is it deleting it?

    Such a volume is never attached again: its lock files and records
    may go.
    """
    try:
        client.existing_volume(cinder, volume_id)
    except exceptions.NotFound:
        return True
    return False


# -- an image delete Cinder refused -------------------------------------------

def refuse_delete_if_attached_elsewhere(volume: Any, here: set[str]) -> None:
    """InUseByStore if another host holds an attachment of ``volume``.

    Never detached from here: that host may be reading it now.
    """
    elsewhere = {a['attachment_id'] for a in volume.attachments} - here
    if elsewhere:
        raise exceptions.InUseByStore(
            message='volume %s is attached elsewhere: %s' % (
                volume.id, describe_attachments(volume, elsewhere)))


def refuse_delete_if_read_here(volume_id: str, recorded: str | None) -> None:
    """InUseByStore while a live process of this host reads the volume.

    ``recorded`` is the reader record's attachment once stale records were
    repaired, so only live processes hold it (a download, Glance hashing
    a new location): never pull the device from under them.
    """
    if recorded:
        raise exceptions.InUseByStore(
            message='volume %s is being read on this host through '
                    'attachment %s; delete the image once its downloads '
                    'end' % (volume_id, recorded))


def refuse_delete_if_being_attached(cinder: Any, volume_id: str) -> None:
    """InUseByStore while an attachment of the volume is being made.

    Cinder lists only attached attachments with the volume; one being
    made (another host attaching right now) shows up only here.  Called
    after the abandoned ones were reclaimed: what is left is live.
    """
    pending = sorted('%s (%s)' % (a.id, getattr(a, 'status', '?'))
                     for a in cinder.attachments_of(volume_id))
    if pending:
        raise exceptions.InUseByStore(
            message='volume %s is being attached: %s' % (
                volume_id, ', '.join(pending)))
