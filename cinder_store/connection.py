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

"""This host's connection to a volume: the one connect, the one detach.

:func:`connect` runs os-brick's ``connect_volume`` under the volume's
lock; :func:`detach_attachment` disconnects this host and deletes the
Cinder attachment, for an attachment of this process and for one adopted
from a record or found in Cinder alike.  Nothing else in the package calls
os-brick's connect or disconnect, or deletes an attachment this host may
be connected to.
"""

import contextlib
import logging
import os
from typing import Any
from typing import Callable

from glance_store import exceptions
from os_brick.initiator import utils as brick_utils
from oslo_concurrency import processutils
from oslo_utils import excutils

from cinder_store.devices import rbd
from cinder_store import host
from cinder_store.recovery import rules
from cinder_store import settings

LOG = logging.getLogger(__name__)

_NFS_TYPES = ('nfs', 'glusterfs', 'vzstorage', 'quobyte')


def _guard_shared_targets(volume: Any) -> contextlib.AbstractContextManager:
    """os-brick's lock for backends that share targets between volumes.

    It is keyed on the volume service's uuid; Cinder may not report one
    yet, and then our own per-volume lock (always held here) has to do.
    """
    if not getattr(volume, 'service_uuid', None):
        return contextlib.nullcontext()
    return brick_utils.guard_connection({
        'shared_targets': getattr(volume, 'shared_targets', False),
        'service_uuid': getattr(volume, 'service_uuid', None)})


def check_transport(connection_info: dict, volume: Any) -> None:
    """Refuse what we cannot store bytes on faithfully.

    Encrypted volumes on any transport (we would write plaintext under a
    LUKS header) and qcow2 files on NFS-style shares (we would write raw
    bytes into a qcow2 container).
    """
    data = host.connection_properties(connection_info)
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


def connect(settings: settings.Settings, volume: Any,
            connection_info: dict) -> tuple[Any, dict]:
    """os-brick's connect under the volume's lock: (connector, device info).

    A userspace RBD connection gets the client settings Cinder does not
    send (:class:`devices.rbd.RBDClient`), and the temporary Ceph config
    file os-brick wrote for it is removed as soon as librados has read
    it: a worker killed later leaves no such file behind.
    """
    connector = host.make_connector(
        connection_info, settings.root_helper, settings.multipath,
        settings.mount_base)
    props = settings.rbd.with_client_settings(connection_info)
    with settings.locks.lock_attach(volume.id), _guard_shared_targets(volume):
        try:
            device_info = connector.connect_volume(props)
        except Exception as error:
            advice = settings.rbd.explain_failure(connection_info, error)
            if advice is None:
                raise
            raise exceptions.BackendException(
                'volume %s: %s' % (volume.id, advice)) from error
    try:
        rbd.remove_connect_files(device_info)
    except BaseException:
        with excutils.save_and_reraise_exception():
            disconnect(settings, volume, connector, connection_info,
                       device_info)
    return connector, device_info


def disconnect(settings: settings.Settings, volume: Any, connector: Any,
               connection_info: dict, device_info: dict | None) -> None:
    """os-brick's disconnect of a connection this process made (forced)."""
    with settings.locks.lock_attach(volume.id):
        _disconnect_held(volume, connector, connection_info, device_info)


def _disconnect_held(volume, connector, connection_info, device_info):
    # The one call to os-brick's disconnect; the caller holds the volume's
    # lock.  Forced: the devices go even if their flush fails.
    with _guard_shared_targets(volume):
        connector.disconnect_volume(
            host.connection_properties(connection_info), device_info,
            force=True, ignore_errors=False)


class Connection(object):
    """This process's own connection to another process's attachment.

    A userspace transport (RBD through librbd) connects per process: a
    worker reading an attachment another worker on this host made and
    recorded (:mod:`host_reads`) connects it again with the attachment's
    connection info (``recorded``, or from Cinder), and disconnects its
    own when done.
    """

    def __init__(self, cinder: Any, settings: settings.Settings,
                 volume: Any, attachment_id: str,
                 recorded: dict | None = None):
        self.settings = settings
        self.volume = volume
        self.connection_info = recorded or cinder.attachment_show(
            attachment_id).connection_info
        self.connector, self.device_info = connect(
            settings, volume, self.connection_info)

    @property
    def device_path(self) -> Any:
        return self.device_info['path']

    def close(self) -> None:
        disconnect(self.settings, self.volume, self.connector,
                   self.connection_info, self.device_info)


def detach_attachment(cinder: Any, settings: settings.Settings,
                      volume: Any, attachment_id: str,
                      device_info: dict | None = None,
                      disconnect: bool = True, connector: Any = None,
                      connection_info: dict | None = None) -> None:
    """The one detach: disconnect this host, then delete in Cinder.

    For an :class:`attachment.Attachment` of this process (which passes
    its ``connector`` and ``connection_info``) and for one adopted from a
    record or found in Cinder (connection info looked up) alike.  If the
    disconnect fails the error is raised and the Cinder attachment stays:
    it still names this host's connection, so the next reader, the image
    delete or ``cinder-store-check --fix`` can detach it again; deleting it
    would leave a host device nothing names.  ``disconnect=False`` only
    deletes it in Cinder: after a reboot, or for a lost host, the host
    connection is gone.  The connection also stays while this host holds
    another attachment of a multiattach volume
    (:func:`recovery.rules.connection_shared`).  An attachment Cinder no
    longer has is detached already (its holder got there first): nothing
    to do, no error.
    """
    # One lock over "count, disconnect, delete": the next worker that
    # counts this host's attachments of the volume sees an accurate list.
    with settings.locks.lock_attach(volume.id):
        try:
            if connection_info is None:
                connection_info = cinder.attachment_show(
                    attachment_id).connection_info
            if (disconnect and connection_info and
                    connection_info.get('driver_volume_type') and
                    not rules.connection_shared(cinder, volume,
                                                attachment_id)):
                connector = connector or host.make_connector(
                    connection_info, settings.root_helper,
                    settings.multipath, settings.mount_base)
                _disconnect_held(volume, connector, connection_info,
                                 device_info)
            cinder.attachment_delete(attachment_id)
        except exceptions.NotFound:
            LOG.debug('Attachment %s of volume %s is gone already',
                      attachment_id, volume.id)


def _chown_path(helper: str, owner: int, path: str) -> None:
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
    _chown_path(helper, os.getuid(), path)
    return lambda: _chown_path(helper, previous, path)
