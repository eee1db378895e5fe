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

"""Reserving a volume others attach too: turns, fair between hosts."""

import datetime
from unittest import mock

from cinderclient import exceptions as cinder_exc
import ddt
import fixtures
from glance_store import exceptions
from oslo_utils import timeutils

from cinder_store import attachment
from cinder_store import contention
from cinder_store import membership
from cinder_store.recovery import rules
from cinder_store.tests.unit import base


class TestReserveRaces(base.CinderTestCase):
    """Readers of one multiattach image contend for Cinder's short window."""

    def setUp(self):
        super(TestReserveRaces, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)

    def attach(self, writable=True):
        return attachment.Attachment(self.api, self.settings(), self.volume,
                                     writable)

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


class TestDeadAttachers(base.CinderTestCase):
    """A reader refused because of an attachment its attacher left."""

    def setUp(self):
        super(TestDeadAttachers, self).setUp()
        self.cinder.multiattach_types.add('shared')
        self.cinder.types.add('shared')
        self.api = self.bound(attach_attempts=1)
        vol = self.api.create_volume(1, 'v', {}, 'shared')
        self.volume = self.api.wait_for_status(vol, 'creating', 'available')

    def dead_attacher(self, seconds_ago):
        """What a reader killed inside attachment_create leaves."""
        made = self.api.attachment_create(self.volume.id,
                                          {'host': 'somewhere'}, 'ro')
        base.made_ago(self.cinder, made['id'], seconds_ago)
        return made['id']

    def claim(self, attachment_id=None, since_made_of=None, offset=0.0):
        """A live claim naming ``attachment_id``, or none.

        Made ``offset`` seconds after Cinder made ``since_made_of``.
        """
        since = 0.0
        if since_made_of is not None:
            made = self.cinder.attachments[since_made_of]['attached_at']
            since = rules.epoch_of(made) + offset
        return membership.Claim('0:1:2', since, attachment_id)

    def test_a_reader_refused_by_an_unclaimed_attach_deletes_it(self):
        dead = self.dead_attacher(rules.UNANNOUNCED_AGE + 1)
        self.cinder.refuse_while_attaching = True
        settings = self.settings()
        settings.membership = base.Members()
        att = attachment.Attachment(self.api, settings, self.volume,
                                    False).open()
        self.assertNotIn(dead, self.cinder.attachments)
        self.assertIn(('attaching', self.volume.id),
                      settings.membership.said)
        att.close()
        self.assertNothingLeft(volumes=1)

    def test_a_reader_waits_for_a_young_unclaimed_attach_to_be_abandoned(self):
        # Another host's attacher died inside attachment_create: its
        # attachment is unclaimed, but only its age tells it from an
        # attacher that never claims (Cinder itself).
        dead = self.dead_attacher(1)
        self.cinder.refuse_while_attaching = True
        settings = self.settings()
        settings.membership = base.Members()
        started = self.clock.now
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_store.utils.sleep', self.aging(dead)))
        att = attachment.Attachment(self.api, settings, self.volume,
                                    False).open()
        self.assertNotIn(dead, self.cinder.attachments)
        waited = self.clock.now - started
        self.assertGreaterEqual(waited, rules.UNANNOUNCED_AGE - 1)
        self.assertLess(waited, rules.UNANNOUNCED_AGE + 10)
        att.close()

    def test_a_reader_waits_for_an_attach_a_live_process_claims(self):
        theirs = self.dead_attacher(1)
        self.cinder.refuse_while_attaching = True
        settings = self.settings()
        settings.membership = base.Members(claims=[self.claim(theirs)])

        def they_complete(seconds):
            self.clock.sleep(seconds)
            if (sum(self.clock.sleeps) > 3 and
                    self.cinder.attachments[theirs]['status'] ==
                    'attaching'):
                self.api.attachment_complete(theirs)
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             they_complete))
        att = attachment.Attachment(self.api, settings, self.volume,
                                    False).open()
        self.assertIn(theirs, self.cinder.attachments)
        att.close()

    def aging(self, attachment_id):
        """``utils.sleep`` that ages ``attachment_id`` as the clock goes."""
        def sleep(seconds):
            self.clock.sleep(seconds)
            if attachment_id in self.cinder.attachments:
                made = rules.epoch_of(
                    self.cinder.attachments[attachment_id]['attached_at'])
                base.made_ago(self.cinder, attachment_id,
                              timeutils.utcnow().timestamp() - made + seconds)
        return sleep

    def test_a_reader_refused_by_an_abandoned_one_deletes_it(self):
        old = self.dead_attacher(601)
        self.cinder.refuse_while_attaching = True
        att = attachment.Attachment(self.api, self.settings(), self.volume,
                                    False).open()
        self.assertNotIn(old, self.cinder.attachments)
        att.close()
        self.assertNothingLeft(volumes=1)

    def test_a_reader_refused_by_an_attach_in_progress_fails(self):
        young = self.dead_attacher(30)  # another host, attaching right now
        self.cinder.refuse_while_attaching = True
        self.assertRaisesRegex(
            exceptions.BackendException, 'to reserve',
            attachment.Attachment(self.api, self.settings(), self.volume,
                                  False).open)
        self.assertEqual([young], list(self.cinder.attachments))
        self.assertNotIn('attachments.delete', self.cinder.calls)

    def dead_reserver(self, seconds_ago):
        """What an attacher killed right after the backend failed leaves.

        Cinder keeps the reservation and the volume 'reserved'; on a
        multiattach volume a live attacher leaves it too (another host's
        reservation may be in progress), so only its age tells.
        """
        self.cinder.fail('attachments.create.initialize',
                         cinder_exc.ClientException(500, 'backend failed'))
        self.assertRaises(exceptions.BackendException,
                          attachment.Attachment(self.api, self.settings(),
                                                self.volume, False).open)
        vol = self.cinder.volumes[self.volume.id]
        vol.updated_at = (timeutils.utcnow() - datetime.timedelta(
            seconds=seconds_ago)).isoformat()
        (left,) = self.cinder.attachments
        return left

    def reserver_settings(self, seconds_ago):
        """Settings with a coordination group, and what dead_reserver left.

        Its reservation ages as the test's clock goes.
        """
        left = self.dead_reserver(seconds_ago)
        self.cinder.refuse_while_attaching = True
        settings = self.settings()
        settings.membership = base.Members()
        vol = self.cinder.volumes[self.volume.id]

        def sleep(seconds):
            self.clock.sleep(seconds)
            vol.updated_at = (timeutils.parse_isotime(vol.updated_at) -
                              datetime.timedelta(seconds=seconds)).isoformat()
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             sleep))
        return left, settings

    def test_an_unclaimed_old_reservation_fails_a_reader_at_once(self):
        # The backend failed its connection and its attacher is gone (no
        # live claim): only abandoned_after releases it, so waiting for
        # exclusive_wait could not help.
        left, settings = self.reserver_settings(rules.UNANNOUNCED_AGE + 5)
        started = self.clock.now
        self.assertRaisesRegex(
            exceptions.BackendException, 'to reserve',
            attachment.Attachment(self.api, settings, self.volume,
                                  False).open)
        self.assertLess(self.clock.now - started, 5)
        self.assertEqual([left], list(self.cinder.attachments))

    def test_an_unclaimed_young_reservation_is_waited_for_a_while(self):
        # Cinder may still be inside a dead attacher's attachment_create:
        # the reservation may become an attachment abandoned in seconds.
        left, settings = self.reserver_settings(1)
        started = self.clock.now
        self.assertRaisesRegex(
            exceptions.BackendException, 'to reserve',
            attachment.Attachment(self.api, settings, self.volume,
                                  False).open)
        waited = self.clock.now - started
        self.assertGreaterEqual(waited, rules.UNANNOUNCED_AGE - 2)
        self.assertLess(waited, rules.UNANNOUNCED_AGE + 10)

    def test_a_claimed_reservation_is_waited_for(self):
        left, settings = self.reserver_settings(rules.UNANNOUNCED_AGE + 5)
        settings.membership.others_claims = [self.claim()]
        started = self.clock.now
        self.assertRaises(exceptions.BackendException,
                          attachment.Attachment(self.api, settings,
                                                self.volume, False).open)
        self.assertGreaterEqual(self.clock.now - started,
                                settings.exclusive_wait)

    def test_a_reader_refused_by_an_abandoned_reservation_deletes_it(self):
        left = self.dead_reserver(601)
        att = attachment.Attachment(self.api, self.settings(), self.volume,
                                    False).open()
        self.assertNotIn(left, self.cinder.attachments)
        att.close()
        self.assertNothingLeft(volumes=1)


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
        contention.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(30))
        self.assertGreaterEqual(self.clock.now - self.t0, 30)
        self.assertLess(self.clock.now - self.t0,
                        30 + 2 + contention.HANDOVER_WAIT + 2)

    def test_the_waiting_host_is_given_the_volume_first(self):
        def sleep_then_they_take_it(seconds):
            self.clock.sleep(seconds)
            if self.clock.now - self.t0 > 12 and not self.cinder.attachments:
                theirs = self.api.attachment_create(
                    self.volume.id, {'host': 'glance-2'}, 'ro')
                self.api.attachment_complete(theirs['id'])
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             sleep_then_they_take_it))
        contention.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(10))
        # It returned as soon as they had it, not at the hand-over's end
        self.assertLess(self.clock.now - self.t0, 10 + 2 + 2)
        self.assertTrue(self.cinder.attachments)

    def test_the_wait_is_bounded(self):
        self.settings.exclusive_wait = 60
        contention.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(10 ** 6))
        self.assertLess(self.clock.now - self.t0,
                        60 + 2 + contention.HANDOVER_WAIT + 2)

    def test_nobody_waiting_means_no_wait(self):
        self.settings.membership = base.Members()
        contention.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(30))
        self.assertEqual(self.t0, self.clock.now)

    def test_not_held_here_asks_nobody(self):
        membership = self.settings.membership = mock.Mock(
            wraps=base.Members(waiting={'glance-2'}))
        contention.yield_turn(self.api, self.settings, self.volume,
                              lambda: False)
        membership.others_waiting.assert_not_called()
        self.assertEqual(self.t0, self.clock.now)

    def test_multiattach_volumes_and_no_coordination_never_wait(self):
        self.volume.multiattach = True
        contention.yield_turn(self.api, self.settings, self.volume,
                              self.held_until(30))
        self.assertEqual([], self.checks)
        self.volume.multiattach = False
        self.settings.membership = membership.Alone()
        contention.yield_turn(self.api, self.settings, self.volume,
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
