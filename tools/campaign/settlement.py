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

"""After the operations: recovery, read-back, deletion, what is left.

What killed hosts held must be released by the survivors with no
operator action; then every host runs ``cinder-store-check --fix``, every
image believed stored is read back and compared, everything is deleted,
and what is left is counted (:mod:`cinder_store.tests.functional.
leftovers`, the functional suite's definition).
"""

import os
import subprocess
import sys
import tempfile
import time

from campaign import stack
from local_stack import settings


def wait_for_lost_hosts(ledger, timeout=180):
    """Seconds until nothing in Cinder names a killed host."""
    cinder = stack.admin_cinder()
    dead = set(ledger.dead_hosts)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        volumes = cinder.volumes.list(search_opts={'all_tenants': 1})
        held = [v for v in volumes if {a['host_name'] for a in
                                       v.attachments} & dead]
        unfinished = [v for v in volumes if v.metadata.get(
            'cinder_store_upload_host') in dead and str(
                v.metadata.get('readonly')).lower() != 'true']
        if not held and not unfinished:
            return round(time.monotonic() - t0)
        time.sleep(2)
    ledger.add_unexpected(
        'what killed hosts held was not released within %ds' % timeout, {
            'held': ['%s %s %s' % (v.id, v.status, v.attachments)
                     for v in held],
            'unfinished uploads': ['%s %s' % (v.id, v.status)
                                   for v in unfinished]})
    return timeout


def run_fix(ledger, backend, config_files, host_name=None):
    """``cinder-store-check --fix`` as a host would run it: its lines."""
    args = [sys.executable, '-m', 'cinder_store.cmd.check',
            '--backend', backend, '--fix']
    for f in config_files:
        args += ['--config-file', f]
    if host_name:
        args = ['unshare', '--uts', 'sh', '-c',
                'hostname "$0" && exec "$@"', host_name] + args
    result = subprocess.run(args, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONWARNINGS='ignore'))
    if result.returncode:
        ledger.add_unexpected('check --fix failed on %s (%s)' % (
            backend, host_name or 'this host'), result.stdout[-2000:])
    return [line.strip() for line in result.stdout.splitlines()
            if line.strip().startswith(('fixed', 'FAIL', 'warn'))]


def read_back_and_delete(ledger, worker):
    """(unreadable, undeletable): read what is stored, delete it all."""
    unreadable, undeletable = [], []
    for image, (backend, uri, digest) in sorted(ledger.stored.items()):
        answer = worker.call({'op': 'get', 'uri': uri, 'backend': backend})
        if not answer or not answer['ok'] or answer['sha256'] != digest:
            unreadable.append((image, answer))
    everything = dict(ledger.maybe)
    everything.update({i: (b, u) for i, (b, u, _) in ledger.stored.items()})
    # An add that completed as its worker was killed: Glance never learnt
    # its location either (the image stays 'saving'); delete it as
    # Glance's image delete would not.
    for image, uri in lost_answers(ledger).items():
        ledger.counts['adds done as their worker died'] += 1
        everything[image] = (ledger.adds[image], uri)
    for image, (backend, uri) in sorted(everything.items()):
        answer = worker.call({'op': 'delete', 'uri': uri,
                              'backend': backend})
        if not answer or not (answer['ok'] or answer.get('not_found')):
            undeletable.append((image, answer))
    return unreadable, undeletable


def lost_answers(ledger):
    """image id -> location of killed adds whose volume is complete."""
    cinder = stack.admin_cinder()
    answered = set(ledger.believed) | set(ledger.maybe)
    names = {'image-%s' % i: i for i in ledger.adds if i not in answered}
    found = {}
    for volume in cinder.volumes.list(search_opts={'all_tenants': 1}):
        image = names.get(volume.name)
        if image and volume.status == 'available':
            found[image] = 'cinder://%s/%s' % (ledger.adds[image],
                                               volume.id)
    return found


def count_leftovers(ledger, lock_dirs, timeout=120):
    """What the campaign's images left, once Cinder deleted their volumes."""
    from cinder_store.tests.functional import leftovers
    cinder = stack.admin_cinder()
    deadline = time.monotonic() + timeout
    while True:  # Cinder deletes asynchronously
        found = leftovers.find(cinder, ledger.adds, lock_dirs,
                               tmp_dirs=[tempfile.gettempdir()])
        if not found['volumes'] or time.monotonic() > deadline:
            return found
        time.sleep(1)


def lock_dirs(hosts):
    """This host's lock directory and each campaign host's."""
    return [settings.GLANCE_LOCKS] + [h.locks for h in hosts]
