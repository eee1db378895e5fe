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

"""How one backend attaches volumes on this host.

One :class:`Settings` per configured backend, made by the store from its
options: how os-brick attaches (root helper, multipath, mount base, the
RBD client settings), the lock directory, the membership of the Glance
hosts, and the recovery and contention policy.
"""

import dataclasses
from typing import Any
from typing import Callable
from typing import ClassVar

from cinder_store.devices import rbd
from cinder_store import host
from cinder_store import locks
from cinder_store import membership
from cinder_store import opts

# The fields below are named after these modules
Members = membership.Membership | membership.Alone
_Locks = locks.VolumeLocks
_RBDClient = rbd.RBDClient
_Alone = membership.Alone
_Claims = Callable[[], list[membership.Claim] | None]


@dataclasses.dataclass
class Settings(object):
    """How one backend attaches volumes on this host."""

    #: This host's locks (and where its records live)
    locks: _Locks
    #: The backend id: it names the records it leaves beside the locks,
    #: which several backends may share (None for single-store)
    backend: str | None = None
    #: What os-brick runs as root through
    root_helper: str = host.root_helper('/etc/glance/rootwrap.conf')
    multipath: bool = False
    enforce_multipath: bool = False
    #: Where NFS-style shares are mounted
    mount_base: str = '/var/lib/glance/mnt'
    #: What a userspace RBD attach needs that Cinder does not send
    rbd: _RBDClient = dataclasses.field(default_factory=_RBDClient)
    #: Which other hosts are lost (what they held may be released), who
    #: waits for a volume, who is attaching one
    membership: Members = dataclasses.field(default_factory=_Alone)
    #: Seconds after which an attachment Cinder made and nobody completed
    #: is abandoned, whoever made it
    abandoned_after: int = 600
    #: Seconds a reader waits for a volume that is not multiattach while
    #: another host holds it
    exclusive_wait: float = 300
    #: 'auto', 'true' or 'false': see :meth:`new_volume_reads_zeros`
    new_volumes_read_zeros: str = 'auto'
    #: Seconds a read attachment stays up after its last reader here (0:
    #: detached at once); see :mod:`warm_reads`
    warm_idle: float = 0
    #: Most warm read attachments this host keeps for the backend
    warm_limit: int = 64
    #: Seconds between two looks at the warm ones (:mod:`warm_reads`)
    WARM_LOOK_EVERY: ClassVar[float] = 1.0

    @classmethod
    def from_options(cls, options: opts.BackendConf, backend: str | None,
                     lock_path: str, members: Members) -> 'Settings':
        """The settings of ``backend``'s options (``[<backend>]``)."""
        return cls(
            locks=locks.VolumeLocks(lock_path),
            backend=backend,
            root_helper=host.root_helper(options.cinder_store_rootwrap_config),
            multipath=options.cinder_store_use_multipath,
            enforce_multipath=options.cinder_store_enforce_multipath,
            mount_base=options.cinder_store_mount_point_base,
            rbd=rbd.RBDClient(options.cinder_store_rbd_keyring,
                              options.cinder_store_rbd_client_timeout),
            membership=members,
            abandoned_after=options.cinder_store_abandoned_attachment_age,
            exclusive_wait=options.cinder_store_exclusive_attach_wait,
            new_volumes_read_zeros=(
                options.cinder_store_new_volumes_read_zeros),
            warm_idle=warm_idle_of(options.cinder_store_warm_read_idle,
                                   members.coordinated),
            warm_limit=options.cinder_store_warm_reads_max)

    @property
    def lock_path(self) -> str:
        return self.locks.lock_path

    def connector_properties(self) -> dict[str, Any]:
        """This host's os-brick connector properties (a fresh copy)."""
        return host.connector_properties(
            self.root_helper, self.multipath, self.enforce_multipath)

    def live_claims(self, volume_id: str, excluding: Any = None
                    ) -> _Claims:
        """``claims`` for :func:`recovery.rules.abandoned_attachments`.

        The live claims on ``volume_id``'s attachments being made, asked
        when called; None when unknown (no coordination service, or it
        cannot be asked).
        """
        return lambda: self.membership.live_claims(volume_id, excluding)

    def new_volume_reads_zeros(self, connection_info: dict) -> bool:
        """Does a volume this upload created read zeros where unwritten?

        ``auto`` trusts it of RBD only (a new RBD image has no objects);
        other backends may hand out old data (thick LVM with
        ``volume_clear = none``).
        """
        if self.new_volumes_read_zeros == 'auto':
            return connection_info.get('driver_volume_type') == 'rbd'
        return self.new_volumes_read_zeros == 'true'


#: Warm read idle time when unset: with a coordination service a delete
#: anywhere asks the holders to release; without, it waits this long
WARM_IDLE_COORDINATED = 300
WARM_IDLE_ALONE = 30


def warm_idle_of(option: int | None, coordinated: bool) -> float:
    """``cinder_store_warm_read_idle``, or its default for the deployment."""
    if option is not None:
        return option
    return WARM_IDLE_COORDINATED if coordinated else WARM_IDLE_ALONE
