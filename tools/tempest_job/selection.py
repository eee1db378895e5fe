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

"""The suites run: what touches a store when Glance's default is ours.

Nothing is excluded by name: a test that cannot run here skips for the
reason Tempest gives (a service or feature the cloud lacks), and the
report lists each reason.
"""

# name -> (what it covers, tempest run --regex)
SUITES = {
    'image': (
        "Tempest's image API tests, whole",
        r'^tempest\.api\.image\.'),
    'volume': (
        "Cinder's image tests: the volume tests Tempest tags as using the "
        "image service (volumes from images, uploaded to images, image "
        "metadata) and cinder-tempest-plugin's volumes from images and "
        "image/volume dependencies",
        r'^tempest\.api\.volume\..*\[.*\bimage\b'
        r'|^cinder_tempest_plugin\.api\.volume\.(test_create_from_image'
        r'|test_multiple_volume_from_resource\.CreateVolumesFromImageTest'
        r'|test_volume_dependency\.VolumeImageDependencyTests)'),
    'rbac': (
        "glance-tempest-plugin's image RBAC tests (every persona)",
        r'^glance_tempest_plugin\.tests\.rbac\.v2\.test_\w+\.\w*Image'),
}


def regex(names):
    """One regex for the suites ``names``."""
    return '|'.join('(?:%s)' % SUITES[name][1] for name in names)
