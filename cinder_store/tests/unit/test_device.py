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

import errno
import io
import os
import threading
from unittest import mock

from glance_store import exceptions

from cinder_store import device
from cinder_store.tests.unit import base
from cinder_store.tests.unit import fakes


class TestFdDevice(base.TestCase):

    def setUp(self):
        super(TestFdDevice, self).setUp()
        self.path = os.path.join(self.tmp, 'vol')
        with open(self.path, 'wb') as f:
            f.write(b'earlier data')

    def test_open_never_truncates_a_regular_file(self):
        dev = device.open_device(self.path, writable=True)
        dev.pwrite(b'E', 0)
        dev.sync()
        dev.close()
        with open(self.path, 'rb') as f:
            self.assertEqual(b'Earlier data', f.read())

    def test_open_never_creates(self):
        self.assertRaises(FileNotFoundError, device.open_device,
                          self.path + '-missing', True)

    def test_positional_io_and_size(self):
        dev = device.open_device(self.path, writable=False)
        self.assertEqual(b'data', dev.pread(4, 8))
        self.assertEqual(12, dev.size())
        self.assertEqual(b'earl', dev.pread(4, 0))
        self.assertTrue(dev.is_file)
        dev.close()
        dev.close()  # idempotent

    def test_zeroing_a_file_punches_a_hole(self):
        with open(self.path, 'wb') as f:
            f.write(b'J' * (4 * device.ALIGN))
        os.fsync(os.open(self.path, os.O_RDONLY))
        before = os.stat(self.path).st_blocks
        dev = device.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        dev.write_zeroes(device.ALIGN, 2 * device.ALIGN)
        with open(self.path, 'rb') as f:
            self.assertEqual(b'J' * device.ALIGN + bytes(2 * device.ALIGN) +
                             b'J' * device.ALIGN, f.read())
        self.assertLess(os.stat(self.path).st_blocks, before)

    def test_zeroing_writes_zeros_where_no_hole_can_be_made(self):
        dev = device.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        with mock.patch.object(device, 'punch_hole', side_effect=OSError(
                errno.EOPNOTSUPP, 'not here')):
            dev.write_zeroes(0, 7)  # and unaligned: written in any case
        with open(self.path, 'rb') as f:
            self.assertEqual(bytes(7) + b' data', f.read())

    def test_zeroing_past_the_end_of_a_file_writes_zeros(self):
        dev = device.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        with mock.patch.object(device, 'punch_hole') as punch:
            dev.write_zeroes(device.ALIGN, device.ALIGN)
        punch.assert_not_called()
        self.assertEqual(2 * device.ALIGN, os.path.getsize(self.path))

    def test_a_failed_zeroing_raises(self):
        with open(self.path, 'wb') as f:
            f.write(b'J' * device.ALIGN)
        dev = device.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        with mock.patch.object(device, 'punch_hole',
                               side_effect=OSError(errno.EIO, 'I/O error')):
            self.assertRaises(OSError, dev.write_zeroes, 0, device.ALIGN)

    def test_holes_of_a_file_are_zeros_not_read(self):
        block = 1 << 20
        with open(self.path, 'r+b') as f:
            f.truncate(3 * block)
            f.seek(block)
            f.write(b'D' * block)
        dev = device.open_device(self.path, writable=False)
        self.addCleanup(dev.close)
        with mock.patch.object(device.os, 'pread',
                               side_effect=AssertionError('read a hole')):
            self.assertEqual(bytes(4096), dev.pread(4096, 2 * block))
            self.assertEqual(bytes(100), dev.pread(4096, 3 * block - 100))
            self.assertEqual(b'', dev.pread(4096, 3 * block))
        self.assertEqual(b'D' * 4096, dev.pread(4096, block))
        self.assertEqual(b'earlier data', dev.pread(12, 0))

    def test_regular_file_does_not_wait_for_size(self):
        dev = device.open_device(self.path, writable=False)
        dev.wait_for_size(1 << 40, timeout=1)
        self.assertEqual([], self.clock.sleeps)


class TestDirectWrites(base.TestCase):

    def setUp(self):
        super(TestDirectWrites, self).setUp()
        self.path = os.path.join(self.tmp, 'vol')
        with open(self.path, 'wb') as f:
            f.truncate(64 * 1024)

    def test_regular_files_are_never_written_direct(self):
        dev = device.open_device(self.path, writable=True)
        self.assertIsNone(dev.direct)
        dev.close()

    @mock.patch('stat.S_ISBLK', return_value=True)
    def test_block_devices_read_direct_unless_told_not_to(self, _isblk):
        with mock.patch.object(device, '_DirectReader') as reader:
            direct = device.open_device(self.path, writable=False)
            cached = device.open_device(self.path, writable=False,
                                        direct=False)
        reader.assert_called_once_with(self.path)
        self.assertIs(reader.return_value, direct.direct_reader)
        self.assertIsNone(cached.direct_reader)
        cached.close()

    def test_direct_writer_takes_aligned_ranges_only(self):
        try:
            writer = device._DirectWriter(self.path)
        except OSError:
            self.skipTest('no O_DIRECT on this filesystem')
        self.assertFalse(writer.write(b'x' * 100, 0))
        self.assertFalse(writer.write(b'x' * 4096, 100))
        self.assertTrue(writer.write(b'y' * 8192, 4096))
        writer.sync()
        writer.close()
        with open(self.path, 'rb') as f:
            data = f.read()
        self.assertEqual(b'\0' * 4096 + b'y' * 8192, data[:12288])

    def test_direct_reader_serves_any_range(self):
        with open(self.path, 'r+b') as f:
            f.write(bytes(range(256)) * 64)
        try:
            reader = device._DirectReader(self.path)
        except OSError:
            self.skipTest('no O_DIRECT on this filesystem')
        with open(self.path, 'rb') as f:
            data = f.read()
        for offset, length in ((0, 4096), (5, 10), (4090, 20),
                               (8192, 12288), (65530, 100)):
            self.assertEqual(data[offset:offset + length],
                             reader.read(length, offset))
        reader.close()

    def test_read_einval_falls_back_to_buffered(self):
        with open(self.path, 'r+b') as f:
            f.write(b'd' * 10)  # data, not a hole: read, not assumed
        dev = device.open_device(self.path, writable=False)
        reader = mock.Mock()
        reader.read.side_effect = OSError(errno.EINVAL, 'alignment')
        dev.direct_reader = reader
        self.assertEqual(b'd' * 10, dev.pread(10, 0))
        self.assertIsNone(dev.direct_reader)
        reader.close.assert_called_once_with()
        dev.close()

    def test_einval_falls_back_to_buffered_writes(self):
        dev = device.open_device(self.path, writable=True)
        direct = mock.Mock()
        direct.write.side_effect = OSError(errno.EINVAL, 'alignment')
        dev.direct = direct
        dev.pwrite(b'z' * 4096, 0)
        direct.close.assert_called_once_with()
        self.assertIsNone(dev.direct)
        self.assertEqual(b'z' * 4096, dev.pread(4096, 0))
        dev.close()

    def test_other_direct_errors_propagate(self):
        dev = device.open_device(self.path, writable=True)
        dev.direct = mock.Mock()
        dev.direct.write.side_effect = OSError(errno.EIO, 'eio')
        self.assertRaises(OSError, dev.pwrite, b'z' * 4096, 0)
        dev.direct = None
        dev.close()


class TestFileObjectDevice(base.TestCase):

    def test_size_probe_restores_position(self):
        handle = io.BytesIO(b'0123456789')
        handle.seek(3)
        dev = device.open_device(handle, writable=False)
        self.assertEqual(10, dev.size())
        self.assertEqual(3, handle.tell())
        self.assertEqual(b'56', dev.pread(2, 5))

    def test_wait_for_size_times_out(self):
        dev = device.FileObjectDevice(io.BytesIO(b'x'))
        self.assertRaises(exceptions.StorageFull, dev.wait_for_size, 100, 5)
        self.assertLessEqual(sum(self.clock.sleeps), 6)

    def test_wait_for_size_returns_when_grown(self):
        handle = io.BytesIO(b'x')
        dev = device.FileObjectDevice(handle)
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
        self.dev = device.open_device(self.handle, writable=True)

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
        for offset in range(device.RBD_WRITES_IN_FLIGHT):
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
