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

"""Glance's API (gunicorn) with cinder_store on every Cinder backend.

Backends: ``block``, ``file``, ``multiattach`` and ``rbd`` are
cinder_store; ``upstream`` and ``upstream-rbd`` are glance_store's
in-tree cinder driver on the same Cinder backends, for the benchmark.
"""

import os
import shutil

from local_stack import keystone
from local_stack import mariadb
from local_stack import process
from local_stack import settings

DIR = os.path.join(settings.STACK, 'glance')
UPSTREAM = ('upstream', 'upstream-rbd')


def sections():
    ours = settings.CINDER_BACKENDS
    backends = (['%s:cinder_store' % b for b in ours] +
                ['%s:cinder' % b for b in UPSTREAM])
    out = {
        'DEFAULT': {'enabled_backends': ', '.join(backends),
                    'log_file': os.path.join(settings.LOGS,
                                             'glance-api.log'),
                    'debug': 'true', 'workers': '2',
                    # Cinder's direct clone reads the location from here
                    'show_image_direct_url': 'true',
                    'enabled_import_methods':
                        '[glance-direct,web-download,copy-image]'},
        'import_filtering_opts': {
            'allowed_hosts': '[%s]' % settings.HOST,
            'allowed_ports': '[80,443,%d]' % settings.WEB_DOWNLOAD_PORT},
        # Not SQLite: imports and uploads update images from both workers
        # and background tasks at once ("database is locked").
        'database': {'connection': mariadb.db_url('glance')},
        'keystone_authtoken': keystone.authtoken('glance'),
        'paste_deploy': {'flavor': 'keystone'},
        'glance_store': {'default_backend': 'block'},
        'os_glance_staging_store': {'filesystem_store_datadir':
                                    DIR + '/staging'},
        'os_glance_tasks_store': {'filesystem_store_datadir':
                                  DIR + '/tasks'},
        'oslo_concurrency': {'lock_path': settings.GLANCE_LOCKS},
        'privsep_osbrick': {'helper_command':
                            settings.BIN + '/privsep-helper'},
        'backend_defaults': dict(keystone.service_credentials('glance'),
                                 cinder_store_region_name=settings.REGION,
                                 cinder_store_state_transition_timeout='120'),
    }
    for name in settings.BACKENDS:
        out[name] = {'cinder_store_volume_type': name,
                     'store_description': 'cinder_store on %s' % name}
    # os-brick attaches RBD in userspace (librbd): no kernel module
    out[settings.RBD_BACKEND] = {
        'cinder_store_volume_type': settings.RBD_BACKEND,
        'store_description': 'cinder_store on Ceph RBD',
        'cinder_store_rbd_keyring': settings.CEPH_KEYRING,
        'cinder_store_rbd_client_timeout': str(settings.CEPH_CLIENT_TIMEOUT)}
    # The in-tree driver on the same Ceph, for the benchmark: os-brick
    # reads its keyring from /etc/ceph.
    for name in UPSTREAM:
        out[name] = upstream_section(name)
    return out


def upstream_section(volume_type):
    return {
        'store_description': 'in-tree glance_store cinder driver',
        'cinder_volume_type': volume_type,
        'cinder_store_auth_address': settings.KEYSTONE_URL,
        'cinder_store_user_name': 'glance',
        'cinder_store_password': settings.PASSWORDS['glance'],
        'cinder_store_project_name': 'service',
        'cinder_os_region_name': settings.REGION,
        'cinder_catalog_info': 'block-storage::publicURL',
        'cinder_mount_point_base': DIR + '/mnt',
        'cinder_state_transition_timeout': '120',
        'rootwrap_config': settings.VENV + '/etc/glance/rootwrap.conf',
    }


def write_config():
    process.write(settings.GLANCE_CONF, process.ini(sections(), 'glance'))
    os.makedirs(DIR, exist_ok=True)
    # Glance reads glance-api.conf and the paste file from one directory.
    shutil.copy(settings.GLANCE_CONF, os.path.join(DIR, 'glance-api.conf'))
    shutil.copy(os.path.join(settings.VENV,
                             'etc/glance/glance-api-paste.ini'),
                os.path.join(DIR, 'glance-api-paste.ini'))
    process.write_wsgi_wrapper('stack_glance', 'glance.wsgi.api')


def start(state):
    for sub in ('staging', 'tasks', 'lock', 'mnt'):
        os.makedirs(os.path.join(DIR, sub), exist_ok=True)
    marker = os.path.join(DIR, '.db-synced-mariadb')
    if not os.path.exists(marker):
        process.run(settings.BIN + '/glance-manage', '--config-file',
                    DIR + '/glance-api.conf', 'db_sync')
        open(marker, 'w').close()
    # A worker's threads stay busy while a client holds a download open:
    # the six held at once by the concurrent-downloads test must never
    # take every thread of the worker that accepted them.
    process.start(state, 'glance',
                  process.gunicorn('stack_glance', settings.PORTS['glance'],
                                   2, threads=8),
                  env={'OS_GLANCE_CONFIG_DIR': DIR,
                       'PYTHONPATH': os.path.join(settings.STACK, 'wsgi')})
    process.wait_for('glance', process.http_ok(settings.GLANCE_URL +
                                               '/versions'), 90)
