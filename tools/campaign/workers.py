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

"""The campaign's worker processes, and the Glance hosts they run on.

A worker plays a Glance worker: it loads the stores as Glance does and
runs one JSON request per line (add, get, delete), answering one JSON line
each.  A :class:`Host` is a name, a lock directory and its workers; killed
whole, it is replaced by a new one under a new name.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

MiB = 1 << 20
# An operation still running after this long is killed and counted as hung
OP_TIMEOUT = 300
# The entry point a worker process runs (tools/chaos.py --worker)
ENTRY = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'chaos.py')


def pattern(size, seed):
    block = hashlib.sha512(b'%d' % seed).digest() * (MiB // 64)
    out = io.BytesIO()
    while out.tell() < size:
        out.write(block[:size - out.tell()])
    return out.getvalue()


def serve_requests(config_files):
    """Runs one JSON request per stdin line; answers one JSON line each."""
    from cinder_store import maintenance
    from glance_store import multi_backend
    from oslo_context import context as oslo_context
    conf = maintenance.load_stores(config_files)
    ctx = oslo_context.RequestContext(project_id='chaos')
    print(json.dumps({'ready': os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            out = {'ok': True}
            if req['op'] == 'add':
                data = pattern(req['size'], req['seed'])
                uri = multi_backend.add_with_multihash(
                    conf, req['image'], io.BytesIO(data), req['declared'],
                    req['backend'], 'sha512', context=ctx)[0]
                out.update(uri=uri, sha256=hashlib.sha256(data).hexdigest())
            elif req['op'] == 'get':
                it, _ = multi_backend.get(req['uri'], req['backend'],
                                          context=ctx)
                digest = hashlib.sha256()
                for chunk in it:
                    digest.update(chunk)
                    if req.get('abandon'):
                        break  # Glance's client went away
                del it
                out['sha256'] = digest.hexdigest()
            elif req['op'] == 'delete':
                multi_backend.delete(req['uri'], req['backend'], context=ctx)
        except Exception as e:
            out = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e),
                   'not_found': type(e).__name__ == 'NotFound'}
        print(json.dumps(out), flush=True)


class Worker(object):
    """A worker process, as the campaign sees it (stderr to ``log``)."""

    def __init__(self, config_files, log, host_name=None):
        command = [sys.executable, ENTRY, '--worker'] + config_files
        if host_name:
            command = ['unshare', '--uts', 'sh', '-c',
                       'hostname "$0" && exec "$@"', host_name] + command
        with open(log, 'ab') as err:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                stderr=err, env=dict(os.environ, PYTHONWARNINGS='ignore'))
        ready = self.proc.stdout.readline()
        if not ready:
            self.proc.wait()
            raise RuntimeError('a worker died while loading the stores '
                               '(exit %s); see %s' % (self.proc.returncode,
                                                      log))

    def call(self, request):
        """The worker's answer, or None if it died (or hung: killed)."""
        hung = threading.Timer(OP_TIMEOUT, self.kill)
        hung.start()
        try:
            self.proc.stdin.write(json.dumps(request) + '\n')
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = None
        finally:
            hung.cancel()
        return json.loads(line) if line else None

    def kill(self):
        """SIGKILL it (now, mid-operation), and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """End it cleanly: its input closes."""
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Host(object):
    """A Glance host of the campaign: a name, a lock directory, workers."""

    def __init__(self, seed, slot, workdir, config_files, dead_hosts):
        self.seed = seed
        self.slot = slot
        self.workdir = workdir
        self.base_config_files = config_files
        self.dead_hosts = dead_hosts  # the campaign's list of killed hosts
        self.generation = 0
        self.workers = set()
        self.frozen_until = 0.0
        self._start_fresh()

    def _start_fresh(self):
        self.name = 'chaos%d-h%d-g%d' % (self.seed, self.slot,
                                         self.generation)
        self.locks = os.path.join(self.workdir, self.name, 'locks')
        os.makedirs(self.locks)
        self.conf = os.path.join(self.workdir, self.name + '.conf')
        with open(self.conf, 'w') as f:
            f.write('[oslo_concurrency]\nlock_path = %s\n' % self.locks)

    def config_files(self):
        """Glance's configuration, with this host's lock directory."""
        return self.base_config_files + [self.conf]

    def kill(self):
        """Every worker at once, and its disk; a new host takes its slot."""
        for worker in list(self.workers):
            worker.kill()
        shutil.rmtree(os.path.dirname(self.locks), ignore_errors=True)
        self.dead_hosts.append(self.name)
        self.generation += 1
        self._start_fresh()

    def signal_workers(self, sig):
        for worker in list(self.workers):
            if worker.proc.poll() is None:
                worker.proc.send_signal(sig)
