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

import datetime
import os
from unittest import mock

import fixtures
from oslo_utils import timeutils

from cinder_store import attachment
from cinder_store import auth
from cinder_store import findings
from cinder_store import host
from cinder_store import host_reads
from cinder_store import records
from cinder_store.recovery import rules
from cinder_store.tests.unit import base
from cinder_store import upload_records

DEAD = base.DEAD
FILTERS = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                       'etc', 'glance', 'rootwrap.d')


rewrite = base.rewrite_record


class TestCheckBackend(base.StoreTestCase):

    def setUp(self):
        super(TestCheckBackend, self).setUp()
        # Whatever the machine's /tmp is, the lock path counts as on disk.
        self.filesystem = self.useFixture(fixtures.MockPatchObject(
            host, 'filesystem_type', return_value='ext4')).mock
        # Glance knows every image, and will not say where it keeps it.
        self.glance_has({}, None, default={'status': 'active'})

    def findings(self, fix=False, probe=True, topic=None):
        found = findings.check_backend(self.store.maintenance(), fix, probe)
        if topic is not None:
            return [f for f in found if f.topic == topic]
        return {f.topic: f for f in found}

    def test_a_healthy_backend(self):
        with mock.patch('os.geteuid', return_value=0):
            found = findings.check_backend(self.store.maintenance())
        self.assertEqual([findings.OK] * 11, [f.status for f in found])
        self.assertIn("volume type '__DEFAULT__' exists", found[0].message)

    def test_configured_volume_type_missing(self):
        self.conf.set_override('cinder_store_volume_type', 'gone',
                               group='fast')
        found = self.findings()['cinder']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('gone', found.message)

    def test_without_service_credentials_cinder_is_skipped(self):
        with mock.patch.object(auth.Credentials,
                               'has_service_credentials', False):
            self.assertEqual(findings.SKIP, self.findings()['cinder'].status)

    def test_lock_path_in_memory_is_a_warning(self):
        self.filesystem.return_value = 'tmpfs'
        found = self.findings()['lock path']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('in memory', found.message)

    def test_lock_path_not_writable(self):
        self.maintenance.settings.lock_path = os.path.join(self.tmp, 'file')
        open(self.store.maintenance().lock_path, 'w').close()
        self.assertEqual(findings.FAIL, self.findings()['lock path'].status)

    def test_host_probe_failure(self):
        host._cache.clear()  # a fresh process, whose probe fails
        with mock.patch.object(self.brick, 'get_connector_properties',
                               side_effect=OSError('no privsep helper')):
            found = self.findings()['host']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('no privsep helper', found.message)

    def rbd_store(self, keyring_text, mode=0o600):
        path = os.path.join(self.tmp, 'ceph.client.glance.keyring')
        with open(path, 'w') as f:
            f.write(keyring_text)
        os.chmod(path, mode)
        self.store = self.make_store(cinder_store_rbd_keyring=path)
        return path

    def test_no_rbd_findings_without_a_keyring_option(self):
        self.assertNotIn('ceph keyring', self.findings())

    def test_a_readable_keyring_with_a_key(self):
        path = self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        found = self.findings()
        self.assertEqual((findings.OK, '%s: client.glance' % path),
                         (found['ceph keyring'].status,
                          found['ceph keyring'].message))
        self.assertEqual(findings.OK, found['rbd files'].status)
        self.assertNotIn('AQBx', str(found))

    def test_ceph_is_probed_with_an_available_volume(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        self.assertIn('not probed',
                      self.findings(probe=False)['ceph'].message)
        self.assertIn('no available volume', self.findings()['ceph'].message)
        self.cinder.transport = 'rbd'
        volume = self.available_volume(self.bound())
        found = self.findings()['ceph']
        self.assertEqual(findings.OK, found.status)
        self.assertIn('volume %s attached and read' % volume.id,
                      found.message)
        self.assertNothingLeft(volumes=1)

    def test_ceph_probe_failure_is_explained(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        self.cinder.transport = 'rbd'
        self.available_volume(self.bound())
        self.brick.fail('connect_volume', OSError('RADOS timed out'))
        with mock.patch.object(host, '_tcp_reachable', return_value=False):
            found = self.findings()['ceph']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('no monitor Cinder names', found.message)
        self.assertNothingLeft(volumes=1)

    def test_a_keyring_readable_by_others_is_a_warning(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n', mode=0o644)
        found = self.findings()['ceph keyring']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('chmod 600', found.message)

    def test_a_keyring_without_a_key_or_missing_fails(self):
        path = self.rbd_store('[global]\n')
        found = self.findings()['ceph keyring']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('holds no client key', found.message)
        os.unlink(path)
        found = self.findings()['ceph keyring']
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('cinder_store_rbd_keyring must name', found.message)

    def test_fix_removes_connect_files_a_killed_worker_left(self):
        self.rbd_store('[client.glance]\n\tkey = AQBx==\n')
        left = os.path.join(self.tmp, 'brickrbd_left')
        with open(left, 'w') as f:
            f.write(host.RBDClient.MARK)
        os.utime(left, (1, 1))
        with mock.patch('tempfile.gettempdir', return_value=self.tmp):
            self.assertEqual(findings.WARN,
                             self.findings()['rbd files'].status)
            self.assertTrue(os.path.exists(left))
            found = self.findings(fix=True)['rbd files']
        self.assertEqual((findings.FIXED, 'removed %s' % left),
                         (found.status, found.message))
        self.assertFalse(os.path.exists(left))

    def rootwrap_conf(self, filters_path):
        path = os.path.join(self.tmp, 'rootwrap.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nfilters_path=%s\n' % filters_path)
        self.conf.set_override('cinder_store_rootwrap_config', path,
                               group='fast')

    def privileges(self):
        with mock.patch('os.geteuid', return_value=1000):
            return self.findings()['privileges']

    def test_unprivileged_with_the_shipped_filters(self):
        self.rootwrap_conf(FILTERS)
        found = self.privileges()
        self.assertEqual(findings.OK, found.status)
        self.assertIn('cinder_store.filters', found.message)

    def test_unprivileged_without_a_chown_filter(self):
        empty = os.path.join(self.tmp, 'filters')
        os.makedirs(empty)
        with open(os.path.join(empty, 'other.filters'), 'w') as f:
            f.write('[Filters]\nmount: CommandFilter, mount, root\n')
        self.rootwrap_conf(empty)
        found = self.privileges()
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('cinder_store.filters', found.message)

    def test_unprivileged_without_rootwrap_config(self):
        self.conf.set_override('cinder_store_rootwrap_config',
                               self.tmp + '/missing.conf', group='fast')
        found = self.privileges()
        self.assertEqual(findings.FAIL, found.status)
        self.assertIn('missing.conf', found.message)

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

    def stuck_attaching(self, seconds_ago):
        """A volume a dead reader left attaching; no record names it."""
        volume_id = self.add(b'12345')[0].rsplit('/', 1)[1]
        api = self.maintenance.cinder()
        made = api.attachment_create(volume_id, {'host': 'gone'}, 'ro')
        base.made_ago(self.cinder, made['id'], seconds_ago)
        return volume_id, made['id']

    def test_a_volume_stuck_attaching_is_reported_and_left(self):
        volume_id, leaked = self.stuck_attaching(601)
        (found,) = [f for f in findings.check_backend(self.store.maintenance())
                    if f.topic == 'stuck volumes']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('volume %s is attaching: attachment(s) %s made over '
                      '600s ago' % (volume_id, leaked), found.message)
        self.assertIn(leaked, self.cinder.attachments)

    def test_fix_deletes_what_leaves_a_volume_stuck_attaching(self):
        volume_id, leaked = self.stuck_attaching(601)
        (found,) = self.findings(fix=True, probe=False,
                                 topic='stuck volumes')
        self.assertEqual(findings.FIXED, found.status)
        self.assertNotIn(leaked, self.cinder.attachments)
        self.assertEqual('available', self.cinder.volumes[volume_id].status)

    def test_an_attach_in_progress_is_left_alone_by_fix(self):
        _, young = self.stuck_attaching(30)
        (found,) = self.findings(fix=True, probe=False,
                                 topic='stuck volumes')
        self.assertEqual(findings.OK, found.status)
        self.assertIn(young, self.cinder.attachments)
        self.cinder.attachments.clear()

    def unheld(self, seconds_ago):
        """A volume attached here by a process no record names."""
        volume_id = self.add(b'12345')[0].rsplit('/', 1)[1]
        api = self.maintenance.cinder()
        made = api.attachment_create(volume_id, {'host': 'testhost'}, 'ro')
        api.attachment_complete(made['id'])
        base.made_ago(self.cinder, made['id'], seconds_ago)
        return volume_id, made['id']

    def test_an_old_attachment_of_this_host_no_record_names(self):
        volume_id, leaked = self.unheld(601)
        found = self.findings()['unheld']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('volume %s: attachment(s) %s of this host (testhost), '
                      'over 600s old' % (volume_id, leaked), found.message)
        found = self.findings(fix=True)['unheld']
        self.assertEqual((findings.FIXED,
                          'volume %s: detached attachment(s) %s'
                          % (volume_id, leaked)),
                         (found.status, found.message))
        self.assertNotIn(leaked, self.cinder.attachments)
        self.assertEqual(findings.OK, self.findings()['unheld'].status)

    def test_young_or_recorded_attachments_are_held(self):
        _, young = self.unheld(30)
        self.assertEqual(findings.OK, self.findings(fix=True)['unheld'].status)
        self.assertIn(young, self.cinder.attachments)
        self.cinder.attachments.clear()
        self.cinder.volumes.clear()
        uri = self.add(b'abc')[0]
        it, _ = self.store.get(self.location(uri.rsplit('/', 1)[1]))
        next(iter(it))  # a live reader: its record names the volume
        for att in list(self.cinder.attachments):
            base.made_ago(self.cinder, att, 601)
        self.assertEqual(findings.OK, self.findings(fix=True)['unheld'].status)
        it.close()
        self.assertEqual({}, self.cinder.attachments)

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
        with mock.patch.object(host_reads.HostReaders, 'inspect',
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
        api = self.maintenance.cinder()
        volume = api.wait_for_status(
            api.create_volume(1, 'image-img-1', {'glance_image_id': 'img-1'},
                              None), 'creating', 'available')
        attachment.Attachment(api, self.store.maintenance().settings, volume,
                              writable=True).open()
        self.maintenance.uploads.begin(volume.id, 'img-1')
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
        self.maintenance.uploads.begin('vol-1', 'img-9')
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
        token = self.maintenance.uploads.creating('img-1')
        api = self.maintenance.cinder()
        metadata = {'glance_image_id': 'img-1',
                    upload_records.TOKEN_KEY: token}
        api.wait_for_status(api.create_volume(1, 'image-img-1', metadata,
                                              None), 'creating', 'available')
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

    def image_volume(self, image_id='img-1', seconds_ago=3601):
        """An available image-volume, untouched for ``seconds_ago``."""
        api = self.maintenance.cinder()
        volume = api.wait_for_status(api.create_volume(
            1, 'image-%s' % image_id, {'glance_image_id': image_id}, None),
            'creating', 'available')
        self.cinder.volumes[volume.id].updated_at = (
            timeutils.utcnow() - datetime.timedelta(
                seconds=seconds_ago)).isoformat()
        return volume

    def glance_has(self, images, locations=None, default=None):
        fake = mock.Mock()
        fake.image.side_effect = lambda i: images.get(i, default)
        fake.locations.return_value = locations
        self.useFixture(fixtures.MockPatchObject(
            findings.maintenance.Maintenance, 'glance', return_value=fake))
        return fake

    def test_an_image_volume_glance_does_not_know_is_reported(self):
        volume = self.image_volume()
        self.glance_has({})
        found = self.findings()['image volumes']
        self.assertEqual(findings.WARN, found.status)
        self.assertIn('volume %s: Glance has no image img-1' % volume.id,
                      found.message)
        self.assertIn(volume.id, self.cinder.volumes)
        found = self.findings(fix=True)['image volumes']
        self.assertEqual(findings.FIXED, found.status)
        self.assertNothingLeft(volumes=0)

    def test_an_image_volume_glance_locates_is_left(self):
        volume = self.image_volume()
        glance = self.glance_has({'img-1': {'status': 'active'}},
                                 ['cinder://fast/%s' % volume.id])
        found = self.findings(fix=True)['image volumes']
        self.assertEqual((findings.OK, "Glance knows every image-volume of "
                          "type '__DEFAULT__' (1 checked)"),
                         (found.status, found.message))
        glance.locations.assert_called_once_with(
            'img-1', {'status': 'active'})
        self.assertIn(volume.id, self.cinder.volumes)

    def test_an_upload_in_progress_or_a_young_volume_is_never_asked(self):
        recorded, young = self.image_volume('img-1'), self.image_volume(
            'img-2', seconds_ago=30)
        self.maintenance.uploads.begin(recorded.id, 'img-1')
        self.addCleanup(self.maintenance.uploads.end, recorded.id)
        glance = self.glance_has({})
        found = self.findings(fix=True)['image volumes']
        self.assertEqual(findings.OK, found.status)
        glance.image.assert_not_called()
        self.assertEqual({recorded.id, young.id}, set(self.cinder.volumes))

    def test_image_volumes_need_service_credentials(self):
        self.image_volume()
        with mock.patch.object(auth.Credentials,
                               'has_service_credentials', False):
            found = self.findings(fix=True)['image volumes']
        self.assertEqual(findings.SKIP, found.status)
        self.assertEqual(1, len(self.cinder.volumes))

    # -- other hosts, and a lost one ------------------------------------------

    def held_by(self, host_name, volume=None):
        """An image-volume read on ``host_name``: (volume, attachment)."""
        api = self.maintenance.cinder()
        volume = volume or self.image_volume(image_id=host_name + '-img')
        made = api.attachment_create(volume.id, {'host': host_name}, 'ro')
        api.attachment_complete(made['id'])
        return volume, made['id']

    def test_other_hosts_are_listed_and_an_exclusive_type_warned_of(self):
        volume, _ = self.held_by('glance-2')
        found = self.findings(topic='other hosts')
        self.assertEqual(findings.OK, found[0].status)
        self.assertIn('host glance-2 holds 1 attachment(s) (volume %s), the '
                      'oldest attached 0s ago' % volume.id, found[0].message)
        self.assertEqual(findings.WARN, found[1].status)
        self.assertIn('read on several Glance hosts (glance-2) but are not '
                      'multiattach', found[1].message)

    def test_a_multiattach_type_is_not_warned_of(self):
        self.cinder.types.add('shared')
        self.cinder.multiattach_types.add('shared')
        self.conf.set_override('cinder_store_volume_type', 'shared',
                               group='fast')
        api = self.maintenance.cinder()
        volume = api.wait_for_status(api.create_volume(
            1, 'image-i', {'glance_image_id': 'i'}, 'shared'), 'creating',
            'available')
        self.held_by('glance-2', volume)
        self.assertEqual([findings.OK], [
            f.status for f in self.findings(topic='other hosts')])

    def test_a_lost_hosts_reads_and_unfinished_upload_are_released(self):
        read, att = self.held_by('glance-3')
        api = self.maintenance.cinder()
        unfinished = api.create_volume(
            1, 'image-up', {'glance_image_id': 'up',
                            rules.UPLOAD_HOST_KEY: 'glance-3'}, None)
        api.wait_for_status(unfinished, 'creating', 'available')
        done = api.wait_for_status(api.create_volume(
            1, 'image-done', {'glance_image_id': 'done',
                              rules.UPLOAD_HOST_KEY: 'glance-3'}, None),
            'creating', 'available')
        api.set_readonly(done.id)  # its upload finished
        found = findings.check_backend(self.maintenance, lost_host='glance-3')
        warned = [f.message for f in found if f.topic == 'other hosts' and
                  f.status == findings.WARN and 'lost host' in f.message]
        self.assertEqual(2, len(warned), warned)
        self.assertIn(att, self.cinder.attachments)
        found = findings.check_backend(self.maintenance, fix=True,
                                       lost_host='glance-3')
        fixed = sorted(f.message for f in found
                       if f.status == findings.FIXED and
                       f.topic == 'other hosts')
        self.assertEqual(2, len(fixed), fixed)
        self.assertNotIn(att, self.cinder.attachments)
        self.assertEqual({read.id, done.id}, set(self.cinder.volumes))
        self.assertEqual(0, self.brick.calls.count('disconnect_volume'))

    def test_other_hosts_are_never_released_unnamed(self):
        _, att = self.held_by('glance-2')
        findings.check_backend(self.maintenance, fix=True,
                               lost_host='glance-9')
        self.assertIn(att, self.cinder.attachments)
