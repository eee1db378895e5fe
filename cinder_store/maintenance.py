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

"""What tools outside the package may use of one configured backend.

``cinder-store-check`` and the benchmark reach a backend's Cinder client,
host settings and records through :meth:`store.Store.maintenance`, never
through the store's private attributes, so the store's insides can change
without breaking them.
"""

import threading
from typing import Any
from typing import Iterable
from typing import Sequence

from glance_store import multi_backend
from oslo_config import cfg

from cinder_store import client
from cinder_store import glance
from cinder_store import host_reads
from cinder_store import opts
from cinder_store import settings
from cinder_store import upload_records


def load_stores(config_file: str | Sequence[str],
                conf: cfg.ConfigOpts | None = None,
                overrides: Iterable[tuple[str, str, Any]] = ()
                ) -> cfg.ConfigOpts:
    """Every store of ``config_file`` (glance-api.conf), loaded as Glance does.

    ``config_file`` may be a list, later files overriding earlier ones
    (``--config-file`` given several times).  Registers glance_store's
    options, parses the files, applies ``overrides`` (``(group, option,
    value)`` triples, before any store starts; a group of None is every
    ``cinder_store`` backend), creates and verifies the stores; returns the
    ``ConfigOpts`` (``conf``, default oslo.config's global one, which
    oslo.privsep reads too).  For tools (the benchmark, the functional
    tests) that drive stores through ``glance_store.multi_backend`` outside
    Glance.
    """
    import glance_store
    conf = cfg.CONF if conf is None else conf
    conf.register_opt(cfg.DictOpt('enabled_backends'))
    glance_store.register_opts(conf)
    files = [config_file] if isinstance(config_file, str) else config_file
    conf([arg for f in files for arg in ('--config-file', f)],
         project='glance', default_config_files=[])
    multi_backend.register_store_opts(conf)
    for group, name, value in overrides:
        for each in [group] if group else backends_of_this_driver(conf):
            conf.set_override(name, value, group=each)
    multi_backend.create_multi_stores(conf)
    multi_backend.verify_store()
    return conf


def backends_of_this_driver(conf: cfg.ConfigOpts) -> list[str]:
    """The ids of ``enabled_backends`` of type ``cinder_store``, in order."""
    enabled = conf.enabled_backends or {}
    return [name for name, kind in enabled.items() if kind == 'cinder_store']


class Maintenance(object):
    """One configured (``Store.configure()``-d) backend, for tools.

    Made by :meth:`store.Store.maintenance`, which hands it the store's
    parts; it holds no reference to the store itself.
    """

    def __init__(self, backend: str | None, backend_conf: opts.BackendConf,
                 cinder: client.Cinder, settings: settings.Settings,
                 uploads: upload_records.Uploads,
                 host_reads: host_reads.HostReads,
                 probe: threading.Thread | None = None):
        #: The backend id (``[<backend-id>]``), None for single-store.
        self.backend = backend
        #: The :class:`settings.Settings` this backend attaches with.
        self.settings = settings
        #: This host's upload records (:class:`upload_records.Uploads`).
        self.uploads = uploads
        #: This host's shared reads (:class:`host_reads.HostReads`).
        self.host_reads = host_reads
        self._conf = backend_conf
        self._cinder = cinder
        self._probe = probe

    @property
    def has_service_credentials(self) -> bool:
        """Whether the backend has its own credentials (``auth_type``).

        Without them Cinder is reached only with each request's token, and
        a tool has none.
        """
        return self._cinder.credentials.has_service_credentials

    def bound_cinder(self, context: Any = None) -> client.BoundCinder:
        """The backend's Cinder client (the service user's without context).

        Errors are glance_store exceptions, as :mod:`client` maps them.
        """
        return self._cinder.bind(context)

    def glance_images(self) -> glance.GlanceImages:
        """Glance's images as the backend's service user sees them."""
        return glance.GlanceImages(self._cinder.credentials)

    @property
    def volume_type(self) -> str | None:
        """``cinder_store_volume_type``; None means Cinder's default."""
        return self._conf.cinder_store_volume_type

    @property
    def rootwrap_config(self) -> str:
        return self._conf.cinder_store_rootwrap_config

    @property
    def unknown_image_volume_age(self) -> int:
        """``cinder_store_unknown_image_volume_age``, in seconds."""
        return self._conf.cinder_store_unknown_image_volume_age

    @property
    def lock_path(self) -> str:
        return self.settings.lock_path

    def connector_properties(self) -> dict[str, Any]:
        """os-brick's connector properties of this host.

        Waits for the probe ``configure()`` started; raises what it raises.
        """
        if self._probe is not None:
            self._probe.join()
        return self.settings.connector_properties()
