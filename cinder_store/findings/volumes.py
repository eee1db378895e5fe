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

"""What the check finds from Cinder and Glance, whatever the records.

Volumes stuck attaching, attachments no record names, image-volumes Glance
will never know, other hosts' attachments and a lost host's.
"""

import collections
from typing import Any

from cinder_store import client
from cinder_store.findings import report
from cinder_store.findings.report import Finding
from cinder_store.findings.report import FIXED
from cinder_store.findings.report import OK
from cinder_store.findings.report import SKIP
from cinder_store.findings.report import WARN
from cinder_store import glance
from cinder_store import host
from cinder_store import maintenance
from cinder_store.recovery import repairs
from cinder_store.recovery import rules


def stuck_volumes(maintenance: maintenance.Maintenance,
                  fix: bool) -> list[Finding]:
    """Volumes of the backend's type left mid-attach or mid-detach.

    Found from Cinder, not from this host's records: a reader killed
    while Cinder made its attachment may have left nothing that names it.
    """
    if not maintenance.has_service_credentials:
        return [Finding(SKIP, 'stuck volumes', 'listing volumes needs '
                        'service credentials')]
    try:
        cinder, name, stuck = report.typed_volumes(maintenance,
                                                   rules.STUCK_STATUSES)
    except Exception as e:
        return [report.failed_finding('stuck volumes', e)]
    if not stuck:
        return [Finding(OK, 'stuck volumes', 'no volume of type %r left '
                        'attaching or detaching' % name)]
    return [_stuck_volume(maintenance, cinder, v, fix) for v in stuck]


@report.guard_finder('stuck volumes')
def _stuck_volume(maintenance: maintenance.Maintenance,
                  cinder: client.BoundCinder, volume: Any,
                  fix: bool) -> Finding:
    age = maintenance.settings.abandoned_after
    if volume.status == 'detaching':
        return Finding(WARN, 'stuck volumes', 'volume %s is detaching; if it '
                       'stays so, Cinder failed mid-detach: see cinder-volume'
                       '\'s log' % volume.id)
    ids = rules.abandoned_attachments(
        cinder, volume.id, age,
        claims=maintenance.settings.live_claims(volume.id))
    if not ids:
        return Finding(OK, 'stuck volumes', 'volume %s is %s: no attachment '
                       'of it older than %ss is left uncompleted' % (
                           volume.id, volume.status, age))
    if not fix:
        return Finding(WARN, 'stuck volumes', 'volume %s is %s: attachment(s) '
                       '%s made over %ss ago, never completed (their '
                       'attacher died): no reader can attach it, its delete '
                       'is refused; --fix deletes them' % (
                           volume.id, volume.status, ', '.join(ids), age))
    done = repairs.reclaim_abandoned(cinder, maintenance.settings, volume)
    return Finding(FIXED, 'stuck volumes', 'volume %s: deleted abandoned '
                   'attachment(s) %s' % (volume.id, ', '.join(done) or
                                         'none (gone meanwhile)'))


def unheld_attachments(maintenance: maintenance.Maintenance,
                       fix: bool) -> list[Finding]:
    """Attachments Cinder says are this host's that no record names.

    Every attachment cinder_store makes is named by a record of this host
    (a shared read or an upload) while it is used; one older than
    ``cinder_store_abandoned_attachment_age`` on a volume no record names
    was left by a process that died where nothing could name it (or by a
    tool).  --fix detaches it as its holder would have.
    """
    if not maintenance.has_service_credentials:
        return [Finding(SKIP, 'unheld', 'listing volumes needs service '
                        'credentials')]
    try:
        recorded = (set(maintenance.host_reads.recorded_volumes()) |
                    set(maintenance.uploads.volume_ids()))
        me = host.hostname()
        cinder, name, volumes = report.typed_volumes(maintenance,
                                                     ('in-use', 'attaching'))
        candidates = [v for v in volumes if v.id not in recorded and
                      any(a.get('host_name') == me
                          for a in v.attachments or ())]
    except Exception as e:
        return [report.failed_finding('unheld', e)]
    found = [f for f in (_unheld_attachments_of(maintenance, cinder, v, me,
                                                fix)
                         for v in candidates) if f is not None]
    return found or [Finding(OK, 'unheld', 'every attachment of this host '
                             'on a volume of type %r is held' % name)]


@report.guard_finder('unheld')
def _unheld_attachments_of(maintenance: maintenance.Maintenance,
                           cinder: client.BoundCinder, volume: Any, me: str,
                           fix: bool) -> Finding | None:
    age = maintenance.settings.abandoned_after
    old = rules.unheld_attachments(cinder, volume, age)
    if not old:
        return None
    if not fix:
        return Finding(WARN, 'unheld', 'volume %s: attachment(s) %s of this '
                       'host (%s), over %ss old, named by no record: their '
                       'process died; --fix detaches them' % (
                           volume.id, ', '.join(old), me, age))
    repairs.detach_unheld(cinder, maintenance.settings, volume, old)
    return Finding(FIXED, 'unheld', 'volume %s: detached attachment(s) %s'
                   % (volume.id, ', '.join(old)))


def unknown_image_volumes(maintenance: maintenance.Maintenance,
                          fix: bool) -> list[Finding]:
    """Image-volumes Glance no longer knows.

    See :func:`recovery.rules.why_image_volume_unknown`.  Available
    volumes of the backend's type holding an image, that no upload record
    of this host names; Glance is asked about each image.
    """
    topic = 'image volumes'
    if not maintenance.has_service_credentials:
        return [Finding(SKIP, topic, 'asking Cinder and Glance needs service '
                        'credentials')]
    try:
        recorded = set(maintenance.uploads.volume_ids())
        # Cinder's upload-to-image keeps the image-volumes it registers
        # in the image owner's project: all projects, where allowed.
        cinder, name, volumes = report.typed_volumes(
            maintenance, ('available',), all_projects=True)
        age = maintenance.unknown_image_volume_age
        candidates = [v for v in volumes if v.id not in recorded and
                      rules.image_of_volume(v) and rules.volume_idle(v, age)]
        images = maintenance.glance_images() if candidates else None
    except Exception as e:
        return [report.failed_finding(topic, e)]
    found = [f for f in (_unknown_image_volume(maintenance, cinder, images,
                                               v, fix)
                         for v in candidates) if f is not None]
    return found or [Finding(OK, topic, 'Glance knows every image-volume of '
                             'type %r (%d checked)'
                             % (name, len(candidates)))]


@report.guard_finder('image volumes')
def _unknown_image_volume(maintenance: maintenance.Maintenance,
                          cinder: client.BoundCinder,
                          images: glance.GlanceImages, volume: Any,
                          fix: bool) -> Finding | None:
    image_id = rules.image_of_volume(volume) or ''  # candidates have one
    image = images.find_image(image_id)
    locations = (images.image_locations(image_id, image) if image is not None
                 else None)
    reason = rules.why_image_volume_unknown(
        volume, image, locations, maintenance.unknown_image_volume_age)
    if reason is None:
        return None
    if not fix:
        return Finding(WARN, 'image volumes', 'volume %s: %s; Glance will '
                       'never delete it; --fix deletes it'
                       % (volume.id, reason))
    repairs.reclaim_unknown_image_volume(cinder, maintenance.settings, volume)
    return Finding(FIXED, 'image volumes', 'volume %s: deleted (%s)' % (
        volume.id, reason))


def other_hosts(maintenance: maintenance.Maintenance, fix: bool,
                lost_host: str | None) -> list[Finding]:
    """Other Glance hosts' attachments of the backend's volumes.

    Listed per host with the age of its oldest; a warning when the type
    is not multiattach (hosts take turns reading an image).  For
    ``lost_host``: its attachments and unfinished uploads, released with
    ``fix`` (:func:`recovery.repairs.release_lost_host`).  With a
    coordination service each host is said alive, absent or lost.
    """
    topic = 'other hosts'
    if not maintenance.has_service_credentials:
        return [Finding(SKIP, topic, 'listing volumes needs service '
                        'credentials')]
    try:
        cinder, name, volumes = report.typed_volumes(
            maintenance, ('in-use', 'available'), all_projects=True)
        held = collections.defaultdict(list)
        for volume in volumes:
            elsewhere = rules.attachments_elsewhere(volume)
            if elsewhere:
                ages = _attachment_ages(cinder, volume.id)
                for att_id, other in elsewhere.items():
                    held[other].append((volume.id, ages.get(att_id)))
        members = maintenance.settings.membership
        found = [_other_host(other, held[other], members)
                 for other in sorted(held) if other != lost_host]
        if held and not _type_is_multiattach(cinder, maintenance.volume_type):
            found.append(Finding(WARN, topic, 'volumes of type %r are read '
                                 'on several Glance hosts (%s) but are not '
                                 'multiattach: hosts take turns reading an '
                                 'image (cinder_store_exclusive_attach_'
                                 'wait); use a multiattach volume type'
                                 % (name, ', '.join(sorted(held)))))
        if lost_host:
            found += _lost_host(maintenance, cinder, volumes, lost_host, fix)
    except Exception as e:
        return [report.failed_finding(topic, e)]
    return found or [Finding(OK, topic, 'no other host holds a volume of '
                             'type %r' % name)]


def _type_is_multiattach(cinder: client.BoundCinder, name: str | None) -> bool:
    return rules.type_is_multiattach(cinder.volume_type(name))


def _attachment_ages(cinder: client.BoundCinder,
                     volume_id: str) -> dict[str, float]:
    """Seconds since each attachment of the volume was made (one call)."""
    return {a.id: rules.age_of(a.attached_at)
            for a in cinder.attachments_of(volume_id, detailed=True)
            if getattr(a, 'attached_at', None)}


def _other_host(other: str, held: list[tuple[str, float | None]],
                members: Any) -> Finding:
    ages = [age for _, age in held if age is not None]
    # With a coordination service: is the host alive?
    state = ('; %s' % members.describe_host(other)) if members else ''
    return Finding(OK, 'other hosts', 'host %s holds %d attachment(s) '
                   '(%s)%s%s' % (other, len(held),
                                 ', '.join('volume %s' % v for v, _ in held),
                                 ', the oldest attached %.0fs ago' % max(ages)
                                 if ages else '', state))


def _lost_host(maintenance: maintenance.Maintenance,
               cinder: client.BoundCinder, volumes: list[Any], lost_host: str,
               fix: bool) -> list[Finding]:
    found = []
    for volume in volumes:
        held = [a for a, h in rules.attachments_elsewhere(volume).items()
                if h == lost_host]
        unfinished = rules.unfinished_upload_of(volume, lost_host)
        if not held and not unfinished:
            continue
        subject = 'lost host %s, volume %s' % (lost_host, volume.id)
        if not fix:
            found.append(Finding(WARN, 'other hosts', '%s: %s; --fix '
                                 'releases it' % (subject, ', '.join(
                                     (['attachment(s) ' + ', '.join(held)]
                                      if held else []) +
                                     (['an unfinished upload']
                                      if unfinished else [])))))
            continue
        done = repairs.release_lost_host(cinder, maintenance.settings, volume,
                                         lost_host)
        found.append(Finding(FIXED, 'other hosts', '%s: %s'
                             % (subject, done)))
    return found or [Finding(OK, 'other hosts', 'lost host %s holds '
                             'nothing of type %r' % (lost_host,
                                                     maintenance.volume_type))]
