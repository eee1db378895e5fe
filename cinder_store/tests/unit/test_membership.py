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


import time
from unittest import mock

from tooz import coordination
from tooz.drivers import file as file_driver

from cinder_store import membership
from cinder_store import records
from cinder_store.tests.unit import base


class TestMembership(base.TestCase):
    """Through tooz's file driver: real groups, no service."""

    def setUp(self):
        super(TestMembership, self).setUp()
        self.url = 'file://%s/coordination' % self.tmp
        self.me = membership.Membership(self.url, grace=60,
                                        host_name='glance-1')
        self.addCleanup(self.me.stop)

    def other(self, host_name):
        """Another host's process, joined to the group."""
        other = coordination.get_coordinator(self.url,
                                             ('%s:7' % host_name).encode())
        other.start()
        self.addCleanup(other.stop)
        self.me.start()  # makes the group
        other.create_group(membership.HOST_GROUP_PREFIX +
                           host_name.encode()).get()
        other.join_group(membership.GROUP).get()
        return other

    def test_alive_hosts_are_the_members_hosts_and_this_one(self):
        self.other('glance-2')
        self.assertEqual({'glance-1', 'glance-2'}, self.me.alive_hosts())

    def test_a_host_is_lost_only_after_the_grace(self):
        other = self.other('glance-2')
        self.assertEqual(set(), self.me.lost(['glance-2']))
        other.leave_group(membership.GROUP).get()
        self.assertEqual(set(), self.me.lost(['glance-2']))
        self.clock.now += 59
        self.assertEqual(set(), self.me.lost(['glance-2']))
        self.assertEqual('absent for 59s', self.me.describe_host('glance-2'))
        self.clock.now += 1
        self.assertEqual({'glance-2'}, self.me.lost(['glance-2']))
        self.assertIn('lost', self.me.describe_host('glance-2'))

    def test_a_host_that_comes_back_starts_its_grace_again(self):
        other = self.other('glance-2')
        other.leave_group(membership.GROUP).get()
        self.me.lost(['glance-2'])
        self.clock.now += 50
        other.join_group(membership.GROUP).get()
        self.assertEqual(set(), self.me.lost(['glance-2']))
        other.leave_group(membership.GROUP).get()
        self.clock.now += 50
        self.assertEqual(set(), self.me.lost(['glance-2']))
        self.assertEqual('alive', self.me.describe_host('glance-1'))

    def test_every_lost_host_at_once(self):
        self.other('glance-2').leave_group(membership.GROUP).get()
        self.other('glance-3')
        self.assertEqual(set(), self.me.lost())
        self.clock.now += 60
        self.assertEqual({'glance-2'}, self.me.lost())

    def test_a_host_that_never_joined_is_never_lost(self):
        self.me.start()
        self.assertEqual(set(), self.me.lost(['cinder-volume-host']))
        self.clock.now += 1000
        self.assertEqual(set(), self.me.lost(['cinder-volume-host']))

    def test_this_host_is_never_lost(self):
        self.me.start()
        self.me.stop()
        self.clock.now += 1000
        self.assertEqual(set(), self.me.lost(['glance-1']))

    def test_nobody_is_lost_when_the_service_cannot_be_asked(self):
        self.other('glance-9').leave_group(membership.GROUP).get()
        self.me.lost(['glance-9'])
        self.clock.now += 1000
        with mock.patch.object(file_driver.FileDriver, 'get_members',
                               side_effect=coordination.ToozConnectionError(
                                   'refused')):
            self.assertEqual(set(), self.me.lost(['glance-9']))
        self.assertEqual({'glance-9'}, self.me.lost(['glance-9']))

    def test_a_process_whose_membership_expired_joins_again(self):
        self.me.start()
        # The service dropped it (what an expired heartbeat does)
        twin = coordination.get_coordinator(self.url, self.me.member_id)
        twin.start()
        self.addCleanup(twin.stop)
        twin.leave_group(membership.GROUP).get()
        self.assertNotIn(self.me.member_id,
                         twin.get_members(membership.GROUP).get())
        self.me.alive_hosts()
        self.assertIn(self.me.member_id,
                      twin.get_members(membership.GROUP).get())

    def test_member_ids_name_their_host(self):
        self.assertEqual('glance-2.example.org', membership.host_of(
            b'glance-2.example.org:4242'))
        self.assertEqual(b'glance-1:%d' % __import__('os').getpid(),
                         self.me.member_id)

    def test_one_membership_per_process_and_url(self):
        self.addCleanup(membership._members.clear)
        first = membership.for_url(self.url, 60)
        self.assertIs(first, membership.for_url(self.url, 30))
        self.assertIsNot(first, membership.for_url(self.url + '2', 60))

    def test_logs_name_the_service_without_its_secrets(self):
        url = 'redis://u:secret@cache:6379/x?password=secret'
        self.assertEqual('redis://cache:6379/x',
                         membership.url_without_secrets(url))

    def test_a_wait_is_seen_by_the_other_hosts_until_it_ends(self):
        holder = membership.Membership(self.url, 60, host_name='glance-2')
        self.addCleanup(holder.stop)
        self.assertEqual(set(), holder.others_waiting('vol-1'))
        with self.me.waiting_for('vol-1'):
            with self.me.waiting_for('vol-1'):  # a second reader here
                self.assertEqual({'glance-1'},
                                 holder.others_waiting('vol-1'))
            self.assertEqual({'glance-1'}, holder.others_waiting('vol-1'))
            # A host never waits on itself
            self.assertEqual(set(), self.me.others_waiting('vol-1'))
            self.assertEqual(set(), holder.others_waiting('vol-2'))
        self.assertEqual(set(), holder.others_waiting('vol-1'))

    def test_a_wait_the_service_cannot_hear_still_waits(self):
        self.me.start()
        with mock.patch.object(file_driver.FileDriver, 'join_group',
                               side_effect=coordination.ToozConnectionError(
                                   'refused')):
            with self.me.waiting_for('vol-1'):
                entered = True
        self.assertTrue(entered)
        with mock.patch.object(file_driver.FileDriver, 'get_members',
                               side_effect=coordination.ToozConnectionError(
                                   'refused')):
            self.assertEqual(set(), self.me.others_waiting('vol-1'))

    def test_a_claim_is_seen_everywhere_until_the_attach_ends(self):
        other = membership.Membership(self.url, 60, host_name='glance-2')
        self.addCleanup(other.stop)
        self.assertEqual([], other.live_claims('vol-1'))
        with self.me.attaching('vol-1') as claim:
            (seen,) = other.live_claims('vol-1')
            self.assertIsNone(seen.attachment)
            self.assertEqual(records.process_id(), seen.process)
            self.assertAlmostEqual(claim.since, seen.since, places=3)
            claim.name_attachment('att-1')
            self.assertEqual(['att-1'], [c.attachment
                                         for c in other.live_claims('vol-1')])
            # The caller's own claim is left out when it asks
            self.assertEqual([], self.me.live_claims('vol-1', excluding=claim))
            self.assertEqual([], other.live_claims('vol-2'))
        self.assertEqual([], other.live_claims('vol-1'))

    def test_each_thread_claims_its_own_attachment(self):
        other = membership.Membership(self.url, 60, host_name='glance-2')
        self.addCleanup(other.stop)
        with self.me.attaching('vol-1') as first:
            first.name_attachment('att-1')
            with self.me.attaching('vol-1') as second:
                self.assertEqual(['att-1', None], [
                    c.attachment for c in other.live_claims('vol-1')])
                second.name_attachment('att-2')
            self.assertEqual(['att-1'], [c.attachment
                                         for c in other.live_claims('vol-1')])

    def test_a_claim_covers_what_the_request_in_flight_makes(self):
        with self.me.attaching('vol-1') as claim:
            first = claim.since
            with mock.patch('time.time', return_value=first + 30):
                claim.sending()
            (seen,) = self.me.live_claims('vol-1')
            self.assertEqual(first + 30, seen.since)
            claim.refused()
            (seen,) = self.me.live_claims('vol-1')
            self.assertIsNone(seen.since)

    def claim_of(self, host_name, process):
        """Another process's claim on vol-1, with no heartbeat of its own."""
        other = coordination.get_coordinator(self.url, (
            '%s:%s' % (host_name, process.split(':')[1])).encode())
        other.start()
        self.addCleanup(other.stop)
        self.me.start()
        group = membership.ATTACHING_PREFIX + b'vol-1'
        other.create_group(group).get()
        other.join_group(group, {
            'claims': [membership.Claim(process, 5.0).as_dict()]}).get()

    def test_a_dead_processs_claim_here_never_counts(self):
        self.claim_of('glance-1', base.DEAD)
        self.assertEqual([], self.me.live_claims('vol-1'))

    def test_another_hosts_claim_counts_until_its_membership_goes(self):
        # Its process cannot be seen from here
        self.claim_of('glance-2', base.DEAD)
        self.assertEqual([base.DEAD],
                         [c.process for c in self.me.live_claims('vol-1')])

    def test_a_claim_without_details_covers_everything(self):
        # A cinder_store from before claims announces with no capabilities
        other = self.other('glance-2')
        group = membership.ATTACHING_PREFIX + b'vol-1'
        other.create_group(group).get()
        other.join_group(group).get()
        (seen,) = self.me.live_claims('vol-1')
        self.assertEqual((None, 0.0), (seen.attachment, seen.since))

    def test_claims_are_unknown_on_doubt(self):
        self.me.start()
        with mock.patch.object(file_driver.FileDriver, 'get_members',
                               side_effect=coordination.ToozConnectionError(
                                   'refused')):
            self.assertIsNone(self.me.live_claims('vol-1'))

    def test_alone_knows_no_other_host(self):
        alone = membership.Alone('glance-1')
        self.assertFalse(alone.coordinated)
        self.assertEqual({'glance-1'}, alone.alive_hosts())
        self.assertEqual(set(), alone.lost(['glance-2']))
        self.assertEqual(set(), alone.others_waiting('vol-1'))
        with alone.waiting_for('vol-1'), alone.attaching('vol-1') as claim:
            claim.name_attachment('att-1')
        self.assertIsNone(alone.live_claims('vol-1'))
        self.assertIsInstance(membership.for_url(None, 60), membership.Alone)


class TestWarmAnnouncements(base.TestCase):
    """What the keepers of warm attachments learn from the group."""

    def setUp(self):
        super(TestWarmAnnouncements, self).setUp()
        self.url = 'file://%s/coordination' % self.tmp
        self.me = membership.Membership(self.url, grace=60,
                                        host_name='glance-1')
        self.addCleanup(self.me.stop)

    def announce(self, prefix, volume_id, host_name='glance-2'):
        other = coordination.get_coordinator(self.url,
                                             ('%s:7' % host_name).encode())
        other.start()
        self.addCleanup(other.stop)
        group = prefix + volume_id.encode()
        other.create_group(group).get()
        other.join_group(group).get()
        return other, group

    def test_volumes_waited_for_or_deleted_elsewhere_are_wanted(self):
        self.announce(membership.WAITING_PREFIX, 'vol-1')
        self.announce(membership.RELEASING_PREFIX, 'vol-2', 'glance-3')
        self.assertEqual({'vol-1', 'vol-2'},
                         self.me.wanted(['vol-1', 'vol-2', 'vol-3']))

    def test_an_empty_announcement_wants_nothing_and_is_removed(self):
        other, group = self.announce(membership.RELEASING_PREFIX, 'vol-1')
        other.leave_group(group).get()  # its announcer died inside
        self.assertEqual(set(), self.me.wanted(['vol-1']))
        self.assertEqual([group], self.me.remove_empty_announcements())
        self.assertNotIn(group, self.me._coordinator.get_groups().get())

    def test_trust_needs_a_recent_look_without_a_lapse(self):
        self.assertFalse(self.me.trusts(time.time()))  # never looked
        self.me.wanted([])
        verified = time.time()
        self.assertTrue(self.me.trusts(verified))
        self.clock.sleep(membership.LOOK_GAP + 1)  # frozen, or cut off
        self.assertFalse(self.me.trusts(verified))
        self.me.wanted([])  # looks again: from now on only what is new
        self.assertFalse(self.me.trusts(verified))
        self.assertTrue(self.me.trusts(time.time()))

    def test_alone_trusts_and_wants_nothing(self):
        alone = membership.Alone('glance-1')
        self.assertTrue(alone.trusts(0))
        self.assertEqual(set(), alone.wanted(['vol-1']))
