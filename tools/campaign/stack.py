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

"""The local stack, as the campaign reaches it."""

import configparser
import json
import os

from local_stack import settings


def fault_dir(backend):
    """The loop-file driver's fault directory for ``backend``, or None."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(settings.CINDER_CONF)
    if not conf.has_option(backend, 'loopfile_volume_dir'):
        return None
    return os.path.join(conf.get(backend, 'loopfile_volume_dir'), 'faults')


def pids():
    """The stack's services and their process ids."""
    try:
        with open(settings.STATE) as f:
            return json.load(f)['pids']
    except (OSError, ValueError, KeyError):
        return {}


def signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def admin_cinder():
    """A cinderclient of the stack's admin."""
    from cinderclient import client as cinder_client
    import openstack
    os.environ.setdefault('OS_CLIENT_CONFIG_FILE', settings.CLOUDS)
    return cinder_client.Client('3.54', session=openstack.connect(
        cloud='stack-admin').session)
