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

"""Who we are when we talk to Cinder, and where Cinder is.

Three modes, chosen per backend:

* service credentials (``auth_type`` + plugin options, or the deprecated
  in-tree ``cinder_store_*`` names): image-volumes live in the service
  project; the request context is not needed for reads;
* service credentials plus ``cinder_store_send_service_token``: the user's
  token acts and the service token rides along (``X-Service-Token``);
* no credentials: the request context's token and service catalog.

One keystoneauth session per backend; it is safe to share across threads.
"""

import logging
from typing import Any

from glance_store import exceptions
from keystoneauth1.access import service_catalog
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import service_token
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from cinder_store import opts

LOG = logging.getLogger(__name__)

_LEGACY_PASSWORD = {
    'auth_url': 'cinder_store_auth_address',
    'username': 'cinder_store_user_name',
    'password': 'cinder_store_password',
    'project_name': 'cinder_store_project_name',
    'user_domain_name': 'cinder_store_user_domain_name',
    'project_domain_name': 'cinder_store_project_domain_name',
}
_LEGACY_APPCRED = {
    'auth_url': 'cinder_store_auth_address',
    'application_credential_id': 'cinder_store_application_credential_id',
    'application_credential_secret':
        'cinder_store_application_credential_secret',
}


def _bad_config(reason: str) -> exceptions.BadStoreConfiguration:
    return exceptions.BadStoreConfiguration(store_name='cinder_store',
                                            reason=reason)


class Endpoint(object):
    """Where Cinder is: service type, interface, region, optional URL."""

    def __init__(self, service_type: str, interface: str,
                 region: str | None, override: str | None):
        self.service_type = service_type
        self.interface = interface
        self.region = region
        self.override = override


def endpoint_from_conf(view: opts.BackendConf) -> Endpoint:
    """Endpoint settings, honouring the in-tree names when ours are unset."""
    service_type = view.cinder_store_service_type
    interface = view.cinder_store_interface
    catalog_info = view.cinder_catalog_info
    if catalog_info and view.group_with('cinder_store_interface') is None:
        LOG.warning('cinder_catalog_info is deprecated; set '
                    'cinder_store_service_type and cinder_store_interface '
                    'in [%s] instead.', view.backend)
        parts = catalog_info.split(':')
        if len(parts) != 3:
            raise _bad_config('cinder_catalog_info must look like '
                              '<service_type>:<service_name>:<interface>, '
                              'got %r' % catalog_info)
        service_type = parts[0] or service_type
        interface = parts[2].replace('URL', '') or interface
    override = view.cinder_store_endpoint_override
    if not override and view.cinder_endpoint_template:
        LOG.warning('cinder_endpoint_template is deprecated; set '
                    'cinder_store_endpoint_override in [%s] instead.',
                    view.backend)
        override = view.cinder_endpoint_template
    return Endpoint(service_type, interface,
                    view.cinder_store_region_name, override)


def _legacy_plugin(view: opts.BackendConf) -> Any:
    """An auth plugin from the in-tree cinder_store_* options, or None."""
    if not view.cinder_store_auth_address:
        return None
    if (view.cinder_store_application_credential_id and
            view.cinder_store_application_credential_secret):
        name, mapping = 'v3applicationcredential', _LEGACY_APPCRED
    elif view.cinder_store_user_name and view.cinder_store_password:
        name, mapping = 'v3password', _LEGACY_PASSWORD
    else:
        return None
    LOG.warning('The in-tree cinder_store_* credential options are '
                'deprecated; set auth_type = %s with its keystoneauth '
                'options (%s) in [%s] instead.', name,
                ', '.join(sorted(mapping)), view.backend)
    kwargs = {ours: view.value(theirs) for ours, theirs in mapping.items()}
    if name == 'v3password':
        kwargs['user_domain_name'] = kwargs['user_domain_name'] or 'Default'
        kwargs['project_domain_name'] = (kwargs['project_domain_name'] or
                                         'Default')
    return ks_loading.get_plugin_loader(name).load_from_options(**kwargs)


def service_plugin(view: opts.BackendConf) -> Any:
    """The service credentials' auth plugin, or None when none are set."""
    group = view.group_with('auth_type') or view.group_with('auth_section')
    if group:
        try:
            return ks_loading.load_auth_from_conf_options(view.conf, group)
        except ks_exc.ClientException as e:
            raise _bad_config('cannot load the auth plugin from [%s]: %s'
                              % (group, e))
    return _legacy_plugin(view)


def make_session(view: opts.BackendConf) -> ks_session.Session:
    """A keystoneauth session with the backend's TLS and timeout settings."""
    cafile = view.cafile or view.cinder_ca_certificates_file
    insecure = view.insecure or view.cinder_api_insecure
    verify = False if insecure else (cafile or True)
    cert = None
    if view.certfile:
        cert = (view.certfile, view.keyfile) if view.keyfile else view.certfile
    return ks_session.Session(verify=verify, cert=cert, timeout=view.timeout)


def _context_endpoint(context: Any, endpoint: Endpoint) -> str | None:
    if endpoint.override:
        return endpoint.override % context.to_dict()
    catalog = getattr(context, 'service_catalog', None)
    if not catalog:
        raise _bad_config('no service credentials are configured and the '
                          'request context has no service catalog to find '
                          'Cinder in')
    try:
        return service_catalog.ServiceCatalogV2(catalog).url_for(
            service_type=endpoint.service_type,
            interface=endpoint.interface,
            region_name=endpoint.region)
    except ks_exc.EndpointNotFound:
        raise _bad_config('no %s endpoint of type %s (region %s) in the '
                          'request context\'s service catalog'
                          % (endpoint.interface, endpoint.service_type,
                             endpoint.region))


def _user_token(context: Any) -> str:
    token = getattr(context, 'auth_token', None)
    if not token:
        raise _bad_config('no service credentials are configured and the '
                          'request has no user token')
    return token


class Credentials(object):
    """Per-backend identity: decides the auth for each Cinder call.

    ``auth_for(context)`` returns ``(auth_plugin, endpoint_url_or_None)``;
    a None URL means "look Cinder up in the catalog".
    """

    def __init__(self, view: opts.BackendConf):
        self.endpoint = endpoint_from_conf(view)
        self.service = service_plugin(view)
        self.send_service_token = view.cinder_store_send_service_token
        self.session = make_session(view)

    @property
    def has_service_credentials(self) -> bool:
        return self.service is not None

    def auth_for(self, context: Any) -> tuple[Any, str | None]:
        if self.service is None:
            url = _context_endpoint(context, self.endpoint)
            return token_endpoint.Token(url, _user_token(context)), url
        if self.send_service_token and context is not None:
            url = _context_endpoint(context, self.endpoint)
            user = token_endpoint.Token(url, _user_token(context))
            return service_token.ServiceTokenAuthWrapper(
                user_auth=user, service_auth=self.service), url
        return self.service, self._service_override()

    def _service_override(self) -> str | None:
        if not self.endpoint.override:
            return None
        if '%(' not in self.endpoint.override:
            return self.endpoint.override
        project_id = self.service.get_project_id(self.session)
        return self.endpoint.override % {'project_id': project_id,
                                         'tenant': project_id}
