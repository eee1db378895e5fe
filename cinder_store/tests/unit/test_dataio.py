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

import hashlib
import io
import os

from glance_store import exceptions

from cinder_store import dataio
from cinder_store import device
from cinder_store.tests.unit import base


class MemoryDevice(device.Device):
    def __init__(self, size):
        self.buf = bytearray(size)
        self.writes = []

    def pwrite(self, data, offset):
        self.writes.append((offset, len(data)))
        self.buf[offset:offset + len(data)] = data

    def pread(self, length, offset):
        return bytes(self.buf[offset:offset + length])


class Verifier(object):
    def __init__(self):
        self.seen = b''

    def update(self, data):
        self.seen += data


class TestImageWriter(base.TestCase):

    def writer(self, data, declared, **kw):
        return dataio.ImageWriter(io.BytesIO(data), declared, 'sha256',
                                  chunk_size=kw.pop('chunk', 7),
                                  depth=kw.pop('depth', 2), **kw)

    def test_hashes_and_writes_in_order(self):
        data = os.urandom(1000)
        verifier = Verifier()
        w = self.writer(data, len(data), verifier=verifier)
        dev = MemoryDevice(2000)
        self.assertTrue(w.fill(dev, 2000))
        self.assertEqual(data, bytes(dev.buf[:1000]))
        self.assertEqual(hashlib.md5(data).hexdigest(), w.checksum)
        self.assertEqual(hashlib.sha256(data).hexdigest(), w.multihash_hex)
        self.assertEqual(data, verifier.seen)
        self.assertEqual(1000, w.bytes_written)

    def test_fill_stops_at_capacity_and_resumes(self):
        data = os.urandom(100)
        w = self.writer(data, 0)
        dev = MemoryDevice(100)
        self.assertFalse(w.fill(dev, 30))
        self.assertEqual(30, w.bytes_written)
        self.assertFalse(w.fill(dev, 60))
        self.assertTrue(w.fill(dev, 100))
        self.assertEqual(data, bytes(dev.buf))
        self.assertEqual(hashlib.md5(data).hexdigest(), w.checksum)

    def test_longer_than_declared(self):
        w = self.writer(b'x' * 50, 20)
        self.assertRaisesRegex(exceptions.Invalid, 'longer',
                               w.fill, MemoryDevice(100), 100)

    def test_shorter_than_declared(self):
        w = self.writer(b'x' * 10, 20)
        self.assertRaisesRegex(exceptions.Invalid, 'shorter',
                               w.fill, MemoryDevice(100), 100)

    def test_write_error_surfaces_and_stops(self):
        class Broken(MemoryDevice):
            def pwrite(self, data, offset):
                raise OSError(28, 'No space left on device')
        w = self.writer(b'x' * 50, 50)
        self.assertRaises(exceptions.StorageFull, w.fill, Broken(100), 100)

    def test_short_reads_are_coalesced_into_whole_chunks(self):
        class Trickle(io.BytesIO):
            def read(self, n=-1):
                return super(Trickle, self).read(min(n, 3))
        data = os.urandom(50)
        w = dataio.ImageWriter(Trickle(data), 50, 'md5', chunk_size=7)
        dev = MemoryDevice(50)
        w.fill(dev, 50)
        self.assertEqual(data, bytes(dev.buf))
        self.assertEqual([7] * 7 + [1], [n for _, n in dev.writes])

    def test_memory_bounded_by_depth(self):
        reads = []

        class Source(io.BytesIO):
            def read(self, n=-1):
                reads.append(n)
                return super(Source, self).read(n)
        w = dataio.ImageWriter(Source(b'x' * 700), 700, 'md5', chunk_size=7,
                               depth=3)
        w.fill(MemoryDevice(700), 700)
        self.assertTrue(all(n <= 7 for n in reads))


class FakeAttachment(object):
    def __init__(self, dev):
        self.device = dev
        self.closed = 0
        self.volume = type('V', (), {'id': 'vol'})

    def close(self):
        self.closed += 1


class TestVolumeIterator(base.TestCase):

    def setUp(self):
        super(TestVolumeIterator, self).setUp()
        self.dev = MemoryDevice(100)
        self.dev.buf[:] = bytes(range(100))
        self.att = FakeAttachment(self.dev)

    def test_reads_range_and_releases_once_exhausted(self):
        it = dataio.VolumeIterator(self.att, 10, 25, chunk_size=10)
        chunks = list(it)
        self.assertEqual([10, 10, 5], [len(c) for c in chunks])
        self.assertEqual(bytes(range(10, 35)), b''.join(chunks))
        self.assertEqual(1, self.att.closed)
        it.close()
        self.assertEqual(1, self.att.closed)

    def test_released_when_dropped(self):
        it = dataio.VolumeIterator(self.att, 0, 100, chunk_size=10)
        next(it)
        del it
        self.assertEqual(1, self.att.closed)

    def test_short_device_is_an_error_not_truncation(self):
        it = dataio.VolumeIterator(self.att, 95, 20, chunk_size=10)
        self.assertRaises(exceptions.BackendException, list, it)
        self.assertEqual(1, self.att.closed)
