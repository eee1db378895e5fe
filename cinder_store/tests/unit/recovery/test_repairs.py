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

"""What is done about what the rules find."""

import os

from cinderclient import exceptions as cinder_exc
from glance_store import exceptions

from cinder_store import attachment
from cinder_store.recovery import repairs
from cinder_store.recovery import rules
from cinder_store.tests.unit import base


class TestReclaimVolume(base.CinderTestCase):

    def test_reclaim_detaches_the_attachments_named_then_deletes(self):
        api = self.bound()
        vol = self.available_volume(api)
        attachment.Attachment(api, self.settings(), vol, False).open()
        fresh = api.get_volume(vol.id)
        fresh.attachments.append({'attachment_id': 'y', 'host_name': 'b'})
        here = rules.attachments_here(fresh)
        self.assertNotIn('y', here)
        self.assertEqual(1, repairs.reclaim_volume(
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
        self.assertRaises(OSError, repairs.reclaim_volume, api,
                          self.settings(), vol)
        self.assertEqual([att.id], list(self.cinder.attachments))
        self.assertEqual([vol.id], list(self.cinder.volumes))
        repairs.reclaim_volume(api, self.settings(), vol)
        self.assertNothingLeft()


class Readers(object):
    """This host's shared reads as a delete sees them: none, or one."""

    def __init__(self, recorded=None):
        self.recorded = recorded
        self.repaired = []

    def repair_record(self, cinder, volume):
        self.repaired.append(volume.id)

    def recorded_attachment(self, volume_id):
        return self.recorded

    def release_warm(self, cinder, volume_id, why):
        return False


class TestReleaseReservations(base.CinderTestCase):

    def test_an_exclusive_volumes_reservation_is_deleted(self):
        api = self.bound()
        vol = self.available_volume(api)
        self.cinder.fail('attachments.create.initialize',
                         cinder_exc.ClientException(500, 'backend down'))
        self.assertRaises(cinder_exc.ClientException,
                          self.cinder_client_create, vol)
        self.assertEqual(1, len(self.cinder.attachments))
        error = RuntimeError('attach failed')
        repairs.release_reservations(api, vol, error)
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual([], getattr(error, '__notes__', []))

    def test_a_multiattach_volumes_reservation_may_be_anothers(self):
        api = self.bound()
        vol = self.available_volume(api)
        self.cinder.volumes[vol.id].multiattach = True
        vol = api.get_volume(vol.id)
        self.cinder.fail('attachments.create.initialize',
                         cinder_exc.ClientException(500, 'backend down'))
        self.assertRaises(cinder_exc.ClientException,
                          self.cinder_client_create, vol)
        repairs.release_reservations(api, vol, RuntimeError('failed'))
        self.assertEqual(1, len(self.cinder.attachments))

    def test_a_failed_release_is_noted_on_the_error_not_raised(self):
        api = self.bound()
        vol = self.available_volume(api)
        self.cinder.fail('attachments.list',
                         cinder_exc.ClientException(503, 'unavailable'),
                         times=-1)
        error = RuntimeError('attach failed')
        repairs.release_reservations(api, vol, error)
        (note,) = error.__notes__
        self.assertIn('could not release reservations on volume %s'
                      % vol.id, note)

    def cinder_client_create(self, vol):
        """attachment_create as Cinder answers it: the reservation kept."""
        return self.cinder.attachments_api.create(vol.id, {'host': 'testhost'})


class TestWhenTold(base.TestCase):

    def test_looks_again_until_told(self):
        answers = [None, None, ['att-1']]
        self.assertEqual(['att-1'], repairs._when_told(
            lambda: answers.pop(0), 'told'))
        self.assertEqual([], answers)

    def test_gives_up_after_the_wait_with_nothing_told(self):
        self.assertEqual([], repairs._when_told(lambda: None, 'never'))
        self.assertGreaterEqual(sum(self.clock.sleeps), repairs.SETTLE_WAIT)


class TestDeleteRefusedVolume(base.CinderTestCase):

    def test_what_this_host_left_is_detached_then_the_volume_deleted(self):
        api = self.bound()
        vol = self.available_volume(api)
        att = attachment.Attachment(api, self.settings(), vol, False).open()
        att.close_keeping_attachment()
        readers = Readers()
        repairs.delete_refused_volume(api, self.settings(), readers, vol.id)
        self.assertEqual([vol.id], readers.repaired)
        self.assertNothingLeft()

    def test_a_volume_read_here_is_in_use_and_kept(self):
        api = self.bound()
        vol = self.available_volume(api)
        att = attachment.Attachment(api, self.settings(), vol, False).open()
        self.addCleanup(att.close)
        self.assertRaises(exceptions.InUseByStore,
                          repairs.delete_refused_volume, api,
                          self.settings(), Readers(att.id), vol.id)
        self.assertEqual([vol.id], list(self.cinder.volumes))
        self.assertEqual([att.id], list(self.cinder.attachments))

    def test_a_volume_attached_elsewhere_is_in_use_and_kept(self):
        api = self.bound()
        vol = self.available_volume(api)
        self.cinder.volumes[vol.id].attachments.append(
            {'attachment_id': 'theirs', 'host_name': 'glance-2'})
        self.assertRaises(exceptions.InUseByStore,
                          repairs.delete_refused_volume, api,
                          self.settings(), Readers(), vol.id)
        self.assertEqual([vol.id], list(self.cinder.volumes))

    def test_a_delete_refused_every_time_raises_after_the_tries(self):
        api = self.bound()
        vol = self.available_volume(api)
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Invalid volume: snapshots exist'), times=-1)
        self.assertRaises(exceptions.BackendException,
                          repairs.delete_refused_volume, api,
                          self.settings(), Readers(), vol.id, tries=3)
        self.assertEqual(3, self.cinder.calls.count('volumes.delete'))

    def test_a_gone_volume_is_not_found(self):
        api = self.bound()
        self.assertRaises(exceptions.NotFound, repairs.delete_refused_volume,
                          api, self.settings(), Readers(), 'no-such-volume')


class TestRemoveConnectFiles(base.TestCase):

    def test_removes_them_and_one_gone_meanwhile_is_no_error(self):
        left = os.path.join(self.tmp, 'ceph-left.conf')
        open(left, 'w').close()
        repairs.remove_connect_files([os.path.join(self.tmp, 'gone.conf'),
                                      left])
        self.assertFalse(os.path.exists(left))
