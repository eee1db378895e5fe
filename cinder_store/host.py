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

"""This host as os-brick sees it: connector properties and connectors.

Connector properties and the host IP are computed once per process (they
start os-brick's privsep daemon and probe every transport, which costs
hundreds of milliseconds) and are never mutated by callers.
"""

import copy
import logging
import os
import shlex
import socket
import threading

from glance_store import exceptions
from os_brick.initiator import connector as brick_connector
from oslo_concurrency import processutils
from oslo_privsep import priv_context

LOG = logging.getLogger(__name__)

MOUNTPOINT = 'glance_store'
_NFS_TYPES = ('nfs', 'glusterfs', 'vzstorage', 'quobyte')

_lock = threading.Lock()
_cache = {}


def root_helper(rootwrap_config):
    return 'sudo glance-rootwrap %s' % rootwrap_config


def route_privsep(helper):
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


def host_ip(hostname):
    """First IPv6, else IPv4 address of ``hostname``; 127.0.0.1 last."""
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            return socket.getaddrinfo(hostname, None, family)[0][4][0]
        except (socket.gaierror, IndexError):
            continue
    return '127.0.0.1'


def connector_properties(helper, multipath, enforce_multipath):
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


def hostname():
    return socket.gethostname()


def connection_properties(connection_info):
    """What os-brick's connect/disconnect take.

    The attachment API returns a flat dict (``driver_volume_type`` beside
    ``device_path``...); the legacy API nests the same under ``data``.
    """
    data = connection_info.get('data')
    return data if isinstance(data, dict) else connection_info


def check_transport(connection_info, volume):
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


def make_connector(connection_info, helper, multipath, mount_base):
    """An os-brick connector for this attachment's transport."""
    return brick_connector.InitiatorConnector.factory(
        connection_info['driver_volume_type'], helper,
        use_multipath=multipath, device_scan_attempts=10,
        nfs_mount_point_base=mount_base,
        glusterfs_mount_point_base=mount_base,
        vzstorage_mount_point_base=mount_base,
        quobyte_mount_point_base=mount_base)


def is_nfs_style(connection_info):
    return connection_info.get('driver_volume_type', '').lower() in _NFS_TYPES


def _chown(helper, owner, path):
    processutils.execute('chown', str(owner), path, run_as_root=True,
                         root_helper=helper)


def take_ownership(path, writable, helper):
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
