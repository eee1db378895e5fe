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

"""Stored images survive the local stack's restart and down + up.

It stops every service under the other tests, so it runs only when
``CINDER_STORE_FUNCTIONAL_ALONE=1`` (``tools/run-tests`` runs it alone,
after the suite).
"""

import hashlib
import os
import subprocess
import sys

from cinder_store.tests.functional import base
from cinder_store.tests.functional import stores
from cinder_store.tests.functional import test_glance_api

STACK = os.path.join(stores.ROOT, 'tools', 'stack')


class TestRestart(test_glance_api.GlanceAPITestCase):

    def setUp(self):
        super(TestRestart, self).setUp()
        if not os.environ.get('CINDER_STORE_FUNCTIONAL_ALONE'):
            self.skipTest('it restarts the stack under every other test: '
                          'set CINDER_STORE_FUNCTIONAL_ALONE=1 and run it '
                          'alone')
        if base.target()[2] != 'stack-admin':
            self.skipTest('restarts only the local stack')

    def stack(self, *args):
        subprocess.run([sys.executable, STACK] + list(args), check=True,
                       timeout=600, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, STACK_DIR=base.STACK_DIR))

    def stored(self):
        """One image per backend, the in-tree ones included: id -> sha256."""
        images = {}
        backends = list(base.our_backends(self.conf))
        backends += [b for b in ('upstream', 'upstream-rbd')
                     if b in self.conf.enabled_backends]
        for seed, store in enumerate(backends):
            data = base.pattern_bytes(5 * base.MiB + seed, seed=60 + seed)
            image_id = self.create('restart-%s' % store)
            self.assertEqual(204, self.upload(image_id, data,
                                              store=store).status_code)
            images[image_id] = hashlib.sha256(data).hexdigest()
        return images

    def assert_read_back(self, images):
        for image_id, digest in images.items():
            self.assertEqual('active', self.show(image_id)['status'])
            self.assertEqual(digest, self.download_sha256(image_id))

    def test_images_survive_restart_and_down_up(self):
        images = self.stored()
        self.stack('restart', 'glance', 'cinder', 'ceph')
        self.assert_read_back(images)
        self.stack('down')
        self.stack('up')
        self.assert_read_back(images)
        for image_id in images:
            self.wait_detached(image_id)
