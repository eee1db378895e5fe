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

"""Which cloud to test against, and glance_store loaded as Glance does.

No test-framework imports: tools/bench uses this too, from the stack's
virtualenv.
"""

import configparser
import json
import os
import sys

from cinder_store import maintenance

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STACK_DIR = os.environ.get('STACK_DIR', os.path.join(ROOT, '.stack'))


def target():
    """(glance-api.conf, clouds.yaml or None, admin cloud, description)."""
    conf = os.path.join(STACK_DIR, 'glance-api.conf')
    if os.path.exists(conf):
        return (conf, os.path.join(STACK_DIR, 'clouds.yaml'), 'stack-admin',
                'local stack in %s' % STACK_DIR)
    if os.environ.get('OS_CLOUD') and os.environ.get(
            'CINDER_STORE_FUNCTIONAL_CONF'):
        return (os.environ['CINDER_STORE_FUNCTIONAL_CONF'],
                os.environ.get('OS_CLIENT_CONFIG_FILE'),
                os.environ['OS_CLOUD'], 'cloud %s' % os.environ['OS_CLOUD'])
    return None


def glance_hosts():
    """The local stack's Glance hosts, behind its HAProxy; [] elsewhere.

    Dicts with ``service``, ``host_name`` (None: this machine's),
    ``url``, ``lock_path``, ``conf`` and ``log``, host 1 first.
    """
    path = os.path.join(STACK_DIR, 'glance-hosts.json')
    if not os.path.exists(os.path.join(STACK_DIR, 'glance-api.conf')):
        return []
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return []


def glance_own_url():
    """Glance's own address (``worker_self_reference_url``), if set.

    On devstack, the address of glance-api's uwsgi behind Apache.
    """
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(target()[0])
    return conf.get('DEFAULT', 'worker_self_reference_url', fallback=None)


SKIP_REASON = ('no functional target: run `tools/stack up` (local stack in '
               '$STACK_DIR) or set OS_CLOUD and CINDER_STORE_FUNCTIONAL_CONF '
               'for a devstack cloud')

_loaded = {}


def load_stores():
    """Load glance_store exactly as Glance does, once per process."""
    if _loaded:
        return _loaded['conf']
    overrides = []
    if os.geteuid() == 0:
        # As root (the local stack), os-brick's privsep daemon comes from
        # the tests' own virtualenv.  Otherwise (devstack, as Glance's
        # user) it starts through glance-rootwrap, as Glance's does.
        helper = os.path.join(os.path.dirname(sys.executable),
                              'privsep-helper')
        overrides.append(('privsep_osbrick', 'helper_command', helper))
    # The tests' own reads detach when they end, as the contract says;
    # Glance's keep theirs warm (tests of warm reads make their own)
    overrides.append((None, 'cinder_store_warm_read_idle',
                      os.environ.get('CINDER_STORE_FUNCTIONAL_WARM', '0')))
    # A helper process playing a host without a coordination service
    if os.environ.get('CINDER_STORE_FUNCTIONAL_UNCOORDINATED'):
        overrides.append((None, 'cinder_store_coordination_url', ''))
    # A helper process playing another Glance host has locks of its own
    if os.environ.get('CINDER_STORE_FUNCTIONAL_LOCK_PATH'):
        overrides.append(('oslo_concurrency', 'lock_path',
                          os.environ['CINDER_STORE_FUNCTIONAL_LOCK_PATH']))
    conf = maintenance.load_stores(target()[0], overrides=overrides)
    _loaded['conf'] = conf
    return conf


def our_backends(conf):
    return sorted(b for b, kind in conf.enabled_backends.items()
                  if kind == 'cinder_store')


def glance_rbd_backends(conf):
    """Backends of Glance's own ``rbd`` driver (compared with, not ours)."""
    return sorted(b for b, kind in conf.enabled_backends.items()
                  if kind == 'rbd')


ROLES = ('block', 'file', 'multiattach', 'rbd')


def backend_for(role, conf):
    """The cinder_store backend id that plays ``role`` on the target.

    The local stack names its backends after their roles: ``block`` (a
    block device), ``file`` (the volume handed over as a plain file, as
    NFS-style transports do), ``multiattach`` and ``rbd`` (Ceph RBD,
    attached in userspace through librbd).  On another cloud,
    ``CINDER_STORE_FUNCTIONAL_<ROLE>_BACKEND`` names it; ``block``
    defaults to Glance's default backend if it is a cinder_store one, else
    to the first, never to one named for another role.  None if nothing
    plays the role.
    """
    if role not in ROLES:
        raise ValueError('unknown backend role %r' % role)
    ours = our_backends(conf)
    named = _named(role)
    if named:
        return named if named in ours else None
    if role in ours:
        return role
    if role != 'block':
        return None
    taken = {_named(r) for r in ROLES}
    default = conf.glance_store.default_backend
    candidates = ([default] if default in ours else []) + ours
    return next((b for b in candidates if b not in taken), None)


def _named(role):
    return os.environ.get('CINDER_STORE_FUNCTIONAL_%s_BACKEND'
                          % role.upper())
