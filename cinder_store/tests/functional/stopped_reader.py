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

"""A reader process that stops for good at one point of its attach.

    python -m cinder_store.tests.functional.stopped_reader \
        URI BACKEND POINT DIR

At ``POINT`` it creates ``DIR/at-POINT`` and sleeps until it is killed:

* ``created``: Cinder answered ``attachment_create``; the reader has not
  yet recorded the attachment's id;
* ``connected``: os-brick connected the volume on this host; Cinder still
  shows the attachment ``attaching``;
* ``completing``: about to call ``attachment_complete``.

A reader killed *inside* ``attachment_create`` is made with the stack's
stall of the driver's ``initialize_connection`` instead (Cinder then goes
on alone).
"""

import os
import sys
import time

from glance_store import multi_backend
from oslo_context import context as oslo_context

from cinder_store import client
from cinder_store import connection
from cinder_store.tests.functional import base

POINTS = ('created', 'connected', 'completing')


def _stop(sync_dir, point):
    open(os.path.join(sync_dir, 'at-' + point), 'w').close()
    time.sleep(3600)


def _install(point, sync_dir):
    if point == 'created':
        create = client.BoundCinder.attachment_create

        def created(self, *args, **kwargs):
            answer = create(self, *args, **kwargs)
            _stop(sync_dir, point)
            return answer
        client.BoundCinder.attachment_create = created
    elif point == 'connected':
        connect = connection.connect

        def connected(*args, **kwargs):
            answer = connect(*args, **kwargs)
            _stop(sync_dir, point)
            return answer
        connection.connect = connected
    elif point == 'completing':
        def completing(self, attachment_id):
            _stop(sync_dir, point)
        client.BoundCinder.attachment_complete = completing
    else:
        raise ValueError('unknown point %r (%s)' % (point, ', '.join(POINTS)))


def main(uri, backend, point, sync_dir):
    base.load_stores()
    _install(point, sync_dir)
    it, _ = multi_backend.get(uri, backend, context=oslo_context
                              .RequestContext(project_id='functional'))
    for _ in it:
        pass
    raise SystemExit('the reader never stopped at %s' % point)


if __name__ == '__main__':
    main(*sys.argv[1:])
