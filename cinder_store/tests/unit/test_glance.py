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

from unittest import mock

from glance_store import exceptions

from cinder_store import auth
from cinder_store import glance
from cinder_store.tests.unit import base
from cinder_store.tests.unit import test_auth


class Response(object):

    def __init__(self, status_code, body=None):
        self.status_code = status_code
        self._body = body

    def json(self):
        return self._body


class TestGlanceImages(base.TestCase):

    def setUp(self):
        super(TestGlanceImages, self).setUp()
        views = test_auth.TestCredentials('service_view')
        creds = auth.Credentials(views.service_view(
            cinder_store_interface='internal',
            cinder_store_region_name='R1'))
        self.get = self.useFixture(base.fixtures.MockPatchObject(
            creds.session, 'get')).mock
        self.images = glance.GlanceImages(creds)

    def test_asks_glance_from_the_catalog_as_the_service_user(self):
        self.get.return_value = Response(200, {'status': 'active'})
        self.assertEqual({'status': 'active'}, self.images.find_image('img-1'))
        self.get.assert_called_once_with(
            '/v2/images/img-1', endpoint_filter={
                'service_type': 'image', 'interface': 'internal',
                'region_name': 'R1'}, auth=mock.ANY, raise_exc=False)

    def test_an_image_glance_does_not_have_is_none(self):
        self.get.return_value = Response(404)
        self.assertIsNone(self.images.find_image('img-1'))

    def test_any_other_answer_is_an_error(self):
        self.get.return_value = Response(503)
        self.assertRaisesRegex(exceptions.BackendException, '503',
                               self.images.find_image, 'img-1')

    def test_locations_from_the_location_api(self):
        self.get.return_value = Response(200, [{'url': 'cinder://b/v1'}])
        self.assertEqual(['cinder://b/v1'],
                         self.images.image_locations('img-1', {}))

    def test_locations_from_the_image_without_the_location_api(self):
        self.get.return_value = Response(403)
        image = {'locations': [{'url': 'cinder://b/v1'}],
                 'direct_url': 'cinder://b/v1'}
        self.assertEqual(['cinder://b/v1'],
                         self.images.image_locations('img-1', image))

    def test_direct_url_alone_is_not_enough_to_tell(self):
        self.get.return_value = Response(404)
        self.assertIsNone(self.images.image_locations(
            'img-1', {'direct_url': 'cinder://b/v1'}))

    def test_service_credentials_are_needed(self):
        views = test_auth.TestCredentials('view')
        self.assertRaises(exceptions.BadStoreConfiguration,
                          glance.GlanceImages,
                          auth.Credentials(views.view()))
