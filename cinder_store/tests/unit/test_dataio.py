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
import threading

import ddt
import fixtures

from glance_store import exceptions

from cinder_store import dataio
from cinder_store import devices
from cinder_store.tests.unit import base


class MemoryDevice(devices.Device):
    def __init__(self, size, fill=b'\0'):
        self.buf = bytearray(fill * size)
        self.writes = []
        self.zeroed = []

    def pwrite(self, data, offset):
        self.writes.append((offset, len(data)))
        self.buf[offset:offset + len(data)] = data

    def write_zeroes(self, offset, length):
        self.zeroed.append((offset, length))
        self.buf[offset:offset + length] = bytes(length)

    def pread(self, length, offset):
        return bytes(self.buf[offset:offset + length])


class Verifier(object):
    def __init__(self):
        self.seen = b''

    def update(self, data):
        self.seen += data


BLOCK = dataio.ZERO_BLOCK
CHUNK = dataio.CHUNK_SIZE


def data(n):
    """``n`` bytes without a zero byte."""
    return (os.urandom(n).replace(b'\0', b'\1'))


# Images with runs of zeros at every alignment that matters
ALIGNMENTS = {
    'all zero': bytes(2 * CHUNK + 5),
    'no zero': data(2 * CHUNK + 5),
    'zero chunk between data': data(CHUNK) + bytes(CHUNK) + data(BLOCK),
    'zero blocks inside a chunk': (data(BLOCK) + bytes(3 * BLOCK) +
                                   data(1) + bytes(BLOCK - 1) + data(BLOCK)),
    'unaligned zero tail': data(CHUNK) + bytes(BLOCK + 777),
    'zero then data in the last sector': bytes(CHUNK + 4096) + data(512),
    'one zero byte short of a block': data(1) + bytes(BLOCK - 1),
}


@ddt.ddt
class TestZeroRuns(base.TestCase):

    @ddt.data(*ALIGNMENTS)
    def test_runs_cover_the_chunk_and_say_what_is_zero(self, name):
        for at in range(0, len(ALIGNMENTS[name]), CHUNK):
            chunk = ALIGNMENTS[name][at:at + CHUNK]
            runs = list(dataio.zero_runs(chunk))
            self.assertEqual(0, runs[0][0])
            self.assertEqual(len(chunk), runs[-1][1])
            for (_, end, zero), (start, _, next_zero) in zip(runs, runs[1:]):
                self.assertEqual(end, start)
                self.assertNotEqual(zero, next_zero)  # merged
            for start, end, zero in runs:
                self.assertEqual(zero, chunk[start:end] == bytes(end - start))
                self.assertEqual(0, start % BLOCK)

    def test_blocks_of_zeros_are_merged(self):
        chunk = data(BLOCK) + bytes(3 * BLOCK) + data(10)
        self.assertEqual([(0, BLOCK, False), (BLOCK, 4 * BLOCK, True),
                          (4 * BLOCK, 4 * BLOCK + 10, False)],
                         list(dataio.zero_runs(chunk)))


@ddt.ddt
class TestZerosNotWritten(base.TestCase):

    def fill(self, image, skip_zeros, device):
        w = dataio.ImageWriter(io.BytesIO(image), len(image), 'sha512')
        self.assertTrue(w.fill(device, len(image), skip_zeros))
        self.assertEqual(hashlib.sha512(image).hexdigest(), w.multihash_hex)
        self.assertEqual(hashlib.md5(image).hexdigest(), w.checksum)
        return w

    @ddt.data(*ALIGNMENTS)
    def test_zeros_are_zeroed_on_a_volume_holding_old_data(self, name):
        image = ALIGNMENTS[name]
        dev = MemoryDevice(len(image), fill=b'J')
        w = self.fill(image, False, dev)
        self.assertEqual(image, bytes(dev.buf))
        self.assertEqual(sum(n for _, n in dev.zeroed), w.zero_bytes)
        self.assertEqual(len(image), w.zero_bytes +
                         sum(n for _, n in dev.writes))

    @ddt.data(*ALIGNMENTS)
    def test_zeros_are_skipped_on_a_volume_reading_zeros(self, name):
        image = ALIGNMENTS[name]
        dev = MemoryDevice(len(image))
        w = self.fill(image, True, dev)
        self.assertEqual(image, bytes(dev.buf))
        self.assertEqual([], dev.zeroed)
        self.assertEqual(len(image) - w.zero_bytes,
                         sum(n for _, n in dev.writes))

    def test_zero_blocks_are_not_written_as_data(self):
        image = ALIGNMENTS['zero blocks inside a chunk']
        dev = MemoryDevice(len(image), fill=b'J')
        self.fill(image, False, dev)
        # the block of one data byte and zeros is written whole
        self.assertEqual([(BLOCK, 3 * BLOCK)], dev.zeroed)

    def test_a_failed_zeroing_fails_the_upload_like_a_failed_write(self):
        class NoSpace(MemoryDevice):
            def write_zeroes(self, offset, length):
                raise OSError(28, 'No space left on device')
        image = bytes(CHUNK)
        w = dataio.ImageWriter(io.BytesIO(image), len(image), 'md5')
        self.assertRaises(exceptions.StorageFull, w.fill,
                          NoSpace(len(image)), len(image))

    def test_a_volume_holding_old_data_reads_back_the_image(self):
        # The real thing: a file full of junk, zeroed by a hole or writes
        path = os.path.join(self.tmp, 'junk')
        image = b''.join(ALIGNMENTS.values())
        with open(path, 'wb') as f:
            f.write(b'J' * len(image))
        dev = devices.open_device(path, writable=True)
        self.addCleanup(dev.close)
        self.fill(image, False, dev)
        dev.sync()
        with open(path, 'rb') as f:
            self.assertEqual(image, f.read())


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

    def test_released_when_dropped_on_a_thread_of_its_own(self):
        # Whatever thread collects it may be one the release needs
        started = []
        real = threading.Thread

        def thread(*args, **kwargs):
            made = real(*args, **kwargs)
            if kwargs.get('name') == 'cinder_store-release':
                started.append(made)
            return made
        self.useFixture(fixtures.MockPatch(
            'cinder_store.dataio.threading.Thread', side_effect=thread))

        def drop():
            it = dataio.VolumeIterator(self.att, 0, 100, chunk_size=10)
            next(it)
            del it
        dropping = real(target=drop)
        dropping.start()
        dropping.join(timeout=30)
        (releasing,) = started
        releasing.join(timeout=30)
        self.assertEqual(1, self.att.closed)

    def test_short_device_is_an_error_not_truncation(self):
        it = dataio.VolumeIterator(self.att, 95, 20, chunk_size=10)
        self.assertRaises(exceptions.BackendException, list, it)
        self.assertEqual(1, self.att.closed)
