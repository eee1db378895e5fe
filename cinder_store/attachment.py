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

"""The attachment lifecycle: attach a volume here, and undo it all.

``Attachment.open()`` runs, in order::

    attachment_create (with this host's connector, mode rw/ro; 3.54),
                                    waiting its turn when refused
                                    (contention.reserve)
    transport checks (encrypted, qcow2 on NFS)
    os-brick connect_volume         (under the volume's external lock)
    attachment_complete
    open the device (never truncating)

and ``close()`` undoes exactly the steps that succeeded, in reverse::

    fsync + close the device        (writes: a failure fails the upload)
    os-brick disconnect_volume      (under the lock; forced; skipped while
                                     this host holds another attachment of
                                     a multiattach volume)
    attachment_delete               (under the same lock)

When a step fails, the caller sees that step's exception; every cleanup
error is logged and added to it as a note, never replacing it.  The
connect and the detach are :mod:`connection`'s; what a failed or
refused attach leaves for others is released by :mod:`recovery.repairs`.
"""

import logging
import typing
from typing import Any
from typing import Callable

from oslo_utils import strutils

from cinder_store import connection
from cinder_store import contention
from cinder_store import devices
from cinder_store.recovery import repairs
from cinder_store import settings

LOG = logging.getLogger(__name__)


class Attachment(object):
    """One host-side attachment of one volume.

    Use as a context manager, or call :meth:`open` then :meth:`close`.
    After ``open()`` returns, ``device`` is a :class:`devices.Device`
    (reading it before is a ``RuntimeError``).
    After ``close()`` or a failed ``open()``, nothing this object created
    is left (no device handle, no host connection, no Cinder attachment),
    unless the host connection could not be disconnected: then its Cinder
    attachment stays to name it (:func:`connection.detach_attachment`),
    ``stranded`` is true, and whoever records the attachment must go on
    naming it.
    """

    def __init__(self, cinder: Any, settings: settings.Settings,
                 volume: Any, writable: bool):
        self.cinder = cinder
        self.settings = settings
        self.volume = volume
        self.writable = writable
        self.id: str | None = None
        self.connection_info: dict[str, Any] = {}
        self.connector: Any = None
        self._device: devices.Device | None = None
        self.device_info: dict | None = None
        self.stranded = False
        # (what, how) of each step done, undone in reverse
        self._undo: list[tuple[str, Callable[[], Any]]] = []

    @property
    def device(self) -> devices.Device:
        """The open device (after :meth:`open`)."""
        if self._device is None:
            raise RuntimeError('attachment %s of volume %s is not open'
                               % (self.id, self.volume.id))
        return self._device

    @property
    def device_path(self) -> Any:
        """What os-brick attached: a device or file path, or a file object."""
        return self.device_info['path'] if self.device_info else None

    # -- opening -----------------------------------------------------------

    def open(self, on_created: Callable[['Attachment'], None] | None = None
             ) -> 'Attachment':
        """Attach; ``on_created(self)`` runs as soon as ``id`` is known.

        If ``on_created`` raises, the attachment is unwound like any other
        failed step.
        """
        try:
            # Until Cinder sees it complete, an attachment of ours left
            # 'attaching' must not look abandoned (rules.abandoned_...)
            with self.settings.membership.attaching(self.volume.id) as claim:
                claim.name_attachment(self._create_attachment(claim))
                if on_created is not None:
                    on_created(self)
                connection.check_transport(self.connection_info,
                                           self.volume)
                self._connect_here()
                self.cinder.attachment_complete(self.id)
            self._open_device()
        except BaseException as error:
            self._unwind_steps(error)
            raise
        return self

    def _create_attachment(self, claim: Any) -> str:
        mode = 'rw' if self.writable else 'ro'
        try:
            att = contention.reserve_volume(self.cinder, self.settings,
                                            self.volume, mode, claim)
        except Exception as error:
            repairs.release_reservations(self.cinder, self.volume, error)
            raise
        self.id = att['id']
        self._undo.append(('attachment delete', self._delete_attachment))
        self.connection_info = att['connection_info']
        LOG.debug('Attachment %s of volume %s (%s): %s', self.id,
                  self.volume.id, mode,
                  strutils.mask_dict_password(self.connection_info))
        return att['id']

    def _connect_here(self) -> None:
        self.connector, self.device_info = connection.connect(
            self.settings, self.volume, self.connection_info)
        # From here on, undoing the attachment means a full detach.
        self._undo[-1] = ('detach', self._detach_here)

    def _open_device(self) -> None:
        path = self.device_path
        restore = connection.take_ownership(path, self.writable,
                                            self.settings.root_helper)
        if restore is not None:
            self._undo.append(('restore device owner', restore))
        self._device = devices.open_device(path, self.writable)
        self._undo.append(('device close', self._device.close))

    # -- closing -----------------------------------------------------------

    def close(self) -> bool:
        """Flush (writes), then undo every step; raise the first failure.

        For a write, a failed fsync or disconnect raises: the bytes may not
        be on the volume.  For a read the bytes were already delivered, so
        a failed detach is logged (at ERROR) and not raised.  Returns
        whether every step succeeded: False means the attachment is still
        up (``stranded``).
        """
        try:
            if self.writable and self._device is not None:
                self._device.sync()
        except BaseException as error:
            self._unwind_steps(error)
            raise
        first = None
        while self._undo:
            name, step = self._undo.pop()
            try:
                step()
            except Exception as error:
                LOG.error('Detach of volume %s: %s failed: %s',
                          self.volume.id, name, error)
                self._note_stranded(name)
                if first is None:
                    first = error
        if first is not None and self.writable:
            raise first
        return not self.stranded

    def close_keeping_attachment(self) -> None:
        """Close this process's device handle; leave the attachment up.

        For a read-only attachment other processes on this host go on
        using (:mod:`host_reads`); the last of them detaches it.  A
        userspace connection (RBD) is this process's own, the others made
        theirs: it is disconnected here.
        """
        if self._device is not None:
            self._device.close()
        if self.device_info is not None and devices.is_userspace(
                self.device_info):
            connection.disconnect(self.settings, self.volume,
                                  self.connector, self.connection_info,
                                  self.device_info)
        self._undo = []

    def _unwind_steps(self, error: BaseException) -> None:
        while self._undo:
            self._undo_noting(error, *self._undo.pop())

    def _undo_noting(self, error: BaseException, name: str,
                     step: Callable[[], Any]) -> None:
        """Run one undo step; a failure is logged and noted on ``error``."""
        try:
            step()
        except Exception as cleanup_error:
            self._note_stranded(name)
            note = ('while unwinding attachment %s of volume %s, %s failed '
                    'too: %r' % (self.id, self.volume.id, name,
                                 cleanup_error))
            LOG.error(note)
            error.add_note(note)

    def _note_stranded(self, failed_step: str) -> None:
        if failed_step in ('detach', 'attachment delete'):
            self.stranded = True

    def _detach_here(self) -> None:
        # Registered once Cinder named the attachment (_create).
        connection.detach_attachment(
            self.cinder, self.settings, self.volume,
            typing.cast(str, self.id), self.device_info,
            connector=self.connector, connection_info=self.connection_info)

    def _delete_attachment(self) -> None:
        self.cinder.attachment_delete(self.id)

    # -- context manager ---------------------------------------------------

    def __enter__(self) -> 'Attachment':
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
            return
        self._unwind_steps(exc)
