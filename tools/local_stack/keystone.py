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

"""Keystone (gunicorn, SQLite, fernet tokens) and the stack's identities."""

import os

from local_stack import install
from local_stack import process
from local_stack import settings

DIR = os.path.join(settings.STACK, 'keystone')
CONF = os.path.join(DIR, 'keystone.conf')


def write_config():
    keystone = {
        'DEFAULT': {'log_file': os.path.join(settings.LOGS, 'keystone.log')},
        'database': {'connection': 'sqlite:///%s/keystone.db' % DIR},
        'token': {'provider': 'fernet'},
        'fernet_tokens': {'key_repository': DIR + '/fernet-keys'},
        'fernet_receipts': {'key_repository': DIR + '/fernet-keys'},
        'credential': {'key_repository': DIR + '/credential-keys'},
        'cache': {'enabled': 'false'},
        # bcrypt at its cheapest: every Glance worker, test and helper
        # process logs in with a password, dozens a minute under the
        # tests, and Keystone's default 12 rounds cost each about a
        # second of its one worker here.
        'identity': {'password_hash_rounds': '4'},
    }
    process.write(CONF, process.ini(keystone, 'keystone'))
    process.write_wsgi_wrapper('stack_keystone', 'keystone.wsgi.api')


def authtoken(user):
    """``[keystone_authtoken]`` of a service running as ``user``."""
    return {'www_authenticate_uri': settings.KEYSTONE,
            'auth_url': settings.KEYSTONE, 'auth_type': 'password',
            'project_domain_name': 'Default', 'user_domain_name': 'Default',
            'project_name': 'service', 'username': user,
            'password': settings.PASSWORDS[user],
            'service_token_roles_required': 'true'}


def service_credentials(user):
    """keystoneauth options of ``user`` in the service project."""
    return {'auth_type': 'password', 'auth_url': settings.KEYSTONE_URL,
            'username': user, 'password': settings.PASSWORDS[user],
            'project_name': 'service', 'user_domain_name': 'Default',
            'project_domain_name': 'Default'}


def write_clouds():
    def cloud(user, project):
        return ('    auth:\n      auth_url: %s\n      username: %s\n'
                '      password: %s\n      project_name: %s\n'
                '      user_domain_name: Default\n'
                '      project_domain_name: Default\n'
                '    region_name: %s\n'
                '    identity_api_version: 3\n'
                '    volume_api_version: 3\n'
                % (settings.KEYSTONE_URL, user, settings.PASSWORDS[user],
                   project, settings.REGION))
    process.write(settings.CLOUDS,
                  'clouds:\n  stack-admin:\n' + cloud('admin', 'admin') +
                  '  stack-glance:\n' + cloud('glance', 'service'))


def start(state):
    manage = (settings.BIN + '/keystone-manage', '--config-file', CONF)
    marker = os.path.join(DIR, '.bootstrapped')
    if not os.path.exists(marker):
        process.run(*manage, 'db_sync')
        process.run(*manage, 'fernet_setup', '--keystone-user', 'root',
                    '--keystone-group', 'root')
        process.run(*manage, 'credential_setup', '--keystone-user', 'root',
                    '--keystone-group', 'root')
        url = settings.KEYSTONE_URL
        process.run(*manage, 'bootstrap', '--bootstrap-password',
                    settings.PASSWORDS['admin'], '--bootstrap-username',
                    'admin', '--bootstrap-project-name', 'admin',
                    '--bootstrap-role-name', 'admin',
                    '--bootstrap-service-name', 'keystone',
                    '--bootstrap-region-id', settings.REGION,
                    '--bootstrap-admin-url', url,
                    '--bootstrap-public-url', url,
                    '--bootstrap-internal-url', url)
        open(marker, 'w').close()
    process.start(state, 'keystone',
                  process.gunicorn('stack_keystone',
                                   settings.PORTS['keystone'], 1),
                  env={'OS_KEYSTONE_CONFIG_FILES': CONF,
                       'PYTHONPATH': os.path.join(settings.STACK, 'wsgi')})
    process.wait_for('keystone', process.http_ok(settings.KEYSTONE_URL), 60)
    # users, roles, the catalog (tools/stack_setup.py, in the venv)
    install.setup('identity')
