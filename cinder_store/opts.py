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

"""Configuration options of cinder_store and the per-backend view of them.

Every option lives in the backend's own group (``[<backend-id>]``) and falls
back to ``[backend_defaults]`` when unset there.

Naming: glance_store's legacy loader registers the ``OPTIONS`` of *every*
installed driver into ``[glance_store]``, so our names must never equal an
in-tree option name with a different definition (``DuplicateOptError`` at
Glance start-up).  Ours therefore all start with ``cinder_store_`` and avoid
the in-tree ``cinder_store_*`` credential names; the in-tree names are still
read from a backend section, with a deprecation warning, so that switching
``enabled_backends = x:cinder`` to ``x:cinder_store`` is a one-word change.
"""

import copy
import typing
from typing import Any
from typing import Generic
from typing import TypeVar

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

SHARED_GROUP = 'backend_defaults'
SAMPLE_GROUP = 'cinder_store'


def _renamed_from(old: str) -> list[cfg.DeprecatedOpt]:
    return [cfg.DeprecatedOpt(old)]


OPTIONS = [
    cfg.StrOpt('cinder_store_volume_type',
               deprecated_opts=_renamed_from('cinder_volume_type'),
               help='Cinder volume type of new image-volumes. Unset means '
                    'Cinder\'s default type. It is checked at start-up '
                    '(a warning, never a failure, when Cinder is '
                    'unreachable) and it is how images written before '
                    'multi-store are matched to this backend. Encrypted '
                    'types are refused: image bytes would be written as '
                    'plaintext under a LUKS header.'),
    cfg.IntOpt('cinder_store_state_transition_timeout',
               default=300, min=1,
               deprecated_opts=_renamed_from(
                   'cinder_state_transition_timeout'),
               help='Seconds to wait for a volume to leave a transitional '
                    'status (creating, extending). Polling starts at 0.1 s '
                    'and backs off to 2 s.'),
    cfg.IntOpt('cinder_store_attach_retry_attempts',
               default=15, min=1,
               deprecated_opts=_renamed_from(
                   'cinder_attachment_retry_attempts'),
               help='Attempts for an attachment create that Cinder refuses '
                    'because the volume is in a transitional state (several '
                    'readers attaching one image at once). Waits are '
                    'random, growing from up to 0.05 s to up to 1 s; the '
                    'default budget is about 10 s.'),
    cfg.IntOpt('cinder_store_http_retries',
               default=3, min=0,
               deprecated_opts=_renamed_from('cinder_http_retries'),
               help='Retries of a Cinder call that failed before reaching '
                    'Cinder (connection refused or reset), or of an '
                    'idempotent call that got a 5xx. 4xx answers are never '
                    'retried blindly.'),
    cfg.BoolOpt('cinder_store_use_multipath',
                default=False,
                deprecated_opts=_renamed_from('cinder_use_multipath'),
                help='Attach volumes through multipath (os-brick).'),
    cfg.BoolOpt('cinder_store_enforce_multipath',
                default=False,
                deprecated_opts=_renamed_from('cinder_enforce_multipath'),
                help='Fail an attach when multipathd is not running, '
                     'instead of falling back to a single path. Only '
                     'meaningful with cinder_store_use_multipath.'),
    cfg.StrOpt('cinder_store_mount_point_base',
               default='/var/lib/glance/mnt',
               deprecated_opts=_renamed_from('cinder_mount_point_base'),
               help='Directory under which NFS-style shares are mounted.'),
    cfg.IntOpt('cinder_store_abandoned_attachment_age',
               default=600, min=1,
               help='Seconds after which an attachment that Cinder finished '
                    'making (status attaching, attached_at that long ago) '
                    'but nobody completed counts as abandoned: its '
                    'attacher died, on this host or another. A volume '
                    'holding one refuses every new reservation, so the next '
                    'reader, the image delete and cinder-store-check --fix '
                    'delete it. Keep it well above the longest attach '
                    '(os-brick connect) a host may take.'),
    cfg.IntOpt('cinder_store_exclusive_attach_wait',
               default=300, min=0,
               help='Seconds a download waits for an image-volume that is '
                    'not multiattach while another Glance host holds it '
                    '(Cinder allows one attachment of such a volume; a '
                    'host holds it while any of its readers reads). The '
                    'download then fails naming the holding host. A boot '
                    'storm across hosts makes them take turns; a '
                    'multiattach volume type lets every host read at '
                    'once.'),
    cfg.IntOpt('cinder_store_warm_read_idle',
               min=0,
               help='Seconds a download\'s read attachment stays up after '
                    'its last reader on this host, so that the next '
                    'download of the image, on any worker of the host, '
                    'reads at once with no Cinder call. 0 detaches after '
                    'every download. Unset: 300 with '
                    'cinder_store_coordination_url (a delete or an '
                    'exclusive attach on another host asks the holders to '
                    'release it, within seconds), 30 without (a delete on '
                    'another host cannot ask: it waits up to this long for '
                    'the holder to let go). While warm, Cinder shows the '
                    'image-volume in-use: retype or migrate it after '
                    'cinder-store-check --drain.'),
    cfg.IntOpt('cinder_store_warm_reads_max',
               default=64, min=1,
               help='Most read attachments one Glance host keeps warm for '
                    'this backend; the least recently read goes first. '
                    'Each holds a Cinder attachment and, for kernel '
                    'transports, a host block device; a warm one holds no '
                    'file descriptor.'),
    cfg.StrOpt('cinder_store_coordination_url',
               secret=True,
               help='tooz URL of the coordination service through which '
                    'Glance hosts learn which of them are alive (for '
                    'example etcd3+http://HOST:2379, the service Cinder\'s '
                    '[coordination] backend_url names). With it, what a '
                    'host held (read attachments, the volumes of uploads '
                    'it never finished) is released by the others once it '
                    'has been out of the group for '
                    'cinder_store_lost_host_grace seconds. Without it, '
                    'cinder-store-check --fix --lost-host NAME does the '
                    'same on the operator\'s word.'),
    cfg.IntOpt('cinder_store_lost_host_grace',
               default=60, min=0,
               help='Seconds a Glance host must stay out of the '
                    'coordination group (after its membership expired: '
                    'tooz\'s membership timeout, 30 s for etcd unless the '
                    'URL sets membership_timeout) before other hosts '
                    'release what it held. A host that was only frozen or '
                    'cut off and comes back later fails the reads and '
                    'uploads it had open; it never serves wrong bytes.'),
    cfg.IntOpt('cinder_store_unknown_image_volume_age',
               default=3600, min=1,
               help='Seconds an available image-volume must stay untouched '
                    '(its updated_at) before cinder-store-check counts it '
                    'as one Glance will never know, when its image is gone '
                    'from Glance, deleted, killed, still queued or saving, '
                    'or stored elsewhere; --fix then deletes it. An upload '
                    'in progress keeps its volume attached, so it is never '
                    'idle this long; the default leaves a wide margin.'),
    cfg.StrOpt('cinder_store_rbd_keyring',
               help='Ceph client keyring file for volumes Cinder attaches '
                    'through RBD (os-brick in userspace, librbd: no kernel '
                    'module). Cinder never sends a key; this file must '
                    'hold the key of the client Cinder names (its '
                    'rbd_user), readable by Glance. Unset means '
                    '/etc/ceph/<cluster>.client.<user>.keyring, where '
                    'os-brick looks by default. The key is read by '
                    'librados from the file: it is never copied into a '
                    'log, an exception or a temporary file.'),
    cfg.IntOpt('cinder_store_rbd_client_timeout',
               default=30, min=0,
               help='Seconds a librados client of an RBD volume waits to '
                    'connect to the monitors and for each monitor or OSD '
                    'operation before the attach or the transfer fails. '
                    '0 means librados\' own (300 s for a connect, no '
                    'limit for I/O): a frozen cluster would then hang a '
                    'Glance request.'),
    cfg.StrOpt('cinder_store_lock_path',
               help='Directory for the external (inter-process) locks that '
                    'serialise attach and detach of one volume between '
                    'Glance workers on this host. Unset means '
                    '[oslo_concurrency] lock_path. One of the two is '
                    'required: the store refuses to start without it.'),
    cfg.StrOpt('cinder_store_new_volumes_read_zeros',
               default='auto', choices=[
                   ('auto', 'true for volumes attached through RBD (a new '
                            'RBD image reads zeros), false otherwise'),
                   ('true', 'a new volume of this backend reads zeros '
                            'wherever it was never written'),
                   ('false', 'a new volume may hold old data (thick LVM '
                             'with volume_clear = none, encrypted volumes)')],
               help='Whether a new volume of this backend reads zeros where '
                    'it was never written. Runs of zeros in an image are '
                    'never written as data: where a new volume reads '
                    'zeros they are skipped (the volume stays thin), '
                    'otherwise they are zeroed by the device (a hole on a '
                    'file or thin device, BLKZEROOUT, RBD write_zeroes) or, '
                    'as a last resort, written. Set true only when the '
                    'backend guarantees it: a wrong true serves old data '
                    'inside images.'),
    cfg.BoolOpt('cinder_store_extend_online',
                default=True,
                deprecated_opts=_renamed_from('cinder_do_extend_attached'),
                help='When an image of unknown size outgrows its volume, '
                     'extend the volume while attached (Cinder '
                     'microversion 3.42) where the transport can see the '
                     'new size; otherwise, or when false, detach, extend '
                     'and re-attach.'),
    cfg.StrOpt('cinder_store_rootwrap_config',
               default='/etc/glance/rootwrap.conf',
               deprecated_opts=_renamed_from('rootwrap_config'),
               help='rootwrap configuration used to build the root helper '
                    '"sudo glance-rootwrap <file>" handed to os-brick.'),
    cfg.StrOpt('cinder_store_service_type',
               default='block-storage',
               help='Service type of Cinder in the Keystone catalog '
                    '(aliases such as volumev3 are understood).'),
    cfg.StrOpt('cinder_store_interface',
               default='public',
               choices=['public', 'internal', 'admin'],
               help='Endpoint interface used to reach Cinder. Use internal '
                    'to keep image traffic off public endpoints.'),
    cfg.StrOpt('cinder_store_region_name',
               deprecated_opts=_renamed_from('cinder_os_region_name'),
               help='Region of the Cinder endpoint.'),
    cfg.StrOpt('cinder_store_endpoint_override',
               help='Cinder endpoint URL to use instead of the catalog, '
                    'for example http://cinder:8776/v3/%(project_id)s. '
                    '%(project_id)s is filled from the credentials in use.'),
    cfg.BoolOpt('cinder_store_send_service_token',
                default=False,
                help='With service credentials configured (auth_type), act '
                     'with the requesting user\'s token and send the service '
                     'credentials\' token alongside it as X-Service-Token. '
                     'When false, service credentials act alone.'),
]

# In-tree option names that are not a plain rename of one of ours: they are
# read as a fallback (see cinder_store.auth) and warned about.
LEGACY_OPTIONS = [
    cfg.StrOpt('cinder_catalog_info',
               help='Deprecated in-tree option: use '
                    'cinder_store_service_type and cinder_store_interface.'),
    cfg.StrOpt('cinder_endpoint_template',
               help='Deprecated in-tree option: use '
                    'cinder_store_endpoint_override.'),
    cfg.StrOpt('cinder_ca_certificates_file',
               help='Deprecated in-tree option: use cafile.'),
    cfg.BoolOpt('cinder_api_insecure',
                help='Deprecated in-tree option: use insecure.'),
    cfg.StrOpt('cinder_store_auth_address',
               help='Deprecated in-tree option: use auth_type and auth_url.'),
    cfg.StrOpt('cinder_store_user_name',
               help='Deprecated in-tree option: use username.'),
    cfg.StrOpt('cinder_store_user_domain_name',
               help='Deprecated in-tree option: use user_domain_name.'),
    cfg.StrOpt('cinder_store_password', secret=True,
               help='Deprecated in-tree option: use password.'),
    cfg.StrOpt('cinder_store_project_name',
               help='Deprecated in-tree option: use project_name.'),
    cfg.StrOpt('cinder_store_project_domain_name',
               help='Deprecated in-tree option: use project_domain_name.'),
    cfg.StrOpt('cinder_store_application_credential_id',
               help='Deprecated in-tree option: use '
                    'auth_type = v3applicationcredential.'),
    cfg.StrOpt('cinder_store_application_credential_secret', secret=True,
               help='Deprecated in-tree option: use '
                    'application_credential_secret.'),
]


def keystone_options() -> list[cfg.Opt]:
    """keystoneauth1's session options plus auth_type / auth_section."""
    return (ks_loading.get_session_conf_options() +
            ks_loading.get_auth_common_conf_options())


_DEFAULTS = {o.dest: o.default for o in OPTIONS + keystone_options()}
_NAMES = frozenset(_DEFAULTS) | {o.dest for o in LEGACY_OPTIONS}
T = TypeVar('T')


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Options for oslo-config-generator (namespace ``cinder_store``).

    The sample shows them under ``[cinder_store]``; in glance-api.conf they
    go in each ``[<backend-id>]`` section or in ``[backend_defaults]``.
    The in-tree option names the driver still reads are listed too, each
    deprecated for removal and naming its replacement; the renamed ones
    appear as deprecated names of their replacements.
    """
    sample = (copy.deepcopy(OPTIONS) + keystone_options() +
              ks_loading.get_auth_plugin_conf_options('password') +
              _deprecated_copies(LEGACY_OPTIONS))
    return [(SAMPLE_GROUP, sample)]


def _deprecated_copies(options: list[cfg.Opt]) -> list[cfg.Opt]:
    """Copies of the in-tree names still read, marked deprecated."""
    marked = copy.deepcopy(options)
    for opt in marked:
        opt.deprecated_for_removal = True
        instead = (opt.help or '').split(': ', 1)[-1]  # "use <...>."
        opt.deprecated_reason = ('glance_store\'s in-tree cinder driver '
                                 'name, still read with a warning. '
                                 + instead[:1].upper() + instead[1:])
    return marked


def safe_register(conf: cfg.ConfigOpts, opts: list[cfg.Opt],
                  group: str | None) -> None:
    for opt in opts:
        try:
            conf.register_opt(opt, group=group)
        except cfg.DuplicateOptError:
            # Same name already registered by another driver (the in-tree
            # cinder store shares [backend_defaults]); both read one key.
            pass


class _Option(Generic[T]):
    """One registered option of a :class:`BackendConf`, typed."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, view: 'BackendConf', owner: type | None = None) -> T:
        return typing.cast(T, view.value(self.name))


class BackendConf(object):
    """Read-only view of one backend's options.

    ``view.<option>`` is the value in ``[<backend>]`` when set there, else
    the value in ``[backend_defaults]``, else the option's default.  Every
    option of ``OPTIONS``, ``LEGACY_OPTIONS`` and ``keystone_options()`` is
    readable, by its name as an attribute (typed; an unknown name is an
    ``AttributeError``) or by :meth:`value`.
    """

    cinder_store_volume_type = _Option[str | None]()
    cinder_store_state_transition_timeout = _Option[int]()
    cinder_store_attach_retry_attempts = _Option[int]()
    cinder_store_http_retries = _Option[int]()
    cinder_store_use_multipath = _Option[bool]()
    cinder_store_enforce_multipath = _Option[bool]()
    cinder_store_mount_point_base = _Option[str]()
    cinder_store_abandoned_attachment_age = _Option[int]()
    cinder_store_exclusive_attach_wait = _Option[int]()
    cinder_store_warm_read_idle = _Option[int | None]()
    cinder_store_warm_reads_max = _Option[int]()
    cinder_store_coordination_url = _Option[str | None]()
    cinder_store_lost_host_grace = _Option[int]()
    cinder_store_unknown_image_volume_age = _Option[int]()
    cinder_store_rbd_keyring = _Option[str | None]()
    cinder_store_rbd_client_timeout = _Option[int]()
    cinder_store_lock_path = _Option[str | None]()
    cinder_store_new_volumes_read_zeros = _Option[str]()
    cinder_store_extend_online = _Option[bool]()
    cinder_store_rootwrap_config = _Option[str]()
    cinder_store_service_type = _Option[str]()
    cinder_store_interface = _Option[str]()
    cinder_store_region_name = _Option[str | None]()
    cinder_store_endpoint_override = _Option[str | None]()
    cinder_store_send_service_token = _Option[bool]()
    # keystoneauth1's session options
    cafile = _Option[str | None]()
    certfile = _Option[str | None]()
    keyfile = _Option[str | None]()
    insecure = _Option[bool]()
    timeout = _Option[int | None]()
    # The in-tree driver's names, still read (LEGACY_OPTIONS)
    cinder_catalog_info = _Option[str | None]()
    cinder_endpoint_template = _Option[str | None]()
    cinder_ca_certificates_file = _Option[str | None]()
    cinder_api_insecure = _Option[bool | None]()
    cinder_store_auth_address = _Option[str | None]()
    cinder_store_user_name = _Option[str | None]()
    cinder_store_user_domain_name = _Option[str | None]()
    cinder_store_password = _Option[str | None]()
    cinder_store_project_name = _Option[str | None]()
    cinder_store_project_domain_name = _Option[str | None]()
    cinder_store_application_credential_id = _Option[str | None]()
    cinder_store_application_credential_secret = _Option[str | None]()

    def __init__(self, conf: cfg.ConfigOpts, backend: str | None):
        self.conf = conf
        self.backend = backend or SHARED_GROUP
        opts = OPTIONS + keystone_options()
        safe_register(conf, opts, SHARED_GROUP)
        if self.backend != SHARED_GROUP:
            # The in-tree names go in our own group only: registered in
            # [backend_defaults] with our definitions they would clash with
            # the in-tree driver's (first one wins, the other half-fails).
            safe_register(conf, opts + LEGACY_OPTIONS, self.backend)
            # A default of None in the backend group is how we tell
            # "unset here" from "set to the default here".
            for opt in opts + LEGACY_OPTIONS:
                conf.set_default(opt.dest, None, group=self.backend)

    def value(self, name: str) -> Any:
        """The option ``name``'s value; AttributeError for an unknown name."""
        if name not in _NAMES:
            raise AttributeError('%s is not a cinder_store option' % name)
        value = self._get_in_group(self.backend, name)
        if value is None and self.backend != SHARED_GROUP:
            value = self._get_in_group(SHARED_GROUP, name)
        return value

    def _get_in_group(self, group: str, name: str) -> Any:
        try:
            return getattr(self.conf[group], name)
        except cfg.NoSuchOptError:
            return None  # an in-tree name nobody registered in that group

    def group_with(self, name: str) -> str | None:
        """The group in which ``name`` is set, or None when set nowhere.

        A value equal to the option's default in [backend_defaults] counts
        as unset: the two cannot be told apart there.
        """
        if (self.backend != SHARED_GROUP and
                self._get_in_group(self.backend, name) is not None):
            return self.backend
        value = self._get_in_group(SHARED_GROUP, name)
        if value is not None and value != _DEFAULTS.get(name):
            return SHARED_GROUP
        return None
