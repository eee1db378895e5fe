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

import json
import os
import stat
import time
from unittest import mock

import fixtures
from glance_store import exceptions

from cinder_store import attachment
from cinder_store.devices import rbd
from cinder_store import host_reads
from cinder_store import membership
from cinder_store import records
from cinder_store.recovery import rules
from cinder_store.tests.unit import base
from cinder_store.tests.unit import fakes

DEAD = base.DEAD


class Distrusting(membership.Alone):
    """A membership that lapsed since any record was confirmed."""

    def trusts(self, verified):
        return False


class TestHostReaders(base.CinderTestCase):
    """Other processes are played by editing the record's holders."""

    def setUp(self):
        super(TestHostReaders, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)
        settings = self.settings()
        os.makedirs(settings.lock_path, exist_ok=True)
        self.readers = host_reads.HostReads(settings)
        self.record_path = os.path.join(
            settings.lock_path,
            'cinder_store-shared-read-%s.json' % self.volume.id)
        self.other = records.process_id(os.getppid())

    def record(self):
        with open(self.record_path) as f:
            return json.load(f)

    def rewrite(self, **changes):
        base.rewrite_record(self.record_path, **changes)

    def test_first_reader_attaches_and_records_it_without_secrets(self):
        handle = self.readers.join_read(self.api, self.volume)
        record = self.record()
        self.assertEqual(handle.id, record['attachment'])
        self.assertEqual([records.process_id()], record['holders'])
        self.assertEqual(self.cinder.device_path(self.volume.id),
                         handle.device_path)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(self.record_path)
                                             .st_mode))
        with open(self.record_path) as f:
            self.assertNotIn('s3cr3t', f.read())
        handle.close()
        self.assertFalse(os.path.exists(self.record_path))
        self.assertNothingLeft(volumes=1)

    def test_second_process_joins_instead_of_attaching(self):
        owner = self.readers.join_read(self.api, self.volume)
        self.rewrite(holders=[self.other])  # the attacher is another worker
        joined = self.readers.join_read(self.api, self.volume)
        self.assertEqual(1, self.cinder.calls.count('attachments.create'))
        self.assertEqual(owner.id, joined.id)
        self.assertEqual(owner.device_path, joined.device_path)
        self.assertEqual([self.other, records.process_id()],
                         self.record()['holders'])
        joined.close()  # the other worker still reads: nothing detached
        self.assertEqual([self.other], self.record()['holders'])
        self.assertEqual(1, len(self.cinder.attachments))
        self.rewrite(holders=[records.process_id()])
        owner.close()
        self.assertNothingLeft(volumes=1)

    def test_owner_leaving_first_hands_over_to_the_other_process(self):
        owner = self.readers.join_read(self.api, self.volume)
        self.rewrite(holders=[records.process_id(), self.other])
        owner.close()
        self.assertEqual([self.other], self.record()['holders'])
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertIsNone(owner.attachment.device.fd)  # our handle closed
        self.assertNotIn('disconnect_volume', self.brick.calls)

    def test_rejoining_while_the_last_reader_leaves_keeps_it_attached(self):
        # This process's last reader leaves just as its next one joins.
        first = self.readers.join_read(self.api, self.volume)
        second = self.readers.join_read(self.api, self.volume)
        me = records.process_id()
        self.assertEqual([me, me], self.record()['holders'])
        first.close()
        self.assertEqual([me], self.record()['holders'])
        self.assertEqual([first.id], list(self.cinder.attachments))
        second.close()
        self.assertNothingLeft(volumes=1)
        self.assertFalse(os.path.exists(self.record_path))

    def test_last_process_detaches_what_another_attached(self):
        owner = self.readers.join_read(self.api, self.volume)
        self.rewrite(holders=[self.other])
        joined = self.readers.join_read(self.api, self.volume)
        # the attacher's process is gone
        owner.attachment.close_keeping_attachment()
        self.rewrite(holders=[DEAD, records.process_id()])
        joined.close()
        self.assertFalse(os.path.exists(self.record_path))
        self.assertIn('attachments.show', self.cinder.calls)
        self.assertNothingLeft(volumes=1)

    def test_failed_detach_of_the_last_reader_keeps_naming_it(self):
        handle = self.readers.join_read(self.api, self.volume)
        self.cinder.fail('attachments.delete', RuntimeError('cinder down'))
        handle.close()  # a read: logged, not raised
        # Still attached, and still record_id, held by nobody: stale.
        self.assertEqual([handle.id], list(self.cinder.attachments))
        self.assertEqual(handle.id, self.record()['attachment'])
        self.assertEqual([], self.record()['holders'])
        self.assertIn('no live process holds it',
                      self.readers.inspect_record(self.api, self.volume.id)[1])
        # The next reader detaches it and attaches afresh.
        self.assertReplaced(handle,
                            self.readers.join_read(self.api, self.volume))

    def test_failed_disconnect_of_a_joined_reader_keeps_naming_it(self):
        owner = self.readers.join_read(self.api, self.volume)
        self.rewrite(holders=[self.other])
        joined = self.readers.join_read(self.api, self.volume)
        # the attacher's process is gone
        owner.attachment.close_keeping_attachment()
        self.rewrite(holders=[DEAD, records.process_id()])
        self.brick.fail('disconnect_volume', OSError('device busy'))
        joined.close()
        self.assertEqual([joined.id], list(self.cinder.attachments))
        self.assertEqual([], self.record()['holders'])
        self.assertEqual([joined.id],
                         self.readers.repair_record(self.api, self.volume))
        self.assertFalse(os.path.exists(self.record_path))
        self.assertNothingLeft(volumes=1)

    def test_failed_attach_that_cannot_disconnect_keeps_naming_it(self):
        self.cinder.fail('attachments.complete', OSError('complete'))
        self.brick.fail('disconnect_volume', OSError('device busy'))
        self.assertRaises(OSError, self.readers.join_read, self.api,
                          self.volume)
        (left,) = self.cinder.attachments
        self.assertEqual(left, self.record()['attachment'])
        self.assertEqual([], self.record()['holders'])
        self.assertEqual([left],
                         self.readers.repair_record(self.api, self.volume))
        self.assertFalse(os.path.exists(self.record_path))
        self.assertNothingLeft(volumes=1)

    def test_failed_attach_that_unwound_leaves_no_record(self):
        self.cinder.fail('attachments.complete', OSError('complete'))
        self.assertRaises(OSError, self.readers.join_read, self.api,
                          self.volume)
        self.assertFalse(os.path.exists(self.record_path))
        self.assertNothingLeft(volumes=1)

    def leftover(self, **record):
        """A recorded attachment this process no longer holds."""
        handle = self.readers.join_read(self.api, self.volume)
        handle.attachment.close_keeping_attachment()
        self.rewrite(**record)
        return handle

    def assertReplaced(self, leftover, handle):
        self.assertNotEqual(leftover.id, handle.id)
        self.assertEqual([handle.id], list(self.cinder.attachments))
        handle.close()
        self.assertNothingLeft(volumes=1)

    def test_record_of_dead_processes_is_cleaned_up(self):
        leftover = self.leftover(holders=[DEAD])
        self.assertReplaced(leftover,
                            self.readers.join_read(self.api, self.volume))

    def test_stale_record_whose_detach_fails_keeps_naming_it(self):
        # Detach, then forget: the record goes only with the attachment.
        leftover = self.leftover(holders=[DEAD])
        self.brick.fail('disconnect_volume', OSError('device busy'))
        self.assertRaises(OSError, self.readers.join_read, self.api,
                          self.volume)
        self.assertEqual((leftover.id, []), (self.record()['attachment'],
                                             self.record()['holders']))
        self.assertEqual([leftover.id], list(self.cinder.attachments))
        self.assertReplaced(leftover,
                            self.readers.join_read(self.api, self.volume))

    def test_record_from_before_a_reboot_is_not_disconnected(self):
        # After a reboot the recorded device path may name another volume.
        leftover = self.leftover(boot='an-earlier-boot', holders=[self.other])
        self.brick.calls.clear()
        handle = self.readers.join_read(self.api, self.volume)
        self.assertEqual(['factory', 'connect_volume'], self.brick.calls)
        self.assertReplaced(leftover, handle)

    def test_without_a_boot_id_records_are_never_trusted(self):
        leftover = self.leftover(holders=[self.other])
        self.brick.calls.clear()
        with mock.patch.object(records, 'boot_id', return_value='unknown'):
            handle = self.readers.join_read(self.api, self.volume)
        self.assertNotIn('disconnect_volume', self.brick.calls)
        self.assertReplaced(leftover, handle)

    def test_record_whose_attachment_cinder_lost_is_replaced(self):
        leftover = self.leftover(holders=[self.other])
        self.api.attachment_delete(leftover.id)  # e.g. an admin's detach
        # Asked of Cinder once this process cannot trust the record as it
        # is (its membership lapsed since Cinder confirmed it)
        self.readers.settings.membership = Distrusting()
        with mock.patch.object(host_reads.LOG, 'warning') as warn:
            handle = self.readers.join_read(self.api, self.volume)
        # Gone from Cinder is detached: nothing failed, nothing to warn of
        self.assertFalse(warn.called)
        self.assertReplaced(leftover, handle)

    def test_another_hosts_record_is_never_joined_nor_detached(self):
        # A lock directory shared between hosts by mistake
        foreign = {'boot': 'their-boot', 'host': 'otherhost',
                   'attachment': 'theirs', 'holders': [DEAD],
                   'device_info': {'path': '/dev/their-device'}}
        os.makedirs(os.path.dirname(self.record_path), exist_ok=True)
        with open(self.record_path, 'w') as f:
            json.dump(foreign, f)
        with mock.patch.object(host_reads.LOG, 'warning') as warn:
            handle = self.readers.join_read(self.api, self.volume)
        self.assertIn('otherhost', str(warn.call_args))
        self.assertEqual(self.cinder.device_path(self.volume.id),
                         handle.device_path)
        self.assertEqual((foreign, None),
                         self.readers.inspect_record(self.api, self.volume.id))
        self.assertIsNone(self.readers.repair_record(self.api, self.volume))
        self.assertIsNone(self.readers.recorded_attachment(self.volume.id))
        handle.close()
        self.assertEqual(foreign, self.record())
        self.assertNothingLeft(volumes=1)

    def test_this_hosts_record_names_its_attachment(self):
        handle = self.readers.join_read(self.api, self.volume)
        self.assertEqual('testhost', self.record()['host'])
        self.assertEqual(handle.id,
                         self.readers.recorded_attachment(self.volume.id))
        handle.close()
        self.assertIsNone(self.readers.recorded_attachment(self.volume.id))

    def test_discard_forgets_the_record(self):
        handle = self.readers.join_read(self.api, self.volume)
        self.readers.discard_record(self.volume.id)
        self.assertFalse(os.path.exists(self.record_path))
        handle.close()  # still detaches what it made
        self.assertNothingLeft(volumes=1)

    def test_unreadable_record_is_ignored(self):
        with open(self.record_path, 'w') as f:
            f.write('{not json')
        handle = self.readers.join_read(self.api, self.volume)
        self.assertEqual(handle.id, self.record()['attachment'])
        handle.close()
        self.assertNothingLeft(volumes=1)

    def test_failed_record_write_detaches(self):
        with mock.patch.object(records.RecordFiles, 'save',
                               side_effect=OSError(28, 'no space')):
            self.assertRaises(OSError, self.readers.join_read, self.api,
                              self.volume)
        self.assertNothingLeft(volumes=1)

    def test_record_is_written_before_cinder_attaches(self):
        seen = {}
        real_open = attachment.Attachment.open
        real_connect = fakes.FakeConnector.connect_volume

        def open_(att, on_created=None):
            seen['open'] = self.record()
            return real_open(att, on_created)

        def connect(connector, data):
            seen['connect'] = self.record()
            return real_connect(connector, data)

        with mock.patch.object(attachment.Attachment, 'open', open_), \
                mock.patch.object(fakes.FakeConnector, 'connect_volume',
                                  connect):
            handle = self.readers.join_read(self.api, self.volume)
        self.assertIsNone(seen['open']['attachment'])
        self.assertEqual([records.process_id()], seen['open']['holders'])
        # Named as soon as Cinder answers, before the host connects.
        self.assertEqual(handle.id, seen['connect']['attachment'])
        self.assertNotIn('device_info', seen['connect'])
        self.assertIn('device_info', self.record())
        handle.close()
        self.assertNothingLeft(volumes=1)

    def test_failed_attach_removes_its_record(self):
        self.cinder.fail('attachments.complete', RuntimeError('boom'))
        self.assertRaises(RuntimeError, self.readers.join_read, self.api,
                          self.volume)
        self.assertFalse(os.path.exists(self.record_path))
        self.assertNothingLeft(volumes=1)

    def test_failed_naming_of_the_attachment_unwinds_it(self):
        real_save = records.RecordFiles.save

        def save(files, volume_id, record):
            if record['attachment']:
                raise OSError(28, 'no space')
            real_save(files, volume_id, record)

        with mock.patch.object(records.RecordFiles, 'save', save):
            self.assertRaises(OSError, self.readers.join_read, self.api,
                              self.volume)
        self.assertFalse(os.path.exists(self.record_path))
        self.assertNothingLeft(volumes=1)

    def killed_while_cinder_attaches(self, volume):
        """What a reader killed inside attachment_create leaves."""
        since = time.time() - 1
        made = self.api.attachment_create(
            volume.id, self.readers.settings.connector_properties(), 'ro')
        with open(self.readers.files.path(volume.id), 'w') as f:
            json.dump({'boot': records.boot_id(), 'host': 'testhost',
                       'attachment': None, 'since': since,
                       'holders': [DEAD]}, f)
        return made['id']

    def test_reader_killed_while_cinder_attaches_is_cleaned_up(self):
        leaked = self.killed_while_cinder_attaches(self.volume)
        self.assertIn('stopped while Cinder was making its attachment',
                      self.readers.inspect_record(self.api, self.volume.id)[1])
        handle = self.readers.join_read(self.api, self.volume)
        self.assertNotEqual(leaked, handle.id)
        self.assertEqual([handle.id], list(self.cinder.attachments))
        handle.close()
        self.assertNothingLeft(volumes=1)

    def test_reader_killed_after_cinder_answered_is_cleaned_up(self):
        leaked = self.killed_while_cinder_attaches(self.volume)
        self.rewrite(attachment=leaked)
        self.assertIn('stopped while attaching',
                      self.readers.inspect_record(self.api, self.volume.id)[1])
        self.assertEqual([leaked], self.readers.repair_record(self.api,
                                                              self.volume))
        self.assertNothingLeft(volumes=1)

    def multiattach_volume(self):
        self.cinder.multiattach_types.add('shared')
        self.cinder.types.add('shared')
        return self.api.wait_for_status(
            self.api.create_volume(1, 'm', {}, 'shared'), 'creating',
            'available')

    def test_multiattach_attachments_being_made_are_left(self):
        # Without coordination, Cinder names no host for them: they may
        # be another host's.
        volume = self.multiattach_volume()
        leaked = self.killed_while_cinder_attaches(volume)
        with mock.patch.object(rules.LOG, 'warning') as warn:
            self.assertEqual([], self.readers.repair_record(self.api, volume))
        self.assertIn(volume.id, str(warn.call_args))
        self.assertEqual([leaked], list(self.cinder.attachments))
        self.assertEqual([], self.readers.recorded_volumes())

    def test_with_coordination_what_a_dead_reader_was_making_goes_at_once(
            self):
        # Every live attacher claims what it makes: one made since the
        # dead reader began that nobody claims is its, however young.
        volume = self.multiattach_volume()
        self.readers.settings.membership = base.Members()
        before = self.api.attachment_create(volume.id, {'host': 'h2'}, 'ro')
        base.made_ago(self.cinder, before['id'], rules.UNANNOUNCED_AGE - 5)
        leaked = self.killed_while_cinder_attaches(volume)
        theirs = self.api.attachment_create(volume.id, {'host': 'h3'}, 'ro')
        self.readers.settings.membership.others_claims = [
            membership.Claim('0:7:7', 0.0, theirs['id'])]
        self.assertEqual([leaked],
                         self.readers.repair_record(self.api, volume))
        self.assertEqual({before['id'], theirs['id']},
                         set(self.cinder.attachments))
        self.assertEqual([], self.readers.recorded_volumes())

    def test_a_dead_readers_attachment_is_told_once_live_claims_move_on(
            self):
        # A reader refused because of it claims what its try may make;
        # its next try claims only what comes after: then it is told.
        volume = self.multiattach_volume()
        members = self.readers.settings.membership = base.Members()
        leaked = self.killed_while_cinder_attaches(volume)
        refused = membership.Claim('0:8:8', time.time())
        members.others_claims = [refused]

        def it_tries_again(seconds):
            self.clock.sleep(seconds)
            if self.clock.now - 1000 > 3:
                refused.since = time.time() + rules.CLOCK_SKEW + 1
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             it_tries_again))
        self.assertEqual([leaked],
                         self.readers.repair_record(self.api, volume))
        self.assertGreater(self.clock.now - 1000, 3)

    def test_a_dead_readers_attachment_is_left_while_cinder_makes_it(self):
        # Deleting a reservation Cinder is still working on would leave
        # the volume 'reserved' for good: the repair waits for it.
        volume = self.multiattach_volume()
        self.readers.settings.membership = base.Members()
        leaked = self.killed_while_cinder_attaches(volume)
        self.cinder.attachments[leaked]['status'] = 'reserved'

        def cinder_finishes(seconds):
            self.clock.sleep(seconds)
            if self.clock.now - 1000 > 2:
                self.cinder.attachments[leaked]['status'] = 'attaching'
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             cinder_finishes))
        self.assertEqual([leaked],
                         self.readers.repair_record(self.api, volume))
        self.assertGreater(self.clock.now - 1000, 2)

    def test_multiattach_attachment_abandoned_long_ago_is_detached(self):
        volume = self.multiattach_volume()
        leaked = self.killed_while_cinder_attaches(volume)
        base.made_ago(self.cinder, leaked, 601)
        self.assertEqual([leaked],
                         self.readers.repair_record(self.api, volume))
        self.assertNothingLeft(volumes=2)

    def test_userspace_attachment_is_joined_with_a_connection_of_its_own(
            self):
        # RBD in userspace: another worker joins the Cinder attachment
        # but needs its own librbd connection (a file object of its own).
        self.cinder.transport = 'rbd'
        owner = self.readers.join_read(self.api, self.volume)
        with open(self.record_path) as f:
            self.assertEqual({'userspace': True},
                             json.load(f)['device_info'])
        joiner = host_reads.HostReads(self.settings()).join_read(
            self.api, self.volume)
        self.assertEqual(owner.id, joiner.id)
        self.assertEqual(2, len(self.brick.handles))
        self.assertIsNot(owner.device_path, joiner.device_path)
        owner.close()  # the joiner still reads: only its connection goes
        self.assertEqual([joiner.device_path], self.brick.handles)
        self.assertEqual(1, len(self.cinder.attachments))
        joiner.close()
        self.assertFalse(os.path.exists(self.record_path))
        self.assertNothingLeft(volumes=1)

    def test_userspace_joiner_that_cannot_connect_is_not_recorded(self):
        self.cinder.transport = 'rbd'
        owner = self.readers.join_read(self.api, self.volume)
        self.brick.fail('connect_volume', RuntimeError('timed out'))
        with mock.patch.object(rbd, 'monitor_reachable', return_value=False):
            self.assertRaisesRegex(exceptions.BackendException,
                                   'no monitor Cinder names',
                                   self.readers.join_read, self.api,
                                   self.volume)
        with open(self.record_path) as f:
            self.assertEqual(1, len(json.load(f)['holders']))
        owner.close()
        self.assertNothingLeft(volumes=1)

    def test_inspect_says_why_a_record_is_stale(self):
        handle = self.readers.join_read(self.api, self.volume)
        self.assertEqual([self.volume.id], self.readers.recorded_volumes())
        record, reason = self.readers.inspect_record(self.api, self.volume.id)
        self.assertEqual(handle.id, record['attachment'])
        self.assertIsNone(reason)
        self.rewrite(boot='another-boot')
        self.assertIn('before this host last booted',
                      self.readers.inspect_record(self.api, self.volume.id)[1])
        self.rewrite(boot=records.boot_id(), holders=[DEAD])
        self.assertIn(DEAD,
                      self.readers.inspect_record(self.api, self.volume.id)[1])
        self.assertEqual(1, len(self.cinder.attachments))  # read-only

    def test_repair_leaves_live_records_and_undoes_stale_ones(self):
        self.assertIsNone(self.readers.repair_record(self.api, self.volume))
        handle = self.readers.join_read(self.api, self.volume)
        self.assertIsNone(self.readers.repair_record(self.api, self.volume))
        self.assertEqual(1, len(self.cinder.attachments))
        self.rewrite(holders=[DEAD])
        self.assertEqual([handle.id],
                         self.readers.repair_record(self.api, self.volume))
        self.assertEqual([], self.readers.recorded_volumes())
        handle.close()  # its attachment is gone already: only logs
        self.assertNothingLeft(volumes=1)

    def test_no_lock_directory_no_records(self):
        self.readers.settings.locks.lock_path = self.tmp + '/none'
        self.assertEqual([], self.readers.recorded_volumes())

    def test_a_record_an_earlier_release_wrote_is_read_and_replaced(self):
        handle = self.readers.join_read(self.api, self.volume)
        legacy = os.path.join(self.readers.settings.lock_path,
                              host_reads.LEGACY_PREFIX + self.volume.id +
                              '.json')
        os.rename(self.record_path, legacy)
        self.assertEqual([self.volume.id], self.readers.recorded_volumes())
        self.assertEqual(handle.id,
                         self.readers.recorded_attachment(self.volume.id))
        handle.close()  # the last reader: detaches, forgets the record
        self.assertFalse(os.path.exists(legacy))
        self.assertNothingLeft(volumes=1)
