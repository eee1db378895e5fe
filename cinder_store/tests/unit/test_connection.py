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

"""This host's connection to a volume: connect, detach, hand-over."""

from unittest import mock

import ddt
from glance_store import exceptions

from cinder_store import attachment
from cinder_store import connection
from cinder_store.tests.unit import base


class Vol(object):
    id = 'vol'
    volume_type = 't'
    encrypted = False


@ddt.ddt
class TestTransports(base.TestCase):

    @ddt.data({'driver_volume_type': 'nfs', 'format': 'qcow2'},
              {'driver_volume_type': 'iscsi', 'encrypted': True})
    def test_refused_transports(self, info):
        self.assertRaises(exceptions.BackendException,
                          connection.check_transport, info, Vol())

    def test_raw_nfs_accepted(self):
        connection.check_transport({'driver_volume_type': 'nfs',
                                    'format': 'raw'}, Vol())


class TestOwnership(base.TestCase):

    def test_root_or_accessible_needs_nothing(self):
        with mock.patch('os.geteuid', return_value=0):
            self.assertIsNone(connection.take_ownership('/dev/x', True, 'h'))
        with mock.patch('os.geteuid', return_value=1000), \
                mock.patch('os.access', return_value=True):
            self.assertIsNone(connection.take_ownership('/dev/x', True, 'h'))

    def test_unprivileged_chowns_and_restores(self):
        with mock.patch('os.geteuid', return_value=1000), \
                mock.patch('os.getuid', return_value=1000), \
                mock.patch('os.access', return_value=False), \
                mock.patch('os.stat') as stat, \
                mock.patch.object(connection.processutils,
                                  'execute') as execute:
            stat.return_value.st_uid = 0
            undo = connection.take_ownership('/dev/sdz', True, 'sudo rw')
            execute.assert_called_once_with(
                'chown', '1000', '/dev/sdz', run_as_root=True,
                root_helper='sudo rw')
            undo()
            execute.assert_called_with('chown', '0', '/dev/sdz',
                                       run_as_root=True,
                                       root_helper='sudo rw')


class TestSharedTargets(base.CinderTestCase):
    """os-brick's lock for backends that share targets between volumes."""

    def connect_and_detach(self, api, volume):
        made = api.attachment_create(volume.id, {'host': 'testhost'}, 'ro')
        connector, device_info = connection.connect(
            self.settings(), volume, made['connection_info'])
        connection.detach_attachment(api, self.settings(), volume,
                                     made['id'], device_info,
                                     connector=connector)

    def test_taken_only_with_a_service_uuid(self):
        api = self.bound()
        volume = self.available_volume(api)
        volume.shared_targets = True
        with mock.patch.object(connection.brick_utils,
                               'guard_connection') as guard:
            volume.service_uuid = None  # no lock keyed on None
            self.connect_and_detach(api, volume)
            guard.assert_not_called()
            volume.service_uuid = 'svc-1'
            self.connect_and_detach(api, volume)
        # Around the connect and around the disconnect
        self.assertEqual([mock.call({'shared_targets': True,
                                     'service_uuid': 'svc-1'})] * 2,
                         guard.call_args_list)
        self.assertNothingLeft(volumes=1)


class TestSharedConnection(base.CinderTestCase):

    def setUp(self):
        super(TestSharedConnection, self).setUp()
        self.cinder.multiattach_types.add('shared')
        self.cinder.types.add('shared')
        self.api = self.bound()
        vol = self.api.create_volume(1, 'v', {}, 'shared')
        self.volume = self.api.wait_for_status(vol, 'creating', 'available')

    def test_keeps_connection_while_this_host_has_another_reader(self):
        first = attachment.Attachment(self.api, self.settings(), self.volume,
                                      False).open()
        second = attachment.Attachment(self.api, self.settings(),
                                       self.volume, False).open()
        first.close()
        self.assertEqual(0, self.brick.calls.count('disconnect_volume'))
        second.close()
        self.assertEqual(1, self.brick.calls.count('disconnect_volume'))
        self.assertNothingLeft(volumes=1)

    def test_other_hosts_attachments_do_not_count(self):
        self.cinder.volumes[self.volume.id].attachments.append(
            {'attachment_id': 'x', 'host_name': 'otherhost'})
        with attachment.Attachment(self.api, self.settings(), self.volume,
                                   False):
            pass
        self.assertEqual(1, self.brick.calls.count('disconnect_volume'))


class TestOneDetach(base.CinderTestCase):

    def setUp(self):
        super(TestOneDetach, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)

    def attach(self, writable=True):
        return attachment.Attachment(self.api, self.settings(), self.volume,
                                     writable)

    def test_adopted_and_own_attachments_detach_alike(self):
        # The one detach routine: an attachment made here and one adopted
        # by id make the same calls, in the same order (the adopted one
        # first looks its connection up and makes a connector).
        lookups = ('attachments.show', 'factory')

        def detach_calls(detach):
            brick, cinder = len(self.brick.calls), len(self.cinder.calls)
            detach()
            return [c for c in (self.brick.calls[brick:] +
                                self.cinder.calls[cinder:])
                    if c not in lookups]

        own = self.attach(writable=False).open()
        self.assertEqual(
            ['disconnect_volume', 'attachments.delete'],
            detach_calls(own.close))
        adopted = self.attach(writable=False).open()
        adopted.close_keeping_attachment()
        self.assertEqual(
            ['disconnect_volume', 'attachments.delete'],
            detach_calls(lambda: connection.detach_attachment(
                self.api, self.settings(), self.volume, adopted.id,
                adopted.device_info)))
        self.assertNothingLeft(volumes=1)
