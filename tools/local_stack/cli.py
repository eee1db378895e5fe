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

"""A real local OpenStack for cinder_store, on 127.0.0.1.

    tools/stack up       install what is missing, start everything (idempotent,
                         whatever is stored)
    tools/stack restart [SERVICE...]
                         stop the named services (all if none; `cinder`,
                         `ceph` and `glance` name all of theirs; one Glance
                         host is glance-N) by PID, then `up`: configs are
                         written again with the overrides, state and images
                         kept
    tools/stack down     stop exactly what `up` started; release loop devices
    tools/stack status   what runs, where, and what it uses
    tools/stack wipe     down, then remove the state directory
    tools/stack demo     up if needed, then store/read/verify/delete an image
                         through Glance with cinder_store, with timings
    tools/stack check    fail if any volume, attachment or loop device is left

RabbitMQ, MariaDB, etcd, Keystone (gunicorn), Cinder api/scheduler/volume
with three loop-file backends (block, file, multiattach) and Glance
(gunicorn) with cinder_store on each volume type plus the in-tree driver
as `upstream` (volume type `upstream`, on Cinder's `block` backend).
Glance runs as $STACK_GLANCE_HOSTS hosts (default 3: glance-1 under this
machine's host name, glance-2.. each in a UTS namespace of its own) behind
HAProxy, the catalog's image endpoint; they and Cinder coordinate through
etcd.  The workflows around the store are on: interoperable import
(glance-direct, web-download from 127.0.0.1:18080, copy-image), Cinder's
direct clone of image-volumes and image_upload_use_cinder_backend, Glance's
location API for the service user.

Overrides: `$STACK_DIR/overrides/<service>.conf` (keystone, cinder or
glance), in ini form, is laid over that service's generated configuration
on every `up`/`restart`; a key with an empty value is removed.
State lives in $STACK_DIR (default .stack/ in the checkout); the virtualenv
in $STACK_VENV (default $STACK_DIR/venv); volume files in $STACK_VOLUMES_DIR
(default $STACK_DIR/volumes; point it at /dev/shm for benchmarks).
Ceph (one mon, mgr and OSD on a file) backs Cinder's `rbd` backend.

One module per service (rabbitmq, mariadb, etcd, ceph, keystone, cinder,
glance, haproxy), each writing its configuration and starting its processes;
`settings` holds every constant, `process` the processes and files,
`install` the packages and the virtualenv.  Standard library only: it
runs before any virtualenv exists.
"""

import os
import shutil
import socket
import subprocess
import sys
import time

from local_stack import ceph
from local_stack import cinder
from local_stack import etcd
from local_stack import glance
from local_stack import haproxy
from local_stack import install
from local_stack import keystone
from local_stack import mariadb
from local_stack import process
from local_stack import rabbitmq
from local_stack import settings

say = process.say


def check_ports(state):
    ours = {n for n, p in state['pids'].items() if process.alive(p)}
    taken = [('%s:%d' % (n, p)) for n, p in settings.PORTS.items()
             if settings.PORT_OWNERS[n] not in ours and process.port_open(p)]
    if taken:
        raise process.StackError(
            'ports already taken by something this stack did not start: %s. '
            'Stop it or run `tools/stack down`.' % ', '.join(taken))


def write_configs():
    keystone.write_config()
    cinder.write_config()
    glance.write_config()
    haproxy.write_config()
    keystone.write_clouds()
    mariadb.write_config()
    rabbitmq.write_config()


def up():
    t0 = time.monotonic()
    os.makedirs(settings.LOGS, exist_ok=True)
    state = process.load_state()
    check_ports(state)
    install.install_apt()
    install.install_venv()
    install.link_ceph_bindings()
    t_install = time.monotonic() - t0
    write_configs()
    rabbitmq.start(state)
    mariadb.start(state)
    etcd.start(state)
    ceph.start(state)
    keystone.start(state)
    cinder.start(state)
    glance.start(state)
    haproxy.start(state)
    say('up in %.1fs (install %.1fs, services %.1fs)',
        time.monotonic() - t0, t_install, time.monotonic() - t0 - t_install)
    status()


def drain_glance_hosts():
    """Release the read attachments each Glance host keeps warm.

    ``down`` releases the loop devices under them: a warm attachment
    would outlive its device.  Only while Glance and Cinder run.
    """
    state = process.load_state()
    if not all(process.alive(state['pids'].get(n, 0) or 0)
               for n in ('cinder-api', 'cinder-volume', 'keystone')):
        return
    for glance_host in glance.hosts():
        command = [settings.BIN + '/cinder-store-check', '--config-file',
                   glance_host.conf, '--drain']
        if glance_host.host_name:
            command = ['unshare', '--uts', 'sh', '-c',
                       'hostname "$0" && exec "$@"',
                       glance_host.host_name] + command
        subprocess.run(command, capture_output=True, timeout=300,
                       env=dict(os.environ, **settings.QUIET_ENV))


def down():
    drain_glance_hosts()
    pids = process.stop(list(process.load_state()['pids']))
    released = 0
    for device in process.loop_devices_under(settings.VOLUMES):
        subprocess.run(['losetup', '-d', device], capture_output=True)
        released += 1
    ceph.forget_etc_keyring()
    glance.forget_host_names()
    say('down: stopped %d services, released %d loop devices', len(pids),
        released)


def restart():
    names = []
    for name in sys.argv[2:] or settings.SERVICES:
        if name not in settings.SERVICES and name not in settings.ALIASES:
            raise process.StackError(
                'unknown service %r; services: %s, or cinder, ceph, glance'
                % (name, ', '.join(settings.SERVICES)))
        names.extend(settings.ALIASES.get(name, (name,)))
    stopped = process.stop(names)
    say('restart: stopped %s', ', '.join(stopped) or 'nothing running')
    up()


def rss_mib(pid):
    """Proportional set size of a process group, in MiB."""
    total = 0
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pid:
                continue
            with open('/proc/%s/smaps_rollup' % entry) as f:
                for line in f:
                    if line.startswith('Pss:'):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def status():
    state = process.load_state()
    total = 0
    for name, pid in sorted(state['pids'].items()):
        running = process.alive(pid)
        mem = rss_mib(pid) if running else 0
        total += mem
        say('%-16s pid %-7d %-7s %6.0f MiB', name, pid,
            'up' if running else 'DOWN', mem)
    say('memory (PSS) total: %.0f MiB', total)
    say('state: %s  venv: %s  volumes: %s', settings.STACK, settings.VENV,
        settings.VOLUMES)
    say('keystone %s  cinder %s  glance %s (HAProxy)', settings.KEYSTONE_URL,
        settings.CINDER_URL, settings.GLANCE_URL)
    for glance_host in glance.hosts():
        say('  %s: host name %s, %s, locks %s', glance_host.service,
            glance_host.host_name or socket.gethostname(), glance_host.url,
            glance_host.lock_path)
    say('coordination (etcd): %s', settings.COORDINATION_URL)
    say('clouds.yaml: %s (stack-admin, stack-glance); glance config: %s',
        settings.CLOUDS, settings.GLANCE_CONF)


def is_up():
    state = process.load_state()
    return all(process.alive(state['pids'].get(n, 0) or 0)
               for n in settings.SERVICES)


def wipe():
    down()
    shutil.rmtree(settings.STACK, ignore_errors=True)
    if not settings.VOLUMES.startswith(settings.STACK):
        for name in settings.BACKENDS:
            shutil.rmtree(os.path.join(settings.VOLUMES, name),
                          ignore_errors=True)
    say('wiped %s', settings.STACK)


def check():
    """Stack-wide leak check: nothing of any image is left anywhere.

    What counts as left over is the functional suite's own definition
    (cinder_store.tests.functional.leftovers), run in the stack's
    virtualenv.
    """
    args = [settings.BIN + '/python', '-m',
            'cinder_store.tests.functional.leftovers',
            '--volume-dir', settings.VOLUMES,
            # Glance hosts remove the lock files of volumes another host
            # deleted every 4 housekeeping intervals (10 s here)
            '--settle', '60']
    for glance_host in glance.hosts():
        args += ['--lock-dir', glance_host.lock_path]
    if os.path.exists(settings.CEPH_CONF):
        for pool in (settings.CEPH_POOL, settings.GLANCE_RBD_POOL):
            args += ['--rbd-pool', '%s:%s' % (settings.CEPH_CONF, pool)]
    result = subprocess.run(args, capture_output=True, text=True,
                            cwd=settings.ROOT,
                            env=dict(os.environ, OS_CLIENT_CONFIG_FILE=(
                                settings.CLOUDS), **settings.QUIET_ENV))
    if result.returncode:
        raise process.StackError('leftovers after the tests: %s%s'
                                 % (result.stdout, result.stderr[-2000:]))
    say('check: no volume, attachment, loop device, RBD image, temporary '
        'Ceph config, shared read or upload record or lock file left')


def demo():
    if not is_up():
        up()
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=settings.CLOUDS,
               STACK_DIR=settings.STACK, **settings.QUIET_ENV)
    subprocess.run([settings.BIN + '/python',
                    os.path.join(settings.ROOT, 'tools', 'demo.py')]
                   + sys.argv[2:], check=True, env=env)


def main():
    commands = {'up': up, 'down': down, 'status': status, 'wipe': wipe,
                'demo': demo, 'check': check, 'restart': restart}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    try:
        commands[sys.argv[1]]()
    except process.StackError as e:
        say('ERROR: %s', e)
        return 1
    except subprocess.CalledProcessError as e:
        return e.returncode
    return 0
