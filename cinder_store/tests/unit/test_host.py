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

"""This host as os-brick sees it."""

import socket
from unittest import mock

import fixtures
from oslo_privsep import priv_context

from cinder_store import host
from cinder_store.tests.unit import base


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
