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

"""What the check finds from Cinder and Glance."""

import datetime
import os
from unittest import mock

from oslo_utils import timeutils

from cinder_store import auth
from cinder_store import findings
from cinder_store import metadata
from cinder_store.tests.unit import base

DEAD = base.DEAD
FILTERS = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                       'etc', 'glance', 'rootwrap.d')


rewrite = base.rewrite_record


class TestVolumes(base.FindingsTestCase):

    def stuck_attaching(self, seconds_ago):
        """A volume a dead reader left attaching; no record names it."""
        volume_id = self.add(b'12345')[0].rsplit('/', 1)[1]
        api = self.maintenance.bound_cinder()
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
        api = self.maintenance.bound_cinder()
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

    def image_volume(self, image_id='img-1', seconds_ago=3601):
        """An available image-volume, untouched for ``seconds_ago``."""
        api = self.maintenance.bound_cinder()
        volume = api.wait_for_status(api.create_volume(
            1, 'image-%s' % image_id, {'glance_image_id': image_id}, None),
            'creating', 'available')
        self.cinder.volumes[volume.id].updated_at = (
            timeutils.utcnow() - datetime.timedelta(
                seconds=seconds_ago)).isoformat()
        return volume

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
        glance.image_locations.assert_called_once_with(
            'img-1', {'status': 'active'})
        self.assertIn(volume.id, self.cinder.volumes)

    def test_an_upload_in_progress_or_a_young_volume_is_never_asked(self):
        recorded, young = self.image_volume('img-1'), self.image_volume(
            'img-2', seconds_ago=30)
        self.maintenance.uploads.record_upload(recorded.id, 'img-1')
        self.addCleanup(self.maintenance.uploads.forget_upload, recorded.id)
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
        api = self.maintenance.bound_cinder()
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
        api = self.maintenance.bound_cinder()
        volume = api.wait_for_status(api.create_volume(
            1, 'image-i', {'glance_image_id': 'i'}, 'shared'), 'creating',
            'available')
        self.held_by('glance-2', volume)
        self.assertEqual([findings.OK], [
            f.status for f in self.findings(topic='other hosts')])

    def test_a_lost_hosts_reads_and_unfinished_upload_are_released(self):
        read, att = self.held_by('glance-3')
        api = self.maintenance.bound_cinder()
        unfinished = api.create_volume(
            1, 'image-up', {'glance_image_id': 'up',
                            metadata.UPLOAD_HOST: 'glance-3'}, None)
        api.wait_for_status(unfinished, 'creating', 'available')
        done = api.wait_for_status(api.create_volume(
            1, 'image-done', {'glance_image_id': 'done',
                              metadata.UPLOAD_HOST: 'glance-3'}, None),
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
