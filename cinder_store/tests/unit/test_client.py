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

from cinderclient import exceptions as cinder_exc
import ddt
from glance_store import exceptions
from keystoneauth1 import exceptions as ks_exc

from cinder_store import client
from cinder_store.tests.unit import base


@ddt.ddt
class TestErrorMapping(base.CinderTestCase):

    @ddt.data(
        (cinder_exc.NotFound(404, 'gone', request_id='req-1'),
         exceptions.NotFound),
        (cinder_exc.OverLimit(413, 'quota', request_id='req-1'),
         exceptions.StorageFull),
        (cinder_exc.Forbidden(403, 'no', request_id='req-1'),
         exceptions.BackendException),
        (ks_exc.Unauthorized('bad password'), exceptions.BackendException),
    )
    @ddt.unpack
    def test_mapping(self, raised, expected):
        self.cinder.fail('volumes.get', raised, times=-1)
        error = self.assertRaises(expected, self.bound().get_volume, 'v')
        self.assertIn('volume show', str(error))

    def test_request_id_in_message(self):
        self.cinder.fail('volumes.get', cinder_exc.ClientException(
            409, 'conflict', request_id='req-77'), times=-1)
        self.assertRaisesRegex(exceptions.BackendException, 'req-77',
                               self.bound().get_volume, 'v')


@ddt.ddt
class TestRefused(base.CinderTestCase):
    """Did Cinder answer a failed call with a 4xx (so it did nothing)?"""

    @ddt.data(
        (cinder_exc.OverLimit(413, 'quota'), True),
        (cinder_exc.BadRequest(400, 'bad type'), True),
        (cinder_exc.NotFound(404, 'gone'), True),
        (cinder_exc.ClientException(500, 'boom'), False),
        (cinder_exc.ClientException(503, 'busy'), False),
        (ks_exc.ConnectTimeout('timed out'), False),
    )
    @ddt.unpack
    def test_refused(self, raised, answered_4xx):
        self.cinder.fail('volumes.create', raised, times=-1)
        try:
            self.bound(retries=0).create_volume(1, 'v', {}, None)
        except (exceptions.BackendException,
                exceptions.GlanceStoreException) as error:
            self.assertEqual(answered_4xx, client.refused(error))
        else:
            self.fail('create_volume did not raise')

    def test_an_error_of_ours_is_not_a_refusal(self):
        self.assertFalse(client.refused(RuntimeError('bug')))


class TestRetries(base.CinderTestCase):

    def test_connect_failure_retried_even_for_create(self):
        self.cinder.fail('volumes.create', ks_exc.ConnectFailure('refused'),
                         times=2)
        self.bound(retries=2).create_volume(1, 'v', {}, None)
        self.assertEqual(3, self.cinder.calls.count('volumes.create'))

    def test_5xx_retried_for_idempotent_call_only(self):
        api = self.bound(retries=2)
        vol = api.create_volume(1, 'v', {}, None)
        self.cinder.fail('volumes.get', cinder_exc.ClientException(503, 'x'),
                         times=1)
        api.get_volume(vol.id)
        self.assertEqual(2, self.cinder.calls.count('volumes.get'))
        self.cinder.fail('volumes.create',
                         cinder_exc.ClientException(500, 'x'), times=1)
        self.assertRaises(exceptions.BackendException, api.create_volume, 1,
                          'w', {}, None)
        self.assertEqual(2, self.cinder.calls.count('volumes.create'))

    def test_4xx_never_retried(self):
        self.cinder.fail('volumes.get', cinder_exc.BadRequest(400, 'bad'),
                         times=-1)
        self.assertRaises(exceptions.BackendException,
                          self.bound(retries=5).get_volume, 'v')
        self.assertEqual(1, self.cinder.calls.count('volumes.get'))

    def test_attempts_hear_of_every_request_and_refusal(self):
        api = self.bound(attach_attempts=3)
        vol = self.available_volume(api)
        heard = []

        class Attempts(object):
            def sending(self):
                heard.append('sending')

            def refused(self):
                heard.append('refused')
        self.cinder.fail('attachments.create', cinder_exc.BadRequest(
            400, 'Volume status must be available or in-use or '
                 'downloading to reserve'), times=2)
        api.attachment_create(vol.id, {'host': 'h'}, 'ro', Attempts())
        self.assertEqual(['sending', 'refused'] * 2 + ['sending'], heard)

    def test_retry_budget_is_bounded(self):
        self.cinder.fail('volumes.get', ks_exc.ConnectFailure('down'),
                         times=-1)
        self.assertRaises(exceptions.BackendException,
                          self.bound(retries=2).get_volume, 'v')
        self.assertEqual(3, self.cinder.calls.count('volumes.get'))
        self.assertTrue(all(s <= 2.2 for s in self.clock.sleeps))


class TestWaitForStatus(base.CinderTestCase):

    def test_timeout_is_bounded_by_clock(self):
        api = self.bound(timeout=10)
        self.cinder.create_status = ['creating'] * 10000
        vol = api.create_volume(1, 'v', {}, None)
        error = self.assertRaises(client.VolumeStatusError,
                                  api.wait_for_status, vol, 'creating',
                                  'available')
        self.assertIn('creating', str(error))
        self.assertLessEqual(sum(self.clock.sleeps), 12)

    def test_unexpected_status(self):
        api = self.bound()
        self.cinder.create_status = ['error']
        vol = api.create_volume(1, 'v', {}, None)
        self.assertRaisesRegex(client.VolumeStatusError, 'is error',
                               api.wait_for_status, vol, 'creating',
                               'available')

    def test_gib_rounding(self):
        self.assertEqual(1, client.gib(0))
        self.assertEqual(1, client.gib(1))
        self.assertEqual(1, client.gib(1 << 30))
        self.assertEqual(2, client.gib((1 << 30) + 1))

    def test_client_built_with_endpoint_settings(self):
        self.bound().get_volume
        kwargs = self.client_factory.call_args.kwargs
        self.assertEqual('3.54', self.client_factory.call_args.args[0])
        self.assertEqual('public', kwargs['endpoint_type'])
        self.assertEqual('block-storage', kwargs['service_type'])
