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

"""Cinder api, scheduler and volume: loop-file backends and Ceph RBD.

The loop-file backends use the functional tests' own volume driver
(``cinder_store.tests.functional.loopfile``); ``rbd`` is Cinder's RBD
driver on the stack's Ceph.  Volume types and quotas are set up by
``tools/stack_setup.py`` once the volume service reports.
"""

import os
import shutil

from local_stack import install
from local_stack import keystone
from local_stack import mariadb
from local_stack import process
from local_stack import rabbitmq
from local_stack import settings

DIR = os.path.join(settings.STACK, 'cinder')
SERVICES = ('cinder-api', 'cinder-scheduler', 'cinder-volume')


def sections():
    c = DIR
    out = {
        'DEFAULT': {
            'transport_url': rabbitmq.URL,
            'auth_strategy': 'keystone',
            'api_paste_config': c + '/api-paste.ini',
            'state_path': c + '/state', 'log_dir': settings.LOGS,
            'debug': 'true', 'my_ip': settings.HOST, 'host': 'stack',
            'osapi_volume_listen': settings.HOST,
            'osapi_volume_listen_port': str(settings.PORTS['cinder-api']),
            'osapi_volume_workers': '1',
            # Its one eventlet worker serves 100 connections at once by
            # default, and every idle keep-alive connection of a client
            # (each Glance worker, test and helper process keeps a few)
            # holds one for 15 minutes: past 100, every new request
            # waited up to a minute for a slot.
            'wsgi_default_pool_size': '1000',
            'client_socket_timeout': '60',
            'enabled_backends': ','.join(settings.CINDER_BACKENDS),
            'default_volume_type': 'block',
            'rootwrap_config': settings.VENV + '/etc/cinder/rootwrap.conf',
            'backend_stats_polling_interval': '10', 'report_interval': '5',
            'periodic_interval': '10', 'graceful_shutdown_timeout': '5',
            # a volume made from an image clones its image-volume
            'allowed_direct_url_schemes': 'cinder',
        },
        # No cinder-rootwrap on sudo's path: os-brick (create from image,
        # upload to image) and Cinder's own privsep run the helper as root.
        'privsep_osbrick': {'helper_command':
                            settings.BIN + '/privsep-helper'},
        'cinder_sys_admin': {'helper_command':
                             settings.BIN + '/privsep-helper'},
        # Cinder asks Glance for image locations as a service user.
        'glance': dict(keystone.service_credentials('cinder'),
                       region_name=settings.REGION),
        'database': {'connection': mariadb.db_url('cinder')},
        'keystone_authtoken': keystone.authtoken('cinder'),
        'oslo_concurrency': {'lock_path': c + '/lock'},
        'coordination': {'backend_url': settings.COORDINATION_URL},
    }
    for name in settings.BACKENDS:
        out[name] = {
            'volume_driver': 'cinder_store.tests.functional.loopfile.driver.'
                             'LoopFileDriver',
            'volume_backend_name': name,
            'loopfile_volume_dir': os.path.join(settings.VOLUMES, name),
            'loopfile_mode': 'file' if name == 'file' else 'block',
            # New volumes hold old data: images must never show it
            'loopfile_junk': 'true',
            # upload-to-image clones the volume and registers cinder://
            'image_upload_use_cinder_backend': 'true',
        }
    out[settings.RBD_BACKEND] = {
        'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver',
        'volume_backend_name': settings.RBD_BACKEND,
        'rbd_pool': settings.CEPH_POOL, 'rbd_user': settings.CEPH_USER,
        'rbd_ceph_conf': settings.CEPH_CONF,
        # Nova's libvirt secret; unused here, but Cinder sends it.
        'rbd_secret_uuid': '5f1b5c4e-7b43-4b4e-9d3b-cd6f1f3c2a10',
        'rados_connect_timeout': str(settings.CEPH_CLIENT_TIMEOUT),
        'image_upload_use_cinder_backend': 'true',
    }
    return out


def write_config():
    process.write(settings.CINDER_CONF, process.ini(sections(), 'cinder'))
    shutil.copy(os.path.join(settings.VENV, 'etc/cinder/api-paste.ini'),
                os.path.join(DIR, 'api-paste.ini'))


def start(state):
    for sub in ('state', 'lock', 'coord'):
        os.makedirs(os.path.join(DIR, sub), exist_ok=True)
    for name in settings.BACKENDS:
        os.makedirs(os.path.join(settings.VOLUMES, name), exist_ok=True)
    conf = ('--config-file', settings.CINDER_CONF)
    marker = os.path.join(DIR, '.db-synced')
    if not os.path.exists(marker):
        process.run(settings.BIN + '/cinder-manage', *conf, 'db', 'sync')
        open(marker, 'w').close()
    for svc in SERVICES:
        process.start(state, svc, [settings.BIN + '/' + svc, *conf])
    process.wait_for('cinder-api', process.http_ok(
        'http://%s:%d/' % (settings.HOST, settings.PORTS['cinder-api'])), 60)
    # volume types, quotas, a canary volume per type
    install.setup('volume-types')
