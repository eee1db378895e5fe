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

"""The Zuul jobs run what the local tools run."""

import importlib.util
import os
import re

import testtools
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SELECTION = os.path.join(ROOT, 'tools', 'tempest_job', 'selection.py')


def _jobs():
    with open(os.path.join(ROOT, '.zuul.yaml')) as f:
        return {item['job']['name']: item['job']
                for item in yaml.safe_load(f) if 'job' in item}


def _selection():
    spec = importlib.util.spec_from_file_location('selection', SELECTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@testtools.skipUnless(os.path.exists(SELECTION), 'not a source checkout')
class TestTempestJob(testtools.TestCase):

    def test_the_job_runs_tools_tempests_selection(self):
        selection = _selection()
        job = _jobs()['cinder-store-tempest']
        self.assertEqual(selection.regex(list(selection.SUITES)),
                         job['vars']['tempest_test_regex'])

    def test_the_selection_names_each_suites_tests(self):
        selection = _selection()
        pattern = re.compile(selection.regex(list(selection.SUITES)))
        for test_id in (
                'tempest.api.image.v2.test_images.ImportImagesTest.'
                'test_image_import[id-1,smoke]',
                'tempest.api.volume.test_volumes_actions.VolumesActionsTest.'
                'test_volume_upload[id-2,image]',
                'cinder_tempest_plugin.api.volume.test_volume_dependency.'
                'VolumeImageDependencyTests.test_image_volume_dependencies_3',
                'glance_tempest_plugin.tests.rbac.v2.'
                'test_project_reader_tests.ImagesProjectReaderTests.'
                'test_create_image'):
            self.assertTrue(pattern.search(test_id), test_id)
        for test_id in (
                'tempest.api.volume.test_volumes_actions.VolumesActionsTest.'
                'test_attach_detach_volume_to_instance[id-3,smoke]',
                'cinder_tempest_plugin.api.volume.test_volume_dependency.'
                'VolumeDependencyTests.test_delete_source_volume',
                'glance_tempest_plugin.tests.rbac.v2.metadefs.'
                'test_namespaces.ProjectReaderTests.test_list_namespaces'):
            self.assertFalse(pattern.search(test_id), test_id)
