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

"""The glance_store ``Store`` for ``enabled_backends = <id>:cinder_store``.

This class only wires the pieces together: options (:mod:`opts`),
identity (:mod:`auth`), Cinder calls (:mod:`client`), the attachment
lifecycle (:mod:`attachment`), byte moving (:mod:`dataio`), the write
path that grows the volume (:mod:`upload`), shared reads in this process
(:mod:`process_reads`, across processes :mod:`host_reads`) and the crash
records of uploads (:mod:`upload_records`), which other Glance hosts are
alive (:mod:`membership`) and what a host among several tidies up
(:mod:`housekeeping`).
"""

import logging
import threading
from typing import Any
from typing import Iterator

from glance_store import capabilities
from glance_store import driver
from glance_store import exceptions
import os_brick
from os_brick import opts as brick_opts
from oslo_concurrency import opts as lockutils_opts
from oslo_utils import excutils

from cinder_store import auth
from cinder_store import client
from cinder_store import dataio
from cinder_store import host
from cinder_store import host_reads
from cinder_store import housekeeping
from cinder_store import location
from cinder_store import maintenance
from cinder_store import membership
from cinder_store import metadata
from cinder_store import opts
from cinder_store import process_reads
from cinder_store.recovery import repairs
from cinder_store import settings
from cinder_store import upload
from cinder_store import upload_records
from cinder_store import warm_reads

LOG = logging.getLogger(__name__)

# glance_store looks the location class up as <Store.__module__>.StoreLocation
StoreLocation = location.StoreLocation


class Store(driver.Store):
    """Glance images on Cinder volumes, attached through os-brick."""

    _CAPABILITIES = (capabilities.BitMasks.READ_RANDOM |
                     capabilities.BitMasks.WRITE_ACCESS |
                     capabilities.BitMasks.DRIVER_REUSABLE)
    OPTIONS = opts.OPTIONS
    EXAMPLE_URL = 'cinder://<backend-id>/<volume-id>'

    # Set by configure(): glance_store configures a store before any use.
    _cinder: client.Cinder
    _settings: settings.Settings
    _host_reads: host_reads.HostReads
    _process_reads: process_reads.ProcessReads
    _uploads: upload_records.Uploads
    #: The thread probing this host's connector, started by configure().
    host_probe: threading.Thread | None = None
    #: Periodic tidying among several hosts (with a coordination service).
    housekeeper: housekeeping.Housekeeping | None = None
    #: Looks after this host's warm read attachments (warm reads on).
    keeper: warm_reads.Keeper | None = None

    def __init__(self, conf: Any, backend: str | None = None):
        super(Store, self).__init__(conf, backend=backend)
        self.backend_conf = opts.BackendConf(conf, backend)
        self._url_prefix = ('cinder://%s/' % backend if backend
                            else 'cinder://')

    def maintenance(self) -> maintenance.Maintenance:
        """What tools (cinder-store-check, the benchmark) may use of it.

        See :class:`maintenance.Maintenance`; only once configured.
        """
        return maintenance.Maintenance(
            self.backend_group, self.backend_conf, self._cinder,
            self._settings,
            self._uploads, self._host_reads, self.host_probe)

    def get_schemes(self) -> tuple[str, ...]:
        # The entry-point name must be a scheme too: glance_store finds a
        # backend's store by its type string (get_store_from_store_identifier)
        return ('cinder_store', location.SCHEME)

    # -- configuration -----------------------------------------------------

    def configure(self, re_raise_bsc: bool = False) -> None:
        # Problems that would otherwise surface as a leaked attachment at
        # detach time stop Glance at start-up, whatever re_raise_bsc says.
        self._configure_runtime()
        super(Store, self).configure(re_raise_bsc=re_raise_bsc)

    def _lock_path(self) -> str:
        for group, group_opts in lockutils_opts.list_opts():
            opts.safe_register(self.conf, group_opts, group)
        path = (self.backend_conf.cinder_store_lock_path or
                self.conf.oslo_concurrency.lock_path)
        if not path:
            raise exceptions.BadStoreConfiguration(
                store_name='cinder_store',
                reason='[%s] cinder_store_lock_path or [oslo_concurrency] '
                       'lock_path must be set: attach and detach take an '
                       'inter-process lock per volume'
                       % self.backend_conf.backend)
        return path

    def _configure_runtime(self) -> None:
        options = self.backend_conf
        lock_path = self._lock_path()
        for group, group_opts in brick_opts.list_opts():
            opts.safe_register(self.conf, group_opts, group)
        os_brick.setup(self.conf)
        self._cinder = client.Cinder(
            auth.Credentials(options), options.cinder_store_http_retries,
            options.cinder_store_attach_retry_attempts,
            options.cinder_store_state_transition_timeout)
        members = membership.for_url(options.cinder_store_coordination_url,
                                     options.cinder_store_lost_host_grace)
        self._settings = settings.Settings.from_options(
            options, self.backend_group, lock_path, members)
        host.route_privsep(self._settings.root_helper)
        self._host_reads = host_reads.HostReads(self._settings)
        self._process_reads = process_reads.ProcessReads(self._host_reads)
        self._uploads = upload_records.Uploads(self._settings)
        self._keep_reads_warm()
        self.host_probe = threading.Thread(
            target=self._probe_host, name='cinder_store-probe', daemon=True)
        self.host_probe.start()

    def _keep_reads_warm(self) -> None:
        if self._settings.warm_idle <= 0:
            return
        if not self._cinder.credentials.has_service_credentials:
            # Releasing a warm attachment later needs a token of our own
            LOG.info('[%s] has no service credentials: read attachments '
                     'are detached after each download (no warm reads)',
                     self.backend_conf.backend)
            self._settings.warm_idle = 0
            return
        self.keeper = warm_reads.Keeper(self._host_reads,
                                        lambda: self._cinder.bind(None))
        self.keeper.start()

    def _probe_host(self) -> None:
        # os-brick's host probe (initiator names, multipath, NVMe) takes
        # ~0.6 s here; done beside Glance's start-up, not in the first
        # upload.  The result is cached per process (host module).
        try:
            self._settings.connector_properties()
        except Exception as e:
            LOG.warning('Probing this host for its connector properties '
                        'failed; the first attach will retry: %s', e)
        self._report_orphans()
        if self._settings.membership.coordinated:
            self._join_hosts()

    def _join_hosts(self) -> None:
        # Joining is retried whenever membership is asked; the sweep
        # lists volumes of every project, with the service credentials.
        try:
            self._settings.membership.start()
        except Exception as e:
            LOG.warning('Could not join the Glance hosts group through the '
                        'coordination service yet: %s', e)
        if not self._cinder.credentials.has_service_credentials:
            LOG.warning('[%s] has cinder_store_coordination_url but no '
                        'service credentials: what lost hosts held is '
                        'released only when a reader or a delete meets '
                        'it, and lock files of volumes other hosts '
                        'deleted stay until cinder-store-check --fix',
                        self.backend_conf.backend)
            return
        self.housekeeper = housekeeping.Housekeeping(
            lambda: self._cinder.bind(None), self._settings,
            self.backend_conf.cinder_store_volume_type,
            max(10, self.backend_conf.cinder_store_lost_host_grace / 2),
            lambda: (self._host_reads.recorded_volumes() +
                     self._uploads.volume_ids()))
        self.housekeeper.start()

    def _report_orphans(self) -> None:
        # Only reported: deleting volumes is left to the operator's
        # cinder-store-check --fix, which checks each with Cinder first.
        try:
            orphans = [v for v in self._uploads.volume_ids()
                       if self._uploads.inspect_upload(v)[1]]
            cut_short = [t for t in self._uploads.creation_tokens()
                         if self._uploads.inspect_creation(t)[1]]
        except Exception as e:
            LOG.warning('Could not read the upload records in %s: %s',
                        self._settings.lock_path, e)
            return
        if orphans:
            LOG.warning('Backend %s has %d orphaned upload volume(s) on '
                        'this host (%s): run cinder-store-check --fix to '
                        'delete them', self.backend_group, len(orphans),
                        ', '.join(orphans))
        if cut_short:
            LOG.warning('Backend %s has %d volume create call(s) cut short '
                        'on this host (upload tokens %s): run '
                        'cinder-store-check --fix to delete what they made',
                        self.backend_group, len(cut_short),
                        ', '.join(cut_short))

    def configure_add(self) -> None:
        """Check the volume type; warn, never fail, if Cinder is down."""
        name = self.backend_conf.cinder_store_volume_type
        if not name:
            return
        if not self._cinder.credentials.has_service_credentials:
            LOG.info('Volume type %s of [%s] is checked at first use: no '
                     'service credentials to check it now', name,
                     self.backend_conf.backend)
            return
        try:
            self._cinder.bind(None).find_volume_type(name)
        except exceptions.NotFound:
            LOG.warning('Volume type %s of [%s] does not exist in Cinder; '
                        'image uploads to this backend will fail until it '
                        'does', name, self.backend_conf.backend)
        except Exception as e:
            LOG.warning('Could not check volume type %s of [%s] (Cinder '
                        'unreachable?): %s', name,
                        self.backend_conf.backend, e)

    # -- glance_store API --------------------------------------------------

    @driver.back_compat_add
    @capabilities.check
    def add(self, image_id: str, image_file: Any, image_size: int,
            hashing_algo: str, context: Any = None, verifier: Any = None
            ) -> tuple[str, int, str, str, dict[str, str]]:
        """Store ``image_file`` on a new volume; see the module docs."""
        cinder = self._cinder.bind(context)
        # Until add returns, only these records lead to the volume.
        token = self._uploads.record_creation(image_id)
        try:
            volume = self._create_volume(cinder, image_id, image_size,
                                         context, token)
        except BaseException as e:
            with excutils.save_and_reraise_exception():
                self._creation_failed(token, image_id, e)
        try:
            self._uploads.record_upload(volume.id, image_id)
            self._uploads.forget_creation(token)
            volume = cinder.wait_for_status(volume, 'creating', 'available')
            writer = dataio.ImageWriter(image_file, image_size, hashing_algo,
                                        verifier)
            upload.write_image(cinder, self._settings, volume, writer,
                               self.backend_conf.cinder_store_extend_online)
            if not image_size:
                cinder.set_metadata(volume.id, {
                    metadata.IMAGE_SIZE: str(writer.bytes_written)})
            cinder.set_readonly(volume.id)
            # Inside the try: a record left behind would later make the
            # stored image's volume look orphaned.
            self._uploads.forget_upload(volume.id)
        except BaseException as e:
            with excutils.save_and_reraise_exception():
                self._delete_failed_volume(cinder, volume, image_id, e)
        LOG.info('Stored image %s (%d bytes, %d in runs of zeros not '
                 'written as data) on volume %s', image_id,
                 writer.bytes_written, writer.zero_bytes, volume.id)
        url = StoreLocation({'volume_id': volume.id,
                             'backend': self.backend_group},
                            self.conf).get_uri()
        info = {'store': self.backend_group} if self.backend_group else {}
        return (url, writer.bytes_written, writer.checksum,
                writer.multihash_hex, info)

    def _create_volume(self, cinder: client.BoundCinder, image_id: str,
                       image_size: int, context: Any, token: str) -> Any:
        said = metadata.for_upload(image_id, image_size, token,
                                   host.hostname(),
                                   getattr(context, 'project_id', None))
        return cinder.create_volume(image_size, 'image-%s' % image_id, said,
                                    self.backend_conf.cinder_store_volume_type)

    def _delete_failed_volume(self, cinder: client.BoundCinder, volume: Any,
                              image_id: str, error: BaseException) -> None:
        try:
            repairs.reclaim_volume(cinder, self._settings, volume)
        except Exception as e:
            LOG.error('Could not delete volume %s of a failed upload: %s; '
                      'cinder-store-check --fix deletes it later',
                      volume.id, e)
            self._abandon(volume.id, image_id, error)
        else:
            self._uploads.forget_upload(volume.id)

    def _creation_failed(self, token: str, image_id: str,
                         error: BaseException) -> None:
        try:
            self._uploads.record_failed_creation(token, image_id, error)
        except Exception as e:
            # The creation record stays as it was: its holder is this
            # process, so it counts as orphaned once this process ends.
            LOG.error('Could not record the failed volume create for image '
                      '%s: %s', image_id, e)

    def _abandon(self, volume_id: str, image_id: str,
                 error: BaseException) -> None:
        try:
            self._uploads.record_failed_upload(volume_id, image_id, error)
        except Exception as e:
            LOG.error('Could not record the failed upload to volume %s: '
                      '%s', volume_id, e)

    @capabilities.check
    def get(self, location: Any, offset: int = 0,
            chunk_size: int | None = None,
            context: Any = None) -> tuple[Iterator[bytes], int]:
        """``(iterator, length)`` of ``chunk_size`` bytes from ``offset``.

        ``length`` is what the iterator yields.  An offset past the end of
        the image raises ``exceptions.Invalid``.  Concurrent readers of one
        image in this process share one read-only attachment
        (:mod:`process_reads`); the iterator releases its hold when exhausted,
        closed or dropped.
        """
        volume_id = location.store_location.volume_id
        cinder = self._cinder.bind(context)
        volume = self._lookup(cinder, volume_id)
        size = metadata.image_size(volume)
        if offset < 0 or offset > size:
            raise exceptions.Invalid(
                'offset %d is outside image volume %s of %d bytes'
                % (offset, volume_id, size))
        length = size - offset
        if chunk_size is not None:
            length = min(length, chunk_size)
        if length == 0:
            return iter(()), 0
        lease = self._process_reads.acquire_lease(cinder, volume)
        return dataio.VolumeIterator(lease, offset, length), length

    def _lookup(self, cinder: client.BoundCinder, volume_id: str) -> Any:
        if not self._cinder.credentials.has_service_credentials:
            # The user's token: each reader's own GET is its access check.
            return client.existing_volume(cinder, volume_id)
        # One identity for all: a boot storm's readers share one GET, and
        # a volume this host reads or keeps warm needs none.
        return self._process_reads.lookup_volume(
            volume_id, lambda: (
                self._host_reads.recorded_volume(volume_id) or
                client.existing_volume(cinder, volume_id)))

    def get_size(self, location: Any, context: Any = None) -> int:
        volume_id = location.store_location.volume_id
        cinder = self._cinder.bind(context)
        return metadata.image_size(client.existing_volume(cinder,
                                                          volume_id))

    @capabilities.check
    def delete(self, location: Any, context: Any = None) -> None:
        """Delete the image-volume, detaching it from this host first.

        One Cinder call when nothing is attached; if Cinder refuses,
        :func:`recovery.repairs.delete_refused_volume` detaches what this
        host left and abandoned attachments, and tries again.  A volume
        still attached on another host, being attached, or read by a live
        process of this host, raises ``exceptions.InUseByStore`` (Glance
        answers 409) naming the attachments, and nothing is detached.  A
        volume already gone raises ``exceptions.NotFound`` and leaves no
        lock file behind.
        """
        volume_id = location.store_location.volume_id
        cinder = self._cinder.bind(context)
        self._release_warm(cinder, volume_id)
        try:
            cinder.delete_volume(volume_id)
        except exceptions.NotFound:
            # Already gone (deleted in Cinder, or an earlier delete that
            # Glance did not see finish): its locks must not outlive it.
            with excutils.save_and_reraise_exception():
                self._settings.locks.remove_locks(volume_id)
        except exceptions.BackendException:
            repairs.delete_refused_volume(cinder, self._settings,
                                          self._host_reads, volume_id)
            return
        # Cinder deletes it now: nothing will attach it again.
        self._settings.locks.remove_locks(volume_id)

    def _release_warm(self, cinder: client.BoundCinder,
                      volume_id: str) -> None:
        # Before the delete, not after Cinder refused it: one call less.
        try:
            self._host_reads.release_warm(cinder, volume_id,
                                          'its image is being deleted')
        except Exception as error:
            LOG.warning('Could not release the warm attachment of volume '
                        '%s before deleting it: %s', volume_id, error)

    def is_image_associated_with_store(self, context: Any,
                                       volume_id: str) -> bool:
        """Does this legacy ``cinder://<volume>`` belong to this backend?

        Glance asks every ``cinder`` store when it migrates single-store
        locations; the answer is "the volume's type is our volume type".
        """
        cinder = self._cinder.bind(context)
        try:
            volume = cinder.get_volume(volume_id)
            expected = cinder.volume_type_name(
                self.backend_conf.cinder_store_volume_type)
        except exceptions.NotFound:
            LOG.warning('Volume %s not found when matching it to backend '
                        '%s; image-volumes must live in the project of the '
                        'configured credentials', volume_id,
                        self.backend_group)
            return False
        except Exception as e:
            LOG.warning('Cannot match volume %s to backend %s: %s',
                        volume_id, self.backend_group, e)
            return False
        return volume.volume_type == expected
