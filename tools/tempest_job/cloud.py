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

"""A cloud as its admin sees it, from a clouds.yaml entry.

Everything tempest.conf says of the cloud is asked of the cloud here
(catalog, Glance's stores and import methods, Cinder's volume types), so
one tool serves the local stack, a devstack, or another cloud.
"""

import yaml

from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session

# Catalog service types Tempest's service_available options stand for
SERVICE_TYPES = {'glance': 'image', 'cinder': 'block-storage',
                 'nova': 'compute', 'neutron': 'network',
                 'swift': 'object-store', 'horizon': 'dashboard'}
# Cinder answers the volume-type listing with extra specs at this version
VOLUME_API = {'OpenStack-API-Version': 'volume 3.0'}


def cinder_cache_entry(volume):
    """Is ``volume`` (Cinder's dict) an entry of Cinder's image cache?"""
    name = volume.get('name') or ''
    return (name.startswith('image-') and
            'glance_image_id' not in (volume.get('metadata') or {}))


class Cloud(object):
    """The ``name`` entry of ``clouds_file``, authenticated as written."""

    def __init__(self, clouds_file, name):
        with open(clouds_file) as f:
            entry = yaml.safe_load(f)['clouds'][name]
        self.auth = dict(entry['auth'])
        self.region = entry.get('region_name') or 'RegionOne'
        self.verify = entry.get('cacert', True)
        self.session = ks_session.Session(
            auth=v3.Password(**self.auth), verify=self.verify)

    def _call(self, method, service_type, path, **kwargs):
        return self.session.request(
            path, method, endpoint_filter={
                'service_type': service_type, 'interface': 'public',
                'region_name': self.region}, **kwargs)

    def get(self, service_type, path, **kwargs):
        return self._call('GET', service_type, path, **kwargs).json()

    def services(self):
        """Tempest's service names whose service the catalog lists."""
        catalog = self.session.auth.get_access(self.session).service_catalog
        return {name for name, stype in SERVICE_TYPES.items()
                if catalog.get_endpoints(service_type=stype,
                                         region_name=self.region)}

    def volume_catalog_type(self):
        """The catalog type Cinder's v3 endpoint is listed under."""
        catalog = self.session.auth.get_access(self.session).service_catalog
        for stype in ('block-storage', 'volumev3'):
            if catalog.get_endpoints(service_type=stype,
                                     region_name=self.region):
                return stype
        return 'block-storage'

    def stores(self):
        """Glance's stores, ``{'id', 'default', 'description'...}``."""
        return self.get('image', '/v2/info/stores').get('stores', [])

    def import_methods(self):
        return self.get('image', '/v2/info/import').get(
            'import-methods', {}).get('value', [])

    def multiattach_type(self):
        """A public volume type that makes multiattach volumes, or None."""
        types = self.get('block-storage', '/types',
                         headers=VOLUME_API)['volume_types']
        for volume_type in sorted(types, key=lambda t: t['name']):
            specs = volume_type.get('extra_specs') or {}
            if str(specs.get('multiattach', '')).lower() == '<is> true':
                return volume_type['name']
        return None

    def image_ids(self):
        """Every image the admin sees (all projects')."""
        return set(self.image_statuses())

    def image_statuses(self):
        """``{image id: status}`` of every image the admin sees."""
        found, path = {}, '/v2/images?limit=200'
        while path:
            page = self.get('image', path)
            found.update((image['id'], image['status'])
                         for image in page['images'])
            path = page.get('next')
        return found

    def volume_ids(self):
        """Every volume of every project but Cinder's image cache's.

        With ``image_volume_cache_enabled`` (devstack's default) Cinder
        keeps a volume named ``image-<image id>`` in its internal project
        for each image it created a volume from, past the image's delete,
        until it evicts it: Cinder's, not a leak.  cinder_store's
        image-volumes carry ``glance_image_id`` in their metadata; a
        cache entry does not.
        """
        volumes = self.get('block-storage', '/volumes/detail?all_tenants=1',
                           headers=VOLUME_API)['volumes']
        return {v['id'] for v in volumes if not cinder_cache_entry(v)}

    def create_image(self, name, data, disk_format='raw'):
        """A public image holding ``data`` in Glance's default store."""
        image = self._call('POST', 'image', '/v2/images', json={
            'name': name, 'disk_format': disk_format,
            'container_format': 'bare', 'visibility': 'public'}).json()
        self._call('PUT', 'image', '/v2/images/%s/file' % image['id'],
                   data=data, headers={
                       'Content-Type': 'application/octet-stream'})
        return image['id']

    def delete_image(self, image_id):
        self._call('DELETE', 'image', '/v2/images/%s' % image_id,
                   raise_exc=False)
