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

"""HAProxy (Debian's package) in front of the Glance hosts.

Its port is the image endpoint in Keystone's catalog, as in a
kolla-ansible or OpenStack-Ansible deployment: requests go round-robin
to the hosts that answer Glance's version document.
"""

import os

from local_stack import process
from local_stack import settings

CONF = os.path.join(settings.STACK, 'haproxy.cfg')


def config():
    lines = [
        'global',
        '    maxconn 2000',
        'defaults',
        '    mode http',
        '    timeout connect 5s',
        # Image transfers of gigabytes, and downloads that wait their turn
        # for a volume another host holds
        '    timeout client 900s',
        '    timeout server 900s',
        'frontend glance',
        '    bind %s:%d' % (settings.HOST, settings.PORTS['glance']),
        '    default_backend glance_hosts',
        'backend glance_hosts',
        '    balance roundrobin',
        '    option httpchk GET /versions',
        '    default-server inter 2s fall 2 rise 1',
    ]
    lines += ['    server %s %s:%d check'
              % (name, settings.HOST, settings.PORTS[name])
              for name in settings.GLANCE_SERVICES]
    return '\n'.join(lines) + '\n'


def write_config():
    process.write(CONF, config())


def start(state):
    process.start(state, 'haproxy', ['/usr/sbin/haproxy', '-db', '-f', CONF])
    process.wait_for('haproxy', process.http_ok(settings.GLANCE_URL +
                                                '/versions'), 30)
