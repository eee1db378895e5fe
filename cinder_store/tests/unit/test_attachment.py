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
import logging
from unittest import mock

from cinderclient import exceptions as cinder_exc
import ddt
import fixtures
from glance_store import exceptions

from cinder_store import attachment
from cinder_store import membership
from cinder_store.recovery import rules
from cinder_store.tests.unit import base


class Boom(Exception):
    pass


@ddt.ddt
class TestAttachment(base.CinderTestCase):

    def setUp(self):
        super(TestAttachment, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)

    def attach(self, writable=True):
        return attachment.Attachment(self.api, self.settings(), self.volume,
                                     writable)

    def test_open_close_order(self):
        att = self.attach().open()
        att.device.pwrite(b'hello', 0)
        att.close()
        self.assertEqual(['attachments.create', 'attachments.complete',
                          'attachments.delete'], self.cinder.calls)
        self.assertEqual(['factory', 'connect_volume', 'disconnect_volume'],
                         self.brick.calls)
        self.assertEqual([True], self.brick.forced)
        self.assertNothingLeft(volumes=1)

    def test_connection_secrets_never_logged(self):
        logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        with self.attach():
            pass
        self.assertIn('auth_password', logs.output)
        self.assertNotIn('s3cr3t', logs.output)

    def test_connector_passed_with_mountpoint_and_mode(self):
        with self.attach(writable=False):
            (att,) = self.cinder.attachments.values()
            self.assertEqual('ro', att['mode'])
            self.assertEqual('glance_store', att['connector']['mountpoint'])
            self.assertEqual('testhost', att['connector']['host'])

    def test_connector_properties_computed_once_per_process(self):
        for _ in range(3):
            with self.attach():
                pass
        self.assertEqual(1, self.brick.property_calls)

    @ddt.data(
        ('cinder', 'attachments.create', 0),
        ('brick', 'factory', 0),
        ('brick', 'connect_volume', 0),
        ('cinder', 'attachments.complete', 1),
    )
    @ddt.unpack
    def test_failure_at_each_step_unwinds_what_succeeded(
            self, who, step, disconnects):
        target = self.cinder if who == 'cinder' else self.brick
        target.fail(step, Boom(step))
        error = self.assertRaises(Boom, self.attach().open)
        self.assertEqual(step, str(error))
        self.assertEqual(disconnects,
                         self.brick.calls.count('disconnect_volume'))
        self.assertNothingLeft(volumes=1)

    def test_device_open_failure_unwinds(self):
        with mock.patch('os.open', side_effect=OSError(errno.EACCES, 'no')):
            self.assertRaises(OSError, self.attach().open)
        self.assertEqual(1, self.brick.calls.count('disconnect_volume'))
        self.assertNothingLeft(volumes=1)

    def test_cleanup_error_is_noted_not_masking(self):
        self.cinder.fail('attachments.complete', Boom('original'))
        self.cinder.fail('attachments.delete',
                         cinder_exc.ClientException(500, 'delete broke'),
                         times=4)
        error = self.assertRaises(Boom, self.attach().open)
        self.assertEqual('original', str(error))
        self.assertIn('attachment delete', ' '.join(error.__notes__))

    def test_body_failure_unwinds_without_fsync(self):
        with mock.patch('os.fsync') as fsync:
            with self.assertRaisesRegex(Boom, 'in body'):
                with self.attach():
                    raise Boom('in body')
        fsync.assert_not_called()
        self.assertNothingLeft(volumes=1)

    def test_write_close_fsyncs_before_disconnect(self):
        order = []
        with mock.patch('os.fsync', side_effect=lambda fd: order.append(
                'fsync')):
            self.brick.hit = (lambda name, orig=self.brick.hit:
                              (order.append(name), orig(name)))
            with self.attach():
                pass
        self.assertLess(order.index('fsync'),
                        order.index('disconnect_volume'))

    def test_read_close_tolerates_detach_error_and_keeps_naming_it(self):
        self.brick.fail('disconnect_volume', Boom('disconnect'))
        att = self.attach(writable=False).open()
        with mock.patch.object(attachment.LOG, 'error') as log:
            self.assertFalse(att.close())
        self.assertTrue(log.called)
        self.assertTrue(att.stranded)
        # Cinder's attachment still names the host connection: a later
        # detach of it (record, delete, check) disconnects and deletes.
        self.assertEqual([att.id], list(self.cinder.attachments))
        attachment.detach_attachment(self.api, self.settings(),
                                     self.volume, att.id)
        self.assertNothingLeft(volumes=1)

    def test_write_close_raises_detach_error_and_keeps_naming_it(self):
        self.brick.fail('disconnect_volume', Boom('disconnect'))
        att = self.attach().open()
        self.assertRaisesRegex(Boom, 'disconnect', att.close)
        self.assertTrue(att.stranded)
        self.assertEqual([att.id], list(self.cinder.attachments))

    def test_failed_unwind_of_a_connected_attach_keeps_naming_it(self):
        self.cinder.fail('attachments.complete', Boom('complete'))
        self.brick.fail('disconnect_volume', Boom('disconnect'))
        att = self.attach()
        error = self.assertRaises(Boom, att.open)
        self.assertEqual('complete', str(error))
        self.assertIn('detach', ' '.join(error.__notes__))
        self.assertTrue(att.stranded)
        self.assertEqual([att.id], list(self.cinder.attachments))

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
            detach_calls(lambda: attachment.detach_attachment(
                self.api, self.settings(), self.volume, adopted.id,
                adopted.device_info)))
        self.assertNothingLeft(volumes=1)

    def test_encrypted_volume_refused_before_connect(self):
        self.cinder.volumes[self.volume.id].encrypted = True
        self.assertRaisesRegex(exceptions.BackendException, 'encrypted',
                               self.attach().open)
        self.assertNotIn('connect_volume', self.brick.calls)
        self.assertNothingLeft(volumes=1)

    def test_reservation_left_by_failed_initialize_is_released(self):
        self.cinder.fail('attachments.create.initialize',
                         cinder_exc.ClientException(500, 'initialize failed'))
        self.assertRaises(exceptions.BackendException, self.attach().open)
        self.assertNothingLeft(volumes=1)

    def test_reserve_race_is_retried(self):
        self.cinder.fail('attachments.create', cinder_exc.BadRequest(
            400, 'Volume status must be available or in-use or downloading '
                 'to reserve, but the current status is attaching.'),
            times=2)
        with self.attach():
            pass
        self.assertEqual(3, self.cinder.calls.count('attachments.create'))
        self.assertNothingLeft(volumes=1)

    def test_reserve_race_budget_is_bounded(self):
        self.cinder.fail('attachments.create', cinder_exc.BadRequest(
            400, 'status must be available or downloading to reserve'),
            times=-1)
        self.assertRaises(exceptions.BackendException, self.attach().open)
        # The client's three attempts, and three more: no other host holds
        # the volume, so its holder may have just detached.
        self.assertEqual(6, self.cinder.calls.count('attachments.create'))
        self.assertNothingLeft(volumes=1)


class TestSharedTargets(base.CinderTestCase):

    def test_guard_taken_only_with_a_service_uuid(self):
        vol = type('V', (), {'shared_targets': True, 'service_uuid': None})
        with attachment._guard(vol):
            pass  # no lock keyed on None
        vol.service_uuid = 'svc-1'
        with mock.patch.object(attachment.brick_utils,
                               'guard_connection') as guard:
            attachment._guard(vol)
        guard.assert_called_once_with({'shared_targets': True,
                                       'service_uuid': 'svc-1'})


class TestMultiattach(base.CinderTestCase):

    def setUp(self):
        super(TestMultiattach, self).setUp()
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


class TestLeftovers(base.CinderTestCase):

    def test_reclaim_detaches_the_attachments_named_then_deletes(self):
        api = self.bound()
        vol = self.available_volume(api)
        attachment.Attachment(api, self.settings(), vol, False).open()
        fresh = api.get_volume(vol.id)
        fresh.attachments.append({'attachment_id': 'y', 'host_name': 'b'})
        here = rules.attachments_here(fresh)
        self.assertNotIn('y', here)
        self.assertEqual(1, attachment.reclaim_volume(
            api, self.settings(), fresh, here))
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual({}, self.cinder.volumes)
        self.assertEqual(1, self.brick.calls.count('disconnect_volume'))

    def test_reclaim_whose_detach_fails_keeps_the_volume(self):
        api = self.bound()
        vol = self.available_volume(api)
        att = attachment.Attachment(api, self.settings(), vol, True).open()
        att.close_keeping_attachment()
        self.brick.fail('disconnect_volume', OSError('device busy'))
        self.assertRaises(OSError, attachment.reclaim_volume, api,
                          self.settings(), vol)
        self.assertEqual([att.id], list(self.cinder.attachments))
        self.assertEqual([vol.id], list(self.cinder.volumes))
        attachment.reclaim_volume(api, self.settings(), vol)
        self.assertNothingLeft()


@ddt.ddt
class TestAnotherHostHolds(base.CinderTestCase):
    """A volume that is not multiattach, read on another Glance host."""

    def setUp(self):
        super(TestAnotherHostHolds, self).setUp()
        self.api = self.bound(attach_attempts=2)
        self.volume = self.available_volume(self.api)
        theirs = self.api.attachment_create(self.volume.id,
                                            {'host': 'otherhost'}, 'ro')
        self.api.attachment_complete(theirs['id'])
        self.theirs = theirs['id']

    def test_a_reader_waits_its_turn(self):
        def sleep_then_they_leave(seconds):
            self.clock.sleep(seconds)
            if (self.clock.now > 1020 and
                    self.theirs in self.cinder.attachments):
                self.api.attachment_delete(self.theirs)
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             sleep_then_they_leave))
        att = attachment.Attachment(self.api, self.settings(), self.volume,
                                    False).open()
        self.assertGreater(self.clock.now, 1020)
        att.close()
        self.assertNothingLeft(volumes=1)

    def they_leave_as_cinder_refuses(self, after_looks=0):
        """Their detach lands between Cinder's refusal and our look.

        After ``after_looks`` looks that still see them.
        """
        real = rules.attachments_elsewhere
        looks = []

        def look(volume):
            looks.append(volume)
            if (len(looks) > after_looks and
                    self.theirs in self.cinder.attachments):
                self.api.attachment_delete(self.theirs)
                volume = self.api.get_volume(self.volume.id)
            return real(volume)
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_store.recovery.rules.attachments_elsewhere', look))
        return looks

    # (looks that still see them, looks in all): gone by the first look,
    # or gone while this reader waits its turn
    @ddt.data((0, 1), (2, 3))
    @ddt.unpack
    def test_a_holder_gone_as_cinder_refuses_is_no_error(self, seen, looked):
        looks = self.they_leave_as_cinder_refuses(after_looks=seen)
        att = attachment.Attachment(self.api, self.settings(), self.volume,
                                    False).open()
        self.assertEqual(looked, len(looks))
        att.close()
        self.assertNothingLeft(volumes=1)

    def test_a_reader_gives_up_after_the_wait_naming_the_holder(self):
        settings = self.settings()
        settings.exclusive_wait = 60
        error = self.assertRaises(
            exceptions.BackendException,
            attachment.Attachment(self.api, settings, self.volume,
                                  False).open)
        self.assertIn('attached on host(s) otherhost (attachment %s)'
                      % self.theirs, str(error))
        self.assertIn('multiattach volume type', str(error))
        self.assertLessEqual(self.clock.now - 1000, 60 + 30)
        # Nothing of ours is left; theirs is untouched.
        self.assertEqual([self.theirs], list(self.cinder.attachments))
        self.assertEqual(set(), self.brick.connected)

    def test_without_a_wait_the_refusal_comes_back_at_once(self):
        settings = self.settings()
        settings.exclusive_wait = 0
        self.assertRaisesRegex(exceptions.BackendException, 'otherhost',
                               attachment.Attachment(self.api, settings,
                                                     self.volume,
                                                     False).open)
        self.assertEqual([self.theirs], list(self.cinder.attachments))

    def lost_after(self, seconds):
        """Settings whose membership says otherhost is lost after that."""
        settings = self.settings()
        start = self.clock.now
        settings.membership = base.Members(lost={'otherhost'})
        settings.membership.is_lost = lambda name: (
            self.clock.now - start >= seconds)
        return settings

    def test_a_lost_holder_is_released_and_the_reader_goes_on(self):
        att = attachment.Attachment(self.api, self.lost_after(0),
                                    self.volume, False).open()
        # Deleted in Cinder only: the lost host's device went with it.
        self.assertNotIn(self.theirs, self.cinder.attachments)
        self.assertEqual([att.id], list(self.cinder.attachments))
        self.assertEqual(1, self.brick.calls.count('connect_volume'))
        self.assertEqual(0, self.brick.calls.count('disconnect_volume'))
        att.close()
        self.assertNothingLeft(volumes=1)

    def test_a_holder_lost_while_the_reader_waits_is_released(self):
        settings = self.lost_after(90)
        att = attachment.Attachment(self.api, settings, self.volume,
                                    False).open()
        self.assertGreaterEqual(self.clock.now - 1000, 90)
        self.assertNotIn(self.theirs, self.cinder.attachments)
        att.close()

    def test_a_live_holder_is_never_released(self):
        settings = self.lost_after(10 ** 6)
        settings.exclusive_wait = 30
        self.assertRaisesRegex(exceptions.BackendException, 'otherhost',
                               attachment.Attachment(self.api, settings,
                                                     self.volume,
                                                     False).open)
        self.assertEqual([self.theirs], list(self.cinder.attachments))


class TestFairTurns(base.CinderTestCase):

    def setUp(self):
        super(TestFairTurns, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)
        self.settings = self.settings()
        self.settings.membership = base.Members(waiting={'glance-2'})
        self.checks = []
        self.t0 = self.clock.now

    def held_until(self, seconds):
        def held():
            self.checks.append(self.clock.now)
            return self.clock.now - self.t0 < seconds
        return held

    def test_a_new_reader_waits_for_this_hosts_readers_to_finish(self):
        # Nobody takes the volume then: it goes on after the hand-over wait
        attachment.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(30))
        self.assertGreaterEqual(self.clock.now - self.t0, 30)
        self.assertLess(self.clock.now - self.t0,
                        30 + 2 + attachment.HANDOVER_WAIT + 2)

    def test_the_waiting_host_is_given_the_volume_first(self):
        def sleep_then_they_take_it(seconds):
            self.clock.sleep(seconds)
            if self.clock.now - self.t0 > 12 and not self.cinder.attachments:
                theirs = self.api.attachment_create(
                    self.volume.id, {'host': 'glance-2'}, 'ro')
                self.api.attachment_complete(theirs['id'])
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             sleep_then_they_take_it))
        attachment.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(10))
        # It returned as soon as they had it, not at the hand-over's end
        self.assertLess(self.clock.now - self.t0, 10 + 2 + 2)
        self.assertTrue(self.cinder.attachments)

    def test_the_wait_is_bounded(self):
        self.settings.exclusive_wait = 60
        attachment.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(10 ** 6))
        self.assertLess(self.clock.now - self.t0,
                        60 + 2 + attachment.HANDOVER_WAIT + 2)

    def test_nobody_waiting_means_no_wait(self):
        self.settings.membership = base.Members()
        attachment.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(30))
        self.assertEqual(self.t0, self.clock.now)

    def test_not_held_here_asks_nobody(self):
        membership = self.settings.membership = mock.Mock(
            wraps=base.Members(waiting={'glance-2'}))
        attachment.yield_turn(self.api, self.settings, self.volume,
                              lambda: False)
        membership.others_waiting.assert_not_called()
        self.assertEqual(self.t0, self.clock.now)

    def test_multiattach_volumes_and_no_coordination_never_wait(self):
        self.volume.multiattach = True
        attachment.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(30))
        self.assertEqual([], self.checks)
        self.volume.multiattach = False
        self.settings.membership = membership.Alone()
        attachment.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(30))
        self.assertEqual(self.t0, self.clock.now)

    def test_a_waiting_reader_tells_the_holder(self):
        theirs = self.api.attachment_create(self.volume.id,
                                            {'host': 'otherhost'}, 'ro')
        self.api.attachment_complete(theirs['id'])
        members = self.settings.membership = base.Members()

        def sleep_then_they_leave(seconds):
            self.clock.sleep(seconds)
            # Once the reader waits its turn (not in the client's retries)
            if (('waits', self.volume.id) in members.said and
                    theirs['id'] in self.cinder.attachments):
                self.api.attachment_delete(theirs['id'])
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             sleep_then_they_leave))
        att = attachment.Attachment(self.api, self.settings, self.volume,
                                    False).open()
        self.assertEqual([('attaching', self.volume.id),
                          ('waits', self.volume.id),
                          ('done', self.volume.id)], members.said)
        att.close()
