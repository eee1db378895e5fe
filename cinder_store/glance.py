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

"""Glance's view of an image, as cinder-store-check needs it.

Read with the backend's service credentials, Glance found in the
Keystone catalog (same interface and region as Cinder).  Only what
decides whether an image-volume is still Glance's: the image's status and
the locations Glance keeps for it.
"""

import logging
from typing import Any

from glance_store import exceptions

from cinder_store import auth

LOG = logging.getLogger(__name__)


class GlanceImages(object):
    """Images as the backend's service user sees them.

    It needs the admin role to see other projects' private images, as
    Glance's own service user has.
    """

    def __init__(self, credentials: auth.Credentials):
        if not credentials.has_service_credentials:
            raise exceptions.BadStoreConfiguration(
                store_name='cinder_store',
                reason='reading images from Glance needs service '
                       'credentials')
        self._session = credentials.session
        self._auth = credentials.service
        self._filter = {'service_type': 'image',
                        'interface': credentials.endpoint.interface,
                        'region_name': credentials.endpoint.region}

    def _get_json(self, path: str) -> Any:
        return self._session.get(path, endpoint_filter=self._filter,
                                 auth=self._auth, raise_exc=False)

    def find_image(self, image_id: str) -> dict | None:
        """The image's fields, or None if Glance has no such image.

        Raises ``BackendException`` when Glance answers anything else.
        """
        response = self._get_json('/v2/images/%s' % image_id)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise exceptions.BackendException(
                'Glance answered %s to GET image %s' % (
                    response.status_code, image_id))
        return response.json()

    def image_locations(self, image_id: str, image: dict) -> list[str] | None:
        """Every location URL Glance keeps for the image, or None.

        From the ``locations`` field when Glance shows it
        (``show_multiple_locations``), else from the location API for
        service users (Glance 2024.2 and later).  None
        when Glance shows neither: ``direct_url`` names only the first
        location, too little to tell that a volume is not one of them.
        """
        if 'locations' in image:  # shown already: no second call
            return [loc['url'] for loc in image['locations']]
        response = self._get_json('/v2/images/%s/locations' % image_id)
        if response.status_code == 200:
            return [loc['url'] for loc in response.json()]
        LOG.debug('Glance answered %s to GET locations of image %s',
                  response.status_code, image_id)
        return None
