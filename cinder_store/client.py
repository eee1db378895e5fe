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

"""Every Cinder API call the driver makes, with retries and error mapping.

Callers get glance_store exceptions only:

* ``NotFound`` for a missing volume or attachment;
* ``StorageFull`` when Cinder refuses for quota (413);
* ``BackendException`` for anything else, with Cinder's request id.

Retry policy (tenacity): a call that never reached Cinder (connection
refused/reset, connect timeout) is retried, as is a 5xx or 503 of an
idempotent call; the reserve-race 400 of ``attachment_create`` is retried
with a short backoff within its own budget. Other 4xx are never retried.
"""

import functools
import logging
from typing import Any
from typing import Callable
from typing import Iterable
from typing import ParamSpec
from typing import Protocol
from typing import TypeVar

from cinderclient import client as cinder_client
from cinderclient import exceptions as cinder_exc
from glance_store import exceptions
from keystoneauth1 import exceptions as ks_exc
from oslo_utils import units
import tenacity

from cinder_store import auth
from cinder_store import utils

LOG = logging.getLogger(__name__)

P = ParamSpec('P')
R = TypeVar('R')

# 3.27 attachments, 3.42 online extend, 3.44 attachment complete, 3.48
# shared_targets/service_uuid for os-brick's guard, 3.54 attach mode.
API_VERSION = '3.54'
_RESERVE_RACE = 'to reserve'
FIRST_POLL = 0.1


class Attempts(Protocol):
    """Who hears of each request of an ``attachment_create``."""

    def sending(self) -> None:
        """A request is about to be sent: it may make an attachment."""

    def refused(self) -> None:
        """Cinder refused the last request: it made nothing."""


class VolumeStatusError(exceptions.BackendException):
    """A volume ended in, or stayed in, the wrong status."""


def _request_id(exc):
    return getattr(exc, 'request_id', None) or 'unknown'


def translate(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: map cinderclient/keystoneauth errors for ``what``."""
    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except cinder_exc.NotFound as e:
                raise exceptions.NotFound(
                    message='%s: not found in Cinder (request %s)'
                            % (what, _request_id(e)))
            except cinder_exc.OverLimit as e:
                raise exceptions.StorageFull(
                    message='%s: Cinder refused, over quota: %s (request %s)'
                            % (what, e, _request_id(e)))
            except cinder_exc.ClientException as e:
                raise exceptions.BackendException(
                    '%s failed: Cinder answered %s: %s (request %s)'
                    % (what, getattr(e, 'code', '?'), e, _request_id(e)))
            except ks_exc.ClientException as e:
                raise exceptions.BackendException(
                    '%s failed: cannot reach or authenticate to Cinder: %s'
                    % (what, e))
        return wrapper
    return decorator


def refused(error: BaseException) -> bool:
    """Did Cinder answer ``error``'s call with a 4xx (so it did nothing)?

    ``error`` is what a call of this module raised; the cinderclient error
    it was translated from is its cause or context.
    """
    cinder_error = _cinder_error(error)
    code = int(getattr(cinder_error, 'code', 0) or 0)
    return 400 <= code < 500


def reservation_refused(error: BaseException) -> bool:
    """Was ``error``'s attachment_create refused for the volume's status?

    Cinder refuses a reservation while the volume is ``attaching``: an
    attachment being made, or one abandoned there by a dead attacher.
    """
    return _is_reserve_race(_cinder_error(error))


def _cinder_error(error: BaseException | None
                  ) -> cinder_exc.ClientException | None:
    """The cinderclient error ``error`` was translated from, or None."""
    cause = error
    while cause is not None:
        if isinstance(cause, cinder_exc.ClientException):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _never_reached_cinder(exc):
    return isinstance(exc, (ks_exc.ConnectFailure,
                            cinder_exc.ConnectionError))


def _is_5xx(exc):
    return (isinstance(exc, cinder_exc.ClientException) and
            getattr(exc, 'code', 0) is not None and
            int(getattr(exc, 'code', 0) or 0) >= 500)


def _is_reserve_race(exc):
    return (isinstance(exc, cinder_exc.BadRequest) and
            _RESERVE_RACE in str(exc))


def _log_retry(retry_state):
    LOG.debug('Retrying %s after %s (attempt %d)',
              getattr(retry_state.fn, '__name__', 'call'),
              retry_state.outcome.exception(), retry_state.attempt_number)


def _retrying_on(predicate, attempts, multiplier=0.2, max_wait=2):
    # Full jitter: concurrent callers spread out instead of retrying in step.
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(predicate),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random_exponential(multiplier=multiplier,
                                              max=max_wait),
        sleep=utils.sleep,
        before_sleep=_log_retry,
        reraise=True)


#: Volume statuses on the way out: such a volume is gone for a reader.
GONE = ('deleting', 'error_deleting')


def existing_volume(cinder: 'BoundCinder', volume_id: str) -> Any:
    """The volume, or NotFound if it is gone or on its way out."""
    volume = cinder.get_volume(volume_id)
    if volume.status in GONE:
        raise exceptions.NotFound(
            message='volume %s is %s' % (volume_id, volume.status))
    return volume


def _last_result(state: tenacity.RetryCallState) -> Any:
    """What the last attempt returned (or raise what it raised)."""
    if state.outcome is None:  # tenacity calls this after an attempt only
        raise RuntimeError('no attempt was made')
    return state.outcome.result()


def gib(size_bytes: int) -> int:
    """Whole GiB needed to hold ``size_bytes`` (at least 1)."""
    return max(1, -(-size_bytes // units.Gi))


class Cinder(object):
    """Cinder calls for one backend, bound to the credentials of a request.

    Obtain one with :meth:`Cinder.bind`; it is cheap and not thread-bound.
    """

    def __init__(self, credentials: auth.Credentials, http_retries: int,
                 attach_attempts: int, status_timeout: float):
        self.credentials = credentials
        self.http_retries = http_retries
        self.attach_attempts = attach_attempts
        self.status_timeout = status_timeout

    def bind(self, context: Any) -> 'BoundCinder':
        auth, url = self.credentials.auth_for(context)
        endpoint = self.credentials.endpoint
        client = cinder_client.Client(
            API_VERSION, session=self.credentials.session, auth=auth,
            service_type=endpoint.service_type,
            endpoint_type=endpoint.interface,
            region_name=endpoint.region, os_endpoint=url, retries=0)
        return BoundCinder(self, client)


class BoundCinder(object):
    """The Cinder operations used by the store, each mapped and retried."""

    def __init__(self, parent: Cinder, client: Any):
        self._parent = parent
        self.client = client

    @property
    def status_timeout(self) -> float:
        return self._parent.status_timeout

    def _call_retrying(self, func, *args, idempotent=True, **kwargs):
        def transient(exc):
            return _never_reached_cinder(exc) or (idempotent and
                                                  _is_5xx(exc))
        retrying = _retrying_on(transient, self._parent.http_retries + 1)
        return retrying(func, *args, **kwargs)

    @translate('volume create')
    def create_volume(self, size_bytes: int, name: str,
                      metadata: dict[str, str],
                      volume_type: str | None) -> Any:
        return self._call_retrying(self.client.volumes.create, gib(size_bytes),
                                   name=name, metadata=metadata,
                                   volume_type=volume_type, idempotent=False)

    @translate('volume list')
    def volumes_tagged(self, key: str, value: str) -> list[Any]:
        """This project's volumes whose metadata maps ``key`` to ``value``."""
        return self._call_retrying(self.client.volumes.list,
                                   search_opts={'metadata': {key: value}})

    @translate('volume list')
    def volumes_with_status(self, status: str,
                            all_projects: bool = False) -> list[Any]:
        """This project's volumes in ``status``.

        ``all_projects``: every project's, when the credentials have
        Cinder's admin role (Cinder ignores the filter otherwise).
        """
        search = {'status': status}
        if all_projects:
            search['all_tenants'] = '1'
        return self._call_retrying(
            self.client.volumes.list, search_opts=search)

    def volumes_of_type(self, type_name: str, statuses: Iterable[str],
                        all_projects: bool = False) -> list[Any]:
        """Volumes of type ``type_name`` in any of ``statuses``."""
        return [v for status in statuses
                for v in self.volumes_with_status(status, all_projects)
                if v.volume_type == type_name]

    @translate('volume show')
    def get_volume(self, volume_id: str) -> Any:
        return self._call_retrying(self.client.volumes.get, volume_id)

    @translate('volume delete')
    def delete_volume(self, volume_id: str) -> None:
        self._call_retrying(self.client.volumes.delete, volume_id)

    @translate('volume extend')
    def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        self._call_retrying(self.client.volumes.extend, volume_id, new_size_gb,
                            idempotent=False)

    @translate('volume metadata update')
    def set_metadata(self, volume_id: str,
                     metadata: dict[str, str]) -> None:
        self._call_retrying(self.client.volumes.set_metadata, volume_id,
                            metadata)

    @translate('volume read-only flag update')
    def set_readonly(self, volume_id: str) -> None:
        self._call_retrying(self.client.volumes.update_readonly_flag,
                            volume_id, True)

    @translate('attachment create')
    def attachment_create(self, volume_id: str, connector: dict[str, Any],
                          mode: str, attempts: 'Attempts | None' = None
                          ) -> dict[str, Any]:
        """Reserve and initialise in one call; returns Cinder's dict.

        ``attempts`` hears of every request sent (retries included) and
        of each that Cinder refused (a 4xx: it made nothing).
        """
        def create():
            if attempts is not None:
                attempts.sending()
            try:
                return self._call_retrying(
                    self.client.attachments.create, volume_id, connector,
                    mode=mode, idempotent=False)
            except cinder_exc.ClientException as error:
                if attempts is not None and refused(error):
                    attempts.refused()
                raise
        # Readers of one multiattach image contend for Cinder's short
        # 'attaching' window: retry soon and often, within the budget.
        retrying = _retrying_on(_is_reserve_race, self._parent.attach_attempts,
                                multiplier=0.05, max_wait=1)
        return retrying(create)

    @translate('attachment complete')
    def attachment_complete(self, attachment_id: str) -> None:
        self._call_retrying(self.client.attachments.complete, attachment_id)

    @translate('attachment show')
    def attachment_show(self, attachment_id: str) -> Any:
        return self._call_retrying(self.client.attachments.show, attachment_id)

    @translate('attachment list')
    def attachments_of(self, volume_id: str,
                       detailed: bool = False) -> list[Any]:
        """The volume's attachments; ``detailed`` adds ``attached_at``."""
        return self._call_retrying(self.client.attachments.list,
                                   detailed=detailed,
                                   search_opts={'volume_id': volume_id})

    @translate('attachment delete')
    def attachment_delete(self, attachment_id: str) -> None:
        self._call_retrying(self.client.attachments.delete, attachment_id)

    @translate('volume type lookup')
    def find_volume_type(self, name: str) -> Any:
        return self._call_retrying(self.client.volume_types.find, name=name)

    @translate('default volume type lookup')
    def default_volume_type(self) -> Any:
        return self._call_retrying(self.client.volume_types.default)

    def volume_type(self, name: str | None) -> Any:
        """The volume type ``name``; None: Cinder's default type.

        A backend's ``cinder_store_volume_type`` unset means Cinder's
        default: decided here, for every caller.
        """
        return self.find_volume_type(name) if name else (
            self.default_volume_type())

    def volume_type_name(self, name: str | None) -> str:
        """``name``, or the name of Cinder's default type for None."""
        return name or self.volume_type(None).name

    def wait_for_status(self, volume: Any, transitional: str,
                        expected: str) -> Any:
        """Poll until ``volume`` leaves ``transitional``; return it fresh.

        The first poll comes after 0.1 s (the call that started the
        transition already answered with ``transitional``), the next ones
        back off to 2 s, within ``cinder_store_state_transition_timeout``.
        Raises :class:`VolumeStatusError` on timeout or an unexpected
        status.
        """
        timeout = self._parent.status_timeout
        utils.sleep(FIRST_POLL)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(
                lambda v: v.status == transitional),
            stop=utils.Deadline(timeout),
            wait=tenacity.wait_exponential(multiplier=0.1, exp_base=1.5,
                                           min=0.1, max=2),
            sleep=utils.sleep,
            retry_error_callback=_last_result)
        volume = retrying(self.get_volume, volume.id)
        if volume.status != expected:
            raise VolumeStatusError(
                'volume %s is %s after waiting up to %ss for %s -> %s'
                % (volume.id, volume.status, timeout, transitional,
                   expected))
        return volume
