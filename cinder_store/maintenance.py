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

from cinder_store import hostshare


class Maintenance(object):
    """One configured (``Store.configure()``-d) backend, for tools."""

    def __init__(self, store):
        self._store = store

    @property
    def backend(self):
        """The backend id (``[<backend-id>]``), None for single-store."""
        return self._store.backend_group

    @property
    def has_service_credentials(self):
        """Whether the backend has its own credentials (``auth_type``).

        Without them Cinder is reached only with each request's token, and
        a tool has none.
        """
        return self._store._cinder.credentials.has_service_credentials

    def cinder(self, context=None):
        """The backend's Cinder client (the service user's without context).

        Errors are glance_store exceptions, as :mod:`client` maps them.
        """
        return self._store._cinder.bind(context)

    @property
    def volume_type(self):
        """``cinder_store_volume_type``; None means Cinder's default."""
        return self._store.view.cinder_store_volume_type

    @property
    def rootwrap_config(self):
        return self._store.view.cinder_store_rootwrap_config

    @property
    def host(self):
        """The :class:`attachment.HostSettings` this backend attaches with."""
        return self._store._host

    @property
    def lock_path(self):
        return self._store._host.lock_path

    @property
    def uploads(self):
        """The upload records of this host (:class:`uploads.Uploads`)."""
        return self._store._uploads

    def shared_reads(self):
        """This host's shared-read records (:class:`hostshare.HostReaders`)."""
        return hostshare.HostReaders(self._store._host)

    def connector(self):
        """os-brick's connector properties of this host.

        Waits for the probe ``configure()`` started; raises what it raises.
        """
        if self._store.warm_up is not None:
            self._store.warm_up.join()
        return self._store._host.connector()
