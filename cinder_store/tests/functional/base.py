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

"""Where the functional tests run, and the leak check after each test.

Targets, first match wins:

* the local stack: ``$STACK_DIR`` (default ``.stack`` in the checkout)
  holds ``glance-api.conf`` and ``clouds.yaml`` written by ``tools/stack``;
* a devstack cloud: ``OS_CLOUD`` names an admin cloud in ``clouds.yaml``
  and ``CINDER_STORE_FUNCTIONAL_CONF`` the glance-api.conf that the
  devstack plugin wrote (its cinder_store backends are tested).

Otherwise every test is skipped with the reason.  No mocks here: real
Keystone, Cinder, os-brick and glance_store.
"""

import configparser
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import fixtures
from glance_store import multi_backend
from oslo_context import context as oslo_context
from oslotest import base as oslotest_base

from cinder_store.tests.functional import leftovers
from cinder_store.tests.functional import stores

STACK_DIR = stores.STACK_DIR
load_stores = stores.load_stores
our_backends = stores.our_backends
target = stores.target
MiB = 1 << 20
GiB = 1 << 30


def admin_cinder():
    import openstack
    os.environ.setdefault('OS_CLIENT_CONFIG_FILE', target()[1] or '')
    conn = openstack.connect(cloud=target()[2])
    from cinderclient import client as cinder_client
    return cinder_client.Client('3.54', session=conn.session), conn


def glance_api(url=None):
    """Glance's REST API as the admin: the catalog's, or ``url``'s."""
    import openstack
    os.environ.setdefault('OS_CLIENT_CONFIG_FILE', target()[1] or '')
    if url is None:
        return openstack.connect(cloud=target()[2]).image
    return openstack.connect(cloud=target()[2],
                             image_endpoint_override=url).image


class PatternFile(object):
    """A file-like source of ``size`` deterministic bytes, hashed as read.

    Streams gigabytes without holding them; ``declared`` is what the test
    passes as image_size.
    """

    def __init__(self, size, seed=0):
        self.size = size
        self.pos = 0
        block = hashlib.sha512(b'%d' % seed).digest()
        self.block = (block * (MiB // len(block) + 1))[:MiB]
        self.sha256 = hashlib.sha256()

    def read(self, n=-1):
        if n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            start = (self.pos + len(out)) % MiB
            out += self.block[start:start + n - len(out)]
        self.pos += n
        data = bytes(out)
        self.sha256.update(data)
        return data


def pattern_bytes(size, seed=0):
    return PatternFile(size, seed).read(size)


class FunctionalTestCase(oslotest_base.BaseTestCase):
    """Asserts after every test that nothing the test made is left.

    ``role`` (see :func:`stores.backend_for`) picks ``self.backend``; a
    target without a backend in that role skips the test.
    """

    role = 'block'

    def setUp(self):
        super(FunctionalTestCase, self).setUp()
        if target() is None:
            self.skipTest(stores.SKIP_REASON)
        self.conf = load_stores()
        self.backend = self.backend_for(self.role)
        self.context = oslo_context.RequestContext(project_id='functional')
        self.cinder, self.conn = admin_cinder()
        self.image_ids = set()
        self.addCleanup(self.assert_nothing_leaked)

    def backend_for(self, role):
        backend = stores.backend_for(role, self.conf)
        if backend is None:
            self.skipTest('%s has no cinder_store backend in the %r role: '
                          'set CINDER_STORE_FUNCTIONAL_%s_BACKEND'
                          % (target()[3], role, role.upper()))
        return backend

    def new_image_id(self):
        image_id = str(uuid.uuid4())
        self.image_ids.add(image_id)
        return image_id

    def my_volumes(self):
        """Volumes of this test's images (tests may run concurrently)."""
        names = {'image-%s' % i for i in self.image_ids}
        return {v.id for v in self.cinder.volumes.list(
            search_opts={'all_tenants': 1}) if v.name in names}

    def assert_nothing_leaked(self):
        """Nothing of this test's images is left (:mod:`leftovers`).

        Cinder deletes volumes asynchronously, and a connect in another
        test holds a temporary Ceph config for milliseconds: looked at
        again for up to a minute.
        """
        rbd_store = glance_rbd(self.conf)
        pools = [rbd_store[1:]] if rbd_store and self.image_ids else []
        deadline = time.monotonic() + 60
        while True:
            found = leftovers.find(self.cinder, self.image_ids,
                                   rbd_pools=pools,
                                   tmp_dirs=leftover_tmp_dirs())
            if leftovers.clean(found) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual({}, {k: v for k, v in found.items() if v},
                         'left behind')

    # -- helpers --------------------------------------------------------

    def add(self, backend, data, size=None, image_id=None):
        if isinstance(data, bytes):
            data = io.BytesIO(data)
            size = len(data.getvalue()) if size is None else size
        return multi_backend.add_with_multihash(
            self.conf, image_id or self.new_image_id(), data, size, backend,
            'sha512', context=self.context)

    def read(self, uri, backend, offset=0, chunk_size=None):
        it, length = multi_backend.get(uri, backend, offset=offset,
                                       chunk_size=chunk_size,
                                       context=self.context)
        digest, total = hashlib.sha256(), 0
        for chunk in it:
            digest.update(chunk)
            total += len(chunk)
        self.assertEqual(length, total)
        return digest.hexdigest(), total

    def delete(self, uri, backend):
        multi_backend.delete(uri, backend, context=self.context)

    def check(self, *args):
        """``cinder-store-check`` on the target: (exit status, output)."""
        result = subprocess.run(
            [sys.executable, '-m', 'cinder_store.cmd.check',
             '--config-file', target()[0]] + list(args),
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, PYTHONWARNINGS='ignore'))
        return result.returncode, result.stdout

    def kill_when_ready(self, helper, *args, **kwargs):
        """Run a helper process of this package; SIGKILL it mid-transfer.

        See :meth:`start_mid_transfer` for the arguments.
        """
        worker, _ = self.start_mid_transfer(helper, *args, **kwargs)
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    def require_host_helpers(self):
        """Skip unless helpers can play another Glance host.

        They run in a UTS namespace of their own (``unshare --uts``):
        root only, as on the local stack; devstack's suite runs as its
        stack user.  Call it before creating anything.
        """
        if os.geteuid() != 0:
            self.skipTest('a helper playing another Glance host needs '
                          'root (unshare --uts), as on the local stack')

    def warm_elsewhere(self, uri, backend, idle, coordinated,
                       host_name=None, lock_path=None):
        """A worker of another host that read ``uri`` and keeps it warm.

        See :mod:`warm_reader`.  Returns (its process, what its cold and
        warm reads did).
        """
        self.require_host_helpers()
        sync = self.useFixture(fixtures.TempDir()).path
        lock_path = lock_path or self.useFixture(fixtures.TempDir()).path
        host_name = host_name or 'warm-%s' % uuid.uuid4().hex[:8]
        worker = subprocess.Popen(
            ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"',
             host_name, sys.executable, '-m',
             'cinder_store.tests.functional.warm_reader', uri, backend,
             str(idle), '1' if coordinated else '0', sync],
            env=dict(os.environ, CINDER_STORE_FUNCTIONAL_LOCK_PATH=lock_path),
            stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: worker.poll() is None and worker.kill())
        line = worker.stdout.readline()
        if not line:
            self.fail('the warm reader ended: %s' % worker.wait())
        return worker, json.loads(line)

    def start_mid_transfer(self, helper, *args, host_name=None,
                           lock_path=None):
        """Start a helper process; return (it, its sync dir) mid-transfer.

        The helper (``reader`` or ``uploader``) signals it is mid-transfer
        by creating a file in the directory passed as its last argument
        (a reader then waits for ``go`` there).  ``host_name``: it runs
        in a UTS namespace of its own under that name, as another Glance
        host, with its locks in ``lock_path``.
        """
        sync = self.useFixture(fixtures.TempDir()).path
        command = [sys.executable, '-m',
                   'cinder_store.tests.functional.' + helper] + list(args)
        env = dict(os.environ)
        if host_name:
            command = ['unshare', '--uts', 'sh', '-c',
                       'hostname "$0" && exec "$@"', host_name] + command
            env['CINDER_STORE_FUNCTIONAL_LOCK_PATH'] = lock_path
        worker = subprocess.Popen(command + [sync], env=env,
                                  stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: worker.poll() is None and worker.kill())
        deadline = time.monotonic() + 120
        while not [n for n in os.listdir(sync) if n != 'go']:
            self.assertLess(time.monotonic(), deadline,
                            '%s never got going' % helper)
            self.assertIsNone(worker.poll())
            time.sleep(0.05)
        return worker, sync


_system_tmp: list[str] = []


def system_tmp():
    """The system's temporary directory, where helper processes write.

    Readers, uploaders and the check use it; each test has its own.
    """
    if not _system_tmp:
        _system_tmp.append(subprocess.check_output(
            [sys.executable, '-c', 'import tempfile; '
             'print(tempfile.gettempdir())'], text=True).strip())
    return _system_tmp[0]


def leftover_tmp_dirs():
    """Where temporary Ceph configs of this test's connects may be."""
    return sorted({tempfile.gettempdir(), system_tmp()})


def local_volume_dir(backend):
    """The local stack's volume directory for ``backend``, else None.

    Only the stack's loop-file test driver has one (fault injection, clone
    records); a devstack cloud has none.
    """
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(os.path.join(STACK_DIR, 'cinder', 'cinder.conf'))
    if not conf.has_option(backend, 'loopfile_volume_dir'):
        return None
    return conf.get(backend, 'loopfile_volume_dir')


def local_rbd(backend):
    """``rbd`` CLI arguments for the local stack's Cinder RBD ``backend``.

    From the stack's cinder.conf (pool, client user, ceph.conf), as
    ``(args, pool)``; None elsewhere.
    """
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(os.path.join(STACK_DIR, 'cinder', 'cinder.conf'))
    if not conf.has_option(backend, 'rbd_pool'):
        return None
    section = conf[backend]
    return (_rbd_cli(section['rbd_ceph_conf'], section['rbd_user']),
            section['rbd_pool'])


def glance_rbd(conf):
    """``(backend, rbd CLI arguments, pool)`` of Glance's own rbd store.

    The target's first backend of Glance's ``rbd`` driver (the local
    stack's ``glance-rbd``, the bar on Ceph); None without one or without
    the rbd CLI.
    """
    backends = stores.glance_rbd_backends(conf)
    if not backends or not shutil.which('rbd'):
        return None
    section = conf[backends[0]]
    return (backends[0], _rbd_cli(section.rbd_store_ceph_conf,
                                  section.rbd_store_user),
            section.rbd_store_pool)


def rbd_json(args, *more):
    """The rbd CLI's JSON answer (``--format`` goes after the command)."""
    return json.loads(subprocess.run(
        list(args) + list(more) + ['--format', 'json'], check=True,
        capture_output=True, text=True).stdout)


def rbd_used(args, image):
    """Bytes an RBD image (with its snapshots) allocates: ``rbd du``."""
    return sum(i['used_size'] for i in rbd_json(args, 'du', image)['images'])


def _rbd_cli(ceph_conf, user):
    return ['rbd', '-c', ceph_conf, '--id', user]


def data_extents(path, block):
    """How many ``block``-sized pieces of the sparse file hold any data."""
    pieces = set()
    with open(path, 'rb') as f:
        end = os.fstat(f.fileno()).st_size
        offset = 0
        while offset < end:
            try:
                start = os.lseek(f.fileno(), offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            stop = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            pieces.update(range(start // block, (stop - 1) // block + 1))
            offset = stop
    return len(pieces)
