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

"""What a campaign does: random operations, and the faults around them.

Operations: adds of a known, unknown or wrongly declared size, reads
(whole, or abandoned after the first chunk) and deletes, on random
backends.  Faults: now and then an add's volume is failed by the stack's
volume driver; services (cinder-api, cinder-volume, RabbitMQ, the Ceph OSD,
and etcd with several hosts) are frozen with SIGSTOP for a few seconds;
with several hosts, whole hosts are killed or frozen.
"""

import os
import signal
import time
import uuid

from campaign import stack

MiB = 1 << 20
FREEZABLE = ('cinder-api', 'cinder-volume', 'rabbitmq', 'ceph-osd')
# (driver operation, how many times it fails): Cinder tries a create three
# times before it gives up.
FAULTS = (('create_volume', 10), ('initialize_connection', 1))


class Scenario(object):
    """The campaign's random choices (one seeded generator)."""

    def __init__(self, args, ledger, rng):
        self.args = args
        self.ledger = ledger
        self.rng = rng
        self.deadline = time.monotonic() + args.time_limit
        self.fault_files = []

    def next_request(self):
        """The next operation to send, or None when the campaign is over."""
        book = self.ledger
        with book.lock:
            if book.remaining <= 0 or time.monotonic() > self.deadline:
                return None
            book.remaining -= 1
            stored = list(book.stored.items())
            roll = self.rng.random()
            if not stored or roll < 0.4:
                return self._add_request()
            image, (backend, uri, digest) = self.rng.choice(stored)
            if roll < 0.85:
                abandon = self.rng.random() < 0.3
                return {'op': 'get', 'image': image, 'uri': uri,
                        'backend': backend, 'abandon': abandon,
                        'kind': 'get-abandoned' if abandon else 'get'}
            del book.stored[image]
            book.maybe[image] = (backend, uri)
            return {'op': 'delete', 'image': image, 'uri': uri,
                    'backend': backend, 'kind': 'delete'}

    def _add_request(self):
        image = str(uuid.uuid4())
        backend = self.rng.choice(self.args.backends)
        self.ledger.adds[image] = backend
        size = self.rng.choice((1, MiB + 3, 5 * MiB, 24 * MiB))
        declared = self.rng.choice(('exact', 'exact', 'zero', 'wrong'))
        req = {'op': 'add', 'image': image, 'size': size,
               'seed': self.rng.randrange(1 << 30), 'backend': backend,
               'declared': {'exact': size, 'zero': 0,
                            'wrong': size + 7}[declared],
               'kind': 'add-' + declared}
        self._maybe_inject_fault(req)
        return req

    def _maybe_inject_fault(self, req):
        """Now and then, make the volume driver fail this add's volume.

        Only the stack's loop-file driver takes injected faults (files in
        its volume directory, keyed on the image id); a failed create is
        rescheduled by Cinder, so it fails every attempt.
        """
        directory = stack.fault_dir(req['backend'])
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
        self.ledger.counts['driver faults injected'] += 1

    def kill_delay(self):
        """Seconds into an operation to kill its worker, or None."""
        # Most operations take 0.1-3 s: a kill within the first second
        # lands inside most of them, at any step.
        if self.rng.random() < self.args.kill_rate:
            return self.rng.uniform(0.02, 1.0)
        return None

    def remove_faults(self):
        for path in self.fault_files:
            if os.path.exists(path):
                os.unlink(path)

    def freeze_services(self, stop, with_etcd):
        """Until ``stop``: freeze a service now and then (SIGSTOP)."""
        pids = stack.pids()
        targets = [n for n in FREEZABLE + (('etcd',) if with_etcd else ())
                   if n in pids]
        # about freeze-rate freezes per operation sent
        while not stop.wait(self.rng.uniform(1.0, 3.0)):
            if not targets or self.rng.random() > (
                    self.args.freeze_rate * self.args.workers * 2):
                continue
            name = self.rng.choice(targets)
            length = self.rng.uniform(1.0, 4.0)
            start = time.monotonic()
            with self.ledger.lock:
                self.ledger.freezes.append((start, start + length + 1.0))
            self.ledger.counts['freezes'] += 1
            self.ledger.counts['freeze ' + name] += 1
            stack.signal_group(pids[name], signal.SIGSTOP)
            try:
                stop.wait(length)
            finally:
                stack.signal_group(pids[name], signal.SIGCONT)

    def fail_hosts(self, stop, hosts):
        """Until ``stop``: kill or freeze whole hosts, about the rates."""
        while not stop.wait(self.rng.uniform(1.0, 3.0)):
            host = self.rng.choice(hosts)
            roll = self.rng.random()
            scale = self.args.workers * 2
            if roll < self.args.host_kill_rate * scale:
                with self.ledger.lock:
                    host.kill()
                self.ledger.counts['host kills'] += 1
            elif roll < (self.args.host_kill_rate +
                         self.args.host_freeze_rate) * scale:
                length = self.rng.uniform(5.0, 40.0)
                with self.ledger.lock:
                    host.frozen_until = time.monotonic() + length + 1.0
                self.ledger.counts['host freezes'] += 1
                host.signal_workers(signal.SIGSTOP)
                try:
                    stop.wait(length)
                finally:
                    host.signal_workers(signal.SIGCONT)
