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
cinder_store; ``upstream``, ``upstream-rbd`` and ``upstream-multiattach``
are glance_store's in-tree cinder driver on the same Cinder backends, and
``glance-rbd`` is Glance's own rbd store (thin) on a pool of its own, for
the benchmarks.

``settings.GLANCE_HOSTS`` hosts run the same configuration but for what
is a host's own: its host name, port, lock directory (locks and
cinder_store's records), staging directory and log.  They share the
database and, through etcd, know which of them are alive.
"""

import json
import os
import shutil
import socket

from local_stack import keystone
from local_stack import mariadb
from local_stack import process
from local_stack import settings

DIR = os.path.join(settings.STACK, 'glance')
UPSTREAM = ('upstream', 'upstream-rbd', 'upstream-multiattach')
ETC_HOSTS = '/etc/hosts'
# Marks the lines ``up`` adds to ETC_HOSTS, so ``down`` removes only them
HOSTS_MARK = '# cinder_store local stack'


class Host(object):
    """Glance host ``number`` (1-based): what is its own."""

    def __init__(self, number):
        self.number = number
        self.service = settings.GLANCE_SERVICES[number - 1]
        first = number == 1
        # None: this machine's own host name
        self.host_name = None if first else self.service
        self.dir = DIR if first else os.path.join(settings.STACK,
                                                  self.service)
        self.lock_path = (settings.GLANCE_LOCKS if first
                          else os.path.join(self.dir, 'lock'))
        self.port = settings.PORTS[self.service]
        self.url = 'http://%s:%d' % (settings.HOST, self.port)
        self.log = os.path.join(settings.LOGS, 'glance-api.log' if first
                                else 'glance-api-%d.log' % number)
        self.conf = os.path.join(self.dir, 'glance-api.conf')

    def describe(self):
        return {'service': self.service, 'host_name': self.host_name,
                'url': self.url, 'lock_path': self.lock_path,
                'conf': self.conf, 'log': self.log}


def hosts():
    return [Host(n) for n in range(1, settings.GLANCE_HOSTS + 1)]


def sections(glance_host=None):
    glance_host = glance_host or Host(1)
    staging = os.path.join(glance_host.dir, 'staging')
    ours = settings.CINDER_BACKENDS
    # Sorted by id: Glance lists an image imported to every store in this
    # order, and Tempest's waiters expect the ids sorted.
    backends = sorted(['%s:cinder_store' % b for b in ours] +
                      ['%s:cinder' % b for b in UPSTREAM] +
                      ['%s:rbd' % settings.GLANCE_RBD_BACKEND],
                      key=lambda entry: entry.split(':')[0])
    out = {
        'DEFAULT': {'enabled_backends': ', '.join(backends),
                    'log_file': glance_host.log,
                    'debug': 'true', 'workers': '2',
                    # glance-direct: an import reaching another host than
                    # the one that staged the data is passed on to it
                    'worker_self_reference_url': glance_host.url,
                    # Cinder's direct clone reads the location from here
                    'show_image_direct_url': 'true',
                    'enabled_import_methods':
                        '[glance-direct,web-download,copy-image]'},
        # Imports end raw, the format Cinder clones an image-volume in
        'image_import_opts': {'image_import_plugins': "['image_conversion']"},
        'image_conversion': {'output_format': 'raw'},
        'import_filtering_opts': {
            'allowed_hosts': '[%s]' % settings.HOST,
            'allowed_ports': '[80,443,%d]' % settings.WEB_DOWNLOAD_PORT},
        # Not SQLite: imports and uploads update images from both workers
        # and background tasks at once ("database is locked").
        'database': {'connection': mariadb.db_url('glance')},
        'keystone_authtoken': keystone.authtoken('glance'),
        'paste_deploy': {'flavor': 'keystone'},
        'glance_store': {'default_backend':
                         settings.GLANCE_DEFAULT_BACKEND},
        'os_glance_staging_store': {'filesystem_store_datadir': staging},
        'os_glance_tasks_store': {'filesystem_store_datadir':
                                  os.path.join(glance_host.dir, 'tasks')},
        'oslo_concurrency': {'lock_path': glance_host.lock_path},
        'privsep_osbrick': {'helper_command':
                            settings.BIN + '/privsep-helper'},
        'backend_defaults': dict(keystone.service_credentials('glance'),
                                 cinder_store_region_name=settings.REGION,
                                 cinder_store_state_transition_timeout='120',
                                 cinder_store_coordination_url=(
                                     settings.COORDINATION_URL),
                                 cinder_store_lost_host_grace=str(
                                     settings.LOST_HOST_GRACE)),
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
        out[name] = upstream_section(name, glance_host)
    out[settings.GLANCE_RBD_BACKEND] = {
        'store_description': "Glance's rbd store, thin",
        'rbd_store_pool': settings.GLANCE_RBD_POOL,
        'rbd_store_user': settings.CEPH_USER,
        'rbd_store_ceph_conf': settings.CEPH_CONF,
        'rbd_thin_provisioning': 'true',
        'rados_connect_timeout': str(settings.CEPH_CLIENT_TIMEOUT)}
    return out


def upstream_section(volume_type, glance_host):
    return {
        'store_description': 'in-tree glance_store cinder driver',
        'cinder_volume_type': volume_type,
        'cinder_store_auth_address': settings.KEYSTONE_URL,
        'cinder_store_user_name': 'glance',
        'cinder_store_password': settings.PASSWORDS['glance'],
        'cinder_store_project_name': 'service',
        'cinder_os_region_name': settings.REGION,
        'cinder_catalog_info': 'block-storage::publicURL',
        'cinder_mount_point_base': os.path.join(glance_host.dir, 'mnt'),
        'cinder_state_transition_timeout': '120',
        'rootwrap_config': settings.VENV + '/etc/glance/rootwrap.conf',
    }


def write_config():
    # Host 1's configuration is the stack's glance-api.conf, which tools
    # and the tests' in-process stores load.
    process.write(settings.GLANCE_CONF, process.ini(sections(), 'glance'))
    for glance_host in hosts():
        os.makedirs(glance_host.dir, exist_ok=True)
        # Glance reads glance-api.conf and the paste file from one
        # directory.
        process.write(glance_host.conf,
                      process.ini(sections(glance_host), 'glance'))
        shutil.copy(os.path.join(settings.VENV,
                                 'etc/glance/glance-api-paste.ini'),
                    os.path.join(glance_host.dir, 'glance-api-paste.ini'))
    process.write(settings.GLANCE_HOSTS_FILE, json.dumps(
        [h.describe() for h in hosts()], indent=2))
    process.write_wsgi_wrapper('stack_glance', 'glance.wsgi.api')


def start(state):
    marker = os.path.join(DIR, '.db-synced-mariadb')
    if not os.path.exists(marker):
        process.run(settings.BIN + '/glance-manage', '--config-file',
                    settings.GLANCE_CONF, 'db_sync')
        open(marker, 'w').close()
    # The metadata definitions a cloud ships with (Glance's own catalog)
    metadefs = os.path.join(DIR, '.metadefs-loaded')
    if not os.path.exists(metadefs):
        process.run(settings.BIN + '/glance-manage', '--config-file',
                    settings.GLANCE_CONF, 'db_load_metadefs',
                    os.path.join(settings.VENV, 'etc', 'glance', 'metadefs'))
        open(metadefs, 'w').close()
    started = [h for h in hosts() if _start_host(state, h)]
    for glance_host in started:
        process.wait_for(glance_host.service, process.http_ok(
            glance_host.url + '/versions'), 90)


def _start_host(state, glance_host):
    for sub in ('staging', 'tasks', 'lock', 'mnt'):
        os.makedirs(os.path.join(glance_host.dir, sub), exist_ok=True)
    # A worker's threads stay busy while a client holds a download open:
    # the six held at once by the concurrent-downloads test must never
    # take every thread of the worker that accepted them.
    command = process.gunicorn('stack_glance', glance_host.port, 2,
                               threads=8)
    if glance_host.host_name:
        # Its own host name: its own Cinder connector host, as a separate
        # machine would have.
        _make_resolvable(glance_host.host_name)
        command = ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && '
                   'exec "$@"', glance_host.host_name] + command
    return process.start(state, glance_host.service, command,
                         env={'OS_GLANCE_CONFIG_DIR': glance_host.dir,
                              'PYTHONPATH': os.path.join(settings.STACK,
                                                         'wsgi')})


def _make_resolvable(name):
    """Let ``name`` resolve to this machine, as a host's name does.

    The in-tree driver resolves its own host name for its connector; on a
    name no resolver knows its every upload fails.
    """
    try:
        socket.getaddrinfo(name, None)
        return
    except socket.gaierror:
        pass
    with open(ETC_HOSTS, 'a+') as hosts_file:
        hosts_file.seek(0)
        text = hosts_file.read()
        separator = '\n' if text and not text.endswith('\n') else ''
        hosts_file.write('%s%s %s %s\n'
                         % (separator, settings.HOST, name, HOSTS_MARK))


def forget_host_names():
    """``up`` writes them again; nothing of the stack stays outside it."""
    try:
        with open(ETC_HOSTS) as hosts_file:
            lines = hosts_file.readlines()
    except FileNotFoundError:
        return
    kept = [line for line in lines if not line.rstrip().endswith(HOSTS_MARK)]
    if kept != lines:
        with open(ETC_HOSTS, 'w') as hosts_file:
            hosts_file.writelines(kept)
