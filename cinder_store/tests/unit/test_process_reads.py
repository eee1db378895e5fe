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

from concurrent import futures
import threading
from unittest import mock

import fixtures
from glance_store import exceptions

from cinder_store import attachment
from cinder_store import devices
from cinder_store import host_reads
from cinder_store import process_reads
from cinder_store.tests.unit import base


class Boom(Exception):
    pass


class TestReadAttachments(base.CinderTestCase):

    def assertNoVolumeHeld(self):
        """The next reader attaches anew: no attachment is kept for it."""
        creates = self.cinder.calls.count('attachments.create')
        self.readers.acquire_lease(self.api, self.volume).close()
        self.assertEqual(creates + 1,
                         self.cinder.calls.count('attachments.create'))

    def setUp(self):
        super(TestReadAttachments, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)
        with open(self.cinder.device_path(self.volume.id), 'r+b') as f:
            f.write(b'0123456789')
        self.readers = process_reads.ProcessReads(
            host_reads.HostReads(self.settings()))

    def test_readers_of_one_volume_share_one_attachment(self):
        first = self.readers.acquire_lease(self.api, self.volume)
        second = self.readers.acquire_lease(self.api, self.volume)
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertIsNot(first.device, second.device)
        self.assertEqual(b'0123', first.device.pread(4, 0))
        self.assertEqual(b'6789', second.device.pread(4, 6))
        first.close()
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertEqual(b'45', second.device.pread(2, 4))
        second.close()
        self.assertNothingLeft(volumes=1)
        self.assertEqual(1, self.cinder.calls.count('attachments.create'))
        self.assertNoVolumeHeld()

    def test_a_lone_reader_reads_direct_others_through_the_cache(self):
        # Readers in company share what they read through the page cache; a
        # lone reader keeps O_DIRECT (see devices.fd.FdDevice).
        with mock.patch('cinder_store.devices.open_device',
                        wraps=devices.open_device) as open_device:
            leases = [self.readers.acquire_lease(self.api, self.volume)
                      for _ in range(3)]
        self.assertEqual([True, False, False],
                         [c.kwargs['direct'] for c in
                          open_device.call_args_list if 'direct' in c.kwargs])
        for lease in leases:
            lease.close()
        self.assertNothingLeft(volumes=1)

    def test_readers_arriving_during_the_attach_all_use_the_cache(self):
        self.useFixture(fixtures.MockPatch(
            'cinder_store.process_reads._Shared', _Watched))
        real_open = attachment.Attachment.open
        leases = []
        joiner = threading.Thread(target=lambda: leases.append(
            self.readers.acquire_lease(self.api, self.volume)))

        def open_while_another_reader_arrives(att, on_created=None):
            joiner.start()
            self.readers._volumes[self.volume.id].waiting.wait()
            return real_open(att, on_created)

        with mock.patch('cinder_store.devices.open_device',
                        wraps=devices.open_device) as open_device:
            with mock.patch.object(attachment.Attachment, 'open',
                                   open_while_another_reader_arrives):
                leases.append(
                    self.readers.acquire_lease(self.api, self.volume))
            joiner.join()
        self.assertEqual([False, False],
                         [c.kwargs['direct'] for c in
                          open_device.call_args_list if 'direct' in c.kwargs])
        self.assertEqual(1, len(self.cinder.attachments))
        for lease in leases:
            lease.close()
        self.assertNothingLeft(volumes=1)

    def test_lookup_of_an_attached_volume_does_not_fetch(self):
        lease = self.readers.acquire_lease(self.api, self.volume)
        fetch = mock.Mock()
        self.assertIs(self.volume,
                      self.readers.lookup_volume(self.volume.id, fetch))
        fetch.assert_not_called()
        lease.close()

    def test_lookup_fetches_when_nothing_is_attached_and_keeps_nothing(self):
        fetch = mock.Mock(side_effect=[Boom('lookup failed'), self.volume])
        self.assertRaises(Boom, self.readers.lookup_volume, self.volume.id,
                          fetch)
        self.assertIs(self.volume,
                      self.readers.lookup_volume(self.volume.id, fetch))
        self.assertEqual(2, fetch.call_count)
        self.assertEqual({}, self.readers._lookups)

    def test_concurrent_lookups_share_one_fetch(self):
        waiting = threading.Event()

        class WatchedFuture(futures.Future):
            def result(self, timeout=None):
                waiting.set()
                return super(WatchedFuture, self).result(timeout)
        self.useFixture(fixtures.MockPatch(
            'cinder_store.process_reads.futures.Future', WatchedFuture))
        got = []
        other = threading.Thread(target=lambda: got.append(
            self.readers.lookup_volume(self.volume.id, fetch)))

        def slow_fetch():
            other.start()  # a second reader asks while this GET runs
            waiting.wait()
            return self.volume
        fetch = mock.Mock(side_effect=slow_fetch)
        self.assertIs(self.volume,
                      self.readers.lookup_volume(self.volume.id, fetch))
        other.join()
        self.assertEqual([self.volume], got)
        self.assertEqual(1, fetch.call_count)

    def test_exclusive_volume_readable_by_two_readers_at_once(self):
        # Cinder refuses a second attachment of a volume that is not
        # multiattach; sharing makes the second reader need none.
        self.assertFalse(self.volume.multiattach)
        leases = [self.readers.acquire_lease(self.api, self.volume)
                  for _ in range(3)]
        self.assertEqual(['attachments.create', 'attachments.complete'],
                         self.cinder.calls)
        for lease in leases:
            lease.close()
        self.assertNothingLeft(volumes=1)

    def test_reader_after_the_last_one_left_attaches_again(self):
        self.readers.acquire_lease(self.api, self.volume).close()
        self.readers.acquire_lease(self.api, self.volume).close()
        self.assertEqual(2, self.cinder.calls.count('attachments.create'))
        self.assertNothingLeft(volumes=1)

    def test_last_reader_detaches_with_its_own_credentials(self):
        other = self.bound()
        first = self.readers.acquire_lease(self.api, self.volume)
        last = self.readers.acquire_lease(other, self.volume)
        first.close()
        with mock.patch.object(other, 'attachment_delete',
                               wraps=other.attachment_delete) as delete:
            last.close()
        delete.assert_called_once_with(mock.ANY)
        self.assertNothingLeft(volumes=1)

    def test_failed_attach_leaves_nothing_and_the_next_reader_retries(self):
        self.brick.fail('connect_volume', Boom())
        self.assertRaises(Boom, self.readers.acquire_lease, self.api,
                          self.volume)
        self.assertNoVolumeHeld()
        self.assertNothingLeft(volumes=1)
        lease = self.readers.acquire_lease(self.api, self.volume)
        lease.close()
        self.assertNothingLeft(volumes=1)

    def test_reader_waiting_on_a_failed_attach_gets_a_clear_error(self):
        self.useFixture(fixtures.MockPatch(
            'cinder_store.process_reads._Shared', _Watched))
        joiner_errors = []

        def second_reader():
            try:
                self.readers.acquire_lease(self.api, self.volume)
            except exceptions.BackendException as e:
                joiner_errors.append(e)
        joiner = threading.Thread(target=second_reader)

        def open_while_another_reader_arrives(att, on_created=None):
            joiner.start()
            self.readers._volumes[self.volume.id].waiting.wait()
            raise Boom('initialize_connection failed')

        with mock.patch.object(attachment.Attachment, 'open',
                               open_while_another_reader_arrives):
            self.assertRaises(Boom, self.readers.acquire_lease, self.api,
                              self.volume)
        joiner.join()
        (error,) = joiner_errors
        self.assertIn(self.volume.id, str(error))
        self.assertIn('initialize_connection failed', str(error))
        self.assertNoVolumeHeld()
        self.assertNothingLeft(volumes=1)

    def test_device_open_failure_releases_the_hold(self):
        with mock.patch('cinder_store.devices.open_device',
                        side_effect=OSError(13, 'denied')):
            self.assertRaises(OSError, self.readers.acquire_lease, self.api,
                              self.volume)
        self.assertNoVolumeHeld()
        self.assertNothingLeft(volumes=1)

    def test_userspace_connection_is_shared_by_concurrent_readers(self):
        # RBD in userspace: one file object, read positionally by each.
        self.cinder.transport = 'rbd'
        with open(self.cinder.device_path(self.volume.id), 'r+b') as f:
            f.write(b'0123456789')
        first = self.readers.acquire_lease(self.api, self.volume)
        second = self.readers.acquire_lease(self.api, self.volume)
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertEqual(1, len(self.brick.handles))
        self.assertEqual(b'5678', second.device.pread(4, 5))
        self.assertEqual(b'0123', first.device.pread(4, 0))
        first.close()
        self.assertEqual(1, len(self.brick.handles))
        second.close()
        self.assertNothingLeft(volumes=1)


class _Watched(process_reads._Shared):
    """Tells a test when a reader starts waiting for the attach."""

    def __init__(self, volume):
        super(_Watched, self).__init__(volume)
        self.waiting = threading.Event()
        real_wait = self.ready.wait

        def wait(timeout=None):
            self.waiting.set()
            return real_wait(timeout)
        self.ready.wait = wait
