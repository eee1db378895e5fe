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

"""``cinder://`` locations, the same format as the in-tree driver.

We write ``cinder://<backend-id>/<volume-uuid>`` and read that and the
single-store ``cinder://<volume-uuid>``, so images written by the in-tree
driver are read unchanged and Cinder's image-volume clone path keeps
working.  Glance's legacy-location migration joins ``url_prefix`` and the
volume id with a "/", which may leave ``cinder://<id>//<uuid>``; that one
artefact is accepted and normalised.
"""

import urllib.parse

from glance_store import exceptions
from glance_store import location
from oslo_utils import uuidutils

SCHEME = 'cinder'


def _bad_location(uri: str, why: str) -> exceptions.BadStoreUri:
    return exceptions.BadStoreUri(
        message='invalid cinder location %r: %s' % (uri, why))


class StoreLocation(location.StoreLocation):
    """``specs``: ``volume_id`` and, for multi-store, ``backend``."""

    def process_specs(self) -> None:
        self.volume_id = self.specs.get('volume_id')
        self.backend = self.specs.get('backend')

    def get_uri(self) -> str:
        if self.backend:
            return '%s://%s/%s' % (SCHEME, self.backend, self.volume_id)
        return '%s://%s' % (SCHEME, self.volume_id)

    def parse_uri(self, uri: str) -> None:
        if not isinstance(uri, str) or not uri.startswith(SCHEME + '://'):
            raise _bad_location(uri, 'it must start with cinder://')
        parts = urllib.parse.urlsplit(uri)
        if parts.query or parts.fragment:
            raise _bad_location(uri, 'a query or fragment is not allowed')
        path = [p for p in parts.path.split('/') if p]
        if parts.path.count('/') > 2 or len(path) > 1:
            raise _bad_location(uri, 'expected cinder://<backend>/<volume-id> '
                                'or cinder://<volume-id>')
        if path:
            backend, volume_id = parts.netloc, path[0]
            if not backend:
                raise _bad_location(uri, 'the backend id is empty')
        else:
            backend, volume_id = None, parts.netloc
        if not uuidutils.is_uuid_like(volume_id):
            raise _bad_location(uri, '%r is not a volume UUID' % volume_id)
        self.backend = backend
        self.volume_id = volume_id
