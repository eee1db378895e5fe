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

"""``cinder-store-check``: can this Glance host use its cinder_store backends?

    cinder-store-check [--config-file /etc/glance/glance-api.conf]
                       [--backend ID] [--fix] [--probe]

Loads each ``cinder_store`` backend of ``enabled_backends`` the way
glance-api does and checks, in order: its configuration, Cinder (as the
service user, at the driver's API microversion), this host's os-brick
connector, the privileges device hand-over needs, the read-only
attachments Glance workers on this host share, and the uploads recorded
on this host.  One line per finding; exit status 1 if anything failed, 2
for a --backend that is not one.

Without ``--fix`` it changes nothing.  With ``--fix`` it detaches the
shared read attachments no live Glance process holds any more (what the
next download of that image, or its delete, would do anyway); deletes the
volumes of orphaned uploads (their worker died, or their clean-up failed:
Glance has no location for them and never will); removes the lock files
of volumes that no longer exist; and deletes the attachments Cinder made
but nobody completed within cinder_store_abandoned_attachment_age (they
leave a volume stuck ``attaching``) and detaches the attachments of this
host that no record names and are older than that age (their process
died).  Uploads in progress are never touched.

For an RBD backend (``cinder_store_rbd_keyring`` set) it checks the
keyring and lists temporary Ceph configs a connect cut short left (``--fix``
removes them); ``--probe`` also attaches one available volume of the
backend read-only, as a download does, and says what to fix when Ceph
cannot be reached or refuses the key.
"""

import collections
import configparser
import logging
import os
import sys
import tempfile
import time

from glance_store import exceptions
from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import timeutils

from cinder_store import attachment
from cinder_store import host as host_mod
from cinder_store import host_reads
from cinder_store import records
from cinder_store import store as store_mod
from cinder_store import upload_records

OK, WARN, FAIL, FIXED, SKIP = 'ok', 'warn', 'FAIL', 'fixed', 'skip'

Finding = collections.namedtuple('Finding', 'status topic message')

CLI_OPTS = [
    cfg.StrOpt('backend',
               help='Check only this backend (default: every backend of '
                    'type cinder_store in enabled_backends).'),
    cfg.BoolOpt('probe', default=False,
                help='For RBD backends (cinder_store_rbd_keyring set), '
                     'attach one available volume of the backend '
                     'read-only, as a download does, to prove this host '
                     'reaches Ceph with its keyring; a failure says what '
                     'to fix.  A download of that image meanwhile waits '
                     'for it (under a second).'),
    cfg.BoolOpt('fix', default=False,
                help='Detach shared read attachments no live Glance process '
                     'holds, delete the volumes of uploads whose worker '
                     'died or whose clean-up failed, and remove the lock '
                     'files of volumes that no longer exist.'),
]


def check_store(store, fix=False, probe=False):
    """Findings for one configured :class:`store_mod.Store`.

    ``probe`` attaches one available volume of each RBD backend (one with
    ``cinder_store_rbd_keyring``) read-only to prove Ceph is reachable.
    """
    backend = store.maintenance()
    return ([_cinder(backend), _lock_path(backend), _host(backend),
             _privileges(backend)] + _shared_reads(backend, fix) +
            _uploads(backend, fix) + [_lock_files(backend, fix)] +
            _stuck_volumes(backend, fix) + _unheld(backend, fix) +
            _rbd(backend, fix, probe))


def _failed(topic, error):
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
def _cinder(backend):
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
def _lock_path(backend):
    path = backend.lock_path
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix='.check-'):
        pass
    if filesystem(path) == 'tmpfs':
        return Finding(WARN, 'lock path', '%s is writable but in memory '
                       '(tmpfs): after a reboot the records of uploads it '
                       'interrupted are gone, and so is the way to find '
                       'their volumes' % path)
    return Finding(OK, 'lock path', '%s is writable' % path)


def filesystem(path):
    """The type of the filesystem ``path`` is on, from /proc/mounts."""
    path = os.path.realpath(path)
    best, kind = '', None
    with open('/proc/mounts') as mounts:
        for line in mounts:
            mount_point, fs_type = line.split()[1:3]
            inside = (path == mount_point or
                      path.startswith(mount_point.rstrip('/') + '/'))
            if inside and len(mount_point) > len(best):
                best, kind = mount_point, fs_type
    return kind


@_guarded('host')
def _host(backend):
    props = backend.connector()
    return Finding(OK, 'host', 'os-brick connector of %s (%s), multipath %s'
                   % (props.get('host'), props.get('ip'),
                      'on' if props.get('multipath') else 'off'))


@_guarded('privileges')
def _privileges(backend):
    if os.geteuid() == 0:
        return Finding(OK, 'privileges', 'running as root: no rootwrap '
                       'needed')
    path = backend.rootwrap_config
    parser = configparser.RawConfigParser()
    if not parser.read(path):
        return Finding(FAIL, 'privileges', 'cinder_store_rootwrap_config %s '
                       'is missing: an unprivileged Glance cannot take '
                       'over attached devices' % path)
    dirs = parser.get('DEFAULT', 'filters_path', fallback='').split(',')
    for directory in filter(None, (d.strip() for d in dirs)):
        for name in sorted(os.listdir(directory)):
            if _admits_chown(os.path.join(directory, name)):
                return Finding(OK, 'privileges', 'rootwrap filter %s admits '
                               'chown of devices' % name)
    return Finding(FAIL, 'privileges', 'no filter in %s admits chown: '
                   'install etc/glance/rootwrap.d/cinder_store.filters there'
                   % ', '.join(dirs))


def _admits_chown(path):
    filters = configparser.RawConfigParser()
    try:
        filters.read(path)
        return any(value.split(',')[1].strip() == 'chown'
                   for _, value in filters.items('Filters'))
    except (configparser.Error, IndexError, UnicodeDecodeError):
        return False


def _shared_reads(backend, fix):
    readers = backend.shared_reads()
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
    return [_shared_read(readers, cinder, v, fix) for v in volume_ids]


@_guarded('shared reads')
def _shared_read(readers, cinder, volume_id, fix):
    record, reason = readers.inspect(cinder, volume_id)
    if record is None:
        return Finding(OK, 'shared reads', 'volume %s: record gone' %
                       volume_id)
    if records.foreign(record):
        return _foreign_record('shared reads', 'volume ' + volume_id,
                               record)
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
        readers.settings.forget(volume_id)
        return Finding(FIXED, 'shared reads', 'volume %s is gone: removed '
                       'its record and locks' % volume_id)
    detached = readers.repair(cinder, volume)
    if detached is None:
        return Finding(OK, 'shared reads', 'volume %s: in use again, left '
                       'alone' % volume_id)
    unsure = (not record.get('attachment') and
              getattr(volume, 'multiattach', False) and
              [a for a in host_reads.being_made(cinder, volume_id)
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


def _recorded(record):
    if record.get('attachment'):
        return 'attachment %s is stale' % record['attachment']
    return 'a reader\'s record of an attachment Cinder was making is stale'


def _foreign_record(topic, subject, record):
    return Finding(WARN, topic, '%s: record written on host %s, left alone; '
                   'is the lock directory shared between hosts?'
                   % (subject, record['host']))


def _uploads(backend, fix):
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
    return ([_upload(backend.uploads, cinder, v, fix) for v in volume_ids] +
            [_creation(backend.uploads, cinder, t, fix) for t in tokens])


@_guarded('uploads')
def _upload(recorded, cinder, volume_id, fix):
    record, reason = recorded.inspect(volume_id)
    return _upload_finding(
        'volume %s' % volume_id, record, reason, fix,
        lambda: 'image %s is being uploaded by %s on %s' % (
            record.get('image'), record.get('holder'), record.get('host')),
        lambda: 'orphaned upload of image %s, %s; --fix deletes the '
                'volume' % (record.get('image'), reason),
        lambda: recorded.reclaim(cinder, volume_id))


@_guarded('uploads')
def _creation(recorded, cinder, token, fix):
    record, reason = recorded.inspect_creation(token)
    return _upload_finding(
        'volume creation %s' % token, record, reason, fix,
        lambda: 'for image %s, in progress in %s' % (
            record.get('image'), record.get('holder')),
        lambda: 'for image %s, cut short: %s; --fix deletes any volume '
                'carrying metadata %s=%s' % (
                    record.get('image'), reason, upload_records.TOKEN_KEY,
                    token),
        lambda: recorded.reclaim_creation(cinder, token))


def _upload_finding(subject, record, reason, fix, live, orphaned, reclaim):
    """What an upload record of ``subject`` says, and --fix does of it.

    ``live``, ``orphaned`` and ``reclaim`` are called only when needed.
    """
    if record is None:
        return Finding(OK, 'uploads', '%s: record gone' % subject)
    if records.foreign(record):
        return _foreign_record('uploads', subject, record)
    if reason is None:
        return Finding(OK, 'uploads', '%s: %s' % (subject, live()))
    if not fix:
        return Finding(WARN, 'uploads', '%s: %s' % (subject, orphaned()))
    try:
        done = reclaim()
    except upload_records.NotOrphaned as e:
        return Finding(OK, 'uploads', str(e))
    return Finding(FIXED, 'uploads', '%s: %s' % (subject, done))


# Volume statuses that end when an attach or detach ends.
STUCK = ('attaching', 'reserved', 'detaching')


def _stuck_volumes(backend, fix):
    """Volumes of the backend's type left mid-attach or mid-detach.

    Found from Cinder, not from this host's records: a reader killed
    while Cinder made its attachment may have left nothing that names it.
    """
    if not backend.has_service_credentials:
        return [Finding(SKIP, 'stuck volumes', 'listing volumes needs '
                        'service credentials')]
    try:
        cinder, name, stuck = _typed_volumes(backend, STUCK)
    except Exception as e:
        return [_failed('stuck volumes', e)]
    if not stuck:
        return [Finding(OK, 'stuck volumes', 'no volume of type %r left '
                        'attaching or detaching' % name)]
    return [_stuck_volume(backend, cinder, v, fix) for v in stuck]


def _typed_volumes(backend, statuses):
    """(Cinder client, the backend's type name, its volumes in statuses)."""
    cinder = backend.cinder()
    name = backend.volume_type or cinder.default_volume_type().name
    return cinder, name, [v for status in statuses
                          for v in cinder.volumes_with_status(status)
                          if v.volume_type == name]


@_guarded('stuck volumes')
def _stuck_volume(backend, cinder, volume, fix):
    age = backend.host.abandoned_after
    if volume.status == 'detaching':
        return Finding(WARN, 'stuck volumes', 'volume %s is detaching; if it '
                       'stays so, Cinder failed mid-detach: see cinder-volume'
                       '\'s log' % volume.id)
    ids = attachment.abandoned(cinder, volume.id, age)
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
    done = attachment.reclaim_abandoned(cinder, backend.host, volume)
    return Finding(FIXED, 'stuck volumes', 'volume %s: deleted abandoned '
                   'attachment(s) %s' % (volume.id, ', '.join(done) or
                                         'none (gone meanwhile)'))


def _unheld(backend, fix):
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
        recorded = (set(backend.shared_reads().recorded_volumes()) |
                    set(backend.uploads.volume_ids()))
        me = host_mod.hostname()
        cinder, name, volumes = _typed_volumes(backend,
                                               ('in-use', 'attaching'))
        candidates = [v for v in volumes if v.id not in recorded and
                      any(a.get('host_name') == me
                          for a in v.attachments or ())]
    except Exception as e:
        return [_failed('unheld', e)]
    found = [f for f in (_unheld_on(backend, cinder, v, me, fix)
                         for v in candidates) if f is not None]
    return found or [Finding(OK, 'unheld', 'every attachment of this host '
                             'on a volume of type %r is held' % name)]


@_guarded('unheld')
def _unheld_on(backend, cinder, volume, me, fix):
    age = backend.host.abandoned_after
    now = timeutils.utcnow()
    old = [a.id for a in cinder.attachments_of(volume.id, detailed=True)
           if getattr(a, 'attached_at', None) and
           (now - timeutils.normalize_time(timeutils.parse_isotime(
               a.attached_at))).total_seconds() > age and
           a.id in attachment.attachments_here(volume)]
    if not old:
        return None
    if not fix:
        return Finding(WARN, 'unheld', 'volume %s: attachment(s) %s of this '
                       'host (%s), over %ss old, named by no record: their '
                       'process died; --fix detaches them' % (
                           volume.id, ', '.join(old), me, age))
    for attachment_id in old:
        attachment.detach_attachment(cinder, backend.host, volume,
                                     attachment_id)
    return Finding(FIXED, 'unheld', 'volume %s: detached attachment(s) %s'
                   % (volume.id, ', '.join(old)))


@_guarded('lock files')
def _lock_files(backend, fix):
    """Lock files of volumes Cinder no longer has, with no record.

    Volumes with a record are the records' findings.  A volume that is
    gone is never attached again, so its lock files are safe to remove.
    """
    recorded = set(backend.shared_reads().recorded_volumes())
    recorded.update(backend.uploads.volume_ids())
    candidates = [v for v in backend.host.locked_volumes()
                  if v not in recorded]
    if not candidates:
        return Finding(OK, 'lock files', 'none of a deleted volume')
    if not backend.has_service_credentials:
        return Finding(SKIP, 'lock files', 'lock files of %d volume(s); '
                       'checking them with Cinder needs service '
                       'credentials' % len(candidates))
    cinder = backend.cinder()
    gone = [v for v in candidates if not _exists(cinder, v)]
    if not gone:
        return Finding(OK, 'lock files', 'none of a deleted volume (%d '
                       'volume(s) with lock files exist)' % len(candidates))
    if not fix:
        return Finding(WARN, 'lock files', 'left by %d volume(s) that no '
                       'longer exist: %s; --fix removes them'
                       % (len(gone), ', '.join(gone)))
    for volume_id in gone:
        backend.host.forget(volume_id)
    return Finding(FIXED, 'lock files', 'removed those of %d volume(s) that '
                   'no longer exist: %s' % (len(gone), ', '.join(gone)))


def _rbd(backend, fix, probe):
    """The Ceph keyring a userspace RBD attach reads, and connect leftovers.

    Only for a backend with ``cinder_store_rbd_keyring`` set.  Temporary
    Ceph configs of connects live for milliseconds; one older than twice
    the connect timeout was left by a worker killed inside a connect.
    """
    rbd = backend.host.rbd
    if not rbd.keyring:
        return []
    return [_keyring(rbd.keyring),
            _ceph(backend) if probe else Finding(
                SKIP, 'ceph', 'reachability not probed: --probe attaches '
                'an available volume read-only to prove it'),
            _connect_files(rbd, fix)]


@_guarded('ceph')
def _ceph(backend):
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
    with attachment.Attachment(cinder, backend.host, volume,
                               writable=False) as att:
        att.device.pread(4096, 0)
        props = host_mod.connection_properties(att.connection_info)
    return Finding(OK, 'ceph', 'volume %s attached and read as client.%s '
                   'through monitors %s in %.1fs' % (
                       volume.id, props.get('auth_username'),
                       ', '.join('%s:%s' % m for m in zip(
                           props.get('hosts') or (),
                           props.get('ports') or ())),
                       time.monotonic() - started))


@_guarded('ceph keyring')
def _keyring(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        return Finding(FAIL, 'ceph keyring', '%s: cinder_store_rbd_keyring '
                       'must name a Ceph keyring file this user (uid %d) can '
                       'read' % (e, os.geteuid()))
    clients = [line.strip()[1:-1] for line in text.splitlines()
               if line.strip().startswith('[client.')]
    if not clients or 'key' not in text:
        return Finding(FAIL, 'ceph keyring', '%s holds no client key (expect '
                       '"[client.<rbd_user>]" and "key = ..."; `ceph auth '
                       'get client.<rbd_user>` prints one)' % path)
    if os.stat(path).st_mode & 0o077:
        return Finding(WARN, 'ceph keyring', '%s (%s) is readable by other '
                       'users: chmod 600 it' % (path, ', '.join(clients)))
    return Finding(OK, 'ceph keyring', '%s: %s' % (path, ', '.join(clients)))


@_guarded('rbd files')
def _connect_files(rbd, fix):
    found = host_mod.leftover_connect_files(min_age=2 * rbd.connect_time)
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


def _exists(cinder, volume_id):
    try:
        cinder.get_volume(volume_id)
    except exceptions.NotFound:
        return False
    return True


def _load_conf(argv, conf=None):
    # Glance's own global: oslo.privsep reads [privsep_osbrick] from it.
    conf = cfg.CONF if conf is None else conf
    conf.register_cli_opts(CLI_OPTS)
    conf.register_opt(cfg.DictOpt('enabled_backends'))
    conf(argv, project='glance', prog='glance-api')
    multi_backend.register_store_opts(conf)
    return conf


def _backends(conf):
    enabled = conf.enabled_backends or {}
    names = [n for n, kind in enabled.items() if kind == 'cinder_store']
    if conf.backend:
        if conf.backend not in names:
            raise ValueError('%s is not a cinder_store backend of '
                             'enabled_backends (%s)' % (
                                 conf.backend, ', '.join(names) or 'none'))
        names = [conf.backend]
    return names


def main(argv=None, out=sys.stdout, conf=None):
    logging.basicConfig(level=logging.ERROR)
    conf = _load_conf(sys.argv[1:] if argv is None else argv, conf)
    try:
        names = _backends(conf)
    except ValueError as e:
        out.write('%s\n' % e)
        return 2
    if not names:
        out.write('no cinder_store backend in enabled_backends\n')
        return 1
    failed = False
    for name in names:
        out.write('backend %s\n' % name)
        try:
            store = store_mod.Store(conf, backend=name)
            store.configure(re_raise_bsc=True)
        except Exception as e:
            findings = [Finding(FAIL, 'configuration', str(e))]
        else:
            findings = ([Finding(OK, 'configuration', 'loaded')] +
                        check_store(store, fix=conf.fix,
                                    probe=conf.probe))
        for f in findings:
            out.write('  %-5s  %-13s %s\n' % (f.status, f.topic, f.message))
            failed = failed or f.status == FAIL
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
