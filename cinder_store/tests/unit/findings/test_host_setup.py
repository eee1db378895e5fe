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

"""What the check finds of this host and its configuration."""

import os
from unittest import mock


from cinder_store import auth
from cinder_store.devices import rbd
from cinder_store import findings
from cinder_store import host
from cinder_store.tests.unit import base

DEAD = base.DEAD
FILTERS = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..',
                       'etc', 'glance', 'rootwrap.d')


rewrite = base.rewrite_record


class TestHostSetup(base.FindingsTestCase):

    def test_a_healthy_backend(self):
        with mock.patch('os.geteuid', return_value=0):
            found = findings.check_backend(self.store.maintenance())
        self.assertEqual([findings.OK] * 12, [f.status for f in found])
        self.assertIn("volume type '__DEFAULT__' exists", found[0].message)

    def test_configured_volume_type_missing(self):
        self.conf.set_override('cinder_store_volume_type', 'gone',
                               group='fast')
        found = self.findings()['cinder']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('gone', found.message)

    def test_without_service_credentials_cinder_is_skipped(self):
        with mock.patch.object(auth.Credentials,
                               'has_service_credentials', False):
            self.assertEqual(findings.SKIP, self.findings()['cinder'].status)

    def test_lock_path_in_memory_is_a_warning(self):
        self.filesystem.return_value = 'tmpfs'
        found = self.findings()['lock path']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('in memory', found.message)

    def test_lock_path_not_writable(self):
        self.maintenance.settings.locks.lock_path = os.path.join(self.tmp,
                                                                 'file')
        open(self.store.maintenance().lock_path, 'w').close()
        self.assertEqual(findings.FAIL, self.findings()['lock path'].status)

    def test_host_probe_failure(self):
        # a fresh process, whose probe fails
        host.forget_connector_properties()
        with mock.patch.object(self.brick, 'get_connector_properties',
                               side_effect=OSError('no privsep helper')):
            found = self.findings()['host']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('no privsep helper', found.message)

    def rbd_store(self, keyring_text, mode=0o600):
        path = os.path.join(self.tmp, 'ceph.client.glance.keyring')
        with open(path, 'w') as f:
            f.write(keyring_text)
        os.chmod(path, mode)
        self.store = self.make_store(cinder_store_rbd_keyring=path)
        return path

    def test_no_rbd_findings_without_a_keyring_option(self):
        self.assertNotIn('ceph keyring', self.findings())

    def test_a_readable_keyring_with_a_key(self):
        path = self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        found = self.findings()
        self.assertEqual((findings.OK, '%s: client.glance' % path),
                         (found['ceph keyring'].status,
                          found['ceph keyring'].message))
        self.assertEqual(findings.OK, found['rbd files'].status)
        self.assertNotIn('AQBx', str(found))

    def test_ceph_is_probed_with_an_available_volume(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        self.assertIn('not probed',
                      self.findings(probe=False)['ceph'].message)
        self.assertIn('no available volume', self.findings()['ceph'].message)
        self.cinder.transport = 'rbd'
        volume = self.available_volume(self.bound())
        found = self.findings()['ceph']
        self.assertEqual(findings.OK, found.status)
        self.assertIn('volume %s attached and read' % volume.id,
                      found.message)
        self.assertNothingLeft(volumes=1)

    def test_ceph_probe_failure_is_explained(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        self.cinder.transport = 'rbd'
        self.available_volume(self.bound())
        self.brick.fail('connect_volume', OSError('RADOS timed out'))
        with mock.patch.object(rbd, 'monitor_reachable', return_value=False):
            found = self.findings()['ceph']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('no monitor Cinder names', found.message)
        self.assertNothingLeft(volumes=1)

    def test_a_keyring_readable_by_others_is_a_warning(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n', mode=0o644)
        found = self.findings()['ceph keyring']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('chmod 600', found.message)

    def test_a_keyring_without_a_key_or_missing_fails(self):
        path = self.rbd_store('[global]\n')
        found = self.findings()['ceph keyring']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('holds no client key', found.message)
        os.unlink(path)
        found = self.findings()['ceph keyring']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('cinder_store_rbd_keyring must name', found.message)

    def test_fix_removes_connect_files_a_killed_worker_left(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        left = os.path.join(self.tmp, 'brickrbd_left')
        with open(left, 'w') as f:
            f.write(rbd.RBDClient.MARK)
        os.utime(left, (1, 1))
        with mock.patch('tempfile.gettempdir', return_value=self.tmp):
            self.assertEqual(findings.WARN,
                             self.findings()['rbd files'].status)
            self.assertTrue(os.path.exists(left))
            found = self.findings(fix=True)['rbd files']
        self.assertEqual((findings.FIXED, 'removed %s' % left),
                         (found.status, found.message))
        self.assertFalse(os.path.exists(left))

    def rootwrap_conf(self, filters_path):
        path = os.path.join(self.tmp, 'rootwrap.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nfilters_path=%s\n' % filters_path)
        self.conf.set_override('cinder_store_rootwrap_config', path,
                               group='fast')

    def privileges(self):
        with mock.patch('os.geteuid', return_value=1000):
            return self.findings()['privileges']

    def test_unprivileged_with_the_shipped_filters(self):
        self.rootwrap_conf(FILTERS)
        found = self.privileges()
        self.assertEqual(findings.OK, found.status)
        self.assertIn('cinder_store.filters', found.message)

    def test_unprivileged_without_a_chown_filter(self):
        empty = os.path.join(self.tmp, 'filters')
        os.makedirs(empty)
        with open(os.path.join(empty, 'other.filters'), 'w') as f:
            f.write('[Filters]\nmount: CommandFilter, mount, root\n')
        self.rootwrap_conf(empty)
        found = self.privileges()
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('cinder_store.filters', found.message)

    def test_unprivileged_without_rootwrap_config(self):
        self.conf.set_override('cinder_store_rootwrap_config',
                               self.tmp + '/missing.conf', group='fast')
        found = self.privileges()
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('missing.conf', found.message)
