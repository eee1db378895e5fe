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

"""What the check finds of this host and its configuration.

Cinder and the volume type, the lock path, os-brick's connector, device
hand-over privileges, and for RBD the keyring, Ceph and leftover connect
files.
"""

import os
import tempfile
import time

from glance_store import exceptions

from cinder_store import attachment
from cinder_store.devices import rbd
from cinder_store.findings import report
from cinder_store.findings.report import FAIL
from cinder_store.findings.report import Finding
from cinder_store.findings.report import FIXED
from cinder_store.findings.report import OK
from cinder_store.findings.report import SKIP
from cinder_store.findings.report import WARN
from cinder_store.findings import system
from cinder_store import host
from cinder_store import maintenance
from cinder_store.recovery import repairs
from cinder_store.recovery import rules


@report.guard_finder('cinder')
def volume_type_in_cinder(maintenance: maintenance.Maintenance) -> Finding:
    if not maintenance.has_service_credentials:
        return Finding(SKIP, 'cinder', 'no service credentials: Cinder is '
                       'reached with each request\'s user token')
    cinder = maintenance.bound_cinder()
    name = maintenance.volume_type
    try:
        volume_type = cinder.volume_type(name)
    except exceptions.NotFound:
        return Finding(FAIL, 'cinder', 'volume type %r (cinder_store_volume'
                       '_type) does not exist in Cinder' % name)
    return Finding(OK, 'cinder', 'reached as the service user; volume type '
                   '%r exists' % volume_type.name)


@report.guard_finder('lock path')
def writable_lock_path(maintenance: maintenance.Maintenance) -> Finding:
    path = maintenance.lock_path
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix='.check-'):
        pass
    if system.filesystem_type(path) == 'tmpfs':
        return Finding(WARN, 'lock path', '%s is writable but in memory '
                       '(tmpfs): after a reboot the records of uploads it '
                       'interrupted are gone, and so is the way to find '
                       'their volumes' % path)
    return Finding(OK, 'lock path', '%s is writable' % path)


@report.guard_finder('host')
def connector_of_this_host(maintenance: maintenance.Maintenance) -> Finding:
    props = maintenance.connector_properties()
    return Finding(OK, 'host', 'os-brick connector of %s (%s), multipath %s'
                   % (props.get('host'), props.get('ip'),
                      'on' if props.get('multipath') else 'off'))


@report.guard_finder('privileges')
def device_hand_over_privileges(
        maintenance: maintenance.Maintenance) -> Finding:
    if os.geteuid() == 0:
        return Finding(OK, 'privileges', 'running as root: no rootwrap '
                       'needed')
    path = maintenance.rootwrap_config
    dirs = system.rootwrap_filter_dirs(path)
    if dirs is None:
        return Finding(FAIL, 'privileges', 'cinder_store_rootwrap_config %s '
                       'is missing: an unprivileged Glance cannot take '
                       'over attached devices' % path)
    name = system.chown_filter(dirs)
    if name:
        return Finding(OK, 'privileges', 'rootwrap filter %s admits chown '
                       'of devices' % name)
    return Finding(FAIL, 'privileges', 'no filter in %s admits chown: '
                   'install etc/glance/rootwrap.d/cinder_store.filters there'
                   % ', '.join(dirs))


def rbd_findings(maintenance: maintenance.Maintenance, fix: bool,
                 probe: bool) -> list[Finding]:
    """The Ceph keyring a userspace RBD attach reads, and connect leftovers.

    Only for a backend with ``cinder_store_rbd_keyring`` set.  Temporary
    Ceph configs of connects live for milliseconds; one older than twice
    the connect timeout was left by a worker killed inside a connect.
    """
    client = maintenance.settings.rbd
    if not client.keyring:
        return []
    return [_readable_keyring(client.keyring),
            _ceph_reachable(maintenance) if probe else Finding(
                SKIP, 'ceph', 'reachability not probed: --probe attaches '
                'an available volume read-only to prove it'),
            _leftover_ceph_configs(client, fix)]


@report.guard_finder('ceph')
def _ceph_reachable(maintenance: maintenance.Maintenance) -> Finding:
    """Attach an available volume of the backend read-only, as a reader.

    The monitors and client name come from Cinder at attach time only;
    this is the one way to prove this host reaches Ceph with its keyring.
    A download of that image arriving meanwhile waits a moment (its
    attach is retried).
    """
    if not maintenance.has_service_credentials:
        return Finding(SKIP, 'ceph', 'finding a volume needs service '
                       'credentials')
    cinder, name, volumes = report.typed_volumes(maintenance, ('available',))
    if not volumes:
        return Finding(SKIP, 'ceph', 'no available volume of type %r to '
                       'attach: checked with the first image stored' % name)
    volume = volumes[0]
    started = time.monotonic()
    with attachment.Attachment(cinder, maintenance.settings, volume,
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


@report.guard_finder('ceph keyring')
def _readable_keyring(path: str) -> Finding:
    try:
        clients = system.keyring_clients(path)
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


@report.guard_finder('rbd files')
def _leftover_ceph_configs(client: rbd.RBDClient, fix: bool) -> Finding:
    found = rules.stale_connect_files(client)
    if not found:
        return Finding(OK, 'rbd files', 'no temporary Ceph config left by '
                       'a connect')
    if not fix:
        return Finding(WARN, 'rbd files', '%d temporary Ceph config(s) left '
                       'by connects cut short (no key in them): %s'
                       % (len(found), ', '.join(found)))
    repairs.remove_connect_files(found)
    return Finding(FIXED, 'rbd files', 'removed %s' % ', '.join(found))
