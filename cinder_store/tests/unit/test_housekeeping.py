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


import threading
from unittest import mock

import fixtures

from cinder_store import client
from cinder_store import connection
from cinder_store import housekeeping
from cinder_store import membership
from cinder_store import metadata
from cinder_store.tests.unit import base


class TestReleaseLostHosts(base.StoreTestCase):

    def setUp(self):
        super(TestReleaseLostHosts, self).setUp()
        self.api = self.maintenance.bound_cinder()
        self.maintenance.settings.membership = base.Members(lost={'glance-3'})
        self.sweeper = housekeeping.Housekeeping(
            self.maintenance.bound_cinder, self.maintenance.settings, None, 30,
            lambda: [])

    def volume(self, image_id, uploader=None, finished=True):
        said = {'glance_image_id': image_id}
        if uploader:
            said[metadata.UPLOAD_HOST] = uploader
        volume = self.api.wait_for_status(self.api.create_volume(
            1, 'image-' + image_id, said, None), 'creating', 'available')
        if finished:
            self.api.set_readonly(volume.id)
        return volume

    def held_by(self, host_name, volume):
        made = self.api.attachment_create(volume.id, {'host': host_name},
                                          'ro')
        self.api.attachment_complete(made['id'])
        return made['id']

    def test_a_sweep_releases_what_lost_hosts_held_and_only_that(self):
        read = self.volume('read')
        theirs = self.held_by('glance-3', read)
        alive = self.held_by('glance-2', self.volume('alive'))
        unfinished = self.volume('up', uploader='glance-3', finished=False)
        finished = self.volume('done', uploader='glance-3')
        running = self.volume('running', uploader='glance-2', finished=False)
        self.assertEqual({'glance-3'}, self.sweeper.release_lost_hosts())
        self.assertNotIn(theirs, self.cinder.attachments)
        self.assertIn(alive, self.cinder.attachments)
        self.assertNotIn(unfinished.id, self.cinder.volumes)
        for kept in (read, finished, running):
            self.assertIn(kept.id, self.cinder.volumes)
        # The lost host's devices went with it: nothing disconnected here.
        self.assertEqual(0, self.brick.calls.count('disconnect_volume'))
        # One question to the coordination service per sweep
        self.assertEqual([None], self.maintenance.settings.membership.asked)

    def test_unfinished_uploads_stuck_anywhere_are_reclaimed(self):
        # Killed inside the attach for writing: its attachment was never
        # completed; and one whose failed step left the volume in error.
        attaching = self.volume('a', uploader='glance-3', finished=False)
        self.api.attachment_create(attaching.id, {'host': 'glance-3'}, 'rw')
        failed = self.volume('e', uploader='glance-3', finished=False)
        self.cinder.volumes[failed.id].status = 'error'
        self.assertEqual({'glance-3'}, self.sweeper.release_lost_hosts())
        self.assertEqual({}, self.cinder.volumes)
        self.assertEqual({}, self.cinder.attachments)

    def test_volumes_are_listed_once_per_newly_lost_host(self):
        self.held_by('glance-3', self.volume('read'))
        lists = self.useFixture(fixtures.MockPatchObject(
            client.BoundCinder, 'volumes_of_type',
            side_effect=client.BoundCinder.volumes_of_type,
            autospec=True)).mock
        self.assertEqual({'glance-3'}, self.sweeper.release_lost_hosts())
        self.assertEqual(set(), self.sweeper.release_lost_hosts())
        self.assertEqual(1, lists.call_count)
        # Back, then lost again: swept again
        self.maintenance.settings.membership.lost_hosts = set()
        self.sweeper.release_lost_hosts()
        self.maintenance.settings.membership.lost_hosts = {'glance-3'}
        self.assertEqual({'glance-3'}, self.sweeper.release_lost_hosts())
        self.assertEqual(2, lists.call_count)

    def test_a_host_whose_release_failed_is_swept_again(self):
        volume = self.volume('read')
        theirs = self.held_by('glance-3', volume)
        with mock.patch.object(connection, 'detach_attachment',
                               side_effect=RuntimeError('cinder down')):
            self.sweeper.release_lost_hosts()
        self.assertIn(theirs, self.cinder.attachments)
        self.sweeper.release_lost_hosts()
        self.assertNotIn(theirs, self.cinder.attachments)

    def test_this_hosts_unfinished_uploads_are_never_swept(self):
        mine = self.volume('mine', uploader='testhost', finished=False)
        self.maintenance.settings.membership = base.Members(lost={'testhost'})
        self.sweeper.release_lost_hosts()
        self.assertIn(mine.id, self.cinder.volumes)

    def test_a_delete_releases_a_lost_hosts_read(self):
        volume = self.volume('img')
        self.held_by('glance-3', volume)
        self.store.delete(self.location(volume.id))
        self.assertEqual({}, self.cinder.volumes)
        self.assertNothingLeft()

    def test_a_delete_still_refuses_a_live_hosts_read(self):
        volume = self.volume('img')
        self.held_by('glance-2', volume)
        self.assertRaisesRegex(Exception, 'glance-2', self.store.delete,
                               self.location(volume.id))
        self.assertIn(volume.id, self.cinder.volumes)


class TestCoordinationOption(base.StoreTestCase):

    def test_without_a_url_nobody_is_ever_lost(self):
        self.assertFalse(self.maintenance.settings.membership.coordinated)
        self.assertIsNone(self.store.housekeeper)

    def test_with_a_url_the_store_joins_and_sweeps(self):
        self.addCleanup(membership._members.clear)
        url = 'file://%s/coordination' % self.tmp
        store = self.make_store(cinder_store_coordination_url=url,
                                cinder_store_lost_host_grace=20)
        self.addCleanup(store._settings.membership.stop)
        self.addCleanup(store.housekeeper.stop)
        self.assertEqual(url, store._settings.membership.url)
        self.assertEqual({'testhost'},
                         store._settings.membership.alive_hosts())
        self.assertEqual(10, store.housekeeper.interval)
        self.assertIn('cinder_store-housekeeping',
                      [t.name for t in threading.enumerate()])


class TestForgetGoneVolumes(base.StoreTestCase):

    def setUp(self):
        super(TestForgetGoneVolumes, self).setUp()
        self.api = self.maintenance.bound_cinder()
        self.recorded = []
        self.housekeeper = housekeeping.Housekeeping(
            self.maintenance.bound_cinder, self.maintenance.settings, None, 30,
            lambda: self.recorded)

    def locked(self, volume_id):
        with self.maintenance.settings.locks.lock_attach(volume_id):
            pass
        with self.maintenance.settings.locks.lock_reads(volume_id):
            pass

    def test_lock_files_of_volumes_another_host_deleted_go(self):
        kept = self.api.wait_for_status(self.api.create_volume(
            1, 'image-kept', {}, None), 'creating', 'available')
        gone = '0a0b0c0d-0000-4000-8000-000000000001'
        recorded = '0a0b0c0d-0000-4000-8000-000000000002'
        self.recorded.append(recorded)
        for volume_id in (kept.id, gone, recorded):
            self.locked(volume_id)
        self.assertEqual([gone], self.housekeeper.forget_gone_volumes())
        self.assertEqual(sorted([kept.id, recorded]),
                         self.maintenance.settings.locks.locked_volumes())

    def test_nothing_to_look_at_asks_cinder_nothing(self):
        self.cinder.calls.clear()
        self.assertEqual([], self.housekeeper.forget_gone_volumes())
        self.assertEqual([], self.cinder.calls)


class TestAnnouncements(base.StoreTestCase):

    def test_empty_announcement_groups_are_removed(self):
        members = mock.Mock()
        members.remove_empty_announcements.return_value = [b'g']
        self.store._settings.membership = members
        sweeper = housekeeping.Housekeeping(
            lambda: self.bound(), self.store._settings, 'ssd', 10,
            lambda: [])
        self.assertEqual([b'g'], sweeper.remove_empty_announcements())
