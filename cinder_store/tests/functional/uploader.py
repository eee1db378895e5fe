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

"""A Glance worker that stops mid-upload, for a test to kill it.

    python -m cinder_store.tests.functional.uploader BACKEND IMAGE_ID DIR

Uploads a 64 MiB image; after its first 8 MiB were read, creates
``DIR/ready`` and waits (up to 120 s, then fails) for the signal that ends
it.  Plays a worker the OOM killer takes mid-upload.
"""

import os
import sys
import time

from glance_store import multi_backend
from oslo_context import context as oslo_context

from cinder_store.tests.functional import base


class StallingFile(base.PatternFile):

    def __init__(self, size, sync_dir):
        super(StallingFile, self).__init__(size)
        self.sync_dir = sync_dir
        self.served = 0

    def read(self, n=-1):
        if self.served >= 8 * base.MiB:
            open(os.path.join(self.sync_dir, 'ready'), 'w').close()
            time.sleep(120)
            raise RuntimeError('not killed within 120 s')
        data = super(StallingFile, self).read(n)
        self.served += len(data)
        return data


def main(backend, image_id, sync_dir):
    conf = base.load_stores()
    size = 64 * base.MiB
    multi_backend.add_with_multihash(
        conf, image_id, StallingFile(size, sync_dir), size, backend,
        'sha512',
        context=oslo_context.RequestContext(project_id='functional'))


if __name__ == '__main__':
    main(*sys.argv[1:])
