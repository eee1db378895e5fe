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

"""Volumes attached as a path: block devices and regular files."""

import errno
import os
from unittest import mock

from cinder_store import devices
from cinder_store.devices import fd
from cinder_store.tests.unit import base


class TestFdDevice(base.TestCase):

    def setUp(self):
        super(TestFdDevice, self).setUp()
        self.path = os.path.join(self.tmp, 'vol')
        with open(self.path, 'wb') as f:
            f.write(b'earlier data')

    def test_open_never_truncates_a_regular_file(self):
        dev = devices.open_device(self.path, writable=True)
        dev.pwrite(b'E', 0)
        dev.sync()
        dev.close()
        with open(self.path, 'rb') as f:
            self.assertEqual(b'Earlier data', f.read())

    def test_open_never_creates(self):
        self.assertRaises(FileNotFoundError, devices.open_device,
                          self.path + '-missing', True)

    def test_positional_io_and_size(self):
        dev = devices.open_device(self.path, writable=False)
        self.assertEqual(b'data', dev.pread(4, 8))
        self.assertEqual(12, dev.size())
        self.assertEqual(b'earl', dev.pread(4, 0))
        self.assertTrue(dev.is_file)
        dev.close()
        dev.close()  # idempotent

    def test_zeroing_a_file_punches_a_hole(self):
        with open(self.path, 'wb') as f:
            f.write(b'J' * (4 * fd.ALIGN))
        os.fsync(os.open(self.path, os.O_RDONLY))
        before = os.stat(self.path).st_blocks
        dev = devices.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        dev.write_zeroes(fd.ALIGN, 2 * fd.ALIGN)
        with open(self.path, 'rb') as f:
            self.assertEqual(b'J' * fd.ALIGN + bytes(2 * fd.ALIGN) +
                             b'J' * fd.ALIGN, f.read())
        self.assertLess(os.stat(self.path).st_blocks, before)

    def test_zeroing_writes_zeros_where_no_hole_can_be_made(self):
        dev = devices.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        with mock.patch.object(fd, 'punch_hole', side_effect=OSError(
                errno.EOPNOTSUPP, 'not here')):
            dev.write_zeroes(0, 7)  # and unaligned: written in any case
        with open(self.path, 'rb') as f:
            self.assertEqual(bytes(7) + b' data', f.read())

    def test_zeroing_past_the_end_of_a_file_writes_zeros(self):
        dev = devices.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        with mock.patch.object(fd, 'punch_hole') as punch:
            dev.write_zeroes(fd.ALIGN, fd.ALIGN)
        punch.assert_not_called()
        self.assertEqual(2 * fd.ALIGN, os.path.getsize(self.path))

    def test_a_failed_zeroing_raises(self):
        with open(self.path, 'wb') as f:
            f.write(b'J' * fd.ALIGN)
        dev = devices.open_device(self.path, writable=True)
        self.addCleanup(dev.close)
        with mock.patch.object(fd, 'punch_hole',
                               side_effect=OSError(errno.EIO, 'I/O error')):
            self.assertRaises(OSError, dev.write_zeroes, 0, fd.ALIGN)

    def test_holes_of_a_file_are_zeros_not_read(self):
        block = 1 << 20
        with open(self.path, 'r+b') as f:
            f.truncate(3 * block)
            f.seek(block)
            f.write(b'D' * block)
        dev = devices.open_device(self.path, writable=False)
        self.addCleanup(dev.close)
        with mock.patch.object(fd.os, 'pread',
                               side_effect=AssertionError('read a hole')):
            self.assertEqual(bytes(4096), dev.pread(4096, 2 * block))
            self.assertEqual(bytes(100), dev.pread(4096, 3 * block - 100))
            self.assertEqual(b'', dev.pread(4096, 3 * block))
        self.assertEqual(b'D' * 4096, dev.pread(4096, block))
        self.assertEqual(b'earlier data', dev.pread(12, 0))

    def test_regular_file_does_not_wait_for_size(self):
        dev = devices.open_device(self.path, writable=False)
        dev.wait_for_size(1 << 40, timeout=1)
        self.assertEqual([], self.clock.sleeps)


class TestDirectWrites(base.TestCase):

    def setUp(self):
        super(TestDirectWrites, self).setUp()
        self.path = os.path.join(self.tmp, 'vol')
        with open(self.path, 'wb') as f:
            f.truncate(64 * 1024)

    def test_regular_files_are_never_written_direct(self):
        dev = devices.open_device(self.path, writable=True)
        self.assertIsNone(dev.direct_writer)
        dev.close()

    @mock.patch('stat.S_ISBLK', return_value=True)
    def test_block_devices_read_direct_unless_told_not_to(self, _isblk):
        with mock.patch.object(fd, '_DirectReader') as reader:
            direct = devices.open_device(self.path, writable=False)
            cached = devices.open_device(self.path, writable=False,
                                         direct=False)
        reader.assert_called_once_with(self.path)
        self.assertIs(reader.return_value, direct.direct_reader)
        self.assertIsNone(cached.direct_reader)
        cached.close()

    def test_direct_writer_takes_aligned_ranges_only(self):
        try:
            writer = fd._DirectWriter(self.path)
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
            reader = fd._DirectReader(self.path)
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
        dev = devices.open_device(self.path, writable=False)
        reader = mock.Mock()
        reader.read.side_effect = OSError(errno.EINVAL, 'alignment')
        dev.direct_reader = reader
        self.assertEqual(b'd' * 10, dev.pread(10, 0))
        self.assertIsNone(dev.direct_reader)
        reader.close.assert_called_once_with()
        dev.close()

    def test_einval_falls_back_to_buffered_writes(self):
        dev = devices.open_device(self.path, writable=True)
        direct = mock.Mock()
        direct.write.side_effect = OSError(errno.EINVAL, 'alignment')
        dev.direct_writer = direct
        dev.pwrite(b'z' * 4096, 0)
        direct.close.assert_called_once_with()
        self.assertIsNone(dev.direct_writer)
        self.assertEqual(b'z' * 4096, dev.pread(4096, 0))
        dev.close()

    def test_other_direct_errors_propagate(self):
        dev = devices.open_device(self.path, writable=True)
        dev.direct_writer = mock.Mock()
        dev.direct_writer.write.side_effect = OSError(errno.EIO, 'eio')
        self.assertRaises(OSError, dev.pwrite, b'z' * 4096, 0)
        dev.direct_writer = None
        dev.close()
