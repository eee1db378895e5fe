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

import io
import os

from glance_store import exceptions

from cinder_store import device
from cinder_store.tests.unit import base


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

    def test_regular_file_does_not_wait_for_size(self):
        dev = device.open_device(self.path, writable=False)
        dev.wait_for_size(1 << 40, timeout=1)
        self.assertEqual([], self.clock.sleeps)


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
