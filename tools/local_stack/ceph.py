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

"""A single-node Ceph: one mon, one mgr, one BlueStore OSD on a file.

cephx, ports away from Ceph's defaults, a ``volumes`` pool and the
client Cinder and Glance use (``settings.CEPH_USER``).
"""

import json
import os
import subprocess
import uuid

from local_stack import process
from local_stack import settings

MON_ADDR = '[v2:%s:%d,v1:%s:%d]' % (
    settings.HOST, settings.PORTS['ceph-mon-v2'], settings.HOST,
    settings.PORTS['ceph-mon'])


def sections():
    """One mon, one mgr, one BlueStore OSD on a sparse file, cephx."""
    ceph, logs = settings.CEPH, settings.LOGS
    timeout = str(settings.CEPH_CLIENT_TIMEOUT)
    return {
        'global': {
            'fsid': fsid(), 'mon host': MON_ADDR,
            'public addr': settings.HOST, 'ms bind ipv6': 'false',
            # Away from Ceph's default ports (6789, 3300, 6800-7300)
            'ms bind port min': '46800', 'ms bind port max': '46900',
            'auth cluster required': 'cephx',
            'auth service required': 'cephx',
            'auth client required': 'cephx',
            'run dir': ceph + '/run',
            'admin socket': '$run_dir/$cluster-$name.asok',
            'pid file': '$run_dir/$name.pid',
            'log file': logs + '/ceph-$name.log',
            'keyring': ceph + '/keyring',
            'osd pool default size': '1', 'osd pool default min size': '1',
            'mon allow pool size one': 'true',
            'mon allow pool delete': 'true',
            'mon warn on pool no redundancy': 'false',
            'mon data avail warn': '5',
            'osd pool default pg autoscale mode': 'off',
            'osd pool default pg num': '8', 'osd pool default pgp num': '8',
            'osd crush chooseleaf type': '0', 'mon max pg per osd': '1000',
            'client mount timeout': timeout,
            # A killed client's watch keeps its image busy (Cinder cannot
            # delete it) this long; Ceph's default is 30 s.
            'osd client watch timeout': '10',
            'rados mon op timeout': timeout,
        },
        'mon': {'mon data': ceph + '/mon/$cluster-$id',
                'mon cluster log file': logs + '/ceph-cluster.log'},
        'mgr': {'mgr data': ceph + '/mgr/$cluster-$id',
                # else the [global] keyring: "handle_auth_bad_method"
                'keyring': '$mgr_data/keyring',
                'mgr disabled modules': 'diskprediction_local'},
        'osd': {'osd data': ceph + '/osd/$cluster-$id',
                'keyring': '$osd_data/keyring',
                'osd objectstore': 'bluestore',
                # $osd_data/block, a sparse regular file: no loop device
                'bluestore block create': 'true',
                'bluestore block size': str(10 << 30),
                'bluestore block db create': 'false',
                'bluestore block wal create': 'false',
                'bluestore fsck on mount': 'false',
                'osd memory target': str(896 << 20),
                'osd op num shards': '1',
                'osd op num threads per shard': '2'},
        'client.%s' % settings.CEPH_USER: {'keyring': settings.CEPH_KEYRING},
    }


def fsid():
    path = os.path.join(settings.CEPH, 'fsid')
    if not os.path.exists(path):
        process.write(path, str(uuid.uuid4()) + '\n')
    with open(path) as f:
        return f.read().strip()


def cli(*args, timeout=30, capture=True):
    """The ceph CLI as client.admin, bounded (mgr commands can hang)."""
    try:
        result = subprocess.run(
            ('ceph', '--conf', settings.CEPH_CONF) + args,
            capture_output=capture, text=True, timeout=timeout,
            env=dict(os.environ, **settings.QUIET_ENV))
    except subprocess.TimeoutExpired:
        raise process.StackError('ceph %s: no answer in %ss; see '
                                 '%s/ceph-*.log' % (' '.join(args), timeout,
                                                    settings.LOGS))
    if result.returncode:
        raise process.StackError('ceph %s failed: %s' % (
            ' '.join(args), result.stderr.strip()))
    return result.stdout


def cli_ok(*args):
    try:
        return cli(*args, timeout=10)
    except process.StackError:
        return None


def bootstrap():
    """mon and OSD filesystems and keys, once (marker: ceph/.bootstrapped)."""
    conf = ('--conf', settings.CEPH_CONF)
    keyring = os.path.join(settings.CEPH, 'keyring')
    for sub in ('mon', 'mgr/ceph-x', 'osd/ceph-0', 'run'):
        os.makedirs(os.path.join(settings.CEPH, sub), exist_ok=True)
    process.run('ceph-authtool', '--create-keyring', keyring, '--gen-key',
                '-n', 'mon.', '--cap', 'mon', 'allow *')
    process.run('ceph-authtool', keyring, '--gen-key', '-n', 'client.admin',
                '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *',
                '--cap', 'mgr', 'allow *')
    monmap = os.path.join(settings.CEPH, 'monmap')
    process.run('monmaptool', '--create', '--clobber', '--fsid', fsid(),
                '--addv', 'a', MON_ADDR, monmap)
    process.run('ceph-mon', *conf, '--mkfs', '-i', 'a', '--monmap', monmap,
                '--keyring', keyring)


def start(state):
    os.makedirs(os.path.join(settings.CEPH, 'run'), exist_ok=True)
    process.write(settings.CEPH_CONF, process.ini(sections()))
    marker = os.path.join(settings.CEPH, '.bootstrapped')
    if not os.path.exists(marker):
        bootstrap()
        open(marker, 'w').close()
    conf = ('--conf', settings.CEPH_CONF)
    process.start(state, 'ceph-mon', ['ceph-mon', *conf, '-f', '-i', 'a'])
    process.wait_for('ceph-mon', lambda: cli_ok('mon', 'stat'), 60)
    mgr_keyring = os.path.join(settings.CEPH, 'mgr', 'ceph-x', 'keyring')
    if not os.path.exists(mgr_keyring):
        process.write(mgr_keyring, cli('auth', 'get-or-create', 'mgr.x',
                                       'mon', 'allow profile mgr', 'osd',
                                       'allow *'))
    process.start(state, 'ceph-mgr', ['ceph-mgr', *conf, '-f', '-i', 'x'])
    osd_dir = os.path.join(settings.CEPH, 'osd', 'ceph-0')
    if not os.path.exists(os.path.join(osd_dir, 'keyring')):
        create_osd(osd_dir)
    process.start(state, 'ceph-osd', ['ceph-osd', *conf, '-f', '-i', '0'])
    process.wait_for('ceph-osd',
                     lambda: '1 up' in (cli_ok('osd', 'stat') or ''), 60)
    setup_pool()


def create_osd(osd_dir):
    key = subprocess.run(['ceph-authtool', '--gen-print-key'], check=True,
                         capture_output=True, text=True).stdout.strip()
    secret = os.path.join(settings.CEPH, 'osd-new.json')
    process.write(secret, json.dumps({'cephx_secret': key}))
    osd_uuid = str(uuid.uuid4())
    try:
        osd_id = cli('osd', 'new', osd_uuid, '-i', secret).strip()
    finally:
        os.unlink(secret)
    if osd_id != '0':
        raise process.StackError('expected OSD 0, Ceph made OSD %s' % osd_id)
    process.run('ceph-authtool', '--create-keyring', osd_dir + '/keyring',
                '--name', 'osd.0', '--add-key', key)
    process.run('ceph-osd', '--conf', settings.CEPH_CONF, '-i', '0',
                '--mkfs', '--key', key, '--osd-uuid', osd_uuid)


def setup_pool():
    """The volumes and images pools and the client user (idempotent)."""
    pools = (settings.CEPH_POOL, settings.GLANCE_RBD_POOL)
    existing = cli('osd', 'pool', 'ls').split()
    for pool in pools:
        if pool not in existing:
            cli('osd', 'pool', 'create', pool, '8', '8')
            process.run('rbd', '--conf', settings.CEPH_CONF, 'pool', 'init',
                        pool)
    user = 'client.' + settings.CEPH_USER
    caps = ', '.join('profile rbd pool=' + pool for pool in pools)
    cli('auth', 'get-or-create', user)
    # caps again on every up: a stack made before the images pool
    cli('auth', 'caps', user, 'mon', 'profile rbd', 'osd', caps, 'mgr', caps)
    keyring = cli('auth', 'get', user)
    for path in (settings.CEPH_KEYRING, settings.ETC_KEYRING):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(keyring)

    def active():
        out = cli_ok('pg', 'stat', '--format', 'json')
        if not out:
            return False
        summary = json.loads(out).get('pg_summary', {})
        states = summary.get('num_pg_by_state', [])
        total = summary.get('num_pgs', 0)
        return total and sum(s['num'] for s in states
                             if s['name'].startswith('active')) == total
    process.wait_for('ceph placement groups', active, 90, interval=0.5)


def forget_etc_keyring():
    """``up`` writes it again; nothing of the stack stays outside it."""
    if os.path.exists(settings.ETC_KEYRING):
        os.unlink(settings.ETC_KEYRING)
