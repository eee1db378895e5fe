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

"""Read attachments kept warm between downloads, released on demand."""

import json
import os
import time
from unittest import mock

import fixtures
from glance_store import exceptions

from cinder_store import auth
from cinder_store import findings
from cinder_store import records
from cinder_store.tests.unit import base
from cinder_store import warm_reads

DATA = b'warm image bytes' * 4096


class TestWarmReads(base.StoreTestCase):

    def setUp(self):
        super(TestWarmReads, self).setUp()
        # Each test looks after the warm attachments itself
        self.useFixture(fixtures.MockPatchObject(warm_reads.Keeper, 'start'))
        self.store = self.make_store(
            cinder_store_lock_path=self.tmp + '/locks',
            cinder_store_warm_read_idle=300,
            cinder_store_warm_reads_max=2)
        self.loc = self.location(self.add(DATA)[0].split('/')[-1])
        self.volume_id = self.loc.store_location.volume_id

    def read(self, loc=None):
        it, _length = self.store.get(loc or self.loc)
        return b''.join(it)

    def record(self, volume_id=None):
        path = os.path.join(self.tmp, 'locks', 'cinder_store-shared-read-%s'
                            '.json' % (volume_id or self.volume_id))
        with open(path) as f:
            return json.load(f)

    def rewrite(self, volume_id=None, **changes):
        base.rewrite_record(os.path.join(
            self.tmp, 'locks', 'cinder_store-shared-read-%s.json'
            % (volume_id or self.volume_id)), **changes)

    def test_the_last_reader_leaves_the_attachment_warm(self):
        self.assertEqual(DATA, self.read())
        record = self.record()
        self.assertEqual([], record['holders'])
        self.assertGreater(record['warm_until'], time.time() + 250)
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertEqual([], self.brick.handles)  # no descriptor held

    def test_not_kept_on_an_exclusive_volume_other_hosts_read(self):
        members = self.store._settings.membership = base.Members()
        self.useFixture(fixtures.MockPatchObject(
            members, 'alive_hosts', return_value={members.host_name, 'h2'}))
        self.assertEqual(DATA, self.read())
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual(set(), self.brick.connected)

    def test_a_warm_read_makes_no_cinder_call(self):
        self.read()
        self.cinder.calls.clear()
        self.assertEqual(DATA, self.read())
        self.assertEqual([], self.cinder.calls)
        self.assertIn('warm_until', self.record())

    def test_a_reader_joining_a_warm_attachment_holds_it(self):
        it, _ = self.store.get(self.loc)  # nothing read yet: it holds
        self.read()
        it2, _ = self.store.get(self.loc)
        self.assertNotIn('warm_until', self.record())
        self.assertEqual([records.process_id()] * 1,
                         sorted(set(self.record()['holders'])))
        it.close()
        it2.close()
        self.assertIn('warm_until', self.record())

    def test_the_record_holds_no_secret(self):
        self.cinder.transport = 'rbd'
        loc = self.location(self.add(DATA, image_id='img-2')[0]
                            .split('/')[-1])
        self.read(loc)
        record = self.record(loc.store_location.volume_id)
        self.assertNotIn('s3cr3t', json.dumps(record))
        self.assertEqual('cinder', record['connection']['data'][
            'auth_username'])
        self.assertEqual({'userspace': True}, record['device_info'])

    def test_a_delete_here_releases_it_with_no_refusal(self):
        self.read()
        self.cinder.calls.clear()
        self.store.delete(self.loc)
        self.assertEqual(1, self.cinder.calls.count('volumes.delete'))
        self.assertNothingLeft()

    def test_expired_ones_go_at_the_next_look(self):
        self.read()
        self.rewrite(warm_until=time.time() - 1)
        released = self.store.keeper.look_after()
        self.assertEqual([self.volume_id], list(released))
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual(set(), self.brick.connected)

    def test_beyond_the_limit_the_least_recently_read_goes(self):
        others = [self.location(self.add(DATA, image_id='img-%d' % n)[0]
                                .split('/')[-1]) for n in (2, 3)]
        for n, loc in enumerate([self.loc] + others):
            self.read(loc)
            self.rewrite(loc.store_location.volume_id, last_read=1000 + n)
        released = self.store.keeper.look_after()
        self.assertEqual([self.volume_id], list(released))
        self.assertEqual(2, len(self.cinder.attachments))

    def test_one_another_host_wants_goes_at_the_next_look(self):
        self.read()
        self.store._settings.membership = base.Members(
            wanted=[self.volume_id])
        self.assertEqual([self.volume_id],
                         list(self.store.keeper.look_after()))
        self.assertEqual({}, self.cinder.attachments)

    def test_with_nothing_warm_the_coordination_service_is_not_asked(self):
        members = self.store._settings.membership = base.Members()
        self.useFixture(fixtures.MockPatchObject(members, 'wanted'))
        self.assertEqual({}, self.store.keeper.look_after())
        members.wanted.assert_not_called()
        self.read()
        self.store.keeper.look_after()
        members.wanted.assert_called_once_with([self.volume_id])

    def test_a_look_never_waits_for_a_reader_joining(self):
        other = self.location(self.add(DATA, image_id='img-2')[0]
                              .split('/')[-1])
        self.read()
        self.read(other)
        self.store._settings.membership = base.Members(
            wanted=[self.volume_id, other.store_location.volume_id])
        with self.store._settings.locks.lock_reads(self.volume_id):
            released = self.store.keeper.look_after()
        self.assertEqual([other.store_location.volume_id], list(released))
        # Looked at again once the reader is through
        self.assertEqual([self.volume_id],
                         list(self.store.keeper.look_after()))

    def test_a_held_one_is_never_released_by_a_look(self):
        it, _ = self.store.get(self.loc)
        self.store._settings.membership = base.Members(
            wanted=[self.volume_id])
        self.assertEqual({}, self.store.keeper.look_after())
        self.assertEqual(DATA, b''.join(it))

    def test_a_stale_one_is_found_when_confirmed_with_cinder(self):
        self.read()
        attachment_id = self.record()['attachment']
        self.cinder.attachments_api.delete(attachment_id)  # by hand
        self.rewrite(verified=0)
        self.store.keeper.look_after()
        self.assertFalse(os.path.exists(os.path.join(
            self.tmp, 'locks',
            'cinder_store-shared-read-%s.json' % self.volume_id)))

    def test_a_delete_asks_other_hosts_to_let_go(self):
        members = self.store._settings.membership = base.Members()
        volume = self.cinder.volumes[self.volume_id]
        volume.attachments.append({'attachment_id': 'theirs',
                                   'host_name': 'glance-2'})
        volume.status = 'in-use'

        def let_go(seconds):
            # glance-2's keeper sees the announcement
            if ('releasing', self.volume_id) in members.said:
                volume.attachments = []
                volume.status = 'available'
            self.clock.sleep(seconds)
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             let_go))
        self.store.delete(self.loc)
        self.assertEqual([('releasing', self.volume_id),
                          ('released', self.volume_id)], members.said)
        self.assertNotIn(self.volume_id, self.cinder.volumes)

    def test_a_delete_held_elsewhere_is_refused_after_the_wait(self):
        self.store._settings.membership = base.Members()
        volume = self.cinder.volumes[self.volume_id]
        volume.attachments.append({'attachment_id': 'theirs',
                                   'host_name': 'glance-2'})
        volume.status = 'in-use'
        self.assertRaises(exceptions.InUseByStore, self.store.delete,
                          self.loc)
        self.assertGreaterEqual(sum(self.clock.sleeps), 10)
        self.assertIn(self.volume_id, self.cinder.volumes)

    def test_the_check_lists_warm_ones_and_drains_them(self):
        self.read()
        (found,) = [f for f in findings.check_backend(self.maintenance)
                    if f.topic == 'warm reads']
        self.assertIn(self.volume_id, found.message)
        (shared,) = [f for f in findings.check_backend(self.maintenance)
                     if f.topic == 'shared reads']
        self.assertEqual(findings.OK, shared.status)
        self.assertIn('warm', shared.message)
        (drained,) = [f for f in findings.check_backend(self.maintenance,
                                                        drain=True)
                      if f.topic == 'warm reads']
        self.assertEqual(findings.FIXED, drained.status)
        self.assertEqual({}, self.cinder.attachments)

    def test_without_service_credentials_nothing_is_kept(self):
        with mock.patch.object(auth.Credentials, 'has_service_credentials',
                               new_callable=mock.PropertyMock,
                               return_value=False):
            store = self.make_store(
                cinder_store_lock_path=self.tmp + '/locks2',
                cinder_store_warm_read_idle=300)
        self.assertIsNone(store.keeper)
        self.assertEqual(0, store._settings.warm_idle)
