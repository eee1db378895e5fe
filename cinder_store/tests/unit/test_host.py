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

import os
import socket
import tempfile
import time
from unittest import mock

import ddt
import fixtures
from glance_store import exceptions
from os_brick import privileged
from oslo_privsep import priv_context
from oslo_rootwrap import wrapper

from cinder_store import host
from cinder_store.tests.unit import base


class Vol(object):
    id = 'vol'
    volume_type = 't'
    encrypted = False


@ddt.ddt
class TestHost(base.CinderTestCase):

    def test_properties_cached_and_copied(self):
        first = host.connector_properties('', False, False)
        first['mountpoint'] = 'mutated'
        second = host.connector_properties('', False, False)
        self.assertEqual('glance_store', second['mountpoint'])
        self.assertEqual(1, self.brick.property_calls)
        host.connector_properties('', True, False)
        self.assertEqual(2, self.brick.property_calls)

    def test_flat_and_nested_connection_info(self):
        flat = {'driver_volume_type': 'local', 'device_path': '/dev/x'}
        self.assertIs(flat, host.connection_properties(flat))
        nested = {'driver_volume_type': 'iscsi', 'data': {'a': 1}}
        self.assertEqual({'a': 1}, host.connection_properties(nested))

    @ddt.data({'driver_volume_type': 'nfs', 'format': 'qcow2'},
              {'driver_volume_type': 'iscsi', 'encrypted': True})
    def test_refused_transports(self, info):
        self.assertRaises(exceptions.BackendException,
                          host.check_transport, info, Vol())

    def test_raw_nfs_accepted(self):
        host.check_transport({'driver_volume_type': 'nfs', 'format': 'raw'},
                             Vol())

    def test_root_helper(self):
        self.assertEqual('sudo glance-rootwrap /etc/g.conf',
                         host.root_helper('/etc/g.conf'))


class TestPrivsepRoute(base.TestCase):

    def setUp(self):
        super(TestPrivsepRoute, self).setUp()
        self.useFixture(fixtures.MockPatchObject(
            priv_context, '_HELPER_COMMAND_PREFIX', ['sudo']))

    def test_unprivileged_goes_through_rootwrap(self):
        with mock.patch('os.geteuid', return_value=1000):
            host.route_privsep('sudo glance-rootwrap /etc/g.conf')
        self.assertEqual(['sudo', 'glance-rootwrap', '/etc/g.conf'],
                         priv_context._HELPER_COMMAND_PREFIX)

    def test_root_keeps_the_default(self):
        with mock.patch('os.geteuid', return_value=0):
            host.route_privsep('sudo glance-rootwrap /etc/g.conf')
        self.assertEqual(['sudo'], priv_context._HELPER_COMMAND_PREFIX)


FILTERS_DIR = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                           'etc', 'glance', 'rootwrap.d')
HELPER = 'sudo glance-rootwrap /etc/glance/rootwrap.conf'


class _PrivsepConf(dict):
    """What oslo.privsep reads of ``cfg.CONF`` to build its command."""

    def __init__(self, files, dirs):
        super(_PrivsepConf, self).__init__(
            privsep_osbrick=mock.Mock(helper_command=None))
        self.config_file = files
        self.config_dir = dirs


@ddt.ddt
class TestRootwrapFilters(base.TestCase):
    """The shipped filters allow what this driver runs, and no more."""

    def setUp(self):
        super(TestRootwrapFilters, self).setUp()
        self.filters = wrapper.load_filters([FILTERS_DIR])
        self.useFixture(fixtures.MockPatchObject(
            priv_context, '_HELPER_COMMAND_PREFIX', ['sudo']))
        with mock.patch('os.geteuid', return_value=1000):
            host.route_privsep(HELPER)

    def _allowed(self, args):
        return any(f.match(args) for f in self.filters)

    def _privsep_command(self, files, dirs):
        # The command oslo.privsep itself builds for os-brick's context.
        with mock.patch('oslo_config.cfg.CONF', _PrivsepConf(files, dirs)):
            command = privileged.default.helper_command(
                '/tmp/tmpa1b2c3/privsep.sock')
        prefix = HELPER.split()
        self.assertEqual(prefix, command[:len(prefix)])
        return command[len(prefix):]  # what rootwrap matches

    @ddt.data((1, 0), (2, 1), (3, 2))
    @ddt.unpack
    def test_privsep_with_config_files_and_dirs(self, n_files, n_dirs):
        # The daemon os-brick starts goes through rootwrap (route_privsep)
        # and passes, however many config files and directories Glance has.
        files = ['/etc/glance/glance-api-%d.conf' % i
                 for i in range(n_files)]
        dirs = ['/etc/glance/glance-api.conf.d'] * n_dirs
        self.assertTrue(self._allowed(self._privsep_command(files, dirs)))

    @ddt.data('/dev/sdb', '/dev/loop3', '/dev/mapper/36001405abc',
              '/dev/disk/by-path/ip-192.0.2.1:3260-iscsi-iqn.2010-10.org.'
              'openstack:volume-1-lun-0')
    def test_chown_of_a_device(self, path):
        self.assertTrue(self._allowed(['chown', '1000', path]))
        self.assertTrue(self._allowed(['chown', '0', path]))

    @ddt.data('/dev/../etc/shadow', '/dev/sdb/../../etc/shadow',
              '/dev/shm/link-to-shadow', '/dev/mqueue/x', '/etc/shadow',
              '/dev/')
    def test_chown_elsewhere_refused(self, path):
        self.assertFalse(self._allowed(['chown', '1000', path]))

    def test_chown_options_refused(self):
        self.assertFalse(self._allowed(['chown', '-R', '1000', '/dev/sdb']))
        self.assertFalse(self._allowed(['chown', 'glance', '/dev/sdb']))


class TestOwnership(base.TestCase):

    def test_root_or_accessible_needs_nothing(self):
        with mock.patch('os.geteuid', return_value=0):
            self.assertIsNone(host.take_ownership('/dev/x', True, 'h'))
        with mock.patch('os.geteuid', return_value=1000), \
                mock.patch('os.access', return_value=True):
            self.assertIsNone(host.take_ownership('/dev/x', True, 'h'))

    def test_unprivileged_chowns_and_restores(self):
        with mock.patch('os.geteuid', return_value=1000), \
                mock.patch('os.getuid', return_value=1000), \
                mock.patch('os.access', return_value=False), \
                mock.patch('os.stat') as stat, \
                mock.patch.object(host.processutils, 'execute') as execute:
            stat.return_value.st_uid = 0
            undo = host.take_ownership('/dev/sdz', True, 'sudo rw')
            execute.assert_called_once_with(
                'chown', '1000', '/dev/sdz', run_as_root=True,
                root_helper='sudo rw')
            undo()
            execute.assert_called_with('chown', '0', '/dev/sdz',
                                       run_as_root=True,
                                       root_helper='sudo rw')


class TestHostIp(base.TestCase):

    def test_ipv6_first_then_ipv4_then_loopback(self):
        def fake(name, port, family):
            if family == socket.AF_INET6:
                raise socket.gaierror()
            return [(None, None, None, None, ('192.0.2.9', 0))]
        with mock.patch('socket.getaddrinfo', side_effect=fake):
            self.assertEqual('192.0.2.9', host.host_ip('h'))
        with mock.patch('socket.getaddrinfo',
                        side_effect=socket.gaierror()):
            self.assertEqual('127.0.0.1', host.host_ip('h'))


class TestRBDClient(base.TestCase):

    INFO = {'driver_volume_type': 'rbd',
            'data': {'name': 'volumes/volume-1', 'hosts': ['192.0.2.9'],
                     'ports': ['6789'], 'cluster_name': 'ceph',
                     'auth_username': 'cinder', 'secret_uuid': 'u'}}

    def test_the_keyring_path_and_timeouts_go_into_the_config(self):
        props = host.RBDClient('/etc/glance/ceph.keyring', 20)\
            .connection_properties(self.INFO)
        lines = props['keyring'].splitlines()
        self.assertEqual([host.RBDClient.MARK,
                          'keyring = /etc/glance/ceph.keyring',
                          'client_mount_timeout = 20',
                          'rados_mon_op_timeout = 20',
                          'rados_osd_op_timeout = 20'], lines)
        self.assertEqual('volumes/volume-1', props['name'])
        self.assertNotIn('keyring', self.INFO['data'])  # not mutated

    def test_unset_keyring_is_where_os_brick_would_look(self):
        props = host.RBDClient().connection_properties(self.INFO)
        self.assertEqual([host.RBDClient.MARK,
                          'keyring = /etc/ceph/ceph.client.cinder.keyring'],
                         props['keyring'].splitlines())
        self.assertEqual(300, host.RBDClient().connect_time)

    def test_a_keyring_cinder_sent_is_kept(self):
        info = dict(self.INFO, data=dict(self.INFO['data'],
                                         keyring='[client.cinder]'))
        self.assertEqual('[client.cinder]', host.RBDClient('/k')
                         .connection_properties(info)['keyring'])

    def test_other_transports_are_left_alone(self):
        info = {'driver_volume_type': 'iscsi', 'data': {'target_lun': 1}}
        self.assertEqual({'target_lun': 1},
                         host.RBDClient('/k').connection_properties(info))


class TestRBDConnectFailures(base.TestCase):

    INFO = TestRBDClient.INFO

    def explain(self, error, reachable):
        with mock.patch.object(host, '_tcp_reachable',
                               return_value=reachable) as probe:
            text = host.RBDClient('/etc/glance/k', 7).explain(self.INFO,
                                                              error)
        return text, probe

    def test_monitors_unreachable(self):
        text, probe = self.explain(OSError('timed out'), False)
        probe.assert_called_once_with('192.0.2.9', '6789')
        self.assertIn('no monitor Cinder names (192.0.2.9:6789) accepts a '
                      'connection', text)

    def test_monitors_answer_but_refuse_the_key(self):
        text, _ = self.explain(OSError('timed out'), True)
        self.assertIn('as client.cinder', text)
        self.assertIn('did not accept the key in /etc/glance/k within 7s',
                      text)
        self.assertIn('ceph auth get client.cinder', text)

    def test_bindings_missing(self):
        text, _ = self.explain(ValueError('rados module required'), True)
        self.assertIn('install python3-rados and python3-rbd', text)

    def test_other_transports_are_not_explained(self):
        self.assertIsNone(host.RBDClient().explain(
            {'driver_volume_type': 'iscsi'}, OSError()))

    def test_tcp_probe(self):
        with socket.socket() as listener:
            listener.bind(('127.0.0.1', 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            self.assertTrue(host._tcp_reachable('127.0.0.1', str(port)))
        self.assertFalse(host._tcp_reachable('127.0.0.1', str(port)))


class TestConnectFiles(base.TestCase):

    def make(self, name, text, age=0):
        path = os.path.join(tempfile.gettempdir(), name)
        with open(path, 'w') as f:
            f.write(text)
        os.utime(path, (time.time() - age,) * 2)
        return path

    def test_only_ours_older_than_the_age_are_leftovers(self):
        ours = self.make('brickrbd_old', '[global]\n%s\n'
                         % host.RBDClient.MARK, age=700)
        self.make('brickrbd_young', host.RBDClient.MARK, age=1)
        self.make('brickrbd_in_tree', '[client.cinder]\nkey = x', age=700)
        self.make('other_old', host.RBDClient.MARK, age=700)
        self.assertEqual([ours], host.leftover_connect_files(min_age=600))

    def test_the_config_of_a_connection_is_removed_once(self):
        conf = self.make('brickrbd_x', host.RBDClient.MARK)
        handle = mock.Mock(rbd_conf=conf)
        self.assertTrue(host.is_userspace({'path': handle}))
        host.remove_connect_files({'path': handle})
        self.assertFalse(os.path.exists(conf))
        host.remove_connect_files({'path': handle})  # gone already: fine
        host.remove_connect_files({'path': '/dev/sdb'})
        self.assertFalse(host.is_userspace({'path': '/dev/sdb'}))
        self.assertFalse(host.is_userspace(None))


class TestFilesystemType(base.TestCase):

    def test_the_deepest_mount_holding_the_path_wins(self):
        mounts = ('proc /proc proc rw 0 0\n/dev/vda1 / ext4 rw 0 0\n'
                  'tmpfs /run/lock tmpfs rw 0 0\n')
        with mock.patch('builtins.open', mock.mock_open(read_data=mounts)):
            self.assertEqual('tmpfs', host.filesystem_type('/run/lock/glance'))
            self.assertEqual('tmpfs', host.filesystem_type('/run/lock'))
            self.assertEqual('ext4', host.filesystem_type('/run/locks'))
