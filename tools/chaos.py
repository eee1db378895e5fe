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

"""A randomized fault campaign against cinder_store on the local stack.

    tools/chaos [--ops N] [--seed S] [--workers W] [--kill-rate P]
                [--freeze-rate P] [--fault-rate P] [--backends a,b]
                [--hosts N [--host-kill-rate P] [--host-freeze-rate P]]
                [--time-limit SECONDS] [--json PATH]

Long-lived worker processes play Glance workers: each loads the stores
as Glance does and runs what it is sent (add of known, unknown or wrongly
declared size; get, whole or abandoned after the first chunk; delete).
The campaign sends ``--ops`` random operations over every backend and,
at random moments, SIGKILLs the worker running one (``--kill-rate``) or
freezes cinder-api, cinder-volume, RabbitMQ or the Ceph OSD for a few
seconds with SIGSTOP (``--freeze-rate``), or has the stack's volume driver
fail an add's volume create or attach (``--fault-rate``).  Then it runs
``cinder-store-check --fix`` on every backend, reads back every image it
believes stored (an add that answered success and no delete since),
deletes them all, and counts what is left: volumes, attachments, loop
devices, shared-read and upload records, lock files and temporary Ceph
configs.  It prints a table and writes JSON.  The exit status is 1 when
anything unexpected happened or was left.

With ``--hosts N`` the workers are spread over N Glance hosts, each a
UTS namespace of its own (its own host name and lock directory, a member
of the stack's coordination group), and whole hosts fail: a host killed
(every worker at once, its lock directory removed: its disk is gone) is
replaced by a new one under a new name, and its holds and unfinished
uploads must be released by the survivors with no operator action; a host
frozen (every worker stopped, for up to 40 s, past the stack's lost-host
grace) resumes.  etcd is frozen too.  At the end each surviving host runs
``cinder-store-check --fix``.

Availability: after every read killed inside its attach (Cinder still
shows an attachment of the image being made a second after the kill), a
probe worker that is never killed reads the image until a read succeeds,
then deletes it until the delete succeeds, and the campaign reports the
longest time from a kill to each.  Over ``--availability-limit`` seconds
(default: the stack's lost-host grace + 30 s) is unexpected.

What is expected: an operation killed mid-way; an error while a service
or its host was frozen; the refusal of a wrongly declared size; an add
failed by an injected driver fault; an error on an image while it
recovers from a kill inside an attach (within the limit).  Anything else
is an unexpected error.  Attachments whose attacher was killed are
abandoned as production finds them: claimed by no live attacher, or
after ``--abandoned-age`` seconds (a config file of the campaign sets
``cinder_store_abandoned_attachment_age``; default 600, production's).
"""

import argparse
import collections
import configparser
import hashlib
import io
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from local_stack import settings

MiB = 1 << 20
FREEZABLE = ('cinder-api', 'cinder-volume', 'rabbitmq', 'ceph-osd')
# An operation still running after this long is killed and counted as hung
OP_TIMEOUT = 300
# Seconds after which an attachment no live attacher claims is abandoned
# (cinder_store.recovery.rules.UNANNOUNCED_AGE and its clock skew)
UNCLAIMED_AGE = 35
# (driver operation, how many times it fails): Cinder tries a create three
# times before it gives up.
FAULTS = (('create_volume', 10), ('initialize_connection', 1))


# -- the worker (a child process) --------------------------------------------

def pattern(size, seed):
    block = hashlib.sha512(b'%d' % seed).digest() * (MiB // 64)
    out = io.BytesIO()
    while out.tell() < size:
        out.write(block[:size - out.tell()])
    return out.getvalue()


def worker(config_files):
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
        command = [sys.executable, __file__, '--worker'] + config_files
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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# -- the hosts ---------------------------------------------------------------

class Host(object):
    """A Glance host of the campaign: a name, a lock directory, workers."""

    def __init__(self, campaign, slot):
        self.slot = slot
        self.generation = 0
        self.workers = set()
        self.frozen_until = 0.0
        self.campaign = campaign
        self._fresh()

    def _fresh(self):
        self.name = 'chaos%d-h%d-g%d' % (self.campaign.args.seed, self.slot,
                                         self.generation)
        self.locks = os.path.join(self.campaign.workdir, self.name, 'locks')
        os.makedirs(self.locks)
        self.conf = os.path.join(self.campaign.workdir, self.name + '.conf')
        with open(self.conf, 'w') as f:
            f.write('[oslo_concurrency]\nlock_path = %s\n' % self.locks)

    def config_files(self):
        return self.campaign.config_files + [self.conf]

    def kill(self):
        """Every worker at once, and its disk; a new host takes its slot."""
        for worker in list(self.workers):
            worker.kill()
        shutil.rmtree(os.path.dirname(self.locks), ignore_errors=True)
        self.campaign.dead_hosts.append(self.name)
        self.generation += 1
        self._fresh()

    def signal(self, sig):
        for worker in list(self.workers):
            if worker.proc.poll() is None:
                worker.proc.send_signal(sig)


# -- availability ------------------------------------------------------------

class Availability(object):
    """How long images stay unreadable or undeletable after a kill.

    A read killed inside its attach is an event; a probe worker (never
    killed) measures, from the kill, the time to the image's next
    successful read and then to its delete.
    """

    PROBES = 2

    def __init__(self, campaign, limit):
        self.campaign = campaign
        self.limit = limit
        self.events = []
        self.recovering = set()  # image ids
        self._queue = queue.Queue()
        self._threads = []

    def start(self):
        for n in range(self.PROBES):
            thread = threading.Thread(target=self._probe, daemon=True,
                                      name='chaos-probe-%d' % n)
            thread.start()
            self._threads.append(thread)

    def stop(self):
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def killed(self, req, at):
        """A worker was killed running ``req`` at ``at`` (monotonic)."""
        if req['op'] != 'get':
            return
        threading.Thread(target=self._classify, args=(req, at),
                         daemon=True).start()

    def _classify(self, req, at):
        # Cinder goes on with a request the worker sent before dying
        time.sleep(1)
        volume_id = req['uri'].rsplit('/', 1)[1]
        try:
            being_made = [a for a in admin_cinder().attachments.list(
                search_opts={'volume_id': volume_id, 'all_tenants': 1})
                if a.status in ('reserved', 'attaching')]
        except Exception:
            return  # deleted meanwhile
        if not being_made:
            return
        with self.campaign.lock:
            if req['image'] not in self.campaign.stored:
                return  # deleted (or being deleted) by the campaign
            self.recovering.add(req['image'])
        self._queue.put(dict(image=req['image'], backend=req['backend'],
                             uri=req['uri'], killed=at))

    def _probe(self):
        worker = self.campaign.new_worker()
        try:
            while True:
                event = self._queue.get()
                if event is None:
                    return
                self._measure(worker, event)
        finally:
            worker.stop()

    def _measure(self, worker, event):
        got = self._until_ok(worker, event, {
            'op': 'get', 'uri': event['uri'], 'backend': event['backend']})
        event['read_s'] = round(time.monotonic() - event['killed'], 1)
        with self.campaign.lock:
            digest = self.campaign.stored.get(event['image'], (0, 0, None))[2]
            if got and digest and got.get('sha256') != digest:
                self.campaign.counts['wrong bytes'] += 1
                self.campaign.unexpected.append(('wrong bytes', event))
            # From now on the campaign leaves it to the probe
            if self.campaign.stored.pop(event['image'], None):
                self.campaign.maybe[event['image']] = (event['backend'],
                                                       event['uri'])
        self._until_ok(worker, event, {
            'op': 'delete', 'uri': event['uri'],
            'backend': event['backend']})
        event['deleted_s'] = round(time.monotonic() - event['killed'], 1)
        with self.campaign.lock:
            self.campaign.maybe.pop(event['image'], None)
            self.recovering.discard(event['image'])
            self.events.append(event)
            worst = max(event['read_s'], event['deleted_s'])
            if worst > self.limit:
                self.campaign.unexpected.append((
                    'image unavailable %.0fs after a kill inside an attach '
                    '(limit %ds)' % (worst, self.limit), event))

    def _until_ok(self, worker, event, request, pause=1.0):
        """The first answer that is ok (or NotFound), or None past 3x."""
        while time.monotonic() - event['killed'] < 3 * self.limit:
            answer = worker.call(request)
            if answer and (answer['ok'] or answer.get('not_found')):
                return answer
            time.sleep(pause)
        return None

    def rows(self):
        reads = [e['read_s'] for e in self.events]
        deletes = [e['deleted_s'] for e in self.events]
        return [
            ('reads killed inside an attach', len(self.events)),
            ('  longest until read again (s)', max(reads, default=0)),
            ('  longest until deleted (s)', max(deletes, default=0)),
            ('  limit (s)', self.limit)]


# -- the campaign ------------------------------------------------------------

class Campaign(object):

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.workdir = tempfile.mkdtemp(prefix='chaos-')
        self.worker_log = os.path.join(self.workdir, 'workers.log')
        self.config_files = [settings.GLANCE_CONF,
                             self._campaign_conf()]
        self.backends = args.backends
        self.stored = {}  # image id -> (backend, uri, sha256)
        self.believed = {}  # the same, for every add that succeeded
        self.maybe = {}  # image id -> (backend, uri): a delete was killed
        self.adds = {}  # image id -> backend, for every add sent
        self.counts = collections.Counter()
        self.unexpected = []
        self.freezes = []
        self.fault_files = []
        self.remaining = args.ops
        self.deadline = time.monotonic() + args.time_limit
        self.hosts = [Host(self, n) for n in range(args.hosts)] \
            if args.hosts > 1 else []
        self.dead_hosts = []
        self.availability = Availability(
            self, args.availability_limit or settings.LOST_HOST_GRACE + 30)

    def new_worker(self, host=None):
        """A fresh worker; a start that fails (a frozen service) is retried."""
        error = RuntimeError('no worker started')
        for attempt in range(10):
            try:
                if host is None:
                    return Worker(self.config_files, self.worker_log)
                with self.lock:
                    name, files = host.name, host.config_files()
                worker = Worker(files, self.worker_log, name)
                with self.lock:
                    if name == host.name:
                        host.workers.add(worker)
                        return worker
                # Its host was killed while it started: start on the new one
                worker.kill()
            except RuntimeError as e:
                error = e
                time.sleep(2)
        raise error

    def _campaign_conf(self):
        path = os.path.join(self.workdir, 'chaos.conf')
        with open(path, 'w') as f:
            f.write('[backend_defaults]\n'
                    'cinder_store_abandoned_attachment_age = %d\n'
                    % self.args.abandoned_age)
        return path

    # -- operations ----------------------------------------------------------

    def next_request(self):
        with self.lock:
            if self.remaining <= 0 or time.monotonic() > self.deadline:
                return None
            self.remaining -= 1
            stored = list(self.stored.items())
            roll = self.rng.random()
            if not stored or roll < 0.4:
                image = str(uuid.uuid4())
                backend = self.rng.choice(self.backends)
                self.adds[image] = backend
                size = self.rng.choice((1, MiB + 3, 5 * MiB, 24 * MiB))
                declared = self.rng.choice(('exact', 'exact', 'zero',
                                            'wrong'))
                req = {'op': 'add', 'image': image, 'size': size,
                       'seed': self.rng.randrange(1 << 30),
                       'backend': backend,
                       'declared': {'exact': size, 'zero': 0,
                                    'wrong': size + 7}[declared],
                       'kind': 'add-' + declared}
                self.maybe_inject(req)
                return req
            image, (backend, uri, digest) = self.rng.choice(stored)
            if roll < 0.85:
                abandon = self.rng.random() < 0.3
                return {'op': 'get', 'image': image, 'uri': uri,
                        'backend': backend, 'abandon': abandon,
                        'kind': 'get-abandoned' if abandon else 'get'}
            del self.stored[image]
            self.maybe[image] = (backend, uri)
            return {'op': 'delete', 'image': image, 'uri': uri,
                    'backend': backend, 'kind': 'delete'}

    def maybe_inject(self, req):
        """Now and then, make the volume driver fail this add's volume.

        Only the stack's loop-file driver takes injected faults (files in
        its volume directory, keyed on the image id); a failed create is
        rescheduled by Cinder, so it fails every attempt.
        """
        directory = _fault_dir(req['backend'])
        if directory is None or self.rng.random() >= self.args.fault_rate:
            return
        operation, times = self.rng.choice(FAULTS)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory,
                            '%s@image-%s' % (operation, req['image']))
        with open(path, 'w') as f:
            f.write(str(times))
        self.fault_files.append(path)
        req['fault'] = operation
        self.counts['driver faults injected'] += 1

    def run_slot(self, host=None):
        try:
            self._run_slot(host)
        except Exception as e:
            with self.lock:
                self.unexpected.append(('a worker slot stopped: %s' % e, {}))

    def _run_slot(self, host):
        worker = self.new_worker(host)
        try:
            while True:
                req = self.next_request()
                if req is None:
                    return
                # Most operations take 0.1-3 s: a kill within the first
                # second lands inside most of them, at any step.
                kill_at = (self.rng.uniform(0.02, 1.0)
                           if self.rng.random() < self.args.kill_rate
                           else None)
                started = time.monotonic()
                timer = None
                if kill_at is not None:
                    timer = threading.Timer(kill_at, worker.kill)
                    timer.start()
                answer = worker.call(req)
                if timer is not None:
                    timer.cancel()
                if answer is None:  # killed mid-operation
                    if time.monotonic() - started >= OP_TIMEOUT:
                        self.unexpected.append(('hung %ds' % OP_TIMEOUT,
                                                req))
                    self.availability.killed(req, time.monotonic())
                    self.counts['killed'] += 1
                    self.counts['killed ' + req['kind']] += 1
                    worker.kill()
                    if host is not None:
                        host.workers.discard(worker)
                    worker = self.new_worker(host)
                    continue
                self.record(req, answer, started, host)
        finally:
            worker.kill()
            if host is not None:
                host.workers.discard(worker)

    def record(self, req, answer, started, host=None):
        self.counts[req['kind']] += 1
        with self.lock:
            if req['image'] in self.availability.recovering:
                # The probe measures it and deletes it: its books now
                if not answer['ok']:
                    self.counts['errors'] += 1
                    self.counts['errors while recovering from a kill'] += 1
                return
            if answer['ok']:
                if req['op'] == 'add':
                    if req['kind'] == 'add-wrong':
                        self.unexpected.append(('accepted a wrong size', req))
                    self.stored[req['image']] = self.believed[
                        req['image']] = (req['backend'], answer['uri'],
                                         answer['sha256'])
                elif req['op'] == 'get' and not req['abandon']:
                    if answer['sha256'] != self.stored.get(
                            req['image'], (None, None, answer['sha256']))[2]:
                        self.counts['wrong bytes'] += 1
                        self.unexpected.append(('wrong bytes', req))
                elif req['op'] == 'delete':
                    self.maybe.pop(req['image'], None)
                return
            self.counts['errors'] += 1
            if req['op'] == 'delete' and answer['error'].startswith(
                    'InUseByStore'):
                # A live reader on this host: Glance answers 409, keeps it
                self.counts['delete refused while read'] += 1
                self.maybe.pop(req['image'], None)
                self.stored[req['image']] = self.believed[req['image']]
            elif req.get('fault'):
                self.counts['failed by an injected fault'] += 1
            elif req['kind'] == 'add-wrong':
                self.counts['refused wrong size'] += 1
            elif self.frozen_during(started):
                self.counts['errors while frozen'] += 1
            elif host is not None and host.frozen_until >= started:
                # Its reads and uploads may fail once it resumes: others
                # released what it held
                self.counts['errors of a host frozen'] += 1
            elif req['op'] == 'delete' and answer.get('not_found'):
                self.maybe.pop(req['image'], None)
            elif req['op'] == 'get' and req['image'] not in self.stored:
                self.counts['reads racing their delete'] += 1
            else:
                self.unexpected.append((answer['error'], req))

    def frozen_during(self, started):
        return any(start <= time.monotonic() and end >= started
                   for start, end in self.freezes)

    # -- freezes -------------------------------------------------------------

    def freezer(self, stop):
        pids = _stack_pids()
        targets = [n for n in FREEZABLE + (('etcd',) if self.hosts else ())
                   if n in pids]
        # about freeze-rate freezes per operation sent
        while not stop.wait(self.rng.uniform(1.0, 3.0)):
            if not targets or self.rng.random() > (
                    self.args.freeze_rate * self.args.workers * 2):
                continue
            name = self.rng.choice(targets)
            length = self.rng.uniform(1.0, 4.0)
            start = time.monotonic()
            with self.lock:
                self.freezes.append((start, start + length + 1.0))
            self.counts['freezes'] += 1
            self.counts['freeze ' + name] += 1
            _signal_group(pids[name], signal.SIGSTOP)
            try:
                stop.wait(length)
            finally:
                _signal_group(pids[name], signal.SIGCONT)

    def host_faults(self, stop):
        """Kill or freeze whole hosts, about the rates per operation."""
        while not stop.wait(self.rng.uniform(1.0, 3.0)):
            host = self.rng.choice(self.hosts)
            roll = self.rng.random()
            scale = self.args.workers * 2
            if roll < self.args.host_kill_rate * scale:
                with self.lock:
                    host.kill()
                self.counts['host kills'] += 1
            elif roll < (self.args.host_kill_rate +
                         self.args.host_freeze_rate) * scale:
                length = self.rng.uniform(5.0, 40.0)
                with self.lock:
                    host.frozen_until = time.monotonic() + length + 1.0
                self.counts['host freezes'] += 1
                host.signal(signal.SIGSTOP)
                try:
                    stop.wait(length)
                finally:
                    host.signal(signal.SIGCONT)

    # -- the whole run -------------------------------------------------------

    def run(self):
        t0 = time.monotonic()
        stop = threading.Event()
        freezer = threading.Thread(target=self.freezer, args=(stop,),
                                   daemon=True)
        freezer.start()
        faults = None
        if self.hosts:
            faults = threading.Thread(target=self.host_faults, args=(stop,),
                                      daemon=True)
            faults.start()
        slots = [threading.Thread(
            target=self.run_slot, daemon=True,
            args=(self.hosts[n % len(self.hosts)] if self.hosts else None,))
            for n in range(self.args.workers)]
        self.availability.start()
        try:
            for slot in slots:
                slot.start()
            for slot in slots:
                slot.join()
        finally:
            stop.set()
            freezer.join()
            if faults is not None:
                faults.join()
            for host in self.hosts:
                host.signal(signal.SIGCONT)
            for pid in _stack_pids().values():
                _signal_group(pid, signal.SIGCONT)
        self.availability.stop()
        campaign_s = time.monotonic() - t0
        for path in self.fault_files:
            if os.path.exists(path):
                os.unlink(path)
        # What no live attacher claims is abandoned after this (claims)
        time.sleep(min(self.args.abandoned_age, UNCLAIMED_AGE) + 1)
        if self.dead_hosts:
            # Released by the surviving hosts with no operator action
            # (membership timeout + grace + a housekeeping interval)
            self.counts['seconds waited for lost hosts'] = \
                self.wait_for_lost_hosts()
        fixed = self.fix()
        unreadable, undeletable = self.settle()
        # Each surviving host's lock files of the volumes just deleted
        # from this one (their housekeeping stopped with their workers)
        for backend in self.backends:
            for host in self.hosts:
                fixed += self._fix(backend, host.config_files(), host.name)
        left = leftovers(self.adds, [settings.GLANCE_LOCKS] +
                         [h.locks for h in self.hosts])
        return self.report(campaign_s, time.monotonic() - t0, fixed,
                           unreadable, undeletable, left)

    def wait_for_lost_hosts(self, timeout=180):
        """Seconds until nothing in Cinder names a killed host."""
        cinder = admin_cinder()
        dead = set(self.dead_hosts)
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
        self.unexpected.append(('what killed hosts held was not released '
                                'within %ds' % timeout, {
                                    'held': ['%s %s %s' % (
                                        v.id, v.status, v.attachments)
                                        for v in held],
                                    'unfinished uploads': [
                                        '%s %s' % (v.id, v.status)
                                        for v in unfinished]}))
        return timeout

    def fix(self):
        out = []
        for backend in self.backends:
            out += self._fix(backend, self.config_files)
            for host in self.hosts:
                out += self._fix(backend, host.config_files(), host.name)
        return out

    def _fix(self, backend, config_files, host_name=None):
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
            self.unexpected.append(('check --fix failed on %s (%s)' % (
                backend, host_name or 'this host'), result.stdout[-2000:]))
        return [line.strip() for line in result.stdout.splitlines()
                if line.strip().startswith(('fixed', 'FAIL', 'warn'))]

    def settle(self):
        """Read back what is believed stored, then delete everything."""
        worker = self.new_worker()
        unreadable, undeletable = [], []
        try:
            for image, (backend, uri, digest) in sorted(self.stored.items()):
                answer = worker.call({'op': 'get', 'uri': uri,
                                      'backend': backend})
                if not answer or not answer['ok'] or (
                        answer['sha256'] != digest):
                    unreadable.append((image, answer))
            everything = dict(self.maybe)
            everything.update({i: (b, u) for i, (b, u, _) in
                               self.stored.items()})
            # An add that completed as its worker was killed: Glance
            # never learnt its location either (the image stays
            # 'saving'); delete it as Glance's image delete would not.
            for image, uri in self.lost_answers().items():
                self.counts['adds done as their worker died'] += 1
                everything[image] = (self.adds[image], uri)
            for image, (backend, uri) in sorted(everything.items()):
                answer = worker.call({'op': 'delete', 'uri': uri,
                                      'backend': backend})
                if not answer or not (answer['ok'] or
                                      answer.get('not_found')):
                    undeletable.append((image, answer))
        finally:
            worker.stop()
        return unreadable, undeletable

    def lost_answers(self):
        """image id -> location of killed adds whose volume is complete."""
        cinder = admin_cinder()
        answered = set(self.believed) | set(self.maybe)
        names = {'image-%s' % i: i for i in self.adds if i not in answered}
        found = {}
        for volume in cinder.volumes.list(search_opts={'all_tenants': 1}):
            image = names.get(volume.name)
            if image and volume.status == 'available':
                found[image] = 'cinder://%s/%s' % (self.adds[image],
                                                   volume.id)
        return found

    def report(self, campaign_s, total_s, fixed, unreadable, undeletable,
               left):
        c = self.counts
        rows = [
            ('operations', self.args.ops - self.remaining),
            ('kills', c['killed']), ('freezes', c['freezes']),
            ('hosts', self.args.hosts),
            ('whole-host kills', c['host kills']),
            ('whole-host freezes', c['host freezes']),
            ('  seconds until killed hosts were released',
             c['seconds waited for lost hosts']),
            ('driver faults injected', c['driver faults injected']),
            ('errors (all)', c['errors']),
            ('  refused a wrong declared size', c['refused wrong size']),
            ('  failed by an injected driver fault',
             c['failed by an injected fault']),
            ('  while a service was frozen', c['errors while frozen']),
            ('  of a host that was frozen', c['errors of a host frozen']),
            ('unexpected errors', len(self.unexpected)),
            ('wrong bytes', c['wrong bytes']),
            ('  deletes refused while read (409)',
             c['delete refused while read']),
            ('  reads racing their delete', c['reads racing their delete']),
            ('  on an image recovering from a kill',
             c['errors while recovering from a kill']),
        ] + self.availability.rows() + [
            ('adds completed as their worker died',
             c['adds done as their worker died']),
            ('images believed stored at the end', len(self.stored)),
            ('  unreadable (stuck)', len(unreadable)),
            ('undeletable', len(undeletable)),
            ('check --fix repairs', len([f for f in fixed
                                         if f.startswith('fixed')])),
        ] + [('left: ' + k, len(v)) for k, v in left.items()]
        print('%-40s %s' % ('chaos (seed %d)' % self.args.seed, 'count'))
        for name, value in rows:
            print('%-40s %s' % (name, value))
        print('campaign %.0f s, with recovery and checks %.0f s; worker '
              'errors in %s' % (campaign_s, total_s, self.worker_log))
        for what, req in self.unexpected[:20]:
            print('UNEXPECTED: %s: %s' % (what, req))
        result = {
            'args': vars(self.args), 'counts': dict(c), 'rows': rows,
            'unexpected': [[str(w), r] for w, r in self.unexpected],
            'unreadable': unreadable, 'undeletable': undeletable,
            'check_fix': fixed, 'left': left, 'campaign_s': campaign_s,
            'availability': self.availability.events,
            'total_s': total_s}
        bad = (self.unexpected or c['wrong bytes'] or unreadable or
               undeletable or any(left.values()))
        return result, 1 if bad else 0


# -- what is left ------------------------------------------------------------

def _fault_dir(backend):
    """The loop-file driver's fault directory for ``backend``, or None."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(settings.CINDER_CONF)
    if not conf.has_option(backend, 'loopfile_volume_dir'):
        return None
    return os.path.join(conf.get(backend, 'loopfile_volume_dir'), 'faults')


def _stack_pids():
    try:
        with open(settings.STATE) as f:
            return json.load(f)['pids']
    except (OSError, ValueError, KeyError):
        return {}


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def admin_cinder():
    from cinderclient import client as cinder_client
    import openstack
    os.environ.setdefault('OS_CLIENT_CONFIG_FILE', settings.CLOUDS)
    return cinder_client.Client('3.54', session=openstack.connect(
        cloud='stack-admin').session)


def leftovers(image_ids, lock_dirs):
    """What the campaign's images left after everything was deleted."""
    from cinder_store.devices import rbd
    from cinder_store import host_reads
    from cinder_store import locks
    from cinder_store import upload_records
    cinder = admin_cinder()
    names = {'image-%s' % i for i in image_ids}
    deadline = time.monotonic() + 120
    while True:  # Cinder deletes asynchronously
        volumes = [v for v in cinder.volumes.list(
            search_opts={'all_tenants': 1}) if v.name in names]
        if not volumes or time.monotonic() > deadline:
            break
        time.sleep(1)
    files = sorted(n for d in lock_dirs if os.path.isdir(d)
                   for n in os.listdir(d))
    return {
        'volumes': ['%s %s' % (v.id, v.status) for v in volumes],
        'attachments': [a['attachment_id'] for v in volumes
                        for a in v.attachments],
        'records': [n for n in files if n.startswith(
            (host_reads.PREFIX, upload_records.PREFIX,
             upload_records.CREATING_PREFIX))],
        'lock files of deleted volumes': [
            n for n in files if n.startswith(locks.PREFIX) and
            _volume_gone(cinder, n[-36:])],
        'loop devices': _stale_loop_devices(),
        'temporary ceph configs': rbd.leftover_connect_files(),
    }


def _volume_gone(cinder, volume_id):
    from cinderclient import exceptions
    from oslo_utils import uuidutils
    if not uuidutils.is_uuid_like(volume_id):
        return False
    try:
        cinder.volumes.get(volume_id)
    except exceptions.NotFound:
        return True
    return False


def _stale_loop_devices():
    out = subprocess.run(['losetup', '-l', '-n', '-O', 'NAME,BACK-FILE'],
                         capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines()
            if '(deleted)' in line]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--worker':
        worker(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ops', type=int, default=100)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--workers', type=int, default=3)
    parser.add_argument('--kill-rate', type=float, default=0.1)
    parser.add_argument('--freeze-rate', type=float, default=0.03)
    parser.add_argument('--fault-rate', type=float, default=0.05,
                        help='share of adds whose volume the driver fails')
    parser.add_argument('--backends', type=lambda s: s.split(','),
                        default=['block', 'file', 'multiattach', 'rbd'])
    parser.add_argument('--time-limit', type=float, default=1800,
                        help='stop sending operations after this long')
    parser.add_argument('--abandoned-age', type=int, default=600)
    parser.add_argument('--availability-limit', type=float,
                        help='seconds an image may stay unreadable or '
                             'undeletable after a read killed inside its '
                             'attach (default: lost-host grace + 30)')
    parser.add_argument('--hosts', type=int, default=1,
                        help='spread the workers over this many Glance '
                             'hosts, killed and frozen whole')
    parser.add_argument('--host-kill-rate', type=float, default=0.04)
    parser.add_argument('--host-freeze-rate', type=float, default=0.02)
    parser.add_argument('--json')
    args = parser.parse_args()
    # A stop by SIGTERM must not leave a service frozen (finally: SIGCONT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result, status = Campaign(args).run()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2, default=str)
    return status


if __name__ == '__main__':
    sys.exit(main())
