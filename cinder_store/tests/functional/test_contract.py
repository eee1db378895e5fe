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

"""The store contract, run on every cinder_store backend of the target.

Through glance_store's multi-store API only (as Glance calls it).  Each
backend gets its own class so that failures name the backend.
"""

import concurrent.futures
import hashlib
import os
import subprocess
import sys
import threading
import time
from unittest import mock

import fixtures
from glance_store import exceptions
from glance_store import location
from glance_store import multi_backend
from oslo_utils import timeutils

from cinder_store import host_reads
from cinder_store import membership
from cinder_store.tests.functional import base


class StoreContract(object):

    def volume_of(self, uri):
        return self.cinder.volumes.get(uri.rsplit('/', 1)[1])

    def assert_detached(self, uri):
        self.assertEqual([], self.volume_of(uri).attachments)

    def round_trip(self, size):
        data = base.pattern_bytes(size, seed=size)
        uri, written, md5, multihash, meta = self.add(self.backend, data)
        self.assertEqual(size, written)
        self.assertEqual(hashlib.md5(data).hexdigest(), md5)
        self.assertEqual(hashlib.sha512(data).hexdigest(), multihash)
        self.assertEqual({'store': self.backend}, meta)
        self.assertTrue(uri.startswith('cinder://%s/' % self.backend))
        self.assert_detached(uri)
        self.assertEqual(size, multi_backend.get_size_from_uri_and_backend(
            uri, self.backend, context=self.context))
        self.assertEqual((hashlib.sha256(data).hexdigest(), size),
                         self.read(uri, self.backend))
        self.assert_detached(uri)
        self.delete(uri, self.backend)
        self.assertRaises(exceptions.NotFound, self.read, uri, self.backend)

    def test_empty(self):
        self.round_trip(0)

    def test_one_byte(self):
        self.round_trip(1)

    def test_4mib_plus_one(self):
        self.round_trip(4 * base.MiB + 1)

    def test_300mib(self):
        self.round_trip(300 * base.MiB)

    def test_runs_of_zeros_at_every_alignment_read_back(self):
        # Zeros are skipped (RBD) or zeroed (the loop-file backends, whose
        # new volumes hold old data in the stack): never old data shown.
        chunk, block = 4 * base.MiB, 64 * 1024

        def data(n, seed):
            return base.pattern_bytes(n, seed=seed).replace(b'\0', b'\1')
        images = {
            'all zero': bytes(2 * chunk + 5),
            'mixed': (data(chunk, 1) + bytes(chunk) + data(block, 2) +
                      bytes(3 * block) + data(1, 3) + bytes(block - 1) +
                      data(block + 7, 4) + bytes(chunk + 4096) +
                      data(512, 5)),
            'zero tail': data(chunk, 6) + bytes(block + 777),
        }
        for name, image in images.items():
            for size in (len(image), 0):  # declared, and unknown
                uri, written, _, multihash, _ = self.add(
                    self.backend, image, size=size)
                self.addCleanup(self.delete, uri, self.backend)
                self.assertEqual(
                    (len(image), hashlib.sha512(image).hexdigest()),
                    (written, multihash), name)
                self.assertEqual(
                    (hashlib.sha256(image).hexdigest(), len(image)),
                    self.read(uri, self.backend), name)

    def test_offset_and_length(self):
        data = base.pattern_bytes(5 * base.MiB + 3, seed=7)
        uri = self.add(self.backend, data)[0]
        self.addCleanup(self.delete, uri, self.backend)
        for offset, length in ((0, 10), (4 * base.MiB - 1, base.MiB + 2),
                               (len(data) - 1, None), (len(data), None)):
            end = None if length is None else offset + length
            expected = data[offset:end]
            self.assertEqual(
                (hashlib.sha256(expected).hexdigest(), len(expected)),
                self.read(uri, self.backend, offset=offset,
                          chunk_size=length))
        self.assertRaises(exceptions.Invalid, self.read, uri, self.backend,
                          offset=len(data) + 1)
        self.assert_detached(uri)

    def test_declared_size_too_small(self):
        self.assertRaises(exceptions.Invalid, self.add, self.backend,
                          b'x' * 1000, size=999)

    def test_declared_size_too_large(self):
        self.assertRaises(exceptions.Invalid, self.add, self.backend,
                          b'x' * 1000, size=1001)

    def test_missing_volume(self):
        uri = 'cinder://%s/%s' % (self.backend, '0' * 8 + '-0000-4000-8000-'
                                  + '0' * 12)
        self.assertRaises(exceptions.NotFound, self.read, uri, self.backend)
        self.assertRaises(exceptions.NotFound, self.delete, uri,
                          self.backend)

    def test_malformed_location(self):
        self.assertRaises(exceptions.BadStoreUri,
                          location.get_location_from_uri_and_backend,
                          'cinder://%s/not-a-volume' % self.backend,
                          self.backend, conf=self.conf)

    def test_consumer_abandons_download(self):
        data = base.pattern_bytes(12 * base.MiB, seed=3)
        uri = self.add(self.backend, data)[0]
        self.addCleanup(self.delete, uri, self.backend)
        it, length = multi_backend.get(uri, self.backend,
                                       context=self.context)
        self.assertEqual(data[:len(next(it))], data[:4 * base.MiB])
        self.assertEqual(1, len(self.volume_of(uri).attachments))
        del it
        for thread in threading.enumerate():  # released on one of its own
            if thread.name == 'cinder_store-release':
                thread.join(timeout=60)
        self.assert_detached(uri)

    def test_concurrent_readers_in_one_process_share_an_attachment(self):
        # Four downloads of one image at once, as in a boot storm; the
        # block and file backends are not multiattach.
        data = base.pattern_bytes(9 * base.MiB + 3, seed=8)
        uri = self.add(self.backend, data)[0]
        self.addCleanup(self.delete, uri, self.backend)
        readers = [multi_backend.get(uri, self.backend,
                                     context=self.context)[0]
                   for _ in range(4)]
        self.assertEqual(1, len(self.volume_of(uri).attachments))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            got = list(pool.map(b''.join, readers))
        self.assertEqual([len(data)] * 4, [len(g) for g in got])
        self.assertTrue(all(g == data for g in got))
        self.assert_detached(uri)

    def test_workers_reading_at_once_share_one_attachment(self):
        # Three processes (Glance workers) x two downloads, all of them
        # mid-download at the same moment: one attachment serves them all,
        # also on volumes that are not multiattach.
        data = base.pattern_bytes(12 * base.MiB + 5, seed=12)
        uri = self.add(self.backend, data)[0]
        self.addCleanup(self.delete, uri, self.backend)
        sync = self.useFixture(fixtures.TempDir()).path
        readers = [subprocess.Popen(
            [sys.executable, '-m', 'cinder_store.tests.functional.reader',
             uri, self.backend, '2', sync], stdout=subprocess.PIPE,
            text=True) for _ in range(3)]
        self.addCleanup(lambda: [r.kill() for r in readers
                                 if r.poll() is None])
        deadline = time.monotonic() + 180
        while len(os.listdir(sync)) < 6:
            self.assertLess(time.monotonic(), deadline,
                            'readers never all started: %s'
                            % os.listdir(sync))
            self.assertEqual([None] * 3, [r.poll() for r in readers])
            time.sleep(0.05)
        self.assertEqual(1, len(self.volume_of(uri).attachments))
        open(os.path.join(sync, 'go'), 'w').close()
        outputs = [r.communicate(timeout=120)[0] for r in readers]
        self.assertEqual([0, 0, 0], [r.returncode for r in readers])
        expected = hashlib.sha256(data).hexdigest()
        for out in outputs:
            self.assertEqual([expected] * 2, out.split())
        self.assert_detached(uri)


class UnknownSizeContract(object):
    """Images of unknown size growing the volume past 1 GiB."""

    def test_unknown_size_past_1gib(self):
        size = base.GiB + 5 * base.MiB + 7
        source = base.PatternFile(size, seed=11)
        uri, written, _, _, _ = self.add(self.backend, source, size=0)
        self.addCleanup(self.delete, uri, self.backend)
        self.assertEqual(size, written)
        volume = self.volume_of(uri)
        self.assertEqual(str(size), volume.metadata['image_size'])
        self.assertEqual((source.sha256.hexdigest(), size),
                         self.read(uri, self.backend))
        self.assert_detached(uri)


ABANDONED_AFTER = 3


class FaultContract(object):
    """Cinder-side failures injected through the loop-file driver."""

    def volume_dir(self):
        """Where the running stack's Cinder keeps this backend's files."""
        directory = base.local_volume_dir(self.backend)
        if directory is None:
            self.skipTest('fault injection needs the local stack')
        return directory

    def inject(self, operation, image_id, times=1):
        directory = os.path.join(self.volume_dir(), 'faults')
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, '%s@image-%s' % (operation, image_id))
        with open(path, 'w') as f:
            f.write(str(times))
        self.addCleanup(os.unlink, path)

    def test_volume_created_in_error_is_deleted(self):
        image_id = self.new_image_id()
        # Cinder reschedules a failed create (3 attempts by default).
        self.inject('create_volume', image_id, times=10)
        self.assertRaises(exceptions.BackendException, self.add,
                          self.backend, b'data', image_id=image_id)

    def test_initialize_connection_failure_leaves_nothing(self):
        image_id = self.new_image_id()
        self.inject('initialize_connection', image_id)
        self.assertRaises(exceptions.BackendException, self.add,
                          self.backend, b'data', image_id=image_id)

    def test_online_extend_failure_leaves_nothing(self):
        image_id = self.new_image_id()
        self.inject('extend_volume', image_id)
        source = base.PatternFile(base.GiB + base.MiB, seed=1)
        self.assertRaises(exceptions.BackendException, self.add,
                          self.backend, source, size=0, image_id=image_id)

    def stall(self, operation, image_id):
        """Hold ``operation`` on the image's volume; returns its marker."""
        directory = os.path.join(self.volume_dir(), 'faults')
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory,
                            'stall-%s@image-%s' % (operation, image_id))
        open(path, 'w').close()
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        self.addCleanup(lambda: os.path.exists(path + '.stalled') and
                        os.unlink(path + '.stalled'))
        return path

    def kill_reader_in_attach(self):
        """An image whose reader died inside attachment_create.

        Cinder goes on to make an attachment nobody holds, on a volume
        only one may attach.  Returns the image's data and location.
        """
        self.volume_dir()  # skips before the image is stored
        data = base.pattern_bytes(4 * base.MiB, seed=33)
        image_id = self.new_image_id()
        uri = self.add(self.backend, data, image_id=image_id)[0]
        stall = self.stall('initialize_connection', image_id)
        reader = subprocess.Popen(
            [sys.executable, '-m', 'cinder_store.tests.functional.reader',
             uri, self.backend, '1'], stdout=subprocess.DEVNULL)
        self.addCleanup(lambda: reader.poll() is None and reader.kill())
        self.wait_for(lambda: os.path.exists(stall + '.stalled'),
                      'the reader never reached Cinder', reader)
        reader.kill()
        reader.wait()
        os.unlink(stall)
        volume_id = uri.rsplit('/', 1)[1]
        self.wait_for(lambda: [a.status for a in self.attachments(volume_id)]
                      == ['attaching'], 'Cinder never made the attachment')
        return data, uri

    def test_reader_killed_in_attach_does_not_block_the_next(self):
        data, uri = self.kill_reader_in_attach()
        self.addCleanup(self.delete, uri, self.backend)
        self.assertEqual((hashlib.sha256(data).hexdigest(), len(data)),
                         self.read(uri, self.backend))
        self.assertEqual([], self.attachments(uri.rsplit('/', 1)[1]))

    def test_image_whose_reader_was_killed_in_attach_is_deleted(self):
        _, uri = self.kill_reader_in_attach()
        self.delete(uri, self.backend)
        # assert_nothing_leaked: the volume and its loop device are gone

    def attachments(self, volume_id):
        return self.cinder.attachments.list(
            search_opts={'volume_id': volume_id, 'all_tenants': 1})

    def wait_for(self, condition, failure, process=None):
        deadline = time.monotonic() + 120
        while not condition():
            self.assertLess(time.monotonic(), deadline, failure)
            if process is not None:
                self.assertIsNone(process.poll(), failure)
            time.sleep(0.05)


class TestBlock(StoreContract, UnknownSizeContract, FaultContract,
                base.FunctionalTestCase):
    role = 'block'


class TestFile(StoreContract, UnknownSizeContract, FaultContract,
               base.FunctionalTestCase):
    role = 'file'


def made(attachment):
    """When Cinder finished making ``attachment`` (naive UTC)."""
    return timeutils.normalize_time(timeutils.parse_isotime(
        attachment.attached_at))


class TestMultiattach(StoreContract, FaultContract, base.FunctionalTestCase):
    role = 'multiattach'

    def setUp(self):
        super(TestMultiattach, self).setUp()
        # Cinder names no host for an attachment being made: on a
        # multiattach volume a dead reader's is told from another host's
        # attach in progress by its age.  Seconds here, not minutes.
        store = multi_backend.get_store_from_store_identifier(self.backend)
        self.host = store.maintenance().settings
        self.useFixture(fixtures.MockPatchObject(
            self.host, 'abandoned_after', ABANDONED_AFTER))

    def kill_reader_in_attach(self):
        data, uri = super(TestMultiattach, self).kill_reader_in_attach()
        # Its attachment keeps the volume 'attaching' until it is abandoned
        volume = self.cinder.volumes.get(uri.rsplit('/', 1)[1])
        self.assertEqual('attaching', volume.status)
        return data, uri

    def wait_abandoned(self, uri):
        """Until the attachments being made are older than the age."""
        def old():
            atts = self.cinder.attachments.list(detailed=True, search_opts={
                'volume_id': uri.rsplit('/', 1)[1], 'all_tenants': 1})
            now = timeutils.utcnow()
            return all(ABANDONED_AFTER < (now - made(a)).total_seconds()
                       for a in atts if a.status == 'attaching')
        self.wait_for(old, 'the attachment never grew old enough')

    def alone(self):
        """This process reads as a Glance host without coordination."""
        return mock.patch.object(self.host, 'membership', membership.Alone())

    def test_without_coordination_a_young_one_is_left_for_its_age(self):
        with self.alone():
            data, uri = self.kill_reader_in_attach()
            self.addCleanup(self.delete, uri, self.backend)
            # Young, it may be another host attaching right now: this
            # reader is refused, and drops the dead reader's record.
            with mock.patch.object(self.host, 'abandoned_after', 600):
                self.assertRaisesRegex(exceptions.BackendException,
                                       'to reserve', self.read, uri,
                                       self.backend)
            self.assertNotIn(uri.rsplit('/', 1)[1], host_reads.HostReads(
                self.host).recorded_volumes())
            # Once old enough, the next reader refused for the volume's
            # status deletes it and reads.
            self.wait_abandoned(uri)
            self.assertEqual((hashlib.sha256(data).hexdigest(), len(data)),
                             self.read(uri, self.backend))
        self.assertEqual([], self.attachments(uri.rsplit('/', 1)[1]))

    def test_without_coordination_its_image_is_deleted_once_old_enough(self):
        with self.alone():
            _, uri = self.kill_reader_in_attach()
            with mock.patch.object(self.host, 'abandoned_after', 600):
                self.assertRaisesRegex(exceptions.InUseByStore,
                                       'being attached', self.delete, uri,
                                       self.backend)
            self.wait_abandoned(uri)
            self.delete(uri, self.backend)
        # assert_nothing_leaked: the volume and its loop device are gone

    def coordinated(self):
        if not self.host.membership.coordinated:
            self.skipTest('no coordination service configured: see the '
                          'without_coordination tests')
        # Every live attacher claims what it makes: the dead reader's
        # record says when its attach began, and what nobody claims
        # since then is its, however young.  See test_killed_in_attach.
        return mock.patch.object(self.host, 'abandoned_after', 600)

    def test_reader_killed_in_attach_does_not_block_the_next(self):
        with self.coordinated():
            test = super(TestMultiattach, self)
            test.test_reader_killed_in_attach_does_not_block_the_next()

    def test_image_whose_reader_was_killed_in_attach_is_deleted(self):
        with self.coordinated():
            test = super(TestMultiattach, self)
            test.test_image_whose_reader_was_killed_in_attach_is_deleted()

    def test_reservation_a_failed_attach_left_does_not_block(self):
        # The backend fails the connection: Cinder keeps the reservation
        # and the volume 'reserved', refusing every new one.  On a
        # multiattach volume the reader cannot tell it from another host's
        # reservation in progress and leaves it; only its age tells.
        data = base.pattern_bytes(base.MiB, seed=34)
        image_id = self.new_image_id()
        uri = self.add(self.backend, data, image_id=image_id)[0]
        self.addCleanup(self.delete, uri, self.backend)
        volume_id = uri.rsplit('/', 1)[1]
        self.inject('initialize_connection', image_id)
        with mock.patch.object(self.host, 'abandoned_after', 600):
            self.assertRaises(exceptions.BackendException, self.read, uri,
                              self.backend)
            self.assertEqual('reserved',
                             self.cinder.volumes.get(volume_id).status)
            self.assertRaisesRegex(exceptions.BackendException, 'reserve',
                                   self.read, uri, self.backend)

        def reserved_long_enough():
            volume = self.cinder.volumes.get(volume_id)
            changed = timeutils.normalize_time(
                timeutils.parse_isotime(volume.updated_at))
            age = (timeutils.utcnow() - changed).total_seconds()
            return volume.status == 'reserved' and age > ABANDONED_AFTER
        self.wait_for(reserved_long_enough, 'the volume left reserved')
        self.assertEqual((hashlib.sha256(data).hexdigest(), len(data)),
                         self.read(uri, self.backend))
        self.assertEqual([], self.attachments(volume_id))

    def test_concurrent_readers_from_several_processes(self):
        data = base.pattern_bytes(32 * base.MiB, seed=5)
        uri = self.add(self.backend, data)[0]
        self.addCleanup(self.delete, uri, self.backend)
        expected = hashlib.sha256(data).hexdigest()
        readers = [subprocess.Popen(
            [sys.executable, '-m', 'cinder_store.tests.functional.reader',
             uri, self.backend, '3'], stdout=subprocess.PIPE, text=True)
            for _ in range(3)]
        outputs = [r.communicate(timeout=300)[0] for r in readers]
        self.assertEqual([0, 0, 0], [r.returncode for r in readers])
        for out in outputs:
            self.assertEqual([expected] * 3, out.split())
        self.assert_detached(uri)


class TestUpstreamImages(base.FunctionalTestCase):
    """Images written by the in-tree driver, read after the switch."""

    upstream = 'upstream'

    def setUp(self):
        super(TestUpstreamImages, self).setUp()
        if self.upstream not in self.conf.enabled_backends:
            self.skipTest('the target has no in-tree %r backend'
                          % self.upstream)

    def test_in_tree_image_read_by_cinder_store(self):
        data = base.pattern_bytes(6 * base.MiB + 1, seed=9)
        uri = self.add(self.upstream, data)[0]
        volume_id = uri.rsplit('/', 1)[1]
        store = multi_backend.get_store_from_store_identifier(
            self.backend)
        # The in-tree driver deletes this volume; our lock files for it
        # are ours to remove (after a migration, deletes go through us).
        self.addCleanup(store.maintenance().settings.locks.remove_locks,
                        volume_id)
        self.addCleanup(self.delete, uri, self.upstream)
        for form in (uri, 'cinder://%s' % volume_id):
            loc = location.Location('cinder',
                                    store.get_store_location_class(),
                                    self.conf, uri=form,
                                    backend=self.backend)
            it, length = store.get(loc, context=self.context)
            got = b''.join(it)
            self.assertEqual(len(data), length)
            self.assertEqual(hashlib.sha256(data).hexdigest(),
                             hashlib.sha256(got).hexdigest())
        volume = self.cinder.volumes.get(volume_id)
        # Glance's legacy-location migration: ours if the types match.
        self.assertEqual(
            volume.volume_type == store.backend_conf.cinder_store_volume_type,
            store.is_image_associated_with_store(self.context, volume_id))
        self.assertEqual([], volume.attachments)
