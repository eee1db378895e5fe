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

"""RBD in userspace: the client settings, the librbd device, connect files."""

import errno
import io
import os
import socket
import tempfile
import threading
import time
from unittest import mock

from glance_store import exceptions

from cinder_store import devices
from cinder_store.devices import rbd
from cinder_store.tests.unit import base
from cinder_store.tests.unit import fakes


class TestFileObjectDevice(base.TestCase):

    def test_size_probe_restores_position(self):
        handle = io.BytesIO(b'0123456789')
        handle.seek(3)
        dev = devices.open_device(handle, writable=False)
        self.assertEqual(10, dev.size())
        self.assertEqual(3, handle.tell())
        self.assertEqual(b'56', dev.pread(2, 5))

    def test_wait_for_size_times_out(self):
        dev = rbd.RBDDevice(io.BytesIO(b'x'))
        self.assertRaises(exceptions.StorageFull, dev.wait_for_size, 100, 5)
        self.assertLessEqual(sum(self.clock.sleeps), 6)

    def test_wait_for_size_returns_when_grown(self):
        handle = io.BytesIO(b'x')
        dev = rbd.RBDDevice(handle)
        self.clock.sleep = lambda s: handle.write(b'y' * 10)
        self.useFixture(base.fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                                  self.clock.sleep))
        dev.wait_for_size(5, 5)
        self.assertGreaterEqual(dev.size(), 5)


class TestRBDDevice(base.TestCase):
    """os-brick's RBD wrapper, used through its librbd image."""

    def setUp(self):
        super(TestRBDDevice, self).setUp()
        self.path = os.path.join(self.tmp, 'image')
        with open(self.path, 'wb') as f:
            f.write(b'0123456789')
        self.handle = fakes.FakeRBDHandle(self.path, None)
        self.dev = devices.open_device(self.handle, writable=True)

    def test_zeroing_asks_librbd_and_stays_inside_the_image(self):
        self.dev.write_zeroes(2, 4)
        self.assertEqual([(2, 4)], self.handle.rbd_image.zeroed)
        self.assertEqual(b'01' + bytes(4) + b'6789', self.dev.pread(10, 0))
        e = self.assertRaises(OSError, self.dev.write_zeroes, 8, 4)
        self.assertEqual(errno.ENOSPC, e.errno)

    def test_ranges_without_objects_are_zeros_not_read(self):
        image = self.handle.rbd_image
        image.extents = [(4, 4)]  # one object of 4 bytes holds data
        image.read = mock.Mock(side_effect=AssertionError('read a hole'))
        self.assertEqual(bytes(4), self.dev.pread(4, 0))
        self.assertEqual(b'4567', self.dev.pread(4, 4))  # read ahead
        self.assertEqual([(4, 4)], image.aio_reads)  # none of the holes
        self.assertEqual(bytes(2), self.dev.pread(4, 8))
        self.assertEqual(1, image.diff_calls)  # the map is asked once

    def test_without_an_allocation_map_every_range_is_read(self):
        self.assertFalse(self.dev.data_map().known)
        self.assertEqual(b'0123', self.dev.pread(4, 0))

    def test_reads_are_positional_and_stop_at_the_end(self):
        self.assertEqual(b'6789', self.dev.pread(8, 6))
        self.assertEqual(b'', self.dev.pread(4, 10))  # librbd: EINVAL
        self.assertEqual(b'01', self.dev.pread(2, 0))

    def test_each_read_asks_for_the_next_range_ahead(self):
        self.assertEqual(b'0123', self.dev.pread(4, 0))
        self.assertEqual([(4, 4)], self.handle.rbd_image.aio_reads)
        self.handle.rbd_image.read = mock.Mock(side_effect=AssertionError(
            'served from the read ahead'))
        self.assertEqual(b'4567', self.dev.pread(4, 4))
        self.assertEqual(b'89', self.dev.pread(4, 8))  # clamped ahead
        self.assertEqual([(4, 4), (8, 2)], self.handle.rbd_image.aio_reads)
        self.assertEqual(b'', self.dev.pread(4, 10))

    def test_a_read_elsewhere_waits_out_the_read_ahead(self):
        self.dev.pread(2, 0)
        self.assertEqual(b'67', self.dev.pread(2, 6))
        self.assertEqual([(2, 2), (8, 2)], self.handle.rbd_image.aio_reads)

    def test_a_failed_read_ahead_fails_the_read_it_serves(self):
        self.handle.rbd_image.fail_reads = -errno.EIO
        self.assertEqual(b'01', self.dev.pread(2, 0))  # its ahead fails
        error = self.assertRaises(OSError, self.dev.pread, 2, 2)
        self.assertIn('at offset 2 failed', str(error))

    def test_writes_go_to_the_image_as_bytes(self):
        self.dev.pwrite(memoryview(b'ab'), 2)
        self.dev.pwrite(bytearray(b'cd'), 8)
        self.assertEqual(b'01ab4567cd', self.dev.pread(10, 0))
        self.assertEqual(10, self.dev.size())

    def test_a_failed_write_fails_the_next_write_and_the_sync(self):
        self.handle.rbd_image.fail_writes = -errno.EIO
        self.dev.pwrite(b'abc', 0)  # asynchronous: fails later
        error = self.assertRaises(OSError, self.dev.pwrite, b'def', 3)
        self.assertEqual(errno.EIO, error.errno)
        self.assertIn('at offset 0', str(error))
        self.assertRaises(OSError, self.dev.sync)
        self.assertEqual(0, self.handle.rbd_image.flushes)

    def test_a_write_past_the_end_is_refused_not_clipped(self):
        # librbd would clip it and report success
        error = self.assertRaises(OSError, self.dev.pwrite, b'abc', 9)
        self.assertEqual(errno.ENOSPC, error.errno)
        self.assertEqual(b'9', self.dev.pread(1, 9))

    def test_sync_and_close_wait_for_writes_in_flight(self):
        completions = []
        self.handle.rbd_image.aio_write = (
            lambda data, offset, done: completions.append(done))
        for offset in range(rbd.RBD_WRITES_IN_FLIGHT):
            self.dev.pwrite(b'x', offset)
        waiter = threading.Thread(target=self.dev.sync)
        waiter.start()
        self.assertTrue(waiter.is_alive())
        for done in completions:
            done(fakes._Completion(0))
        waiter.join()
        self.assertEqual(1, self.handle.rbd_image.flushes)
        self.dev.close()

    def test_sync_flushes_and_its_failure_raises(self):
        self.dev.sync()
        self.assertEqual(1, self.handle.rbd_image.flushes)
        self.handle.flush = mock.Mock(side_effect=IOError('flush failed'))
        self.assertRaises(IOError, self.dev.sync)

    def test_close_leaves_the_handle_to_os_brick(self):
        self.dev.close()
        self.assertEqual(b'01', self.dev.pread(2, 0))


class TestRBDClient(base.TestCase):

    INFO = {'driver_volume_type': 'rbd',
            'data': {'name': 'volumes/volume-1', 'hosts': ['192.0.2.9'],
                     'ports': ['6789'], 'cluster_name': 'ceph',
                     'auth_username': 'cinder', 'secret_uuid': 'u'}}

    def test_the_keyring_path_and_timeouts_go_into_the_config(self):
        props = rbd.RBDClient('/etc/glance/ceph.keyring', 20)\
            .with_client_settings(self.INFO)
        lines = props['keyring'].splitlines()
        self.assertEqual([rbd.RBDClient.MARK,
                          'keyring = /etc/glance/ceph.keyring',
                          'client_mount_timeout = 20',
                          'rados_mon_op_timeout = 20',
                          'rados_osd_op_timeout = 20'], lines)
        self.assertEqual('volumes/volume-1', props['name'])
        self.assertNotIn('keyring', self.INFO['data'])  # not mutated

    def test_unset_keyring_is_where_os_brick_would_look(self):
        props = rbd.RBDClient().with_client_settings(self.INFO)
        self.assertEqual([rbd.RBDClient.MARK,
                          'keyring = /etc/ceph/ceph.client.cinder.keyring'],
                         props['keyring'].splitlines())
        self.assertEqual(300, rbd.RBDClient().connect_time)

    def test_a_keyring_cinder_sent_is_kept(self):
        info = dict(self.INFO, data=dict(self.INFO['data'],
                                         keyring='[client.cinder]'))
        self.assertEqual('[client.cinder]', rbd.RBDClient('/k')
                         .with_client_settings(info)['keyring'])

    def test_other_transports_are_left_alone(self):
        info = {'driver_volume_type': 'iscsi', 'data': {'target_lun': 1}}
        self.assertEqual({'target_lun': 1},
                         rbd.RBDClient('/k').with_client_settings(info))


class TestRBDConnectFailures(base.TestCase):

    INFO = TestRBDClient.INFO

    def explain_refusal(self, error, reachable):
        with mock.patch.object(rbd, 'monitor_reachable',
                               return_value=reachable) as probe:
            text = rbd.RBDClient('/etc/glance/k', 7).explain_failure(self.INFO,
                                                                     error)
        return text, probe

    def test_monitors_unreachable(self):
        text, probe = self.explain_refusal(OSError('timed out'), False)
        probe.assert_called_once_with('192.0.2.9', '6789')
        self.assertIn('no monitor Cinder names (192.0.2.9:6789) accepts a '
                      'connection', text)

    def test_monitors_answer_but_refuse_the_key(self):
        text, _ = self.explain_refusal(OSError('timed out'), True)
        self.assertIn('as client.cinder', text)
        self.assertIn('did not accept the key in /etc/glance/k within 7s',
                      text)
        self.assertIn('ceph auth get client.cinder', text)

    def test_bindings_missing(self):
        text, _ = self.explain_refusal(ValueError('rados module required'),
                                       True)
        self.assertIn('install python3-rados and python3-rbd', text)

    def test_other_transports_are_not_explained(self):
        self.assertIsNone(rbd.RBDClient().explain_failure(
            {'driver_volume_type': 'iscsi'}, OSError()))

    def test_tcp_probe(self):
        with socket.socket() as listener:
            listener.bind(('127.0.0.1', 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            self.assertTrue(rbd.monitor_reachable('127.0.0.1', str(port)))
        self.assertFalse(rbd.monitor_reachable('127.0.0.1', str(port)))


class TestConnectFiles(base.TestCase):

    def make(self, name, text, age=0):
        path = os.path.join(tempfile.gettempdir(), name)
        with open(path, 'w') as f:
            f.write(text)
        os.utime(path, (time.time() - age,) * 2)
        return path

    def test_only_ours_older_than_the_age_are_leftovers(self):
        ours = self.make('brickrbd_old', '[global]\n%s\n'
                         % rbd.RBDClient.MARK, age=700)
        self.make('brickrbd_young', rbd.RBDClient.MARK, age=1)
        self.make('brickrbd_in_tree', '[client.cinder]\nkey = x', age=700)
        self.make('other_old', rbd.RBDClient.MARK, age=700)
        self.assertEqual([ours], rbd.leftover_connect_files(min_age=600))

    def test_the_config_of_a_connection_is_removed_once(self):
        conf = self.make('brickrbd_x', rbd.RBDClient.MARK)
        handle = mock.Mock(rbd_conf=conf)
        self.assertTrue(devices.is_userspace({'path': handle}))
        rbd.remove_connect_files({'path': handle})
        self.assertFalse(os.path.exists(conf))
        rbd.remove_connect_files({'path': handle})  # gone already: fine
        rbd.remove_connect_files({'path': '/dev/sdb'})
        self.assertFalse(devices.is_userspace({'path': '/dev/sdb'}))
        self.assertFalse(devices.is_userspace(None))
