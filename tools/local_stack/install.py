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

"""What the stack needs on the machine: Debian packages and a virtualenv."""

import hashlib
import os
import subprocess
import sys

from local_stack import process
from local_stack import settings


def install_apt():
    missing = [p for p in settings.APT_PACKAGES
               if subprocess.run(['dpkg', '-s', p], capture_output=True)
               .returncode != 0]
    if not missing:
        return
    process.say('apt: installing %s', ' '.join(missing))
    # Package scripts must not start the system's rabbitmq/mariadb on the
    # ports this stack uses: deny service starts for the install's length
    # unless the machine already does (Debian's policy-rc.d convention).
    policy = '/usr/sbin/policy-rc.d'
    added = not os.path.exists(policy)
    if added:
        with open(policy, 'w') as f:
            f.write('#!/bin/sh\nexit 101\n')
        os.chmod(policy, 0o755)
    try:
        process.run('apt-get', 'update', '-qq')
        process.run('apt-get', 'install', '-y', '-qq',
                    '--no-install-recommends', *missing,
                    env={'DEBIAN_FRONTEND': 'noninteractive'})
    finally:
        if added:
            os.unlink(policy)


def _stamp():
    h = hashlib.sha256()
    for name in ('constraints.txt', 'requirements.txt', 'setup.cfg'):
        with open(os.path.join(settings.ROOT, name), 'rb') as f:
            h.update(f.read())
    h.update(' '.join(settings.PIP_PACKAGES).encode())
    h.update(settings.ROOT.encode())
    return h.hexdigest()


def install_venv():
    stamp_file = os.path.join(settings.VENV, '.cinder_store-stamp')
    stamp = _stamp()
    try:
        with open(stamp_file) as f:
            if f.read() == stamp:
                return
    except FileNotFoundError:
        pass
    process.say('pip: building %s (a minute on a fresh machine)',
                settings.VENV)
    if not os.path.exists(os.path.join(settings.BIN, 'python')):
        process.run(sys.executable, '-m', 'venv', settings.VENV)
    pip = (os.path.join(settings.BIN, 'pip'), 'install', '-q', '-c',
           settings.CONSTRAINTS)
    process.run(*pip, 'pip', 'wheel', 'setuptools')
    process.run(*pip, *settings.PIP_PACKAGES)
    process.run(*pip, '-e', settings.ROOT)
    with open(stamp_file, 'w') as f:
        f.write(stamp)


def link_ceph_bindings():
    process.run(sys.executable,
                os.path.join(settings.ROOT, 'tools', 'ceph_bindings.py'),
                settings.BIN + '/python')


def setup(phase):
    """Run a phase of ``tools/stack_setup.py`` in the stack's venv."""
    process.run(settings.BIN + '/python',
                os.path.join(settings.ROOT, 'tools', 'stack_setup.py'),
                phase)
