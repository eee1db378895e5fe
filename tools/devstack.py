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

"""A real devstack with this checkout's plugin: ``tools/devstack``.

For a machine like this project's (Debian 12, root, no systemd, no
device-mapper or kernel iSCSI, no opendev or GitHub).  ``up`` prepares
the machine, writes local.conf and runs devstack's own stack.sh as the
``stack`` user; ``test`` runs the functional suite against that cloud the
way the ``.zuul.yaml`` job does; ``down`` runs unstack.sh and undoes what
``up`` changed on the machine.  Every workaround is a function below,
named for what it works around.  Standard library only.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from local_stack import cli as local_stack  # noqa: E402
from local_stack import settings  # noqa: E402

ROOT = settings.ROOT
DEST = '/opt/stack'
USER = 'stack'
BUNDLES = os.path.abspath(os.environ.get(
    'DEVSTACK_SRC', os.path.join(ROOT, '..', 'shared', 'devstack-src')))
# What up changed on the machine, for down (outside DEST: down removes it)
RECORD = '/var/lib/cinder_store-devstack.json'
LOG = os.path.join(DEST, 'logs', 'stack.sh.log')
POLICY_RC = '/usr/sbin/policy-rc.d'
SYSTEMCTL = '/usr/bin/systemctl'
SUDOERS = '/etc/sudoers.d/50_stack_sh'
# Services from PyPI sdists, at the versions the project is tested with
SERVICES = ('keystone', 'glance', 'cinder')
STAND_IN = 'docker-systemctl-replacement==1.7.1097'
PASSWORD = 'devstack-secret'
# Daemons of Debian packages that stack.sh starts and unstack.sh leaves
DAEMONS = ('apache2', 'mariadb', 'mysql', 'rabbitmq-server', 'memcached',
           'tgt')
LOOPFILE_DIR = os.path.join(DEST, 'data', 'cinder_store-loopfile')
# Where stack.sh adds files that unstack.sh leaves (units, sudoers rules,
# Apache sites, links, service configuration): what is new in them after
# up is removed by down.
WATCHED = ('/etc/systemd/system', '/etc/sudoers.d', '/usr/local/bin',
           '/etc/apache2/sites-available', '/etc/apache2/sites-enabled')
# Service configuration directories stack.sh makes (packages' own /etc
# directories stay: the packages stay installed)
CONF_DIRS = ('/etc/keystone', '/etc/glance', '/etc/cinder', '/etc/openstack')

# Functional roles on the devstack cloud: loop-file backends of the
# plugin, as <glance id>:<volume type>:<cinder backend>[:multiattach]
CINDER_BACKENDS = 'loopfile:lf-block,loopfile:lf-file,loopfile:lf-multi'
STORE_BACKENDS = ('cs-block:cinder_store-block:lf-block,'
                  'cs-file:cinder_store-file:lf-file,'
                  'cs-multi:cinder_store-multi:lf-multi:multiattach')
ROLES = 'block:cs-block,file:cs-file,multiattach:cs-multi'
# tox for the stack user, who runs the functional suite
TOX_VENV = os.path.join(DEST, '.cinder_store-tox')

LOCAL_CONF = """[[local|localrc]]
ADMIN_PASSWORD={password}
DATABASE_PASSWORD={password}
RABBIT_PASSWORD={password}
SERVICE_PASSWORD={password}
HOST_IP=127.0.0.1
SERVICE_HOST=127.0.0.1
SERVICE_LISTEN_ADDRESS=127.0.0.1
LOGFILE={log}
# No opendev or GitHub: the trees under {dest} are used as they are.
RECLONE=False
ERROR_ON_CLONE=True
DOWNLOAD_DEFAULT_IMAGES=False
IMAGE_URLS=
disable_all_services
enable_service mysql rabbit key g-api c-api c-sch c-vol
# Single-store Glance, devstack's default: the plugin makes it multi-store
# and keeps its file store.  (With GLANCE_ENABLE_MULTIPLE_STORES and file
# stores, lib/glance configure_multiple_file_stores gives them no datadir.)
CINDER_ENABLED_BACKENDS={cinder_backends}
CINDER_TARGET_HELPER=tgtadm
enable_plugin cinder_store file://{dest}/cinder_store
CINDER_STORE_BACKENDS={store_backends}
CINDER_STORE_LOOPFILE_FILE_BACKENDS=lf-file
CINDER_STORE_LOOPFILE_DIR={loopfile_dir}
CINDER_STORE_FUNCTIONAL_ROLES={roles}

# What Tempest's image suites expect of a cloud (tools/tempest): every
# import method, qcow2 converted on import, and web-download allowed
# from the loopback server tools/tempest runs.
[[post-config|$GLANCE_API_CONF]]
[DEFAULT]
enabled_import_methods = [glance-direct,web-download,copy-image]
[image_import_opts]
image_import_plugins = ['image_conversion']
[image_conversion]
output_format = raw
[import_filtering_opts]
allowed_hosts = [127.0.0.1]
allowed_ports = [80,443,{web_port}]
"""
# The devstack cloud's admin, as devstack writes it for clients
CLOUDS = '/etc/openstack/clouds.yaml'
TEMPEST_DIR = os.path.join(DEST, '.cinder_store-tempest')


def say(msg, *args):
    print('[devstack] ' + msg % args, flush=True)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def as_stack(command, check=True):
    return subprocess.run(['su', '-', USER, '-c', command], check=check)


def devstack_script(name, check=True):
    """Run devstack's ``stack.sh`` or ``unstack.sh`` as the stack user."""
    return as_stack('cd %s/devstack && ./%s' % (DEST, name), check=check)


def load_record():
    try:
        with open(RECORD) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_record(record):
    with open(RECORD, 'w') as f:
        json.dump(record, f, indent=1)


def refuse_beside_local_stack():
    """Both bind the same ports: one or the other, never both."""
    if local_stack.is_up():
        sys.exit('tools/stack is up: run tools/stack down first')


def keep_packages_from_starting_daemons(record):
    """Keep Debian's maintainer scripts from starting daemons.

    devstack starts what it needs itself; invoke-rc.d honours policy-rc.d.
    """
    if not os.path.exists(POLICY_RC):
        with open(POLICY_RC, 'w') as f:
            f.write('#!/bin/sh\n# cinder_store tools/devstack\nexit 101\n')
        os.chmod(POLICY_RC, 0o755)
        record['policy_rc'] = True


def systemctl_stand_in(record):
    """Put docker-systemctl-replacement where /bin/systemctl was.

    devstack runs every service as a systemd unit (functions-common
    _run_under_systemd, restart_service through /bin/systemctl) and
    stack.sh restarts journald.  Without systemd as PID 1 the real
    systemctl only fails; the stand-in reads the same unit files and runs
    them itself.  The real binary is diverted aside, and back on down.
    """
    if record.get('systemctl'):
        return
    sh('apt-get', 'install', '-y', '-q', 'python3', 'sudo', 'git')
    tmp = os.path.join(DEST, '.stand-in')
    sh(sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
       '--target', tmp, STAND_IN)
    sh('dpkg-divert', '--local', '--rename', '--divert',
       SYSTEMCTL + '.real', '--add', '/bin/systemctl')
    record['systemctl'] = True
    save_record(record)
    script = os.path.join(tmp, 'systemctl2', 'systemctl3.py')
    with open(script) as f:
        body = f.read().split('\n', 1)[1]
    with open(SYSTEMCTL, 'w') as f:
        f.write('#!/usr/bin/python3\n' + body)
    os.chmod(SYSTEMCTL, 0o755)
    # stack.sh restarts journald to lift its rate limit
    unit = '/etc/systemd/system/systemd-journald.service'
    if not os.path.exists(unit):
        os.makedirs(os.path.dirname(unit), exist_ok=True)
        with open(unit, 'w') as f:
            f.write('[Service]\nType=oneshot\nExecStart=/bin/true\n'
                    'RemainAfterExit=yes\n')
        record['journald_unit'] = unit


def clone_bundle(name):
    """devstack and requirements from ../shared/devstack-src, not opendev."""
    dest = os.path.join(DEST, name)
    if not os.path.isdir(dest):
        sh('git', 'clone', '-q', '-b', 'master',
           os.path.join(BUNDLES, '%s.bundle' % name), dest)


def stack_user(record):
    """stack.sh refuses root: devstack's own create-stack-user.sh."""
    if subprocess.run(['id', USER], capture_output=True).returncode:
        sh(os.path.join(DEST, 'devstack', 'tools', 'create-stack-user.sh'))
        record['user'] = True


def constrained_version(name):
    with open(settings.CONSTRAINTS) as f:
        for line in f:
            if line.lower().startswith(name + '=='):
                return line.split('==')[1].strip()
    raise SystemExit('%s is not in %s' % (name, settings.CONSTRAINTS))


def service_tree(name):
    """A service's tree from its PyPI sdist, not from opendev.

    At the version in constraints.txt, committed once so that devstack
    finds a git tree (pbr reads the version from PKG-INFO).
    """
    dest = os.path.join(DEST, name)
    if os.path.isdir(dest):
        return
    version = constrained_version(name)
    sh(sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
       '--no-binary', ':all:', '-d', DEST, '%s==%s' % (name, version))
    archive = os.path.join(DEST, '%s-%s.tar.gz' % (name, version))
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split('/')[0]
        tar.extractall(DEST, filter='tar')
    os.rename(os.path.join(DEST, top), dest)
    os.unlink(archive)
    commit(dest, '%s %s from PyPI' % (name, version), init=True)


def commit(path, message, init=False):
    """Commit everything under ``path`` (a new repository if ``init``)."""
    git = ('git', '-c', 'safe.directory=*', '-C', path)
    if init:
        sh(*git, 'init', '-q', '-b', 'master')
    sh(*git, 'add', '-A', '-f')
    sh(*git, '-c', 'user.name=devstack', '-c', 'user.email=devstack@local',
       'commit', '-q', '-m', message)


def plugin_tree():
    """This checkout as devstack's copy of the plugin.

    Its commits plus what is not committed yet: the plugin is what is
    under test.
    """
    dest = os.path.join(DEST, 'cinder_store')
    shutil.rmtree(dest, ignore_errors=True)
    sh('git', 'clone', '-q', ROOT, dest)
    diff = subprocess.run(['git', '-C', ROOT, 'diff', 'HEAD', '--binary'],
                          check=True, capture_output=True).stdout
    if diff:
        sh('git', '-C', dest, 'apply', '--whitespace=nowarn', input=diff)
    untracked = subprocess.run(
        ['git', '-C', ROOT, 'ls-files', '--others', '--exclude-standard'],
        check=True, capture_output=True, text=True).stdout.split()
    for rel in untracked:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), os.path.join(dest, rel))
    if diff or untracked:
        commit(dest, 'uncommitted changes of the checkout')


def write_local_conf():
    path = os.path.join(DEST, 'devstack', 'local.conf')
    with open(path, 'w') as f:
        f.write(LOCAL_CONF.format(
            password=PASSWORD, log=LOG, dest=DEST,
            cinder_backends=CINDER_BACKENDS, store_backends=STORE_BACKENDS,
            roles=ROLES, loopfile_dir=LOOPFILE_DIR,
            web_port=settings.WEB_DOWNLOAD_PORT))


def up(args):
    refuse_beside_local_stack()
    record = load_record()
    os.makedirs(DEST, exist_ok=True)
    record.setdefault('dest_made', not os.listdir(DEST))
    save_record(record)
    keep_packages_from_starting_daemons(record)
    save_record(record)
    clone_bundle('devstack')
    stack_user(record)
    save_record(record)
    systemctl_stand_in(record)
    save_record(record)
    clone_bundle('requirements')
    for name in SERVICES:
        service_tree(name)
    plugin_tree()
    write_local_conf()
    sh('chown', '-R', '%s:%s' % (USER, USER), DEST)
    record.setdefault('before', {
        'listings': {d: listing(d) for d in WATCHED},
        'absent': [d for d in CONF_DIRS if not os.path.exists(d)]})
    save_record(record)
    if os.path.exists(os.path.join(DEST, 'devstack', '.stackenv')):
        devstack_script('unstack.sh')
    say('stack.sh (log: %s)', LOG)
    started = time.monotonic()
    devstack_script('stack.sh')
    say('stack.sh took %.0f s', time.monotonic() - started)


def test(args):
    """The functional suite, then Tempest's image suites (tools/tempest)."""
    failed = functional(args)
    if args.rest or args.no_tempest:
        return failed  # a selection of the functional suite only
    return tempest() or failed


def tempest():
    """Tempest's image suites against the devstack cloud, as its admin."""
    env = dict(os.environ, TEMPEST_VENV=os.path.join(TEMPEST_DIR, 'venv'))
    return subprocess.run(
        [os.path.join(ROOT, 'tools', 'tempest'), 'run', '--clouds', CLOUDS,
         '--cloud', 'devstack-admin', '--workdir', TEMPEST_DIR,
         '--concurrency', '2', '--json',
         os.path.join(TEMPEST_DIR, 'results.json')], env=env).returncode


def functional(args):
    """The functional suite from devstack's copy of the checkout.

    As the stack user, whom glance-api runs as: the in-process stores
    share its records and locks (lock_path), so they must be able to
    write each other's files; devices go through sudo glance-rootwrap, as
    glance-api's do.  The variables are the plugin's functional.env.
    """
    if not os.path.exists(os.path.join(TOX_VENV, 'bin', 'tox')):
        as_stack('python3 -m venv %s && %s/bin/pip install -q "tox>=4,<5"'
                 % (TOX_VENV, TOX_VENV))
    plugin = os.path.join(DEST, 'cinder_store')
    # PATH: the leak check lists loop devices with /usr/sbin/losetup
    command = ('cd %s && set -a && . ./functional.env && set +a && '
               'PATH=$PATH:/usr/sbin:/sbin '
               'TOX_CONSTRAINTS_FILE=$PWD/constraints.txt %s/bin/tox '
               '-e functional -- %s'
               % (plugin, TOX_VENV, ' '.join(map(shlex.quote, args.rest))))
    return as_stack(command, check=False).returncode


def listing(directory):
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def remove_what_stack_sh_added(before):
    for directory in CONF_DIRS:
        if directory in before.get('absent', []):
            shutil.rmtree(directory, ignore_errors=True)
    for directory, names in before.get('listings', {}).items():
        for name in set(listing(directory)) - set(names):
            path = os.path.join(directory, name)
            say('removing %s', path)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def stop_daemons():
    """What unstack.sh leaves running: the packages' daemons it started."""
    for unit in DAEMONS:
        subprocess.run(['systemctl', 'stop', unit], capture_output=True)
    subprocess.run(['pkill', '-u', USER], capture_output=True)
    # RabbitMQ's port mapper outlives rabbitmq-server
    subprocess.run(['epmd', '-kill'], capture_output=True)


def free_loop_devices():
    """Loop devices still bound to the loop-file backends' volumes."""
    out = subprocess.run(['losetup', '-n', '-O', 'NAME,BACK-FILE'],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        name, _, back = line.strip().partition(' ')
        if back.strip().startswith(LOOPFILE_DIR):
            subprocess.run(['losetup', '-d', name])


def down(args):
    record = load_record()
    if os.path.exists(os.path.join(DEST, 'devstack', 'unstack.sh')):
        devstack_script('unstack.sh', check=False)
    stop_daemons()
    free_loop_devices()
    remove_what_stack_sh_added(record.get('before', {}))
    if record.get('systemctl'):
        os.unlink(SYSTEMCTL)
        sh('dpkg-divert', '--local', '--rename', '--remove', '/bin/systemctl')
    if record.get('journald_unit'):
        os.unlink(record['journald_unit'])
    if record.get('policy_rc'):
        os.unlink(POLICY_RC)
    if record.get('user'):
        sh('userdel', USER)
        if os.path.exists(SUDOERS):
            os.unlink(SUDOERS)
    if record.get('dest_made'):
        shutil.rmtree(DEST, ignore_errors=True)
    if os.path.exists(RECORD):
        os.unlink(RECORD)
    say('down')


def main(argv=None):
    parser = argparse.ArgumentParser(prog='tools/devstack',
                                     description=__doc__.split('\n')[0])
    verbs = parser.add_subparsers(dest='verb', required=True)
    verbs.add_parser('up', help='prepare the machine and run stack.sh')
    t = verbs.add_parser('test', help='the functional suite, then '
                         "Tempest's image suites, against it")
    t.add_argument('--no-tempest', action='store_true',
                   help='the functional suite only')
    t.add_argument('rest', nargs=argparse.REMAINDER,
                   help='passed to stestr, e.g. a test regex')
    verbs.add_parser('down', help='unstack.sh; undo what up changed')
    args = parser.parse_args(argv)
    return {'up': up, 'test': test, 'down': down}[args.verb](args) or 0
