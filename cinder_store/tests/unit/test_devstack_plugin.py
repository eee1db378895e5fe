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

"""The devstack plugin's phases, run with devstack's own ini functions.

devstack's ``inc/ini-config`` (unmodified, from the shared reference
copy; ``CINDER_STORE_DEVSTACK_REF`` points elsewhere) edits sample
glance-api.conf files the way devstack leaves them; the result is loaded
through glance_store's multi-store loader, as glance-api loads it.
Devstack's other functions are stand-ins that record their calls.
"""

import configparser
import os
import shutil
import subprocess
from unittest import mock

import fixtures
from glance_store import location
from glance_store import multi_backend
from oslo_concurrency import opts as lockutils_opts
from oslo_config import cfg

from cinder_store import store
from cinder_store.tests.unit import base
from cinder_store.tests.unit import fakes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
DEVSTACK_REF = os.environ.get(
    'CINDER_STORE_DEVSTACK_REF',
    os.path.join(os.path.dirname(ROOT), 'shared', 'devstack-ref'))

HARNESS = r'''
set -e
source "$DEVSTACK_REF/inc/ini-config"
function is_service_enabled {
    local s
    for s in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0
    done
    return 1
}
function echo_summary { :; }
function define_plugin { :; }
function setup_develop { echo "setup_develop $*" >> "$CALLS"; }
function openstack {
    { printf 'openstack'; printf ' %q' "$@"; echo; } >> "$CALLS"
    if [[ " $* " == *" quota show "* ]]; then
        printf 'gigabytes 1000\nvolumes %s\nsnapshots 10\n' "${QUOTA:-10}"
    fi
    [[ " $* " != *" volume type show "* ]]
}
function sudo {
    # the test's user owns the test's files: drop install's owner
    local args=() skip=""
    for a in "$@"; do
        if [[ -n "$skip" ]]; then skip=""; continue; fi
        if [[ "$1" == install && "$a" == -o ]]; then skip=1; continue; fi
        args+=("$a")
    done
    "${args[@]}"
}
source "$PLUGIN_DIR/settings"
source "$PLUGIN_DIR/plugin.sh" "$@"
eval "${THEN:-}"
'''

# What devstack's lib/glance leaves before the plugin's post-config.
SINGLE_STORE = '''
[DEFAULT]
debug = True

[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = {tmp}/images/

[oslo_concurrency]
lock_path = {tmp}/locks
'''

MULTI_STORE_IN_TREE_CINDER = '''
[DEFAULT]
enabled_backends = lvmdriver-1:cinder

[glance_store]
default_backend = lvmdriver-1

[lvmdriver-1]
cinder_store_auth_address = http://127.0.0.1:1/identity/v3
cinder_store_user_name = glance
cinder_store_password = secret
cinder_store_project_name = service
cinder_volume_type = lvmdriver-1

[os_glance_staging_store]
filesystem_store_datadir = {tmp}/staging/

[os_glance_tasks_store]
filesystem_store_datadir = {tmp}/tasks/

[oslo_concurrency]
lock_path = {tmp}/locks
'''


class TestDevstackPlugin(base.TestCase):

    def setUp(self):
        super(TestDevstackPlugin, self).setUp()
        if not os.path.exists(os.path.join(DEVSTACK_REF, 'inc',
                                           'ini-config')):
            self.skipTest('no devstack reference files at %s (set '
                          'CINDER_STORE_DEVSTACK_REF)' % DEVSTACK_REF)
        self.glance_dir = os.path.join(self.tmp, 'etc', 'glance')
        self.bin_dir = os.path.join(self.tmp, 'venv', 'bin')
        self.sudo_bin = os.path.join(self.tmp, 'usr-local-bin')
        self.plugin_home = os.path.join(self.tmp, 'cinder_store')
        for d in (self.glance_dir, self.bin_dir, self.sudo_bin):
            os.makedirs(d)
        shutil.copytree(os.path.join(ROOT, 'etc'),
                        os.path.join(self.plugin_home, 'etc'))
        rootwrap = os.path.join(self.bin_dir, 'glance-rootwrap')
        with open(rootwrap, 'w') as f:
            f.write('#!/bin/sh\n')
        os.chmod(rootwrap, 0o755)
        # lib/glance copies glance_store's rootwrap.conf here
        with open(os.path.join(self.glance_dir, 'rootwrap.conf'), 'w') as f:
            f.write('[DEFAULT]\nfilters_path=/etc/glance/rootwrap.d\n')
        self.conf_path = os.path.join(self.glance_dir, 'glance-api.conf')
        self.calls = os.path.join(self.tmp, 'calls')
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_store.host.brick_connector', fakes.FakeBrick()))
        self.addCleanup(base.join_probes)
        self.addCleanup(location.SCHEME_TO_CLS_BACKEND_MAP.clear)

    def devstack(self, sample, backends='lvm:lvmdriver-1',
                 services='glance,g-api,cinder,c-vol', **settings):
        with open(self.conf_path, 'w') as f:
            f.write(sample.format(tmp=self.tmp))
        self.env = dict(
            os.environ, DEVSTACK_REF=DEVSTACK_REF, CALLS=self.calls,
            PLUGIN_DIR=os.path.join(ROOT, 'devstack'), DEST=self.tmp,
            DATA_DIR=os.path.join(self.tmp, 'data'),
            CINDER_STORE_DIR=self.plugin_home,
            CINDER_STORE_SUDO_BIN_DIR=self.sudo_bin,
            GLANCE_CONF_DIR=self.glance_dir, GLANCE_API_CONF=self.conf_path,
            GLANCE_BIN_DIR=self.bin_dir,
            GLANCE_IMAGE_DIR=os.path.join(self.tmp, 'images'),
            GLANCE_LOCK_DIR=os.path.join(self.tmp, 'locks'),
            CINDER_ENABLED_BACKENDS=backends, ENABLED_SERVICES=services,
            KEYSTONE_SERVICE_URI_V3='http://127.0.0.1:1/identity/v3',
            SERVICE_PASSWORD='secret', SERVICE_PROJECT_NAME='service',
            SERVICE_DOMAIN_NAME='Default', REGION_NAME='RegionOne',
            SSL_BUNDLE_FILE='/opt/stack/data/ca-bundle.pem',
            STACK_USER='stack', **settings)

    def phase(self, *args):
        subprocess.run(['bash', '-c', HARNESS, 'plugin'] + list(args),
                       env=self.env, check=True, capture_output=True)

    def post_config(self):
        self.phase('stack', 'post-config')
        with open(self.conf_path) as f:
            return f.read()

    def load(self):
        """The written conf through glance_store's multi-store loader."""
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.DictOpt('enabled_backends'))
        for group, options in lockutils_opts.list_opts():
            conf.register_opts(options, group)
        conf(['--config-file', self.conf_path], project='glance',
             default_config_files=[])
        multi_backend.register_store_opts(conf)
        from glance_store._drivers import cinder as in_tree
        # The in-tree driver asks Cinder for its volume type at start.
        with mock.patch.object(multi_backend, 'CONF', conf), \
                mock.patch.object(in_tree.Store, 'configure_add'):
            loaded = multi_backend.create_multi_stores(conf)
            stores = {b: multi_backend.get_store_from_store_identifier(b)
                      for b in conf.enabled_backends}
        return conf, loaded, stores

    def test_default_single_store_devstack(self):
        self.devstack(SINGLE_STORE)
        self.post_config()
        conf, _, stores = self.load()
        self.assertEqual({'file': 'file', 'cs-lvmdriver-1': 'cinder_store'},
                         conf.enabled_backends)
        # glance-api refuses multi-store without a default backend
        self.assertEqual('cs-lvmdriver-1', conf.glance_store.default_backend)
        self.assertIsInstance(stores['cs-lvmdriver-1'], store.Store)
        self.assertEqual('cinder_store-lvmdriver-1',
                         conf['cs-lvmdriver-1'].cinder_store_volume_type)
        # the single-store file store's images stay where they were
        self.assertEqual(os.path.join(self.tmp, 'images/'),
                         conf.file.filesystem_store_datadir)
        # Glance itself registers the reserved stores' options
        written = configparser.ConfigParser(interpolation=None)
        written.read(self.conf_path)
        self.assertEqual(
            os.path.join(self.tmp, 'data/glance/os_glance_staging_store/'),
            written.get('os_glance_staging_store',
                        'filesystem_store_datadir'))

    def test_beside_devstacks_in_tree_cinder_stores(self):
        base.skip_unless_in_tree_loads(self)
        self.devstack(MULTI_STORE_IN_TREE_CINDER)
        self.post_config()
        conf, _, stores = self.load()
        self.assertEqual({'lvmdriver-1': 'cinder',
                          'cs-lvmdriver-1': 'cinder_store'},
                         conf.enabled_backends)
        self.assertEqual('lvmdriver-1', conf.glance_store.default_backend)
        self.assertNotIsInstance(stores['lvmdriver-1'], store.Store)
        self.assertIsInstance(stores['cs-lvmdriver-1'], store.Store)
        # each store its own volume type: Glance can tell whose a volume is
        self.assertNotEqual(conf['lvmdriver-1'].cinder_volume_type,
                            conf['cs-lvmdriver-1'].cinder_store_volume_type)

    def test_stores_are_listed_sorted_by_id(self):
        self.devstack(SINGLE_STORE)
        self.post_config()
        written = configparser.ConfigParser(interpolation=None)
        written.read(self.conf_path)
        self.assertEqual('cs-lvmdriver-1:cinder_store,file:file',
                         written.get('DEFAULT', 'enabled_backends'))

    def test_restack_changes_nothing(self):
        base.skip_unless_in_tree_loads(self)
        self.devstack(MULTI_STORE_IN_TREE_CINDER,
                      backends='lvm:lvmdriver-1,lvm:lvmdriver-2')
        first = self.post_config()
        self.phase('stack', 'post-config')
        with open(self.conf_path) as f:
            self.assertEqual(first, f.read())
        conf, _, _ = self.load()  # oslo.config refuses duplicate backends
        self.assertEqual(['cs-lvmdriver-1', 'cs-lvmdriver-2', 'lvmdriver-1'],
                         sorted(conf.enabled_backends))

    def test_paths_come_from_devstack(self):
        self.devstack(SINGLE_STORE)
        self.post_config()
        conf, _, _ = self.load()
        self.assertEqual(os.path.join(self.glance_dir, 'rootwrap.conf'),
                         conf.backend_defaults.cinder_store_rootwrap_config)
        self.assertEqual(os.path.join(self.tmp, 'locks'),
                         conf.oslo_concurrency.lock_path)
        # glance-rootwrap from the virtualenv is found on sudo's path
        self.assertEqual(os.path.join(self.bin_dir, 'glance-rootwrap'),
                         os.readlink(os.path.join(self.sudo_bin,
                                                  'glance-rootwrap')))
        rootwrap = cfg.ConfigParser(
            os.path.join(self.glance_dir, 'rootwrap.conf'), {})
        rootwrap.parse()
        self.assertIn(os.path.join(self.glance_dir, 'rootwrap.d'),
                      rootwrap.sections['DEFAULT']['filters_path'][0])
        self.assertIn(self.bin_dir,
                      rootwrap.sections['DEFAULT']['exec_dirs'][0])

    def filters(self):
        with open(os.path.join(self.glance_dir, 'rootwrap.d',
                               'cinder_store.filters')) as f:
            return f.read()

    def test_mount_filters_only_with_nfs(self):
        self.devstack(SINGLE_STORE)
        self.post_config()
        self.assertIn('disk_chown:', self.filters())
        self.assertNotIn('\nmount:', self.filters())
        self.devstack(SINGLE_STORE, backends='lvm:lvmdriver-1,nfs:nfs')
        self.post_config()
        self.assertIn('\nmount:', self.filters())
        self.assertIn('\numount:', self.filters())

    def test_tls_uses_devstacks_ca_bundle(self):
        self.devstack(SINGLE_STORE, services='glance,cinder,tls-proxy')
        self.post_config()
        conf, _, _ = self.load()
        self.assertEqual('/opt/stack/data/ca-bundle.pem',
                         conf.backend_defaults.cafile)

    def test_without_tls_no_ca(self):
        self.devstack(SINGLE_STORE)
        self.post_config()
        conf, _, _ = self.load()
        self.assertIsNone(conf.backend_defaults.cafile)

    def test_explicit_backends_and_default(self):
        self.devstack(SINGLE_STORE, CINDER_STORE_BACKENDS='fast:ssd,slow:hdd',
                      CINDER_STORE_DEFAULT_BACKEND='slow')
        self.post_config()
        conf, _, _ = self.load()
        self.assertEqual({'file': 'file', 'fast': 'cinder_store',
                          'slow': 'cinder_store'}, conf.enabled_backends)
        self.assertEqual('slow', conf.glance_store.default_backend)
        self.assertEqual('hdd', conf.slow.cinder_store_volume_type)

    def extra_calls(self, **settings):
        """The openstack calls of the extra phase under ``settings``."""
        self.devstack(SINGLE_STORE, **settings)
        if os.path.exists(self.calls):
            os.unlink(self.calls)
        self.phase('stack', 'extra')
        with open(self.calls) as f:
            return f.read().splitlines()

    def test_extra_creates_the_volume_types_once_cinder_is_up(self):
        calls = self.extra_calls(CINDER_STORE_BACKENDS=(
            'cs-a:cinder_store-a:lvmdriver-1,mine:existing-type'))
        self.assertIn('openstack --os-cloud devstack-admin volume type '
                      'create --property volume_backend_name=lvmdriver-1 '
                      'cinder_store-a', calls)
        # a type given without a Cinder backend is the operator's own
        self.assertFalse([c for c in calls if 'existing-type' in c])

    def quota_calls(self, **settings):
        return [c for c in self.extra_calls(**settings)
                if ' quota set ' in c]

    def test_extra_raises_the_service_projects_volume_quota(self):
        self.assertEqual(['openstack --os-cloud devstack-admin quota set '
                          '--volumes 100 service'], self.quota_calls())
        # never lowered, unlimited kept
        self.assertEqual([], self.quota_calls(QUOTA='500'))
        self.assertEqual([], self.quota_calls(QUOTA='-1'))

    def test_multiattach_flag_makes_a_multiattach_type(self):
        calls = self.extra_calls(CINDER_STORE_BACKENDS=(
            'cs-m:cinder_store-m:lf-multi:multiattach'))
        # one argument "multiattach=<is> True", as Cinder's extra spec
        self.assertIn('openstack --os-cloud devstack-admin volume type '
                      'create --property volume_backend_name=lf-multi '
                      r'--property multiattach=\<is\>\ True '
                      'cinder_store-m', calls)

    def test_functional_env_names_the_cloud_and_the_roles(self):
        self.devstack(SINGLE_STORE, CINDER_STORE_FUNCTIONAL_ROLES=(
            'block:cs-a,multiattach:cs-m'))
        self.post_config()
        with open(os.path.join(self.plugin_home, 'functional.env')) as f:
            env = f.read().splitlines()
        self.assertEqual([
            'export OS_CLOUD=devstack-admin',
            'export OS_CLIENT_CONFIG_FILE=/etc/openstack/clouds.yaml',
            'export CINDER_STORE_FUNCTIONAL_CONF=%s' % self.conf_path,
            'export CINDER_STORE_FUNCTIONAL_BLOCK_BACKEND=cs-a',
            'export CINDER_STORE_FUNCTIONAL_MULTIATTACH_BACKEND=cs-m'], env)

    def test_loopfile_backend_for_lib_cinder(self):
        cinder_conf = os.path.join(self.tmp, 'cinder.conf')
        self.devstack(SINGLE_STORE, backends='loopfile:lf-a,loopfile:lf-f',
                      CINDER_CONF=cinder_conf,
                      CINDER_STORE_LOOPFILE_FILE_BACKENDS='lf-f',
                      THEN='configure_cinder_backend_loopfile lf-a; '
                           'configure_cinder_backend_loopfile lf-f; '
                           'init_cinder_backend_loopfile lf-a')
        self.phase('stack', 'post-config')
        written = configparser.ConfigParser(interpolation=None)
        written.read(cinder_conf)
        volumes = os.path.join(self.tmp, 'data', 'cinder_store-loopfile')
        self.assertEqual({
            'volume_backend_name': 'lf-a',
            'volume_driver': 'cinder_store.tests.functional.loopfile.'
                             'driver.LoopFileDriver',
            'loopfile_volume_dir': os.path.join(volumes, 'lf-a'),
            'loopfile_mode': 'block',
            'loopfile_root_helper': 'sudo'}, dict(written['lf-a']))
        self.assertEqual('file', written['lf-f']['loopfile_mode'])
        self.assertTrue(os.path.isdir(os.path.join(volumes, 'lf-a')))

    def test_nothing_without_cinder(self):
        self.devstack(SINGLE_STORE, services='glance,g-api')
        before = self.post_config()
        self.assertNotIn('cinder_store', before)
