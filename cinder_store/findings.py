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

"""What ``cinder-store-check`` finds on one configured backend.

:func:`check_store` returns :class:`Finding` s, one per thing checked
or found, in order: configuration, Cinder, the lock path, this host's
os-brick connector, device hand-over privileges, stale reader records,
orphaned uploads, lock files of deleted volumes, stuck volumes, unheld
attachments, image-volumes Glance no longer knows and, for RBD backends,
the keyring, Ceph and leftover connect files.  Which leftovers are safe to
remove is :mod:`recovery.rules`; ``fix`` acts on them through
:mod:`recovery.repairs`.  Nothing is changed without ``fix``.
"""

import collections
import os
import tempfile
import time
from typing import Any
from typing import Callable

from glance_store import exceptions

from cinder_store import attachment
from cinder_store import client
from cinder_store import glance as glance_mod
from cinder_store import host
from cinder_store import host_reads
from cinder_store import maintenance
from cinder_store import records
from cinder_store.recovery import repairs
from cinder_store.recovery import rules
from cinder_store import upload_records


OK, WARN, FAIL, FIXED, SKIP = 'ok', 'warn', 'FAIL', 'fixed', 'skip'

Finding = collections.namedtuple('Finding', 'status topic message')


def check_backend(backend: maintenance.Maintenance, fix: bool = False,
                  probe: bool = False,
                  lost_host: str | None = None) -> list[Finding]:
    """Findings for one configured backend (``Store.maintenance()``).

    ``probe`` attaches one available volume of each RBD backend (one with
    ``cinder_store_rbd_keyring``) read-only to prove Ceph is reachable.
    ``lost_host`` names a Glance host gone for good, on the operator's
    word: what it held is reported, and released with ``fix``.
    """
    return ([_volume_type_in_cinder(backend), _writable_lock_path(backend),
             _connector_of_this_host(backend),
             _device_hand_over_privileges(backend)] +
            _stale_reader_records(backend, fix) +
            _orphaned_uploads(backend, fix) +
            [_lock_files_of_gone_volumes(backend, fix)] +
            _stuck_volumes(backend, fix) +
            _unheld_attachments(backend, fix) +
            _unknown_image_volumes(backend, fix) +
            _other_hosts(backend, fix, lost_host) +
            _rbd_findings(backend, fix, probe))


def _failed(topic: str, error: Exception) -> Finding:
    return Finding(FAIL, topic, '%s: %s' % (type(error).__name__, error))


def _guarded(topic):
    def decorator(func):
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except Exception as e:
                return _failed(topic, e)
        return wrapper
    return decorator


@_guarded('cinder')
def _volume_type_in_cinder(backend: maintenance.Maintenance) -> Finding:
    if not backend.has_service_credentials:
        return Finding(SKIP, 'cinder', 'no service credentials: Cinder is '
                       'reached with each request\'s user token')
    cinder = backend.cinder()
    name = backend.volume_type
    try:
        volume_type = (cinder.find_volume_type(name) if name
                       else cinder.default_volume_type())
    except exceptions.NotFound:
        return Finding(FAIL, 'cinder', 'volume type %r (cinder_store_volume'
                       '_type) does not exist in Cinder' % name)
    return Finding(OK, 'cinder', 'reached as the service user; volume type '
                   '%r exists' % volume_type.name)


@_guarded('lock path')
def _writable_lock_path(backend: maintenance.Maintenance) -> Finding:
    path = backend.lock_path
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix='.check-'):
        pass
    if host.filesystem_type(path) == 'tmpfs':
        return Finding(WARN, 'lock path', '%s is writable but in memory '
                       '(tmpfs): after a reboot the records of uploads it '
                       'interrupted are gone, and so is the way to find '
                       'their volumes' % path)
    return Finding(OK, 'lock path', '%s is writable' % path)


@_guarded('host')
def _connector_of_this_host(backend: maintenance.Maintenance) -> Finding:
    props = backend.connector()
    return Finding(OK, 'host', 'os-brick connector of %s (%s), multipath %s'
                   % (props.get('host'), props.get('ip'),
                      'on' if props.get('multipath') else 'off'))


@_guarded('privileges')
def _device_hand_over_privileges(backend: maintenance.Maintenance) -> Finding:
    if os.geteuid() == 0:
        return Finding(OK, 'privileges', 'running as root: no rootwrap '
                       'needed')
    path = backend.rootwrap_config
    dirs = host.rootwrap_filter_dirs(path)
    if dirs is None:
        return Finding(FAIL, 'privileges', 'cinder_store_rootwrap_config %s '
                       'is missing: an unprivileged Glance cannot take '
                       'over attached devices' % path)
    name = host.chown_filter(dirs)
    if name:
        return Finding(OK, 'privileges', 'rootwrap filter %s admits chown '
                       'of devices' % name)
    return Finding(FAIL, 'privileges', 'no filter in %s admits chown: '
                   'install etc/glance/rootwrap.d/cinder_store.filters there'
                   % ', '.join(dirs))


def _stale_reader_records(backend: maintenance.Maintenance,
                          fix: bool) -> list[Finding]:
    readers = backend.shared_reads
    try:
        volume_ids = readers.recorded_volumes()
    except Exception as e:
        return [_failed('shared reads', e)]
    if not volume_ids:
        return [Finding(OK, 'shared reads', 'no shared read attachment on '
                        'this host')]
    if not backend.has_service_credentials:
        return [Finding(SKIP, 'shared reads', '%d record(s); checking them '
                        'with Cinder needs service credentials'
                        % len(volume_ids))]
    cinder = backend.cinder()
    return [_stale_reader_record(readers, cinder, v, fix) for v in volume_ids]


@_guarded('shared reads')
def _stale_reader_record(readers: host_reads.HostReaders,
                         cinder: client.BoundCinder, volume_id: str,
                         fix: bool) -> Finding:
    record, reason = readers.inspect(cinder, volume_id)
    if record is None:
        return Finding(OK, 'shared reads', 'volume %s: record gone' %
                       volume_id)
    if records.written_elsewhere(record):
        return _record_of_another_host('shared reads',
                                       'volume ' + volume_id, record)
    if reason is None:
        return Finding(OK, 'shared reads', 'volume %s: attachment %s held '
                       'by %d live process(es)' % (
                           volume_id, record['attachment'],
                           len(record['holders'])))
    if not fix:
        return Finding(WARN, 'shared reads', 'volume %s: %s, %s; --fix '
                       'detaches it' % (volume_id,
                                        _recorded(record), reason))
    try:
        volume = cinder.get_volume(volume_id)
    except exceptions.NotFound:
        readers.discard(volume_id)  # Cinder dropped its attachments too
        readers.settings.remove_locks(volume_id)
        return Finding(FIXED, 'shared reads', 'volume %s is gone: removed '
                       'its record and locks' % volume_id)
    detached = readers.repair(cinder, volume)
    if detached is None:
        return Finding(OK, 'shared reads', 'volume %s: in use again, left '
                       'alone' % volume_id)
    unsure = (not record.get('attachment') and
              getattr(volume, 'multiattach', False) and
              [a for a in rules.attachments_being_made(cinder, volume_id)
               if a not in detached])
    if unsure:
        return Finding(WARN, 'shared reads', 'volume %s: removed the stale '
                       'record (%s); the attachment it left may be one of '
                       '%s, which Cinder cannot tell from another host\'s '
                       'on a multiattach volume until it is old enough to '
                       'count as abandoned (cinder_store_abandoned_'
                       'attachment_age); --fix deletes it then' % (
                           volume_id, reason, ', '.join(unsure)))
    return Finding(FIXED, 'shared reads', 'volume %s: removed the stale '
                   'record (%s), detached %s' % (
                       volume_id, reason,
                       ', '.join(detached) or 'no attachment'))


def _recorded(record: records.Record) -> str:
    if record.get('attachment'):
        return 'attachment %s is stale' % record['attachment']
    return 'a reader\'s record of an attachment Cinder was making is stale'


def _record_of_another_host(topic: str, subject: str,
                            record: records.Record) -> Finding:
    return Finding(WARN, topic, '%s: record written on host %s, left alone; '
                   'is the lock directory shared between hosts?'
                   % (subject, record['host']))


def _orphaned_uploads(backend: maintenance.Maintenance,
                      fix: bool) -> list[Finding]:
    try:
        volume_ids = backend.uploads.volume_ids()
        tokens = backend.uploads.creation_tokens()
    except Exception as e:
        return [_failed('uploads', e)]
    if not volume_ids and not tokens:
        return [Finding(OK, 'uploads', 'no upload recorded on this host')]
    if not backend.has_service_credentials:
        return [Finding(SKIP, 'uploads', '%d record(s); checking them with '
                        'Cinder needs service credentials'
                        % (len(volume_ids) + len(tokens)))]
    cinder = backend.cinder()
    # Volume records first: a volume they delete is not listed again.
    uploads = backend.uploads
    return ([_orphaned_upload(uploads, cinder, v, fix) for v in volume_ids] +
            [_cut_short_create(uploads, cinder, t, fix) for t in tokens])


@_guarded('uploads')
def _orphaned_upload(recorded: upload_records.Uploads,
                     cinder: client.BoundCinder, volume_id: str,
                     fix: bool) -> Finding:
    record, reason = recorded.inspect(volume_id)
    said = record or {}
    return _upload_finding(
        'volume %s' % volume_id, record, reason, fix,
        lambda: 'image %s is being uploaded by %s on %s' % (
            said.get('image'), said.get('holder'), said.get('host')),
        lambda: 'orphaned upload of image %s, %s; --fix deletes the '
                'volume' % (said.get('image'), reason),
        lambda: repairs.reclaim_orphaned_upload(cinder, recorded, volume_id))


@_guarded('uploads')
def _cut_short_create(recorded: upload_records.Uploads,
                      cinder: client.BoundCinder, token: str,
                      fix: bool) -> Finding:
    record, reason = recorded.inspect_creation(token)
    said = record or {}
    return _upload_finding(
        'volume creation %s' % token, record, reason, fix,
        lambda: 'for image %s, in progress in %s' % (
            said.get('image'), said.get('holder')),
        lambda: 'for image %s, cut short: %s; --fix deletes any volume '
                'carrying metadata %s=%s' % (
                    said.get('image'), reason, upload_records.TOKEN_KEY,
                    token),
        lambda: repairs.reclaim_cut_short_create(cinder, recorded, token))


def _upload_finding(subject: str, record: records.Record | None,
                    reason: str | None, fix: bool,
                    live: Callable[[], str], orphaned: Callable[[], str],
                    reclaim: Callable[[], str]) -> Finding:
    """What an upload record of ``subject`` says, and --fix does of it.

    ``live``, ``orphaned`` and ``reclaim`` are called only when needed.
    """
    if record is None:
        return Finding(OK, 'uploads', '%s: record gone' % subject)
    if records.written_elsewhere(record):
        return _record_of_another_host('uploads', subject, record)
    if reason is None:
        return Finding(OK, 'uploads', '%s: %s' % (subject, live()))
    if not fix:
        return Finding(WARN, 'uploads', '%s: %s' % (subject, orphaned()))
    try:
        done = reclaim()
    except repairs.NotOrphaned as e:
        return Finding(OK, 'uploads', str(e))
    return Finding(FIXED, 'uploads', '%s: %s' % (subject, done))


def _stuck_volumes(backend: maintenance.Maintenance,
                   fix: bool) -> list[Finding]:
    """Volumes of the backend's type left mid-attach or mid-detach.

    Found from Cinder, not from this host's records: a reader killed
    while Cinder made its attachment may have left nothing that names it.
    """
    if not backend.has_service_credentials:
        return [Finding(SKIP, 'stuck volumes', 'listing volumes needs '
                        'service credentials')]
    try:
        cinder, name, stuck = _typed_volumes(backend, rules.STUCK_STATUSES)
    except Exception as e:
        return [_failed('stuck volumes', e)]
    if not stuck:
        return [Finding(OK, 'stuck volumes', 'no volume of type %r left '
                        'attaching or detaching' % name)]
    return [_stuck_volume(backend, cinder, v, fix) for v in stuck]


def _typed_volumes(
        backend: maintenance.Maintenance, statuses: tuple[str, ...],
        all_projects: bool = False
) -> tuple[client.BoundCinder, str, list[Any]]:
    """(Cinder client, the backend's type name, its volumes in statuses)."""
    cinder = backend.cinder()
    name = backend.volume_type or cinder.default_volume_type().name
    return cinder, name, [
        v for status in statuses
        for v in cinder.volumes_with_status(status, all_projects)
        if v.volume_type == name]


@_guarded('stuck volumes')
def _stuck_volume(backend: maintenance.Maintenance, cinder: client.BoundCinder,
                  volume: Any, fix: bool) -> Finding:
    age = backend.settings.abandoned_after
    if volume.status == 'detaching':
        return Finding(WARN, 'stuck volumes', 'volume %s is detaching; if it '
                       'stays so, Cinder failed mid-detach: see cinder-volume'
                       '\'s log' % volume.id)
    ids = rules.abandoned_attachments(cinder, volume.id, age)
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
    done = attachment.reclaim_abandoned(cinder, backend.settings, volume)
    return Finding(FIXED, 'stuck volumes', 'volume %s: deleted abandoned '
                   'attachment(s) %s' % (volume.id, ', '.join(done) or
                                         'none (gone meanwhile)'))


def _unheld_attachments(backend: maintenance.Maintenance,
                        fix: bool) -> list[Finding]:
    """Attachments Cinder says are this host's that no record names.

    Every attachment cinder_store makes is named by a record of this host
    (a shared read or an upload) while it is used; one older than
    ``cinder_store_abandoned_attachment_age`` on a volume no record names
    was left by a process that died where nothing could name it (or by a
    tool).  --fix detaches it as its holder would have.
    """
    if not backend.has_service_credentials:
        return [Finding(SKIP, 'unheld', 'listing volumes needs service '
                        'credentials')]
    try:
        recorded = (set(backend.shared_reads.recorded_volumes()) |
                    set(backend.uploads.volume_ids()))
        me = host.hostname()
        cinder, name, volumes = _typed_volumes(backend,
                                               ('in-use', 'attaching'))
        candidates = [v for v in volumes if v.id not in recorded and
                      any(a.get('host_name') == me
                          for a in v.attachments or ())]
    except Exception as e:
        return [_failed('unheld', e)]
    found = [f for f in (_unheld_attachments_of(backend, cinder, v, me, fix)
                         for v in candidates) if f is not None]
    return found or [Finding(OK, 'unheld', 'every attachment of this host '
                             'on a volume of type %r is held' % name)]


@_guarded('unheld')
def _unheld_attachments_of(backend: maintenance.Maintenance,
                           cinder: client.BoundCinder, volume: Any, me: str,
                           fix: bool) -> Finding | None:
    age = backend.settings.abandoned_after
    old = rules.unheld_attachments(cinder, volume, age)
    if not old:
        return None
    if not fix:
        return Finding(WARN, 'unheld', 'volume %s: attachment(s) %s of this '
                       'host (%s), over %ss old, named by no record: their '
                       'process died; --fix detaches them' % (
                           volume.id, ', '.join(old), me, age))
    repairs.detach_unheld(cinder, backend.settings, volume, old)
    return Finding(FIXED, 'unheld', 'volume %s: detached attachment(s) %s'
                   % (volume.id, ', '.join(old)))


def _unknown_image_volumes(backend: maintenance.Maintenance,
                           fix: bool) -> list[Finding]:
    """Image-volumes Glance no longer knows.

    See :func:`recovery.rules.why_image_volume_unknown`.  Available
    volumes of the backend's type holding an image, that no upload record
    of this host names; Glance is asked about each image.
    """
    topic = 'image volumes'
    if not backend.has_service_credentials:
        return [Finding(SKIP, topic, 'asking Cinder and Glance needs service '
                        'credentials')]
    try:
        recorded = set(backend.uploads.volume_ids())
        # Cinder's upload-to-image keeps the image-volumes it registers
        # in the image owner's project: all projects, where allowed.
        cinder, name, volumes = _typed_volumes(backend, ('available',),
                                               all_projects=True)
        age = backend.unknown_image_volume_age
        candidates = [v for v in volumes if v.id not in recorded and
                      rules.image_of_volume(v) and rules.idle(v, age)]
        glance = backend.glance() if candidates else None
    except Exception as e:
        return [_failed(topic, e)]
    found = [f for f in (_unknown_image_volume(backend, cinder, glance, v,
                                               fix)
                         for v in candidates) if f is not None]
    return found or [Finding(OK, topic, 'Glance knows every image-volume of '
                             'type %r (%d checked)'
                             % (name, len(candidates)))]


@_guarded('image volumes')
def _unknown_image_volume(backend: maintenance.Maintenance,
                          cinder: client.BoundCinder,
                          glance: glance_mod.GlanceImages, volume: Any,
                          fix: bool) -> Finding | None:
    image_id = rules.image_of_volume(volume) or ''  # candidates have one
    image = glance.image(image_id)
    locations = (glance.locations(image_id, image) if image is not None
                 else None)
    reason = rules.why_image_volume_unknown(
        volume, image, locations, backend.unknown_image_volume_age)
    if reason is None:
        return None
    if not fix:
        return Finding(WARN, 'image volumes', 'volume %s: %s; Glance will '
                       'never delete it; --fix deletes it'
                       % (volume.id, reason))
    repairs.reclaim_unknown_image_volume(cinder, backend.settings, volume)
    return Finding(FIXED, 'image volumes', 'volume %s: deleted (%s)' % (
        volume.id, reason))


def _other_hosts(backend: maintenance.Maintenance, fix: bool,
                 lost_host: str | None) -> list[Finding]:
    """Other Glance hosts' attachments of the backend's volumes.

    Listed per host with the age of its oldest; a warning when the type
    is not multiattach (hosts take turns reading an image).  For
    ``lost_host``: its attachments and unfinished uploads, released with
    ``fix`` (:func:`recovery.repairs.release_lost_host`).
    """
    topic = 'other hosts'
    if not backend.has_service_credentials:
        return [Finding(SKIP, topic, 'listing volumes needs service '
                        'credentials')]
    try:
        cinder, name, volumes = _typed_volumes(
            backend, ('in-use', 'available'), all_projects=True)
        held = collections.defaultdict(list)
        for volume in volumes:
            for att_id, other in rules.attachments_elsewhere(volume).items():
                held[other].append((volume, att_id))
        found = [_other_host(cinder, other, held[other], backend)
                 for other in sorted(held) if other != lost_host]
        if held and not _multiattach(cinder, backend.volume_type):
            found.append(Finding(WARN, topic, 'volumes of type %r are read '
                                 'on several Glance hosts (%s) but are not '
                                 'multiattach: hosts take turns reading an '
                                 'image (cinder_store_exclusive_attach_'
                                 'wait); use a multiattach volume type'
                                 % (name, ', '.join(sorted(held)))))
        if lost_host:
            found += _lost_host(backend, cinder, volumes, lost_host, fix)
    except Exception as e:
        return [_failed(topic, e)]
    return found or [Finding(OK, topic, 'no other host holds a volume of '
                             'type %r' % name)]


def _multiattach(cinder: client.BoundCinder, name: str | None) -> bool:
    volume_type = (cinder.find_volume_type(name) if name
                   else cinder.default_volume_type())
    return rules.type_is_multiattach(volume_type)


def _other_host(cinder: client.BoundCinder, other: str,
                held: list[tuple[Any, str]],
                backend: maintenance.Maintenance) -> Finding:
    ages = [rules.age_of(a.attached_at) for volume, att_id in held
            for a in cinder.attachments_of(volume.id, detailed=True)
            if a.id == att_id and getattr(a, 'attached_at', None)]
    return Finding(OK, 'other hosts', 'host %s holds %d attachment(s) (%s)%s'
                   % (other, len(held),
                      ', '.join('volume %s' % v.id for v, _ in held),
                      ', the oldest attached %.0fs ago' % max(ages)
                      if ages else ''))


def _lost_host(backend: maintenance.Maintenance, cinder: client.BoundCinder,
               volumes: list[Any], lost_host: str,
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
        done = repairs.release_lost_host(cinder, backend.settings, volume,
                                         lost_host)
        found.append(Finding(FIXED, 'other hosts', '%s: %s'
                             % (subject, done)))
    return found or [Finding(OK, 'other hosts', 'lost host %s holds '
                             'nothing of type %r' % (lost_host,
                                                     backend.volume_type))]


@_guarded('lock files')
def _lock_files_of_gone_volumes(backend: maintenance.Maintenance,
                                fix: bool) -> Finding:
    """Lock files of volumes Cinder no longer has, with no record.

    Volumes with a record are the records' findings.  A volume that is
    gone is never attached again, so its lock files are safe to remove.
    """
    recorded = set(backend.shared_reads.recorded_volumes())
    recorded.update(backend.uploads.volume_ids())
    candidates = [v for v in backend.settings.locked_volumes()
                  if v not in recorded]
    if not candidates:
        return Finding(OK, 'lock files', 'none of a deleted volume')
    if not backend.has_service_credentials:
        return Finding(SKIP, 'lock files', 'lock files of %d volume(s); '
                       'checking them with Cinder needs service '
                       'credentials' % len(candidates))
    cinder = backend.cinder()
    gone = [v for v in candidates if rules.volume_gone(cinder, v)]
    if not gone:
        return Finding(OK, 'lock files', 'none of a deleted volume (%d '
                       'volume(s) with lock files exist)' % len(candidates))
    if not fix:
        return Finding(WARN, 'lock files', 'left by %d volume(s) that no '
                       'longer exist: %s; --fix removes them'
                       % (len(gone), ', '.join(gone)))
    for volume_id in gone:
        backend.settings.remove_locks(volume_id)
    return Finding(FIXED, 'lock files', 'removed those of %d volume(s) that '
                   'no longer exist: %s' % (len(gone), ', '.join(gone)))


def _rbd_findings(backend: maintenance.Maintenance, fix: bool,
                  probe: bool) -> list[Finding]:
    """The Ceph keyring a userspace RBD attach reads, and connect leftovers.

    Only for a backend with ``cinder_store_rbd_keyring`` set.  Temporary
    Ceph configs of connects live for milliseconds; one older than twice
    the connect timeout was left by a worker killed inside a connect.
    """
    rbd = backend.settings.rbd
    if not rbd.keyring:
        return []
    return [_readable_keyring(rbd.keyring),
            _ceph_reachable(backend) if probe else Finding(
                SKIP, 'ceph', 'reachability not probed: --probe attaches '
                'an available volume read-only to prove it'),
            _leftover_ceph_configs(rbd, fix)]


@_guarded('ceph')
def _ceph_reachable(backend: maintenance.Maintenance) -> Finding:
    """Attach an available volume of the backend read-only, as a reader.

    The monitors and client name come from Cinder at attach time only;
    this is the one way to prove this host reaches Ceph with its keyring.
    A download of that image arriving meanwhile waits a moment (its
    attach is retried).
    """
    if not backend.has_service_credentials:
        return Finding(SKIP, 'ceph', 'finding a volume needs service '
                       'credentials')
    cinder, name, volumes = _typed_volumes(backend, ('available',))
    if not volumes:
        return Finding(SKIP, 'ceph', 'no available volume of type %r to '
                       'attach: checked with the first image stored' % name)
    volume = volumes[0]
    started = time.monotonic()
    with attachment.Attachment(cinder, backend.settings, volume,
                               writable=False) as att:
        att.device.pread(4096, 0)
        props = host.connection_properties(att.connection_info)
    return Finding(OK, 'ceph', 'volume %s attached and read as client.%s '
                   'through monitors %s in %.1fs' % (
                       volume.id, props.get('auth_username'),
                       ', '.join('%s:%s' % m for m in zip(
                           props.get('hosts') or (),
                           props.get('ports') or ())),
                       time.monotonic() - started))


@_guarded('ceph keyring')
def _readable_keyring(path: str) -> Finding:
    try:
        clients = host.keyring_clients(path)
    except OSError as e:
        return Finding(FAIL, 'ceph keyring', '%s: cinder_store_rbd_keyring '
                       'must name a Ceph keyring file this user (uid %d) can '
                       'read' % (e, os.geteuid()))
    if not clients:
        return Finding(FAIL, 'ceph keyring', '%s holds no client key (expect '
                       '"[client.<rbd_user>]" and "key = ..."; `ceph auth '
                       'get client.<rbd_user>` prints one)' % path)
    if os.stat(path).st_mode & 0o077:
        return Finding(WARN, 'ceph keyring', '%s (%s) is readable by other '
                       'users: chmod 600 it' % (path, ', '.join(clients)))
    return Finding(OK, 'ceph keyring', '%s: %s' % (path, ', '.join(clients)))


@_guarded('rbd files')
def _leftover_ceph_configs(rbd: host.RBDClient, fix: bool) -> Finding:
    found = host.leftover_connect_files(min_age=2 * rbd.connect_time)
    if not found:
        return Finding(OK, 'rbd files', 'no temporary Ceph config left by '
                       'a connect')
    if not fix:
        return Finding(WARN, 'rbd files', '%d temporary Ceph config(s) left '
                       'by connects cut short (no key in them): %s'
                       % (len(found), ', '.join(found)))
    for path in found:
        os.unlink(path)
    return Finding(FIXED, 'rbd files', 'removed %s' % ', '.join(found))
