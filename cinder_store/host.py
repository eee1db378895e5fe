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

"""This host: how it attaches (settings, locks), as os-brick sees it.

Connector properties and the host IP are computed once per process (they
start os-brick's privsep daemon and probe every transport, which costs
hundreds of milliseconds) and are never mutated by callers.
"""

import configparser
import copy
import logging
import os
import shlex
import socket
import tempfile
import threading
import time
from typing import Any
from typing import Callable

from glance_store import exceptions
from os_brick.initiator import connector as brick_connector
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_privsep import priv_context
from oslo_utils import uuidutils

from cinder_store import device

LOG = logging.getLogger(__name__)

MOUNTPOINT = 'glance_store'
# os-brick's temporary Ceph config for each userspace RBD connect
CONNECT_FILE_PREFIX = 'brickrbd_'
_NFS_TYPES = ('nfs', 'glusterfs', 'vzstorage', 'quobyte')

_lock = threading.Lock()
_cache: dict[tuple, dict] = {}


LOCK_PREFIX = 'cinder_store-'


class HostSettings(object):
    """How this host attaches volumes, from one backend's options."""

    def __init__(self, root_helper: str, multipath: bool,
                 enforce_multipath: bool, mount_base: str, lock_path: str,
                 backend: str | None = None, abandoned_after: int = 600,
                 rbd: "RBDClient | None" = None,
                 exclusive_wait: float = 300, membership: Any = None,
                 new_volumes_read_zeros: str = 'auto'):
        self.root_helper = root_helper
        self.multipath = multipath
        self.enforce_multipath = enforce_multipath
        self.mount_base = mount_base
        self.lock_path = lock_path
        # Names this backend in the records it leaves beside the locks,
        # which several backends may share.
        self.backend = backend
        # Seconds after which an attachment Cinder made and nobody
        # completed is abandoned (see abandoned()).
        self.abandoned_after = abandoned_after
        # Seconds a reader waits for a volume that is not multiattach
        # while another host holds it.
        self.exclusive_wait = exclusive_wait
        # What a userspace RBD attach needs that Cinder does not send
        self.rbd = rbd or RBDClient()
        # membership.Membership with a coordination service, else
        # membership.Alone: which other hosts are lost (what they held may
        # be released), who waits for a volume, who is attaching one.
        if membership is None:
            from cinder_store import membership as membership_mod
            membership = membership_mod.Alone()
        self.membership = membership
        # 'auto', 'true' or 'false': see new_volume_reads_zeros()
        self.new_volumes_read_zeros = new_volumes_read_zeros

    def new_volume_reads_zeros(self, connection_info: dict) -> bool:
        """Does a volume this upload created read zeros where unwritten?

        ``auto`` trusts it of RBD only (a new RBD image has no objects);
        other backends may hand out old data (thick LVM with
        ``volume_clear = none``).
        """
        if self.new_volumes_read_zeros == 'auto':
            return connection_info.get('driver_volume_type') == 'rbd'
        return self.new_volumes_read_zeros == 'true'

    def connector(self):
        return connector_properties(
            self.root_helper, self.multipath, self.enforce_multipath)

    def claims(self, volume_id, excluding=None):
        """``claims`` for :func:`recovery.rules.abandoned_attachments`.

        The live claims on ``volume_id``'s attachments being made, asked
        when called; None when unknown (no coordination service, or it
        cannot be asked).
        """
        return lambda: self.membership.claims(volume_id, excluding)

    def volume_lock(self, volume_id):
        """Held around connect, and around count + disconnect + delete."""
        return self._lock(volume_id)

    def readers_lock(self, volume_id):
        """Held while joining or leaving a shared read (host_reads)."""
        return self._lock('read-' + volume_id)

    def _lock(self, name):
        return lockutils.lock(name, lock_file_prefix=LOCK_PREFIX,
                              external=True, lock_path=self.lock_path)

    def remove_locks(self, volume_id):
        """Remove the lock files of a volume that no longer exists."""
        for name in (volume_id, 'read-' + volume_id):
            lockutils.remove_external_lock_file(
                name, lock_file_prefix=LOCK_PREFIX, lock_path=self.lock_path)

    def locked_volumes(self):
        """Ids of the volumes that have lock files here, sorted.

        The lock directory may be shared by several backends: these are
        every backend's.
        """
        try:
            names = os.listdir(self.lock_path)
        except FileNotFoundError:
            return []
        ids = set()
        for name in names:
            for prefix in (LOCK_PREFIX, LOCK_PREFIX + 'read-'):
                rest = name[len(prefix):]
                if name.startswith(prefix) and uuidutils.is_uuid_like(rest):
                    ids.add(rest)
        return sorted(ids)


def root_helper(rootwrap_config: str) -> str:
    return 'sudo glance-rootwrap %s' % rootwrap_config


def route_privsep(helper: str) -> None:
    """Start os-brick's privileged daemon through ``helper`` (rootwrap).

    Unprivileged, Glance may only run ``glance-rootwrap`` as root: without
    this, oslo.privsep would run ``sudo privsep-helper`` and every attach
    would fail.  As root, oslo.privsep's own default is left alone (root
    needs no rootwrap).  ``[privsep_osbrick] helper_command``, when set,
    still wins.  The prefix is global to the process, as in the in-tree
    driver.
    """
    if os.geteuid() != 0:
        priv_context.init(root_helper=shlex.split(helper))


def host_ip(hostname: str) -> str:
    """First IPv6, else IPv4 address of ``hostname``; 127.0.0.1 last."""
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            return str(socket.getaddrinfo(hostname, None, family)[0][4][0])
        except (socket.gaierror, IndexError):
            continue
    return '127.0.0.1'


def connector_properties(helper: str, multipath: bool,
                         enforce_multipath: bool) -> dict[str, Any]:
    """This host's connector dict, with ``mountpoint``; a fresh copy."""
    key = (helper, multipath, enforce_multipath)
    with _lock:
        if key not in _cache:
            hostname = socket.gethostname()
            props = brick_connector.get_connector_properties(
                helper, host_ip(hostname), multipath, enforce_multipath,
                host=hostname)
            # Cinder refuses an attachment without a mountpoint
            # (LP#1779455); it travels inside the connector.
            props['mountpoint'] = MOUNTPOINT
            _cache[key] = props
        return copy.deepcopy(_cache[key])


def hostname() -> str:
    return socket.gethostname()


def connection_properties(connection_info: dict) -> dict[str, Any]:
    """What os-brick's connect/disconnect take.

    The attachment API returns a flat dict (``driver_volume_type`` beside
    ``device_path``...); the legacy API nests the same under ``data``.
    """
    data = connection_info.get('data')
    return data if isinstance(data, dict) else connection_info


class RBDClient(object):
    """The Ceph client settings of a userspace RBD attach.

    Cinder sends the monitors, pool, image and client name, never a key
    (OSSN-0085).  os-brick writes ``keyring`` of the connection properties
    verbatim into the temporary Ceph config it makes for each connect
    (meant for a keyring's contents, as cinderlib sends them); given
    ``keyring = <path>`` there instead, librados reads the key from the
    operator's keyring file, so the key is never in a connection dict, a
    log line or a file we write.  Unset, the path is the one os-brick
    itself would read (``/etc/ceph/<cluster>.client.<user>.keyring``).
    ``timeout`` bounds a librados connect and each monitor and OSD
    operation (0: librados' own, 300 s for a connect, none for I/O).
    """

    MARK = '# cinder_store'

    def __init__(self, keyring: str | None = None, timeout: int = 0):
        self.keyring = keyring
        self.timeout = timeout

    @property
    def connect_time(self) -> int:
        """Seconds a connect may take before it fails (librados' own: 300)."""
        return self.timeout or 300

    def conf_lines(self, props: dict[str, Any]) -> str:
        keyring = self.keyring or '/etc/ceph/%s.client.%s.keyring' % (
            props.get('cluster_name') or 'ceph', props.get('auth_username'))
        lines = [self.MARK, 'keyring = %s' % keyring]
        if self.timeout:
            lines += ['%s = %d' % (name, self.timeout) for name in (
                'client_mount_timeout', 'rados_mon_op_timeout',
                'rados_osd_op_timeout')]
        return '\n'.join(lines)

    def explain(self, connection_info: dict,
                error: BaseException) -> str | None:
        """What an operator should do about a failed RBD connect, or None.

        librados answers "timed out" whether the monitors are unreachable
        or refuse the key; a TCP probe of each monitor tells which.
        """
        if connection_info.get('driver_volume_type', '').lower() != 'rbd':
            return None
        props = connection_properties(connection_info)
        if 'module required' in str(error):
            return ('the Ceph bindings are not importable by this Python '
                    '(%s): install python3-rados and python3-rbd for it'
                    % error)
        client = 'client.%s' % props.get('auth_username')
        keyring = self.conf_lines(props).splitlines()[1].split(' = ', 1)[1]
        monitors = list(zip(props.get('hosts') or (),
                            props.get('ports') or ()))
        reachable = [m for m in monitors if _tcp_reachable(*m)]
        names = ', '.join('%s:%s' % m for m in monitors) or 'none'
        if not reachable:
            return ('cannot connect to Ceph: no monitor Cinder names (%s) '
                    'accepts a connection from this host; check routing '
                    'and firewalls to them (%s)' % (names, error))
        return ('cannot connect to Ceph as %s: its monitors (%s) answer but '
                'did not accept the key in %s within %ss; the file must '
                'hold %s\'s key ("ceph auth get %s" prints it) and be '
                'readable by this user (uid %d) (%s)' % (
                    client, names, keyring, self.connect_time, client,
                    client, os.geteuid(), error))

    def connection_properties(self, connection_info: dict) -> dict[str, Any]:
        """What os-brick's connect takes, with these settings for RBD.

        A keyring Cinder did send (a cinderlib-style backend) is kept.
        """
        props = connection_properties(connection_info)
        if (connection_info.get('driver_volume_type', '').lower() != 'rbd'
                or props.get('keyring') is not None):
            return props
        return dict(props, keyring=self.conf_lines(props))


def _tcp_reachable(address: str, port: str | int,
                   timeout: float = 2) -> bool:
    try:
        socket.create_connection((address, int(port)), timeout).close()
        return True
    except (OSError, ValueError):
        return False


def is_userspace(device_info: dict | None) -> bool:
    """Is os-brick's connection a file object of this process (librbd)?"""
    path = (device_info or {}).get('path')
    return path is not None and not device.is_path(path)


def remove_connect_files(device_info: dict | None) -> None:
    """Remove the temporary Ceph config os-brick wrote for a connect.

    librados read it when it connected; os-brick would remove it only at
    disconnect, so a worker killed in between would leave it behind.
    """
    conf = getattr((device_info or {}).get('path'), 'rbd_conf', None)
    if conf:
        try:
            os.unlink(conf)
        except FileNotFoundError:
            pass


def leftover_connect_files(min_age: float = 0, now: float | None = None,
                           directory: str | None = None) -> list[str]:
    """Paths of os-brick's temporary Ceph configs of our connects left over.

    :func:`remove_connect_files` removes each within milliseconds of its
    making; one older than ``min_age`` seconds was left by a worker killed
    inside a connect.  Ours are told from other users' (the in-tree
    driver's) by :attr:`RBDClient.MARK`; they hold no key.  os-brick
    writes them to the process's temporary directory, the default
    ``directory``.
    """
    directory = directory or tempfile.gettempdir()
    now = time.time() if now is None else now
    found = []
    for name in sorted(os.listdir(directory)):
        if not name.startswith(CONNECT_FILE_PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            if now - os.stat(path).st_mtime < min_age:
                continue
            with open(path) as f:
                if RBDClient.MARK in f.read():
                    found.append(path)
        except OSError:
            continue  # removed meanwhile, or not ours to read
    return found


def check_transport(connection_info: dict, volume: Any) -> None:
    """Refuse what we cannot store bytes on faithfully.

    Encrypted volumes on any transport (we would write plaintext under a
    LUKS header) and qcow2 files on NFS-style shares (we would write raw
    bytes into a qcow2 container).
    """
    data = connection_properties(connection_info)
    if getattr(volume, 'encrypted', False) or data.get('encrypted'):
        raise exceptions.BackendException(
            'volume %s is encrypted (volume type %s): cinder_store cannot '
            'store images on encrypted volumes; use an unencrypted '
            'cinder_store_volume_type' % (volume.id, volume.volume_type))
    volume_type = connection_info.get('driver_volume_type', '')
    if volume_type.lower() in _NFS_TYPES and data.get('format') == 'qcow2':
        raise exceptions.BackendException(
            'volume %s is a qcow2 file on an NFS-style share: cinder_store '
            'needs raw volumes; set the Cinder backend\'s nfs_qcow2_volumes '
            '= False' % volume.id)


def make_connector(connection_info: dict, helper: str, multipath: bool,
                   mount_base: str) -> Any:
    """An os-brick connector for this attachment's transport."""
    return brick_connector.InitiatorConnector.factory(
        connection_info['driver_volume_type'], helper,
        use_multipath=multipath, device_scan_attempts=10,
        nfs_mount_point_base=mount_base,
        glusterfs_mount_point_base=mount_base,
        vzstorage_mount_point_base=mount_base,
        quobyte_mount_point_base=mount_base)


def _chown(helper, owner, path):
    processutils.execute('chown', str(owner), path, run_as_root=True,
                         root_helper=helper)


def take_ownership(path: Any, writable: bool,
                   helper: str) -> Callable[[], None] | None:
    """Make ``path`` usable by this (non-root) process; return the undo.

    Glance normally runs unprivileged and the block devices os-brick
    attaches belong to root.  Returns None when nothing had to change.
    """
    if not isinstance(path, str) or os.geteuid() == 0:
        return None
    if os.access(path, os.R_OK | (os.W_OK if writable else 0)):
        return None
    previous = os.stat(path).st_uid
    _chown(helper, os.getuid(), path)
    return lambda: _chown(helper, previous, path)


def filesystem_type(path: str) -> str | None:
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


def rootwrap_filter_dirs(rootwrap_config: str) -> list[str] | None:
    """The ``filters_path`` directories of a rootwrap.conf; None if absent."""
    parser = configparser.RawConfigParser()
    if not parser.read(rootwrap_config):
        return None
    dirs = parser.get('DEFAULT', 'filters_path', fallback='').split(',')
    return [d.strip() for d in dirs if d.strip()]


def chown_filter(directories: list[str]) -> str | None:
    """The first rootwrap filter file in ``directories`` admitting chown.

    Device hand-over (:func:`take_ownership`) runs ``chown`` through it.
    """
    for directory in directories:
        for name in sorted(os.listdir(directory)):
            if _admits_chown(os.path.join(directory, name)):
                return name
    return None


def _admits_chown(path):
    filters = configparser.RawConfigParser()
    try:
        filters.read(path)
        return any(value.split(',')[1].strip() == 'chown'
                   for _, value in filters.items('Filters'))
    except (configparser.Error, IndexError, UnicodeDecodeError):
        return False


def keyring_clients(path: str) -> list[str] | None:
    """Ceph client names of a keyring file; None if it holds no key.

    Raises ``OSError`` when the file cannot be read.
    """
    with open(path) as f:
        text = f.read()
    clients = [line.strip()[1:-1] for line in text.splitlines()
               if line.strip().startswith('[client.')]
    if not clients or 'key' not in text:
        return None
    return clients
