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

"""A Glance worker that keeps its read attachments warm.

    python -m cinder_store.tests.functional.warm_reader \
        URI BACKEND IDLE COORDINATED DIR

Loads the stores with ``cinder_store_warm_read_idle = IDLE`` (and without
a coordination service unless ``COORDINATED`` is ``1``), reads the image
once (cold), waits until its keeper has looked at the group, reads it
again (which confirms the record with Cinder if the cold read recorded it
before that look) and a third time (warm), and prints, as JSON, the cold
and the warm read's digest and the Cinder requests each made.  Then
creates ``DIR/warm`` and lives on, its keeper looking after the warm
attachment, until killed.
"""

import json
import os
import sys
import time

from glance_store import multi_backend
from keystoneauth1 import session as ks_session

from cinder_store.tests.functional import reader
from cinder_store.tests.functional import stores

_requests = []


def _count_requests():
    """Note every request this process sends to Cinder (the URL)."""
    send = ks_session.Session.request

    def counting(self, url, method, *args, **kwargs):
        _requests.append('%s %s' % (method, url))
        return send(self, url, method, *args, **kwargs)
    ks_session.Session.request = counting


def _counted_read(uri, backend):
    del _requests[:]
    digest = reader.read(uri, backend)
    return digest, list(_requests)


def main(uri, backend, idle, coordinated, sync_dir):
    os.environ['CINDER_STORE_FUNCTIONAL_WARM'] = idle
    if coordinated != '1':
        os.environ['CINDER_STORE_FUNCTIONAL_UNCOORDINATED'] = '1'
    stores.load_stores()
    _count_requests()
    cold = _counted_read(uri, backend)
    members = multi_backend.get_store_from_store_identifier(
        backend).maintenance().settings.membership
    deadline = time.monotonic() + 30
    while not members.trusts(time.time()):
        if time.monotonic() > deadline:
            raise RuntimeError('the keeper never looked at the group')
        time.sleep(0.2)
    reader.read(uri, backend)
    warm = _counted_read(uri, backend)
    print(json.dumps({'cold': cold, 'warm': warm}), flush=True)
    open(os.path.join(sync_dir, 'warm'), 'w').close()
    while True:
        time.sleep(3600)


if __name__ == '__main__':
    main(*sys.argv[1:])
