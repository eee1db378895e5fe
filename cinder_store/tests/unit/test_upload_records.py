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

import os
from unittest import mock

from cinderclient import exceptions as cinder_exc
from glance_store import exceptions

from cinder_store import attachment
from cinder_store import metadata
from cinder_store import records
from cinder_store.recovery import repairs
from cinder_store import settings
from cinder_store.tests.unit import base
from cinder_store import upload_records

DEAD = base.DEAD


class TestUploads(base.CinderTestCase):
    """A killed uploader is played by rewriting the record's holder."""

    def setUp(self):
        super(TestUploads, self).setUp()
        self.api = self.bound()
        self.settings = self.settings()
        self.uploads = upload_records.Uploads(self.settings)
        self.volume = self.api.wait_for_status(
            self.api.create_volume(1, 'image-img-1',
                                   {'glance_image_id': 'img-1'}, None),
            'creating', 'available')
        self.uploads.record_upload(self.volume.id, 'img-1')

    def reclaim(self):
        return repairs.reclaim_orphaned_upload(self.api, self.uploads,
                                               self.volume.id)

    def rewrite(self, **changes):
        base.rewrite_record(self.uploads.files.path(self.volume.id),
                            **changes)

    def left_attached(self):
        """What a worker killed mid-write leaves: an open attachment."""
        attachment.Attachment(self.api, self.settings, self.volume,
                              writable=True).open()
        self.assertEqual(1, len(self.brick.connected))

    def test_an_upload_of_a_live_process_is_not_orphaned(self):
        record, reason = self.uploads.inspect_upload(self.volume.id)
        self.assertEqual('img-1', record['image'])
        self.assertEqual(records.process_id(), record['holder'])
        self.assertEqual('testhost', record['host'])
        self.assertIsNone(reason)
        self.assertEqual([self.volume.id], self.uploads.volume_ids())
        self.assertRaises(repairs.NotOrphaned, self.reclaim)
        self.assertEqual(1, len(self.cinder.volumes))

    def uploads_of(self, backend):
        return upload_records.Uploads(settings.Settings(
            self.settings.locks, backend=backend))

    def test_each_backend_lists_its_own_uploads(self):
        other, fast = self.uploads_of('other'), self.uploads_of('fast')
        other.record_upload('vol-2', 'img-2')
        fast.record_upload('vol-3', 'img-3')
        self.assertEqual('other', other.inspect_upload('vol-2')[0]['backend'])
        # this test's record names no backend: every backend lists it
        self.assertEqual(sorted([self.volume.id, 'vol-2']),
                         other.volume_ids())
        self.assertEqual(sorted([self.volume.id, 'vol-3']),
                         fast.volume_ids())

    def test_end_forgets_the_upload(self):
        self.uploads.forget_upload(self.volume.id)
        self.assertEqual((None, None),
                         self.uploads.inspect_upload(self.volume.id))
        self.assertEqual([], self.uploads.volume_ids())

    def test_a_dead_uploader_is_detached_and_its_volume_deleted(self):
        self.left_attached()
        self.rewrite(holder=DEAD)
        _, reason = self.uploads.inspect_upload(self.volume.id)
        self.assertIn('its process %s is gone' % DEAD, reason)
        done = self.reclaim()
        self.assertIn('deleted the volume of image img-1', done)
        self.assertIn('1 attachment(s)', done)
        self.assertNothingLeft(volumes=0)
        self.assertEqual([], os.listdir(self.settings.lock_path))

    def test_after_a_reboot_the_device_is_not_disconnected(self):
        self.left_attached()
        self.rewrite(boot='an-earlier-boot')
        _, reason = self.uploads.inspect_upload(self.volume.id)
        self.assertEqual('written before this host last booted', reason)
        self.reclaim()
        self.assertEqual(0, self.brick.calls.count('disconnect_volume'))
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual({}, self.cinder.volumes)

    def test_a_failed_clean_up_is_orphaned_while_its_process_lives(self):
        self.uploads.record_failed_upload(self.volume.id, 'img-1',
                                          RuntimeError('cinder down'))
        record, reason = self.uploads.inspect_upload(self.volume.id)
        self.assertEqual(records.process_id(), record['holder'])
        self.assertIn('deleting the volume failed too: cinder down', reason)
        self.reclaim()
        self.assertNothingLeft(volumes=0)

    def test_another_hosts_record_is_never_acted_on(self):
        self.rewrite(host='otherhost', holder=DEAD, failed='x')
        self.assertIsNone(self.uploads.inspect_upload(self.volume.id)[1])
        self.assertRaises(repairs.NotOrphaned, self.reclaim)
        self.assertEqual(1, len(self.cinder.volumes))

    def test_a_volume_now_carrying_another_image_is_left_alone(self):
        self.rewrite(holder=DEAD, image='img-2')
        self.assertRaisesRegex(repairs.NotOrphaned,
                               'carries image img-1',
                               self.reclaim)
        self.assertEqual(1, len(self.cinder.volumes))

    def test_a_volume_already_gone_only_loses_its_record(self):
        self.rewrite(holder=DEAD)
        self.api.delete_volume(self.volume.id)
        self.assertIn('volume is gone',
                      self.reclaim())
        self.assertEqual([], self.uploads.volume_ids())

    def test_cinder_refusing_the_delete_keeps_the_record(self):
        self.rewrite(holder=DEAD)
        self.cinder.fail('volumes.delete',
                         cinder_exc.ClientException(500, 'busy'), times=-1)
        self.assertRaises(exceptions.BackendException, self.reclaim)
        self.assertEqual([self.volume.id], self.uploads.volume_ids())

    def test_an_unreadable_record_is_none(self):
        with open(self.uploads.files.path(self.volume.id), 'w') as f:
            f.write('{')
        with mock.patch.object(records.LOG, 'warning') as warn:
            self.assertEqual((None, None),
                             self.uploads.inspect_upload(self.volume.id))
        self.assertIn('upload', warn.call_args[0][1])


class TestCreations(base.CinderTestCase):
    """Volume create calls that may have made a volume nobody records."""

    def setUp(self):
        super(TestCreations, self).setUp()
        self.api = self.bound()
        self.settings = self.settings()
        self.uploads = upload_records.Uploads(self.settings)
        self.token = self.uploads.record_creation('img-1')

    def made(self, status='available'):
        """The volume Cinder made for the call it never answered."""
        volume = self.api.create_volume(
            1, 'image-img-1', {'glance_image_id': 'img-1',
                               metadata.UPLOAD_TOKEN: self.token}, None)
        self.cinder.volumes[volume.id].status = status
        return volume

    def reclaim(self):
        return repairs.reclaim_cut_short_create(self.api, self.uploads,
                                                self.token)

    def cut_short(self):
        """The creating worker died: its record names a dead holder."""
        base.rewrite_record(self.uploads.creations.path(self.token),
                            holder=DEAD)

    def test_a_creation_in_progress_is_left_alone(self):
        record, reason = self.uploads.inspect_creation(self.token)
        self.assertEqual(('img-1', self.token),
                         (record['image'], record['token']))
        self.assertIsNone(reason)
        self.assertEqual([self.token], self.uploads.creation_tokens())
        self.made()
        self.assertRaises(repairs.NotOrphaned,
                          self.reclaim)
        self.assertEqual(1, len(self.cinder.volumes))

    def test_created_forgets_it(self):
        self.uploads.forget_creation(self.token)
        self.assertEqual([], self.uploads.creation_tokens())

    def test_a_refused_create_made_nothing(self):
        error = cinder_exc.OverLimit(413, 'quota')
        try:
            raise exceptions.StorageFull('over quota') from error
        except exceptions.StorageFull as e:
            self.uploads.record_failed_creation(self.token, 'img-1', e)
        self.assertEqual([], self.uploads.creation_tokens())

    def test_an_unanswered_create_is_orphaned_at_once(self):
        with mock.patch.object(upload_records.LOG, 'warning') as warn:
            self.uploads.record_failed_creation(self.token, 'img-1',
                                                RuntimeError('read timed out'))
        self.assertIn('may have made it anyway', warn.call_args[0][0])
        _, reason = self.uploads.inspect_creation(self.token)
        self.assertIn('read timed out', reason)
        self.assertIn('no volume was made',
                      self.reclaim())
        self.assertEqual([], self.uploads.creation_tokens())

    def test_the_volume_a_killed_create_made_is_deleted(self):
        volume = self.made()
        attachment.Attachment(self.api, self.settings,
                              self.api.get_volume(volume.id),
                              writable=True).open()
        other = self.api.create_volume(1, 'image-img-1',
                                       {'glance_image_id': 'img-1'}, None)
        self.cut_short()
        done = self.reclaim()
        self.assertIn('deleted volume(s) %s of image img-1' % volume.id,
                      done)
        # Only the volume carrying the token: the image may be stored on
        # another one.
        self.assertEqual([other.id], list(self.cinder.volumes))
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual([], self.uploads.creation_tokens())

    def test_a_volume_still_being_created_is_waited_for(self):
        self.made(status='creating')
        self.cut_short()
        self.assertRaisesRegex(repairs.NotOrphaned, 'still creating',
                               self.reclaim)
        self.assertEqual([self.token], self.uploads.creation_tokens())
