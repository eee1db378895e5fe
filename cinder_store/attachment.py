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

"""The attachment lifecycle: the only code that attaches or detaches.

``Attachment.open()`` runs, in order::

    attachment_create (with this host's connector, mode rw/ro; 3.54)
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
error is logged and added to it as a note, never replacing it.
"""

import contextlib
import logging
import typing
from typing import Any
from typing import Callable
from typing import Iterable

from glance_store import exceptions
from os_brick.initiator import utils as brick_utils
from oslo_utils import excutils
from oslo_utils import strutils
import tenacity

from cinder_store import client
from cinder_store import device as device_mod
from cinder_store import host
from cinder_store.recovery import rules
from cinder_store import utils

LOG = logging.getLogger(__name__)


def _masked(connection_info):
    return strutils.mask_dict_password(connection_info)


def _guard(volume):
    """os-brick's lock for backends that share targets between volumes.

    It is keyed on the volume service's uuid; Cinder may not report one
    yet, and then our own per-volume lock (always held here) has to do.
    """
    if not getattr(volume, 'service_uuid', None):
        return contextlib.nullcontext()
    return brick_utils.guard_connection({
        'shared_targets': getattr(volume, 'shared_targets', False),
        'service_uuid': getattr(volume, 'service_uuid', None)})


class Attachment(object):
    """One host-side attachment of one volume.

    Use as a context manager, or call :meth:`open` then :meth:`close`.
    After ``open()`` returns, ``device`` is a :class:`device.Device`.
    After ``close()`` or a failed ``open()``, nothing this object created
    is left (no device handle, no host connection, no Cinder attachment),
    unless the host connection could not be disconnected: then its Cinder
    attachment stays to name it (:func:`detach_attachment`), ``stranded``
    is true, and whoever records the attachment must go on naming it.
    """

    def __init__(self, cinder: Any, settings: host.HostSettings, volume: Any,
                 writable: bool):
        self.cinder = cinder
        self.settings = settings
        self.volume = volume
        self.writable = writable
        self.id: str | None = None
        self.connection_info: dict[str, Any] = {}
        self.connector: Any = None
        self.device: device_mod.Device | None = None
        self._device_info: dict | None = None
        self.stranded = False
        # This attach's claim while it is being made (membership)
        self._claim: Any = None
        # (what, how) of each step done, undone in reverse
        self._undo: list[tuple[str, Callable[[], Any]]] = []

    @property
    def device_info(self):
        """What os-brick's ``connect_volume`` returned (None before)."""
        return self._device_info

    @property
    def device_path(self):
        """What os-brick attached: a device or file path, or a file object."""
        return self._device_info['path'] if self._device_info else None

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
                self._claim = claim
                self._create()
                claim.name(self.id)
                if on_created is not None:
                    on_created(self)
                host.check_transport(self.connection_info, self.volume)
                self._connect()
                self.cinder.attachment_complete(self.id)
            self._open_device()
        except BaseException as error:
            self._unwind(error)
            raise
        return self

    def _create(self):
        mode = 'rw' if self.writable else 'ro'
        try:
            att = self._reserve(mode)
        except Exception as error:
            self._release_reservations(error)
            raise
        self.id = att['id']
        self._undo.append(('attachment delete', self._delete_attachment))
        self.connection_info = att['connection_info']
        LOG.debug('Attachment %s of volume %s (%s): %s', self.id,
                  self.volume.id, mode, _masked(self.connection_info))

    def _reserve(self, mode):
        connector = self.settings.connector()

        def create():
            return self.cinder.attachment_create(
                self.volume.id, connector, mode, attempts=self._claim)
        try:
            return create()
        except Exception as error:
            if not client.reservation_refused(error):
                raise
            # Refused for the volume's status past the retries: a dead
            # attacher's attachment may be holding it in 'attaching'...
            if reclaim_abandoned(self.cinder, self.settings, self.volume,
                                 excluding=self._claim):
                return create()
        # ...or another host reads a volume that is not multiattach.
        return self._wait_for_turn(create, self._held_elsewhere())

    def _held_elsewhere(self):
        if getattr(self.volume, 'multiattach', False):
            return {}
        return rules.attachments_elsewhere(
            self.cinder.get_volume(self.volume.id))

    def _wait_for_turn(self, create, holders):
        """Retry ``create`` while other hosts hold the volume, bounded.

        Past ``exclusive_wait`` the refusal is raised naming the holders.
        With a coordination service, an attachment another attacher is
        making holds it too: it completes, or once abandoned it is
        deleted here (:func:`reclaim_abandoned`).  A refusal nothing
        explains (the holder detached between Cinder's answer and the
        look at its attachments) gets one more try; without ``holders``
        this call is that try.  Then it is raised.
        """
        held = dict(holders)
        spare = 1 if holders else 0  # tries left for an unexplained one
        being_made = False

        def still_held(error):
            nonlocal spare, being_made
            held.clear()
            if not client.reservation_refused(error):
                return False
            if reclaim_abandoned(self.cinder, self.settings, self.volume,
                                 excluding=self._claim):
                return True
            held.update(self._held_elsewhere())
            released = release_lost_holders(self.cinder, self.settings,
                                            self.volume, held)
            for attachment_id in released:
                del held[attachment_id]
            being_made = not held and self._being_made()
            # Released a lost host's hold: the next try may succeed.
            if held or released or being_made:
                return True
            spare -= 1
            return spare >= 0

        def waiting(retry_state):
            if being_made:
                LOG.info('Volume %s has an attachment being made; waiting '
                         'for it to complete or count as abandoned',
                         self.volume.id)
                return
            if not held:
                LOG.info('Attachment of volume %s was refused though no '
                         'other host holds it now; trying again',
                         self.volume.id)
                return
            LOG.info('Volume %s is held by %s; waiting for its readers '
                     'there to finish', self.volume.id, _named(held))
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(still_held),
            stop=utils.Deadline(self.settings.exclusive_wait),
            wait=lambda state: min(
                _BEING_MADE_POLL if being_made else _TURN_POLL,
                0.5 * 2 ** (state.attempt_number - 1)),
            sleep=utils.sleep, before_sleep=waiting, reraise=True)
        waiting(None)
        try:
            # Tell the holder: it then admits no new reader (yield_turn)
            with self.settings.membership.waiting_for(self.volume.id):
                return retrying(create)
        except Exception as error:
            if not held:
                raise
            raise exceptions.BackendException(
                'volume %s is attached on host(s) %s and is not '
                'multiattach: waited %ss (cinder_store_exclusive_attach_'
                'wait) for them to finish reading; images that several '
                'Glance hosts read at once belong on a multiattach volume '
                'type' % (self.volume.id, _named(held),
                          self.settings.exclusive_wait)) from error

    def _being_made(self):
        # Only when claims tell a live attacher's from a dead one's: a dead
        # one's is then abandoned within seconds (rules.abandoned_...)
        if self.settings.claims(self.volume.id, self._claim)() is None:
            return False
        return bool(rules.attachments_being_made(self.cinder,
                                                 self.volume.id))

    def _release_reservations(self, error):
        # When the backend fails inside attachment_create, Cinder keeps the
        # attachment 'reserved' and we never learn its id.  On an exclusive
        # volume any reservation is a leftover: nothing else can attach.
        if getattr(self.volume, 'multiattach', False):
            LOG.warning('Attach of multiattach volume %s failed; a reserved '
                        'attachment may be left in Cinder', self.volume.id)
            return
        try:
            for att in self.cinder.attachments_of(self.volume.id):
                if getattr(att, 'status', None) == 'reserved':
                    self.cinder.attachment_delete(att.id)
        except Exception as cleanup_error:
            note = ('could not release reservations on volume %s: %r'
                    % (self.volume.id, cleanup_error))
            LOG.error(note)
            error.add_note(note)

    def _connect(self):
        self.connector, self._device_info = connect(
            self.settings, self.volume, self.connection_info)
        # From here on, undoing the attachment means a full detach.
        self._undo[-1] = ('detach', self._detach)

    def _open_device(self):
        path = self.device_path
        restore = host.take_ownership(path, self.writable,
                                      self.settings.root_helper)
        if restore is not None:
            self._undo.append(('restore device owner', restore))
        self.device = device_mod.open_device(path, self.writable)
        self._undo.append(('device close', self.device.close))

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
            if self.writable and self.device is not None:
                self.device.sync()
        except BaseException as error:
            self._unwind(error)
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
        if self.device is not None:
            self.device.close()
        if self._device_info is not None and host.is_userspace(
                self._device_info):
            disconnect(self.settings, self.volume, self.connector,
                       self.connection_info, self._device_info)
        self._undo = []

    def _unwind(self, error):
        while self._undo:
            self._undo_noting(error, *self._undo.pop())

    def _undo_noting(self, error, name, step):
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

    def _note_stranded(self, failed_step):
        if failed_step in ('detach', 'attachment delete'):
            self.stranded = True

    def _detach(self):
        # Registered once Cinder named the attachment (_create).
        detach_attachment(self.cinder, self.settings, self.volume,
                          typing.cast(str, self.id),
                          self._device_info, connector=self.connector,
                          connection_info=self.connection_info)

    def _delete_attachment(self):
        self.cinder.attachment_delete(self.id)

    # -- context manager ---------------------------------------------------

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self.close()
            return False
        self._unwind(exc)
        return False


# Longest pause between tries while another host holds the volume, and
# while an attachment is being made (abandoned ones go within seconds).
_TURN_POLL = 5
_BEING_MADE_POLL = 2


def _named(holders: dict[str, str]) -> str:
    return ', '.join('%s (attachment %s)' % (h, a)
                     for a, h in sorted(holders.items()))


def connect(settings: host.HostSettings, volume: Any,
            connection_info: dict) -> tuple[Any, dict]:
    """os-brick's connect under the volume's lock: (connector, device info).

    A userspace RBD connection gets the client settings Cinder does not
    send (:class:`host.RBDClient`), and the temporary Ceph config file
    os-brick wrote for it is removed as soon as librados has read it: a
    worker killed later leaves no such file behind.
    """
    connector = host.make_connector(
        connection_info, settings.root_helper, settings.multipath,
        settings.mount_base)
    props = settings.rbd.connection_properties(connection_info)
    with settings.volume_lock(volume.id), _guard(volume):
        try:
            device_info = connector.connect_volume(props)
        except Exception as error:
            advice = settings.rbd.explain(connection_info, error)
            if advice is None:
                raise
            raise exceptions.BackendException(
                'volume %s: %s' % (volume.id, advice)) from error
    try:
        host.remove_connect_files(device_info)
    except BaseException:
        with excutils.save_and_reraise_exception():
            disconnect(settings, volume, connector, connection_info,
                       device_info)
    return connector, device_info


def disconnect(settings: host.HostSettings, volume: Any, connector: Any,
               connection_info: dict, device_info: dict | None) -> None:
    """os-brick's disconnect of a connection this process made (forced)."""
    with settings.volume_lock(volume.id):
        _disconnect(volume, connector, connection_info, device_info)


def _disconnect(volume, connector, connection_info, device_info):
    # The one call to os-brick's disconnect; the caller holds the volume's
    # lock.  Forced: the devices go even if their flush fails.
    with _guard(volume):
        connector.disconnect_volume(
            host.connection_properties(connection_info), device_info,
            force=True, ignore_errors=False)


class Connection(object):
    """This process's own connection to another process's attachment.

    A userspace transport (RBD through librbd) connects per process: a
    worker reading an attachment another worker on this host made and
    recorded (:mod:`host_reads`) connects it again with the attachment's
    connection info from Cinder, and disconnects its own when done.
    """

    def __init__(self, cinder: Any, settings: host.HostSettings, volume: Any,
                 attachment_id: str):
        self.settings = settings
        self.volume = volume
        self.connection_info = cinder.attachment_show(
            attachment_id).connection_info
        self.connector, self.device_info = connect(
            settings, volume, self.connection_info)

    @property
    def device_path(self):
        return self.device_info['path']

    def close(self):
        disconnect(self.settings, self.volume, self.connector,
                   self.connection_info, self.device_info)


def _host_holds_another(cinder, volume, attachment_id):
    """Does this host hold another attachment of a multiattach ``volume``?

    Its attachments share one host connection: disconnecting it for one
    would pull the device from under the others.
    """
    if not getattr(volume, 'multiattach', False):
        return False
    fresh = cinder.get_volume(volume.id)
    return bool(rules.attachments_here(fresh) - {attachment_id})


def reclaim_volume(cinder: Any, settings: host.HostSettings, volume: Any,
                   attachment_ids: Iterable[str] | None = None,
                   disconnect: bool = True) -> int:
    """Detach a volume's attachments, delete it, forget its locks.

    The one way cinder_store gets rid of an image-volume: a failed
    upload's unwind, an orphaned upload's reclaim (cinder-store-check
    --fix), and an image delete that Cinder first refused for the
    attachments this host left (``attachment_ids``; by default every
    attachment Cinder lists, reservations left by a failed attach
    included).  With ``disconnect=False`` (after a reboot: a recorded
    device path may name another volume's device now) attachments are only
    deleted in Cinder.  A detach that fails raises before the delete: the
    volume and the attachment stay, named, for the next try.  Returns how
    many attachments it detached.
    """
    if attachment_ids is None:
        attachment_ids = [att.id for att in cinder.attachments_of(volume.id)]
    attachment_ids = list(attachment_ids)
    for attachment_id in attachment_ids:
        detach_attachment(cinder, settings, volume, attachment_id,
                          disconnect=disconnect)
    cinder.delete_volume(volume.id)
    settings.remove_locks(volume.id)
    return len(attachment_ids)


# How long a host that let another take its turn gives it to do so
HANDOVER_WAIT = 6


def yield_turn(cinder: Any, settings: host.HostSettings, volume: Any,
               held_here: Callable[[], bool]) -> None:
    """Fair turns: wait before joining this host's hold if others wait.

    On a volume that is not multiattach, held here (``held_here()``)
    while another host waits for it (``settings.membership``), a new
    reader does not join: it waits until this host's current readers
    have finished, then gives a waiting host up to ``HANDOVER_WAIT``
    seconds to take the volume, and then attaches like any reader (when
    another host took it, it waits its turn: :class:`Attachment`).
    Bounded by ``exclusive_wait``; never fails.  Without a coordination
    service, or for a multiattach volume, returns at once.
    """
    membership = settings.membership
    if getattr(volume, 'multiattach', False) or not held_here():
        return
    waiting = membership.others_waiting(volume.id)
    if not waiting:
        return
    LOG.info('Volume %s: host(s) %s wait for it; this reader waits for '
             'the readers of this host to finish first', volume.id,
             ', '.join(sorted(waiting)))
    deadline = utils.Deadline(settings.exclusive_wait)
    _poll(held_here, deadline, 2)
    if membership.others_waiting(volume.id):
        _poll(lambda: not rules.attachments_elsewhere(
            cinder.get_volume(volume.id)), utils.Deadline(HANDOVER_WAIT), 1)


def _poll(condition: Callable[[], bool], stop: utils.Deadline,
          longest: float) -> None:
    """Wait while ``condition()`` holds, up to ``stop``."""
    try:
        tenacity.Retrying(
            retry=tenacity.retry_if_result(bool), stop=stop,
            wait=tenacity.wait_exponential(multiplier=0.1, max=longest),
            sleep=utils.sleep)(condition)
    except tenacity.RetryError:
        pass


def release_lost_attachment(cinder: Any, settings: host.HostSettings,
                            volume: Any, attachment_id: str,
                            host_name: str) -> bool:
    """Delete, in Cinder only, an attachment of the lost ``host_name``.

    Its host connection went with the host: nothing is disconnected here.
    Only for a host fenced by the operator (``--lost-host``) or out of the
    coordination group for the grace (:mod:`membership`).  Returns True.
    """
    LOG.warning('Deleting attachment %s of volume %s: host %s that made '
                'it is lost', attachment_id, volume.id, host_name)
    detach_attachment(cinder, settings, volume, attachment_id,
                      disconnect=False)
    return True


def release_lost_holders(cinder: Any, settings: host.HostSettings,
                         volume: Any, held: dict[str, str]) -> list[str]:
    """Release those of ``held`` (``{attachment id: host}``) lost hosts hold.

    Lost as ``settings.membership`` says (nobody without a coordination
    service).  Returns the attachment ids released.
    """
    if not held:
        return []
    lost = settings.membership.lost(held.values())
    return [attachment_id for attachment_id, holder in held.items()
            if holder in lost and release_lost_attachment(
                cinder, settings, volume, attachment_id, holder)]


def reclaim_abandoned(cinder: Any, settings: host.HostSettings,
                      volume: Any, excluding: Any = None) -> list[str]:
    """Delete ``volume``'s abandoned attachments in Cinder; their ids.

    Which are abandoned is :func:`recovery.rules.abandoned_attachments`
    (``excluding``: the caller's own claim, for an attach that was just
    refused).  Only in Cinder: whichever host made one never completed
    it, and this host cannot tell whether it was itself (Cinder names no
    host for an attachment not yet attached).
    """
    ids = rules.abandoned_attachments(
        cinder, volume.id, settings.abandoned_after,
        claims=settings.claims(volume.id, excluding))
    for attachment_id in ids:
        LOG.warning('Deleting attachment %s of volume %s: nobody completed '
                    'it and its attacher died (no live process claims it, '
                    'or it is over %ss old)', attachment_id,
                    volume.id, settings.abandoned_after)
        detach_attachment(cinder, settings, volume, attachment_id,
                          disconnect=False)
    return ids


def detach_attachment(cinder: Any, settings: host.HostSettings, volume: Any,
                      attachment_id: str, device_info: dict | None = None,
                      disconnect: bool = True, connector: Any = None,
                      connection_info: dict | None = None) -> None:
    """The one detach: disconnect this host, then delete in Cinder.

    For an :class:`Attachment` of this process (which passes its
    ``connector`` and ``connection_info``) and for one adopted from a
    record or found in Cinder (connection info looked up) alike.  If the
    disconnect fails the error is raised and the Cinder attachment stays:
    it still names this host's connection, so the next reader, the image
    delete or ``cinder-store-check --fix`` can detach it again; deleting it
    would leave a host device nothing names.  ``disconnect=False`` only
    deletes it in Cinder: after a reboot the host connection is gone.  The
    connection also stays while this host holds another attachment of a
    multiattach volume.  An attachment Cinder no longer has is detached
    already (its holder got there first): nothing to do, no error.
    """
    # One lock over "count, disconnect, delete": the next worker that
    # counts this host's attachments of the volume sees an accurate list.
    with settings.volume_lock(volume.id):
        try:
            if connection_info is None:
                connection_info = cinder.attachment_show(
                    attachment_id).connection_info
            if (disconnect and connection_info and
                    connection_info.get('driver_volume_type') and
                    not _host_holds_another(cinder, volume, attachment_id)):
                connector = connector or host.make_connector(
                    connection_info, settings.root_helper,
                    settings.multipath, settings.mount_base)
                _disconnect(volume, connector, connection_info, device_info)
            cinder.attachment_delete(attachment_id)
        except exceptions.NotFound:
            LOG.debug('Attachment %s of volume %s is gone already',
                      attachment_id, volume.id)
