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

"""tempest.conf for a cloud, from what the cloud says of itself.

Only what differs from Tempest's defaults, each with why.  Features the
cloud cannot show through its API (image conversion on import) are the
caller's word.
"""

import configparser

# Services Tempest would test if told they exist; none runs here
OTHER_SERVICES = ('nova', 'neutron', 'swift', 'horizon')


def sections(cloud, image_ref, web_urls, image_conversion, log_file):
    """tempest.conf's sections for ``cloud`` (a :class:`cloud.Cloud`).

    ``image_ref``: an image of the cloud Cinder's volume-from-image tests
    use (Tempest's compute image, although no Nova runs); ``web_urls``:
    :func:`web.serving`'s.
    """
    auth = cloud.auth
    services = cloud.services()
    multiattach = cloud.multiattach_type()
    return {
        'DEFAULT': {'log_file': log_file, 'use_stderr': 'false'},
        'auth': {
            # Each test class gets projects and users of its own, so the
            # RBAC tests' personas (admin, member, reader) are real ones.
            # tempest_roles stays unset: it would give every persona the
            # member role.
            'use_dynamic_credentials': 'true',
            'create_isolated_networks': 'false',
            'admin_username': auth['username'],
            'admin_password': auth['password'],
            'admin_project_name': auth['project_name'],
            'admin_domain_name': auth.get('user_domain_name', 'Default'),
        },
        'identity': {'uri_v3': identity_v3(auth['auth_url']),
                     'auth_version': 'v3',
                     'region': cloud.region},
        'service_available': dict(
            {name: str(name in services).lower()
             for name in ('glance', 'cinder')},
            **{name: str(name in services).lower()
               for name in OTHER_SERVICES}),
        # oslo.policy enforces scope in these releases
        'enforce_scope': {'glance': 'true', 'cinder': 'true'},
        'image': {'region': cloud.region,
                  'http_image': web_urls['image.bin'],
                  'http_qcow2_image': web_urls['image.qcow2']},
        'image-feature-enabled': {
            'import_image': str(bool(cloud.import_methods())).lower(),
            'os_glance_reserved': 'true',
            'image_conversion': str(image_conversion).lower(),
            'do_secure_hash': 'true',
            # A location API for users is off, as OSSN-0090 asks
            'manage_locations': 'false',
            'http_store_enabled': 'false',
        },
        'volume': dict({
            'catalog_type': cloud.volume_catalog_type(),
            'region': cloud.region, 'max_microversion': 'latest'},
            **({'volume_type_multiattach': multiattach}
               if multiattach else {})),
        'volume-feature-enabled': {
            'backup': 'false',
            'multi_backend': 'false',
            # cinder-tempest-plugin's image/volume dependency tests
            'enable_volume_image_dep_tests': 'true',
        },
        'compute': {'image_ref': image_ref, 'image_ref_alt': image_ref},
    }


def identity_v3(auth_url):
    """Keystone's v3 endpoint of ``auth_url``, as Tempest's uri_v3 wants.

    clouds.yaml may name the unversioned root (devstack's
    ``http://host/identity``); Tempest appends ``/auth/tokens`` to it.
    """
    url = auth_url.rstrip('/')
    return url if url.endswith('/v3') else url + '/v3'


def write(path, parts):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    for name, values in parts.items():
        if name != 'DEFAULT':
            parser.add_section(name)
        for key, value in values.items():
            parser.set(name, key, value)
    with open(path, 'w') as f:
        parser.write(f)
