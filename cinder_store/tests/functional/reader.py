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

"""A separate process reading one image from several threads at once.

    python -m cinder_store.tests.functional.reader URI BACKEND THREADS [DIR]

Prints one sha256 per read; exits non-zero if any read failed.  Used to
play several Glance workers reading one image-volume.  With ``DIR``, each
read stops after its first chunk, creates ``DIR/ready-<pid>-<n>`` and goes
on only once ``DIR/go`` exists: the test sees every reader mid-download.
With ``$CINDER_STORE_FUNCTIONAL_START`` (a path), the reader loads the
stores, creates ``<path>.ready-<pid>`` and starts reading only once the
path exists: the test starts readers the moment it chooses.
"""

import concurrent.futures
import hashlib
import os
import sys
import time

from glance_store import multi_backend
from oslo_context import context as oslo_context

from cinder_store.tests.functional import base


def read(uri, backend, sync_dir=None, n=0):
    it, _ = multi_backend.get(uri, backend, context=oslo_context
                              .RequestContext(project_id='functional'))
    digest = hashlib.sha256()
    for chunk in it:
        digest.update(chunk)
        if sync_dir:
            _meet(sync_dir, n)
            sync_dir = None
    return digest.hexdigest()


def _meet(sync_dir, n):
    open(os.path.join(sync_dir, 'ready-%d-%d' % (os.getpid(), n)),
         'w').close()
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(sync_dir, 'go')):
        if time.monotonic() > deadline:
            raise RuntimeError('no go after 120 s')
        time.sleep(0.02)


def _wait_for_start():
    start = os.environ.get('CINDER_STORE_FUNCTIONAL_START')
    if not start:
        return
    open('%s.ready-%d' % (start, os.getpid()), 'w').close()
    deadline = time.monotonic() + 300
    while not os.path.exists(start):
        if time.monotonic() > deadline:
            raise RuntimeError('no start after 300 s')
        time.sleep(0.02)


def main(uri, backend, threads, sync_dir=None):
    base.load_stores()
    _wait_for_start()
    with concurrent.futures.ThreadPoolExecutor(int(threads)) as pool:
        digests = list(pool.map(lambda n: read(uri, backend, sync_dir, n),
                                range(int(threads))))
    print('\n'.join(digests))


if __name__ == '__main__':
    main(*sys.argv[1:])
