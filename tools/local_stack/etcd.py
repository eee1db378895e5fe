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

"""etcd (Debian's etcd-server): one member on loopback, away from 2379.

The coordination service: cinder_store's host membership (tooz) and
Cinder's ``[coordination] backend_url`` both use it.
"""

import os

from local_stack import process
from local_stack import settings

DIR = os.path.join(settings.STACK, 'etcd')


def _url(port):
    return 'http://%s:%d' % (settings.HOST, settings.PORTS[port])


def start(state):
    client, peer = _url('etcd'), _url('etcd-peer')
    process.start(state, 'etcd', [
        '/usr/bin/etcd', '--name', 'stack', '--data-dir', DIR,
        '--listen-client-urls', client, '--advertise-client-urls', client,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', 'stack=' + peer,
        '--log-outputs', 'stderr'])
    process.wait_for('etcd', process.http_ok(client + '/health'), 60)
