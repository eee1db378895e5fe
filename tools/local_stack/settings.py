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

"""Every constant of the local stack, defined once.

Paths (``$STACK_DIR``, ``$STACK_VENV``, ``$STACK_VOLUMES_DIR``), ports,
URLs, backends and volume types, users and passwords.  Standard library
only: ``tools/stack`` runs before any virtualenv exists, and the helpers
that run inside it (``stack_setup.py``, ``chaos.py``) import it too.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
STACK = os.path.abspath(os.environ.get('STACK_DIR',
                                       os.path.join(ROOT, '.stack')))
VENV = os.path.abspath(os.environ.get('STACK_VENV',
                                      os.path.join(STACK, 'venv')))
VOLUMES = os.path.abspath(os.environ.get('STACK_VOLUMES_DIR',
                                         os.path.join(STACK, 'volumes')))
LOGS = os.path.join(STACK, 'logs')
STATE = os.path.join(STACK, 'state.json')
CONSTRAINTS = os.path.join(ROOT, 'constraints.txt')
BIN = os.path.join(VENV, 'bin')
OVERRIDES = os.path.join(STACK, 'overrides')
CLOUDS = os.path.join(STACK, 'clouds.yaml')
GLANCE_CONF = os.path.join(STACK, 'glance-api.conf')
CINDER_CONF = os.path.join(STACK, 'cinder', 'cinder.conf')
# Where Glance host 1 keeps its locks, and cinder_store its records
GLANCE_LOCKS = os.path.join(STACK, 'glance', 'lock')
# What the functional tests learn of the Glance hosts (glance.HOSTS_FILE)
GLANCE_HOSTS_FILE = os.path.join(STACK, 'glance-hosts.json')

HOST = '127.0.0.1'
PORTS = {'epmd': 4369, 'rabbitmq': 5672, 'rabbitmq-dist': 25672,
         'mariadb': 13306, 'keystone': 5000, 'cinder-api': 8776,
         'glance': 9292, 'ceph-mon': 46789, 'ceph-mon-v2': 43300,
         'etcd': 12379, 'etcd-peer': 12380}
# Glance API hosts behind HAProxy, whose port (`glance`) is the catalog's
# image endpoint.  Host 1 runs under this machine's host name, sharing
# its locks with the tests' in-process stores; hosts 2.. each run in a
# UTS namespace of their own (host name glance-N), as separate machines
# would.
GLANCE_HOSTS = max(1, int(os.environ.get('STACK_GLANCE_HOSTS', '3')))
GLANCE_SERVICES = tuple('glance-%d' % n for n in range(1, GLANCE_HOSTS + 1))
for _n, _name in enumerate(GLANCE_SERVICES, 1):
    PORTS[_name] = 9300 + _n
# Glance's web-download may fetch from here (the functional tests serve it)
WEB_DOWNLOAD_PORT = 18080
KEYSTONE = 'http://%s:%d' % (HOST, PORTS['keystone'])
KEYSTONE_URL = KEYSTONE + '/v3'
CINDER_URL = 'http://%s:%d/v3' % (HOST, PORTS['cinder-api'])
GLANCE_URL = 'http://%s:%d' % (HOST, PORTS['glance'])
# tooz's etcd3gw driver (cinder_store's membership, Cinder's coordination).
# A process out of heartbeats leaves the group after 10 s (tooz's default
# is 30), and the Glance hosts' grace is short too: the tests of a lost
# host wait for both.
MEMBERSHIP_TIMEOUT = 10
COORDINATION_URL = ('etcd3+http://%s:%d?api_version=v3&membership_timeout=%d'
                    % (HOST, PORTS['etcd'], MEMBERSHIP_TIMEOUT))
LOST_HOST_GRACE = 15
REGION = 'RegionOne'

# Glance's default store (tools/tempest restarts Glance with another)
GLANCE_DEFAULT_BACKEND = os.environ.get('STACK_GLANCE_DEFAULT_BACKEND',
                                        'block')
# Loop-file test driver backends; `rbd` is Cinder's RBD driver on Ceph.
BACKENDS = ('block', 'file', 'multiattach')
RBD_BACKEND = 'rbd'
CINDER_BACKENDS = BACKENDS + (RBD_BACKEND,)
# Volume type -> Cinder backend.  The in-tree driver's backends have a
# type of their own on the `block` and `rbd` Cinder backends, so Glance can
# tell which store owns a volume Cinder registers (upload-to-image, the
# location API).
VOLUME_TYPES = dict({b: b for b in CINDER_BACKENDS}, upstream='block')
VOLUME_TYPES['upstream-rbd'] = RBD_BACKEND
VOLUME_TYPES['upstream-multiattach'] = 'multiattach'
# Types that make multiattach volumes
MULTIATTACH_TYPES = ('multiattach', 'upstream-multiattach')

CEPH = os.path.join(STACK, 'ceph')
CEPH_CONF = os.path.join(CEPH, 'ceph.conf')
CEPH_POOL = 'volumes'
# Glance's own rbd store (backend GLANCE_RBD_BACKEND), the bar on Ceph
GLANCE_RBD_POOL = 'images'
GLANCE_RBD_BACKEND = 'glance-rbd'
# The Ceph client Cinder and Glance use.  The in-tree driver (through
# os-brick) reads its keyring only from /etc/ceph/ceph.client.<user>.keyring:
# a name of its own keeps the stack from touching a real one there.
CEPH_USER = 'cinderstack'
CEPH_KEYRING = os.path.join(CEPH, 'ceph.client.%s.keyring' % CEPH_USER)
ETC_KEYRING = '/etc/ceph/ceph.client.%s.keyring' % CEPH_USER
# A broken cluster fails a client in seconds, not librados' 300 s.
CEPH_CLIENT_TIMEOUT = 10

# Keystone users (project `service` but admin) and database users
PASSWORDS = {'admin': 'adminpass', 'glance': 'glancepass',
             'cinder': 'cinderpass', 'db': 'cinderdb', 'glance-db': 'glancedb'}
SERVICE_USERS = ('glance', 'cinder')

# qemu-utils: Cinder's image paths (create from image, upload to image)
# and Glance's image conversion; e2fsprogs: real file-system images
APT_PACKAGES = ('rabbitmq-server', 'mariadb-server', 'qemu-utils',
                'e2fsprogs',
                'etcd-server', 'haproxy',
                'ceph-mon', 'ceph-mgr', 'ceph-osd', 'ceph-common',
                'python3-rados', 'python3-rbd')
# Debian builds the Ceph bindings for its own python (3.11) only; PyPI
# has none.  The venv sees just these two modules through a .pth file.
CEPH_BINDINGS = ('rados', 'rbd')
PIP_PACKAGES = ('cinder', 'keystone', 'glance', 'glance-store', 'os-brick',
                'python-cinderclient', 'python-keystoneclient',
                'openstacksdk', 'gunicorn', 'PyMySQL', 'etcd3gw')
QUIET_ENV = {'PYTHONWARNINGS': 'ignore'}

SERVICES = ('epmd', 'rabbitmq', 'mariadb', 'etcd', 'ceph-mon', 'ceph-mgr',
            'ceph-osd', 'keystone', 'cinder-api', 'cinder-scheduler',
            'cinder-volume') + GLANCE_SERVICES + ('haproxy',)
ALIASES = {'cinder': ('cinder-api', 'cinder-scheduler', 'cinder-volume'),
           'ceph': ('ceph-mon', 'ceph-mgr', 'ceph-osd'),
           'glance': GLANCE_SERVICES + ('haproxy',)}
# Which service listens on each port
PORT_OWNERS = {'epmd': 'epmd', 'rabbitmq': 'rabbitmq',
               'rabbitmq-dist': 'rabbitmq', 'mariadb': 'mariadb',
               'keystone': 'keystone', 'cinder-api': 'cinder-api',
               'glance': 'haproxy', 'ceph-mon': 'ceph-mon',
               'ceph-mon-v2': 'ceph-mon', 'etcd': 'etcd', 'etcd-peer': 'etcd',
               **{name: name for name in GLANCE_SERVICES}}
