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

"""What the check finds from this host's records."""

import os
from unittest import mock


from cinder_store import attachment
from cinder_store import auth
from cinder_store import findings
from cinder_store import host_reads
from cinder_store import metadata
from cinder_store import records
from cinder_store.tests.unit import base

DEAD = base.DEAD
FILTERS = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                       'etc', 'glance', 'rootwrap.d')


rewrite = base.rewrite_record


class TestRecords(base.FindingsTestCase):

    def reading(self):
        """An image being downloaded: its volume and open iterator."""
        self.add(b'x' * 100)
        volume = next(iter(self.cinder.volumes.values()))
        return volume, self.store.get(self.location(volume.id))[0]

    def stale_reader(self):
        """A download whose worker died: its record names a dead holder."""
        volume, it = self.reading()
        rewrite(os.path.join(self.store.maintenance().lock_path,
                             host_reads.PREFIX + volume.id + '.json'),
                holders=[DEAD])
        it._holder[0] = None  # the dead worker will not detach
        return volume

    def test_stale_shared_read_is_reported_and_left(self):
        volume = self.stale_reader()
        found = self.findings()['shared reads']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn(volume.id, found.message)
        self.assertIn('no live process holds it', found.message)
        self.assertEqual(1, len(self.cinder.attachments))

    def test_fix_detaches_a_stale_shared_read(self):
        volume = self.stale_reader()
        found = self.findings(fix=True)['shared reads']
        self.assertEqual(findings.FIXED, found.status)
        self.assertIn(volume.id, found.message)
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual(set(), self.brick.connected)
        self.assertEqual(findings.OK, self.findings()['shared reads'].status)

    def reader_killed_in_attach(self):
        """A reader killed inside attachment_create: its record names none.

        Returns the volume and the attachment Cinder went on to make.
        """
        volume = self.stale_reader()
        (leaked,) = self.cinder.attachments
        self.cinder.attachments[leaked]['status'] = 'attaching'
        rewrite(os.path.join(self.store.maintenance().lock_path,
                             host_reads.PREFIX + volume.id + '.json'),
                attachment=None, drop=['device_info'])
        return volume, leaked

    def test_fix_detaches_what_a_reader_killed_in_attach_left(self):
        _, leaked = self.reader_killed_in_attach()
        found = self.findings()['shared reads']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('attachment Cinder was making', found.message)
        self.assertIn('stopped while Cinder was making', found.message)
        found = self.findings(fix=True)['shared reads']
        self.assertEqual(findings.FIXED, found.status)
        self.assertIn('detached %s' % leaked, found.message)
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual(set(), self.brick.connected)

    def test_fix_names_what_it_cannot_tell_on_a_multiattach_volume(self):
        volume, leaked = self.reader_killed_in_attach()
        volume.multiattach = True
        found = self.findings(fix=True)['shared reads']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('may be one of %s' % leaked, found.message)
        self.assertEqual([leaked], list(self.cinder.attachments))
        self.assertEqual(findings.OK, self.findings()['shared reads'].status)
        self.cinder.attachments.clear()
        volume.attachments = []

    def test_fix_removes_the_record_of_a_deleted_volume(self):
        volume = self.stale_reader()
        self.cinder.volumes.pop(volume.id)
        self.cinder.attachments.clear()
        found = self.findings(fix=True)['shared reads']
        self.assertEqual(findings.FIXED, found.status)
        self.assertIn('is gone', found.message)
        self.assertEqual([], os.listdir(self.store.maintenance().lock_path))

    def gone_volume_locks(self):
        """Lock files of a volume deleted in Cinder behind our back."""
        url = self.add(b'12345')[0]
        volume_id = url.rsplit('/', 1)[1]
        loc = self.location(volume_id)
        b''.join(self.store.get(loc)[0])
        self.cinder.volumes.pop(volume_id)
        return volume_id

    def locks_of(self, volume_id):
        return [n for n in os.listdir(self.store.maintenance().lock_path)
                if volume_id in n]

    def test_lock_files_of_a_deleted_volume_are_reported_and_left(self):
        volume_id = self.gone_volume_locks()
        found = self.findings()['lock files']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('no longer exist: %s; --fix removes them' % volume_id,
                      found.message)
        self.assertEqual(2, len(self.locks_of(volume_id)))

    def test_fix_removes_lock_files_of_a_deleted_volume(self):
        volume_id = self.gone_volume_locks()
        kept = self.add(b'kept', image_id='img-2')[0].rsplit('/', 1)[1]
        b''.join(self.store.get(self.location(kept))[0])
        found = self.findings(fix=True)['lock files']
        self.assertEqual(findings.FIXED, found.status)
        self.assertIn(volume_id, found.message)
        self.assertEqual([], self.locks_of(volume_id))
        self.assertEqual(2, len(self.locks_of(kept)))
        self.assertEqual(findings.OK, self.findings()['lock files'].status)

    def test_lock_files_need_service_credentials(self):
        self.gone_volume_locks()
        with mock.patch.object(auth.Credentials,
                               'has_service_credentials', False):
            found = self.findings(fix=True)['lock files']
        self.assertEqual(findings.SKIP, found.status)

    def test_shared_reads_need_service_credentials(self):
        self.stale_reader()
        with mock.patch.object(auth.Credentials,
                               'has_service_credentials', False):
            found = self.findings(fix=True)['shared reads']
        self.assertEqual(findings.SKIP, found.status)
        self.assertIn('1 record(s)', found.message)
        self.assertEqual(1, len(self.cinder.attachments))

    def test_another_hosts_shared_read_is_reported_and_left(self):
        volume = self.stale_reader()
        rewrite(os.path.join(self.store.maintenance().lock_path,
                             host_reads.PREFIX + volume.id + '.json'),
                host='otherhost')
        found = self.findings(fix=True)['shared reads']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('written on host otherhost', found.message)
        self.assertEqual(1, len(self.cinder.attachments))

    def test_a_failing_record_fails_alone(self):
        self.stale_reader()
        with mock.patch.object(host_reads.HostReads, 'inspect_record',
                               side_effect=OSError('lock busy')):
            found = self.findings()['shared reads']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('lock busy', found.message)

    def test_live_shared_read_is_left_alone_by_fix(self):
        _, it = self.reading()
        found = self.findings(fix=True)['shared reads']
        self.assertEqual(findings.OK, found.status)
        self.assertIn('1 live process', found.message)
        self.assertEqual(1, len(self.cinder.attachments))
        it.close()
        self.assertEqual({}, self.cinder.attachments)

    def orphaned_upload(self):
        """What a worker killed mid-write leaves: attached, recorded."""
        api = self.maintenance.bound_cinder()
        volume = api.wait_for_status(
            api.create_volume(1, 'image-img-1', {'glance_image_id': 'img-1'},
                              None), 'creating', 'available')
        attachment.Attachment(api, self.store.maintenance().settings, volume,
                              writable=True).open()
        self.maintenance.uploads.record_upload(volume.id, 'img-1')
        rewrite(self.maintenance.uploads.files.path(volume.id), holder=DEAD)
        return volume.id

    def test_orphaned_upload_is_reported_and_left(self):
        volume_id = self.orphaned_upload()
        found = self.findings()['uploads']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('volume %s: orphaned upload of image img-1' % volume_id,
                      found.message)
        self.assertIn('--fix deletes the volume', found.message)
        self.assertEqual(1, len(self.cinder.volumes))

    def test_fix_deletes_an_orphaned_upload(self):
        volume_id = self.orphaned_upload()
        found = self.findings(fix=True)['uploads']
        self.assertEqual(findings.FIXED, found.status)
        self.assertIn(volume_id, found.message)
        self.assertNothingLeft(volumes=0)
        self.assertEqual(findings.OK, self.findings()['uploads'].status)

    def test_upload_in_progress_is_left_alone_by_fix(self):
        self.maintenance.uploads.record_upload('vol-1', 'img-9')
        found = self.findings(fix=True)['uploads']
        self.assertEqual(findings.OK, found.status)
        self.assertIn('image img-9 is being uploaded', found.message)
        self.assertEqual(['vol-1'], self.maintenance.uploads.volume_ids())

    def test_another_hosts_upload_is_reported_and_left(self):
        volume_id = self.orphaned_upload()
        rewrite(self.maintenance.uploads.files.path(volume_id),
                host='otherhost')
        found = self.findings(fix=True)['uploads']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('written on host otherhost', found.message)
        self.assertEqual(1, len(self.cinder.volumes))

    def cut_short_create(self, holder=DEAD):
        """A worker killed inside the create call: Cinder made the volume."""
        token = self.maintenance.uploads.record_creation('img-1')
        api = self.maintenance.bound_cinder()
        said = {'glance_image_id': 'img-1', metadata.UPLOAD_TOKEN: token}
        api.wait_for_status(api.create_volume(1, 'image-img-1', said, None),
                            'creating', 'available')
        rewrite(self.maintenance.uploads.creations.path(token), holder=holder)
        return token

    def test_a_create_cut_short_is_reported_and_left(self):
        token = self.cut_short_create()
        found = self.findings()['uploads']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('volume creation %s: for image img-1, cut short'
                      % token, found.message)
        self.assertIn('cinder_store_upload=%s' % token, found.message)
        self.assertEqual(1, len(self.cinder.volumes))

    def test_fix_deletes_what_a_create_cut_short_made(self):
        self.cut_short_create()
        found = self.findings(fix=True)['uploads']
        self.assertEqual(findings.FIXED, found.status)
        self.assertIn('deleted volume(s)', found.message)
        self.assertNothingLeft(volumes=0)
        self.assertEqual(findings.OK, self.findings()['uploads'].status)

    def test_a_create_in_progress_is_left_alone_by_fix(self):
        self.cut_short_create(holder=records.process_id())
        found = self.findings(fix=True)['uploads']
        self.assertEqual(findings.OK, found.status)
        self.assertIn('for image img-1, in progress', found.message)
        self.assertEqual(1, len(self.cinder.volumes))

    def test_uploads_need_service_credentials(self):
        self.orphaned_upload()
        with mock.patch.object(auth.Credentials,
                               'has_service_credentials', False):
            found = self.findings(fix=True)['uploads']
        self.assertEqual(findings.SKIP, found.status)
        self.assertEqual(1, len(self.cinder.volumes))

    # -- image-volumes Glance no longer knows ---------------------------------
