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

import socket
from unittest import mock

import ddt
from glance_store import exceptions

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
