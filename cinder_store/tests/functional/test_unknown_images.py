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

"""``cinder-store-check`` finds image-volumes Glance no longer knows.

With ``--fix`` it deletes every such volume of the backend, and the other
tests' images stored through glance_store alone are exactly that: it runs
only when ``CINDER_STORE_FUNCTIONAL_ALONE=1`` (``tools/run-tests`` runs it
alone, after the suite).
"""

import hashlib
import os
import time

from cinder_store.tests.functional import base
from cinder_store.tests.functional import test_glance_api

AGE = 2  # cinder_store_unknown_image_volume_age for the check, seconds


class TestUnknownImageVolumes(test_glance_api.GlanceAPITestCase):

    def setUp(self):
        super(TestUnknownImageVolumes, self).setUp()
        if not os.environ.get('CINDER_STORE_FUNCTIONAL_ALONE'):
            self.skipTest('--fix deletes the other tests\' images stored '
                          'through glance_store alone: set '
                          'CINDER_STORE_FUNCTIONAL_ALONE=1 and run it alone')
        self.backend = self.backend_for('block')
        self.age_conf = os.path.join(
            self.useFixture(base.fixtures.TempDir()).path, 'age.conf')
        with open(self.age_conf, 'w') as f:
            f.write('[%s]\ncinder_store_unknown_image_volume_age = %d\n'
                    % (self.backend, AGE))

    def check_backend(self, *args):
        rc, out = self.check('--config-file', self.age_conf, '--backend',
                             self.backend, *args)
        self.assertEqual(0, rc, out)
        return out

    def stored_by_glance(self):
        """A control: an image Glance stored and locates on its volume."""
        data = base.pattern_bytes(base.MiB, seed=71)
        image_id = self.create('known')
        self.assertEqual(204, self.upload(image_id, data,
                                          store=self.backend).status_code)
        return image_id, hashlib.sha256(data).hexdigest()

    def volume_id(self, uri):
        return uri.rsplit('/', 1)[1]

    def wait_idle(self):
        # The rule needs the volume untouched for the age.
        time.sleep(AGE + 1)

    def assert_found_then_deleted(self, volume_id, reason, known):
        out = self.check_backend()
        self.assertIn('  warn   image volumes volume %s: %s' % (
            volume_id, reason), out)
        out = self.check_backend('--fix')
        self.assertIn('  fixed  image volumes volume %s: deleted (%s' % (
            volume_id, reason), out)
        self.assertNotIn(volume_id, {v.id for v in self.cinder.volumes.list(
            search_opts={'all_tenants': 1})})
        image_id, digest = known
        self.assertEqual('active', self.show(image_id)['status'])
        self.assertEqual(digest, self.download_sha256(image_id))
        self.wait_detached(image_id)

    def test_a_worker_killed_right_after_add_returned(self):
        # add returned the location; the worker died before Glance's
        # database update: the image stays queued, nothing points at the
        # volume and no upload record names it any more.
        known = self.stored_by_glance()
        image_id = self.create('add-returned')
        uri = self.add(self.backend, b'x' * base.MiB, image_id=image_id)[0]
        self.wait_idle()
        self.assert_found_then_deleted(
            self.volume_id(uri),
            'its image %s is still queued in Glance' % image_id, known)

    def test_an_image_deleted_while_its_volume_delete_was_refused(self):
        # Glance deleted the image; the volume stayed.
        known = self.stored_by_glance()
        image_id = self.create('deleted')
        uri = self.add(self.backend, b'y' * base.MiB, image_id=image_id)[0]
        self.assertEqual(204, self.image.delete(
            '/images/%s' % image_id).status_code)
        self.wait_idle()
        self.assert_found_then_deleted(
            self.volume_id(uri), 'Glance has no image %s' % image_id, known)
