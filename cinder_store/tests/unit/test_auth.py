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

from glance_store import exceptions
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import service_token
from keystoneauth1 import token_endpoint
from oslo_config import cfg

from cinder_store import auth
from cinder_store import opts
from cinder_store.tests.unit import base

CATALOG = [{'type': 'block-storage', 'name': 'cinderv3', 'endpoints': [
    {'region': 'R1', 'publicURL': 'http://pub:8776/v3',
     'internalURL': 'http://int:8776/v3'}]}]


class Context(object):
    auth_token = 'user-token'
    project_id = 'p1'
    service_catalog = CATALOG

    def to_dict(self):
        return {'project_id': self.project_id}


class TestCredentials(base.TestCase):

    def view(self, group='be', **values):
        conf = cfg.ConfigOpts()
        conf([], project='test', default_config_files=[])
        view = opts.BackendConf(conf, group)
        opts.safe_register(conf,
                           ks_loading.get_auth_plugin_conf_options('password'),
                           group)
        for name, value in values.items():
            conf.set_override(name, value, group=group)
        return view

    def service_view(self, **values):
        return self.view(auth_type='password', auth_url='http://k/v3',
                         username='glance', password='pw',
                         project_name='service', user_domain_name='Default',
                         project_domain_name='Default', **values)

    def test_service_credentials_act_alone(self):
        creds = auth.Credentials(self.service_view())
        plugin, url = creds.auth_for(None)
        self.assertIs(creds.service, plugin)
        self.assertIsNone(url)

    def test_service_token_rides_along_user_token(self):
        creds = auth.Credentials(self.service_view(
            cinder_store_send_service_token=True))
        plugin, url = creds.auth_for(Context())
        self.assertIsInstance(plugin, service_token.ServiceTokenAuthWrapper)
        self.assertEqual('http://pub:8776/v3', url)

    def test_context_mode_uses_catalog_and_interface(self):
        creds = auth.Credentials(self.view(cinder_store_interface='internal',
                                           cinder_store_region_name='R1'))
        plugin, url = creds.auth_for(Context())
        self.assertIsInstance(plugin, token_endpoint.Token)
        self.assertEqual('http://int:8776/v3', url)

    def test_context_mode_endpoint_override_template(self):
        creds = auth.Credentials(self.view(
            cinder_store_endpoint_override='http://c/v3/%(project_id)s'))
        self.assertEqual('http://c/v3/p1', creds.auth_for(Context())[1])

    def test_context_mode_without_catalog_is_clear_error(self):
        creds = auth.Credentials(self.view())
        ctx = Context()
        ctx.service_catalog = None
        self.assertRaisesRegex(exceptions.BadStoreConfiguration,
                               'service catalog', creds.auth_for, ctx)

    def test_context_mode_missing_endpoint(self):
        creds = auth.Credentials(self.view(cinder_store_region_name='R9'))
        self.assertRaisesRegex(exceptions.BadStoreConfiguration, 'R9',
                               creds.auth_for, Context())

    def test_session_per_backend_with_tls_settings(self):
        a = auth.Credentials(self.service_view(cafile='/ca.pem'))
        b = auth.Credentials(self.service_view(insecure=True))
        self.assertIsNot(a.session, b.session)
        self.assertEqual('/ca.pem', a.session.verify)
        self.assertFalse(b.session.verify)

    def test_backend_defaults_credentials_used(self):
        view = self.view()
        opts.safe_register(view.conf,
                           ks_loading.get_auth_plugin_conf_options('password'),
                           'backend_defaults')
        for k, v in (('auth_type', 'password'), ('auth_url', 'http://k/v3'),
                     ('username', 'u'), ('password', 'p'),
                     ('project_name', 'x')):
            view.conf.set_override(k, v, group='backend_defaults')
        self.assertTrue(auth.Credentials(view).has_service_credentials)

    def test_legacy_application_credential(self):
        view = self.view(
            cinder_store_auth_address='http://k/v3',
            cinder_store_application_credential_id='id',
            cinder_store_application_credential_secret='secret')
        creds = auth.Credentials(view)
        self.assertEqual('id', creds.service.auth_methods[0]
                         .application_credential_id)

    def test_bad_catalog_info(self):
        self.assertRaises(exceptions.BadStoreConfiguration,
                          auth.endpoint_from_conf,
                          self.view(cinder_catalog_info='volumev3'))
