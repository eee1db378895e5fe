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

"""The campaign, end to end: its command line, workers and threads."""

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time

from campaign import availability
from campaign import ledger
from campaign import report
from campaign import scenario
from campaign import settlement
from campaign import stack
from campaign import workers
from local_stack import settings

# Seconds after which an attachment no live attacher claims is abandoned
# (cinder_store.recovery.rules.UNANNOUNCED_AGE and its clock skew)
UNCLAIMED_AGE = 35


def availability_limit(hosts):
    """Seconds an image may stay unavailable after a kill inside an attach.

    The lost-host grace plus the 30 s after which an attachment no live
    attacher claims is abandoned.  When whole hosts are killed, the dead
    host's claims count until its membership expires, and another host's
    clock may differ by up to 5 s (recovery.rules.CLOCK_SKEW).
    """
    limit = settings.LOST_HOST_GRACE + 30
    if hosts > 1:
        limit += settings.MEMBERSHIP_TIMEOUT + 5
    return limit


class Campaign(object):
    """One campaign: its books, its choices, its hosts and workers."""

    def __init__(self, args):
        self.args = args
        self.workdir = tempfile.mkdtemp(prefix='chaos-')
        self.worker_log = os.path.join(self.workdir, 'workers.log')
        self.config_files = [settings.GLANCE_CONF, self._campaign_conf()]
        self.ledger = ledger.Ledger(args.ops)
        self.scenario = scenario.Scenario(args, self.ledger,
                                          random.Random(args.seed))
        self.hosts = [workers.Host(args.seed, n, self.workdir,
                                   self.config_files,
                                   self.ledger.dead_hosts)
                      for n in range(args.hosts)] if args.hosts > 1 else []
        self.availability = availability.Availability(
            self.ledger, self.new_worker,
            args.availability_limit or availability_limit(args.hosts))

    def _campaign_conf(self):
        path = os.path.join(self.workdir, 'chaos.conf')
        with open(path, 'w') as f:
            f.write('[backend_defaults]\n'
                    'cinder_store_abandoned_attachment_age = %d\n'
                    % self.args.abandoned_age)
        return path

    def new_worker(self, host=None):
        """A fresh worker; a start that fails (a frozen service) is retried."""
        error = RuntimeError('no worker started')
        for attempt in range(10):
            try:
                if host is None:
                    return workers.Worker(self.config_files, self.worker_log)
                with self.ledger.lock:
                    name, files = host.name, host.config_files()
                worker = workers.Worker(files, self.worker_log, name)
                with self.ledger.lock:
                    if name == host.name:
                        host.workers.add(worker)
                        return worker
                # Its host was killed while it started: start on the new one
                worker.kill()
            except RuntimeError as e:
                error = e
                time.sleep(2)
        raise error

    def run_slot(self, host=None):
        """One worker's stream of operations, replaced when killed."""
        try:
            self._send_operations(host)
        except Exception as e:
            self.ledger.add_unexpected('a worker slot stopped: %s' % e, {})

    def _send_operations(self, host):
        worker = self.new_worker(host)
        try:
            while True:
                req = self.scenario.next_request()
                if req is None:
                    return
                started = time.monotonic()
                answer = self._call_maybe_killed(worker, req)
                if answer is not None:
                    self.ledger.record(req, answer, started, host)
                    continue
                if time.monotonic() - started >= workers.OP_TIMEOUT:
                    self.ledger.add_unexpected(
                        'hung %ds' % workers.OP_TIMEOUT, req)
                self.availability.killed(req, time.monotonic())
                self.ledger.counts['killed'] += 1
                self.ledger.counts['killed ' + req['kind']] += 1
                worker.kill()
                if host is not None:
                    host.workers.discard(worker)
                worker = self.new_worker(host)
        finally:
            worker.kill()
            if host is not None:
                host.workers.discard(worker)

    def _call_maybe_killed(self, worker, req):
        """The worker's answer; None when the scenario killed it."""
        delay = self.scenario.kill_delay()
        timer = None
        if delay is not None:
            timer = threading.Timer(delay, worker.kill)
            timer.start()
        answer = worker.call(req)
        if timer is not None:
            timer.cancel()
        return answer

    def run(self):
        """Run it all; (the JSON report, the exit status)."""
        t0 = time.monotonic()
        self._send_all_operations()
        campaign_s = time.monotonic() - t0
        self.scenario.remove_faults()
        # What no live attacher claims is abandoned after this (claims)
        time.sleep(min(self.args.abandoned_age, UNCLAIMED_AGE) + 1)
        if self.ledger.dead_hosts:
            # Released by the surviving hosts with no operator action
            # (membership timeout + grace + a housekeeping interval)
            self.ledger.counts['seconds waited for lost hosts'] = \
                settlement.wait_for_lost_hosts(self.ledger)
        fixed = self.fix_everywhere()
        worker = self.new_worker()
        try:
            unreadable, undeletable = settlement.read_back_and_delete(
                self.ledger, worker)
        finally:
            worker.stop()
        # Each surviving host's lock files of the volumes just deleted
        # from this one (their housekeeping stopped with their workers)
        fixed += self.fix_everywhere(this_host=False)
        left = settlement.count_leftovers(self.ledger,
                                          settlement.lock_dirs(self.hosts))
        total_s = time.monotonic() - t0
        table = report.rows(self.args, self.ledger, self.availability,
                            fixed, unreadable, undeletable, left)
        report.print_table(self.args, table, campaign_s, total_s,
                           self.worker_log, self.ledger.unexpected)
        return report.outcome(self.args, self.ledger, self.availability,
                              table, fixed, unreadable, undeletable, left,
                              campaign_s, total_s)

    def _send_all_operations(self):
        stop = threading.Event()
        faults = [threading.Thread(
            target=self.scenario.freeze_services,
            args=(stop, bool(self.hosts)), daemon=True)]
        if self.hosts:
            faults.append(threading.Thread(
                target=self.scenario.fail_hosts, args=(stop, self.hosts),
                daemon=True))
        slots = [threading.Thread(
            target=self.run_slot, daemon=True,
            args=(self.hosts[n % len(self.hosts)] if self.hosts else None,))
            for n in range(self.args.workers)]
        for thread in faults:
            thread.start()
        self.availability.start()
        try:
            for slot in slots:
                slot.start()
            for slot in slots:
                slot.join()
        finally:
            stop.set()
            for thread in faults:
                thread.join()
            for host in self.hosts:
                host.signal_workers(signal.SIGCONT)
            for pid in stack.pids().values():
                stack.signal_group(pid, signal.SIGCONT)
        self.availability.stop()

    def fix_everywhere(self, this_host=True):
        """``cinder-store-check --fix`` on every backend of every host."""
        out = []
        for backend in self.args.backends:
            if this_host:
                out += settlement.run_fix(self.ledger, backend,
                                          self.config_files)
            for host in self.hosts:
                out += settlement.run_fix(self.ledger, backend,
                                          host.config_files(), host.name)
        return out


def parse_args(argv, description):
    parser = argparse.ArgumentParser(description=description)
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
                             'attach (default: see availability_limit)')
    parser.add_argument('--hosts', type=int, default=1,
                        help='spread the workers over this many Glance '
                             'hosts, killed and frozen whole')
    parser.add_argument('--host-kill-rate', type=float, default=0.04)
    parser.add_argument('--host-freeze-rate', type=float, default=0.02)
    parser.add_argument('--json')
    return parser.parse_args(argv)


def main(argv=None, description=None):
    args = parse_args(argv, description)
    # A stop by SIGTERM must not leave a service frozen (finally: SIGCONT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result, status = Campaign(args).run()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2, default=str)
    return status
