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

"""This host, as os-brick sees it.

Connector properties and the host IP are computed once per process (they
start os-brick's privsep daemon and probe every transport, which costs
hundreds of milliseconds) and are never mutated by callers.
"""

import copy
import os
import shlex
import socket
import threading
from typing import Any

from os_brick.initiator import connector as brick_connector
from oslo_privsep import priv_context

MOUNTPOINT = 'glance_store'

_lock = threading.Lock()
_cache: dict[tuple, dict] = {}


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


def forget_connector_properties() -> None:
    """Forget what :func:`connector_properties` computed.

    The next call probes the host again (after its initiators changed;
    and for tests, which play several hosts in one process).
    """
    with _lock:
        _cache.clear()


def hostname() -> str:
    return socket.gethostname()


def connection_properties(connection_info: dict) -> dict[str, Any]:
    """What os-brick's connect/disconnect take.

    The attachment API returns a flat dict (``driver_volume_type`` beside
    ``device_path``...); the legacy API nests the same under ``data``.
    """
    data = connection_info.get('data')
    return data if isinstance(data, dict) else connection_info


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
