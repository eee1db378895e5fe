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
