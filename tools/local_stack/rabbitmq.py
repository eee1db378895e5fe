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

"""RabbitMQ (and its epmd) for Cinder's RPC, on 127.0.0.1."""

import os

from local_stack import process
from local_stack import settings

DIR = os.path.join(settings.STACK, 'rabbitmq')
URL = 'rabbit://guest:guest@%s:%d/' % (settings.HOST,
                                       settings.PORTS['rabbitmq'])


def env():
    dist = '-kernel inet_dist_use_interface {127,0,0,1}'
    return {
        'HOME': DIR, 'RABBITMQ_NODENAME': 'rabbit@localhost',
        'RABBITMQ_NODE_IP_ADDRESS': settings.HOST,
        'RABBITMQ_NODE_PORT': str(settings.PORTS['rabbitmq']),
        'RABBITMQ_DIST_PORT': str(settings.PORTS['rabbitmq-dist']),
        'ERL_EPMD_ADDRESS': settings.HOST,
        'ERL_EPMD_PORT': str(settings.PORTS['epmd']),
        'RABBITMQ_MNESIA_BASE': DIR + '/mnesia',
        'RABBITMQ_LOG_BASE': settings.LOGS,
        'RABBITMQ_CONFIG_FILE': DIR + '/rabbitmq.conf',
        'RABBITMQ_ENABLED_PLUGINS_FILE': DIR + '/enabled_plugins',
        'RABBITMQ_PID_FILE': DIR + '/rabbit.pid',
        'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS': dist,
        'RABBITMQ_CTL_ERL_ARGS': dist,
    }


def write_config():
    process.write(os.path.join(DIR, 'rabbitmq.conf'),
                  'listeners.tcp.default = %s:%d\n'
                  % (settings.HOST, settings.PORTS['rabbitmq']))
    process.write(os.path.join(DIR, 'enabled_plugins'), '[].\n')


def start(state):
    process.start(state, 'epmd', ['/usr/bin/epmd', '-address',
                                  settings.HOST, '-port',
                                  str(settings.PORTS['epmd'])])
    os.makedirs(DIR, exist_ok=True)
    if process.start(state, 'rabbitmq',
                     ['/usr/lib/rabbitmq/bin/rabbitmq-server'], env=env()):
        process.wait_for('rabbitmq',
                         lambda: process.port_open(
                             settings.PORTS['rabbitmq']), 60)
