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
import time

from cinderclient import exceptions as cinder_exc
import ddt
from glance_store import exceptions
from oslo_utils import timeutils

from cinder_store import attachment
from cinder_store import membership
from cinder_store import metadata
from cinder_store import records
from cinder_store.recovery import rules
from cinder_store.tests.unit import base


class TestAbandoned(base.CinderTestCase):
    """Attachments Cinder made whose attacher died before completing."""

    def setUp(self):
        super(TestAbandoned, self).setUp()
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

    def test_only_old_uncompleted_attachments_are_abandoned(self):
        old, young = self.dead_attacher(601), self.dead_attacher(30)
        done = self.dead_attacher(3600)
        self.api.attachment_complete(done)
        self.assertEqual([old], rules.abandoned_attachments(
            self.api, self.volume.id, 600))
        self.assertIn(young, self.cinder.attachments)

    def claim(self, attachment_id=None, since_made_of=None, offset=0.0):
        """A live claim naming ``attachment_id``, or none.

        Made ``offset`` seconds after Cinder made ``since_made_of``.
        """
        since = 0.0
        if since_made_of is not None:
            made = self.cinder.attachments[since_made_of]['attached_at']
            since = rules.epoch_of(made) + offset
        return membership.Claim('0:1:2', since, attachment_id)

    def abandoned(self, claims=None):
        return rules.abandoned_attachments(
            self.api, self.volume.id, 600,
            **({} if claims is None else {'claims': lambda: claims}))

    def test_with_coordination_an_unclaimed_one_is_abandoned_sooner(self):
        dead = self.dead_attacher(rules.UNANNOUNCED_AGE + 1)
        young = self.dead_attacher(rules.UNANNOUNCED_AGE - 5)
        self.assertEqual([dead], self.abandoned(claims=[]))
        # Without coordination only the age counts
        self.assertEqual([], self.abandoned())
        self.assertEqual([], rules.abandoned_attachments(
            self.api, self.volume.id, 600, claims=lambda: None))
        self.assertIn(young, self.cinder.attachments)

    def test_a_live_claim_naming_it_keeps_it(self):
        made = self.dead_attacher(rules.UNANNOUNCED_AGE + 1)
        self.assertEqual([], self.abandoned(claims=[self.claim(made)]))

    def test_an_unnamed_claim_older_than_it_keeps_it(self):
        # Its attacher may not have heard Cinder's answer yet
        made = self.dead_attacher(rules.UNANNOUNCED_AGE + 1)
        self.assertEqual([], self.abandoned(
            claims=[self.claim(since_made_of=made, offset=-10)]))
        self.assertEqual([], self.abandoned(claims=[self.claim(
            since_made_of=made, offset=rules.CLOCK_SKEW - 1)]))

    def test_attaches_begun_after_it_never_hide_it(self):
        # Readers refused because of it keep claiming while they retry:
        # what they make comes after it (the condition of issue #31).
        made = self.dead_attacher(rules.UNANNOUNCED_AGE + 1)
        later = [self.claim(since_made_of=made, offset=rules.CLOCK_SKEW + 1),
                 self.claim('another-one')]
        self.assertEqual([made], self.abandoned(claims=later))

    def test_one_completed_while_the_service_answered_is_kept(self):
        made = self.dead_attacher(rules.UNANNOUNCED_AGE + 1)

        def completed_meanwhile():
            self.api.attachment_complete(made)
            return []
        self.assertEqual([], rules.abandoned_attachments(
            self.api, self.volume.id, 600, claims=completed_meanwhile))

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

    def test_an_old_reservation_of_a_volume_left_reserved_is_abandoned(self):
        left = self.dead_reserver(601)
        self.assertEqual([left], rules.abandoned_attachments(
            self.api, self.volume.id, 600))

    def test_a_young_reservation_is_not(self):
        self.dead_reserver(30)
        self.assertEqual([], rules.abandoned_attachments(
            self.api, self.volume.id, 600))


class TestAttachmentsHere(base.CinderTestCase):

    def test_without_host_names_only_the_recorded_attachment_is_here(self):
        # A Cinder that leaves host_name empty for the attachment API
        vol = self.available_volume(self.bound())
        vol.attachments = [{'attachment_id': 'a', 'host_name': None},
                           {'attachment_id': 'b'},
                           {'attachment_id': 'c', 'host_name': 'testhost'}]
        self.assertEqual({'c'}, rules.attachments_here(vol))
        self.assertEqual({'a', 'c'}, rules.attachments_here(vol, 'a'))
        self.assertEqual('a (host not reported), c (host testhost)',
                         rules.describe_attachments(vol, {'c', 'a'}))


class Vol(object):

    def __init__(self, name='image-img-1', image='img-1', seconds_ago=601):
        self.id = 'vol-1'
        self.name = name
        self.metadata = {'glance_image_id': image} if image else {}
        self.updated_at = (timeutils.utcnow() - datetime.timedelta(
            seconds=seconds_ago)).isoformat()


@ddt.ddt
class TestUnknownImageVolumes(base.TestCase):
    """Image-volumes Glance will never know, and those it still may."""

    def unknown(self, image, locations=None, volume=None):
        return rules.why_image_volume_unknown(volume or Vol(), image,
                                              locations, 600)

    def test_an_image_volume_is_named_for_its_image(self):
        self.assertEqual('img-1', rules.image_of_volume(Vol()))
        self.assertIsNone(rules.image_of_volume(Vol(name='my-data')))
        self.assertIsNone(rules.image_of_volume(Vol(image=None)))

    def test_an_image_glance_does_not_have(self):
        self.assertEqual('Glance has no image img-1', self.unknown(None))

    @ddt.data('deleted', 'killed')
    def test_an_image_glance_ended(self, status):
        self.assertEqual('its image img-1 is %s in Glance' % status,
                         self.unknown({'status': status}))

    @ddt.data('queued', 'saving')
    def test_an_upload_that_ended_without_registering(self, status):
        # A worker killed right after add returned leaves 'saving'.
        self.assertIn('still %s' % status, self.unknown({'status': status}))

    @ddt.data('uploading', 'importing', 'pending_delete')
    def test_a_task_or_the_scrubber_may_still_use_it(self, status):
        self.assertIsNone(self.unknown({'status': status}, []))

    def test_a_volume_touched_recently_is_never_unknown(self):
        self.assertIsNone(self.unknown(None, volume=Vol(seconds_ago=30)))

    def test_an_active_image_stored_elsewhere(self):
        self.assertEqual(
            'its image img-1 (active) is stored elsewhere: cinder://b/vol-2',
            self.unknown({'status': 'active'}, ['cinder://b/vol-2']))

    @ddt.data('cinder://b/vol-1', 'cinder://vol-1', 'cinder://b//vol-1')
    def test_an_active_image_on_this_volume(self, url):
        self.assertIsNone(self.unknown({'status': 'active'},
                                       ['rbd://x/y', url]))

    def test_locations_glance_will_not_show_decide_nothing(self):
        self.assertIsNone(self.unknown({'status': 'active'}, None))


class TestHosts(base.CinderTestCase):

    def test_an_upload_is_unfinished_until_the_volume_is_read_only(self):
        vol = Vol()
        vol.metadata[metadata.UPLOAD_HOST] = 'glance-2'
        self.assertTrue(rules.unfinished_upload_of(vol, 'glance-2'))
        self.assertFalse(rules.unfinished_upload_of(vol, 'glance-3'))
        vol.metadata['readonly'] = 'True'
        self.assertFalse(rules.unfinished_upload_of(vol, 'glance-2'))
        # made before uploads named their host: never anyone's
        self.assertFalse(rules.unfinished_upload_of(Vol(), 'glance-2'))

    def test_attachments_elsewhere_are_those_other_hosts_named(self):
        vol = self.available_volume(self.bound())
        vol.attachments = [{'attachment_id': 'a', 'host_name': 'testhost'},
                           {'attachment_id': 'b', 'host_name': 'glance-2'},
                           {'attachment_id': 'c', 'host_name': None}]
        self.assertEqual({'b': 'glance-2'}, rules.attachments_elsewhere(vol))

    @staticmethod
    def vtype(**specs):
        return type('T', (), {'extra_specs': specs})()

    def test_a_multiattach_type(self):
        self.assertTrue(rules.type_is_multiattach(
            self.vtype(multiattach='<is> True')))
        self.assertFalse(rules.type_is_multiattach(self.vtype()))


class TestWarm(base.TestCase):
    """Warm read attachments: kept, unread, until their time runs out."""

    NOW = 1_000_000.0

    def record(self, **fields):
        return dict({'boot': records.boot_id(), 'attachment': 'att',
                     'holders': [], 'device_info': {'path': '/dev/x'},
                     'verified': self.NOW - 10, 'last_read': self.NOW - 10,
                     'warm_until': self.NOW + 100}, **fields)

    def test_kept_warm_on_multiattach_whoever_else_is_alive(self):
        self.assertTrue(rules.worth_keeping_warm(
            True, lambda: {'a', 'b'}, 'a'))

    def test_kept_warm_on_an_exclusive_volume_only_when_alone(self):
        self.assertTrue(rules.worth_keeping_warm(False, lambda: {'a'}, 'a'))
        self.assertFalse(rules.worth_keeping_warm(
            False, lambda: {'a', 'b'}, 'a'))

    def test_not_kept_when_the_hosts_cannot_be_told(self):
        def unreachable():
            raise RuntimeError('etcd down')
        self.assertFalse(rules.worth_keeping_warm(False, unreachable, 'a'))

    def test_warm_is_kept_unheld_and_not_expired(self):
        self.assertTrue(rules.warm(self.record(), self.NOW))
        self.assertFalse(rules.warm(self.record(warm_until=self.NOW - 1),
                                    self.NOW))
        self.assertFalse(rules.warm(
            self.record(holders=[records.process_id()]), self.NOW))
        self.assertFalse(rules.warm(self.record(), self.NOW + 101))

    def test_expired_ones_are_released(self):
        found = {'a': self.record(warm_until=self.NOW - 1), 'b': self.record()}
        self.assertEqual(['a'], list(rules.warm_to_release(
            found, 10, (), self.NOW)))

    def test_wanted_ones_are_released(self):
        found = {'a': self.record(), 'b': self.record()}
        self.assertEqual(['b'], list(rules.warm_to_release(
            found, 10, ['b', 'elsewhere'], self.NOW)))

    def test_beyond_the_limit_the_least_recently_read_go(self):
        found = {v: self.record(last_read=self.NOW - age)
                 for v, age in (('old', 50), ('new', 1), ('mid', 20))}
        self.assertEqual({'old'}, set(rules.warm_to_release(
            found, 2, (), self.NOW)))
        self.assertEqual({'old', 'mid'}, set(rules.warm_to_release(
            found, 1, (), self.NOW)))

    def test_held_or_earlier_boot_ones_are_never_released_here(self):
        found = {'held': self.record(holders=[records.process_id()],
                                     warm_until=self.NOW - 1),
                 'booted': self.record(boot='before',
                                       warm_until=self.NOW - 1),
                 'plain': self.record()}
        del found['plain']['warm_until']
        self.assertEqual({}, rules.warm_to_release(found, 0, ['held'],
                                                   self.NOW))

    def test_trusted_without_cinder(self):
        always = lambda verified: True  # noqa: E731
        self.assertTrue(rules.trusted_without_cinder(
            dict(self.record(), warm_until=time.time() + 100), always))
        self.assertTrue(rules.trusted_without_cinder(
            self.record(holders=[records.process_id()]), always))
        for untrusted in (self.record(boot='before'),
                          self.record(warm_until=0),
                          self.record(attachment=None)):
            self.assertFalse(rules.trusted_without_cinder(untrusted,
                                                          always))
        self.assertFalse(rules.trusted_without_cinder(
            self.record(holders=[records.process_id()]),
            lambda verified: verified > self.NOW))


class TestWarmRecordStale(base.CinderTestCase):

    def setUp(self):
        super(TestWarmRecordStale, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)
        self.att = attachment.Attachment(self.api, self.settings(),
                                         self.volume, False).open()
        self.addCleanup(self.att.close)

    def record(self, **fields):
        return dict({'boot': records.boot_id(), 'attachment': self.att.id,
                     'holders': [], 'device_info': {'path': '/dev/x'},
                     'warm_until': time.time() + 100}, **fields)

    def test_a_warm_record_is_not_stale_while_cinder_has_it(self):
        self.assertIsNone(rules.why_reader_record_stale(
            self.api, self.volume.id, self.record()))
        self.cinder.attachments_api.delete(self.att.id)
        self.assertIn('gone', rules.why_reader_record_stale(
            self.api, self.volume.id, self.record()))

    def test_an_expired_one_is_stale(self):
        self.assertIn('kept warm until', rules.why_reader_record_stale(
            self.api, self.volume.id, self.record(warm_until=1)))
