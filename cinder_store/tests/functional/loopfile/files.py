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

"""Sparse files as volumes, loop devices as their block transport.

Kept free of Cinder imports so it is unit-tested without Cinder.  Fault
injection: a file ``faults/<operation>@<volume display name>`` in the
volume directory holds how many of that volume's next calls of the
operation fail (``faults/<operation>`` for any volume).  Tests write it,
the driver consumes it under a file lock, so counts are exact across
processes and concurrent tests never consume each other's faults.

A file ``faults/stall-<operation>@<volume display name>`` holds the
operation instead: the driver creates ``<that file>.stalled`` and waits
until the test removes the stall file (at most ``STALL_LIMIT`` seconds).
The test thus sees a client mid-call, with Cinder's side half done.

With ``junk``, a new volume (and the part an extend adds) holds old data,
as thick LVM with ``volume_clear = none`` does: :data:`JUNK` at the start
of every :data:`JUNK_STRIDE` bytes, so any range of the size cinder_store
skips as zeros that was left unwritten shows.

Each clone leaves ``clones/<new volume's name>`` holding the source
volume's name, until the clone is deleted: the proof a test needs that
Cinder cloned an image-volume instead of downloading the image.
"""

import fcntl
import os
import subprocess
import time

from oslo_utils import units

FAULTS_DIR = 'faults'
CLONES_DIR = 'clones'
STALL_LIMIT = 120
JUNK = b'old data from a deleted volume!\n' * 16  # 512 bytes
JUNK_STRIDE = 64 * units.Ki


class InjectedFault(Exception):
    """An operation failed because a test asked for it."""


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout


class LoopFiles(object):
    """Volume files under ``directory``; ``execute`` runs commands.

    ``root_helper`` (e.g. ``('sudo',)``) prefixes losetup, the one command
    that needs root, when cinder-volume does not run as root (devstack).
    """

    def __init__(self, directory, execute=run, junk=False, root_helper=()):
        self.directory = directory
        self.execute = execute
        self.junk = junk
        self.root_helper = tuple(root_helper)

    def losetup(self, *args):
        return self.execute(*self.root_helper, 'losetup', *args)

    def path(self, name):
        return os.path.join(self.directory, '%s.img' % name)

    def setup(self):
        os.makedirs(self.directory, exist_ok=True)
        self.losetup('--version')

    def create(self, name, size_gb):
        with open(self.path(name), 'xb') as f:
            f.truncate(size_gb * units.Gi)
            self._fill_junk(f, 0, size_gb * units.Gi)

    def _fill_junk(self, f, start, end):
        if not self.junk:
            return
        for offset in range(start, end, JUNK_STRIDE):
            os.pwrite(f.fileno(), JUNK, offset)

    def delete(self, name):
        for device in self.loops(name):
            self.losetup('-d', device)
        for path in (self.path(name), self.clone_record(name)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def extend(self, name, size_gb):
        with open(self.path(name), 'r+b') as f:
            old_size = os.fstat(f.fileno()).st_size
            f.truncate(size_gb * units.Gi)
            self._fill_junk(f, old_size, size_gb * units.Gi)
        for device in self.loops(name):
            self.losetup('-c', device)

    def loops(self, name):
        """Loop devices currently bound to the volume's file."""
        out = self.losetup('-j', self.path(name), '-O', 'NAME',
                           '-n')
        return [line.strip() for line in out.splitlines() if line.strip()]

    def attach(self, name):
        """The volume's loop device, binding one if it has none."""
        existing = self.loops(name)
        if existing:
            return existing[0]
        return self.losetup('-f', '--show',
                            self.path(name)).strip()

    def detach(self, name):
        for device in self.loops(name):
            self.losetup('-d', device)

    def copy(self, source, dest):
        self.execute('cp', '--sparse=always', self.path(source),
                     self.path(dest))

    def clone(self, source, dest):
        """Copy ``source`` to ``dest`` and record that it was a clone."""
        self.copy(source, dest)
        os.makedirs(os.path.join(self.directory, CLONES_DIR), exist_ok=True)
        with open(self.clone_record(dest), 'w') as f:
            f.write(source)

    def clone_record(self, name):
        return os.path.join(self.directory, CLONES_DIR, name)

    def used_gb(self):
        total = 0
        for entry in os.scandir(self.directory):
            if entry.name.endswith('.img'):
                total += entry.stat().st_blocks * 512
        return total / units.Gi

    def maybe_fail(self, operation, subject=None):
        """Raise InjectedFault if a fault file asks for it."""
        names = ['%s@%s' % (operation, subject)] if subject else []
        for name in names + [operation]:
            if self._consume(os.path.join(self.directory, FAULTS_DIR, name)):
                raise InjectedFault('injected failure of %s on %s'
                                    % (operation, subject))

    def maybe_stall(self, operation, subject, sleep=time.sleep):
        """Wait while a stall file for ``operation`` on ``subject`` exists."""
        path = os.path.join(self.directory, FAULTS_DIR,
                            'stall-%s@%s' % (operation, subject))
        if not os.path.exists(path):
            return
        open(path + '.stalled', 'w').close()
        for _ in range(STALL_LIMIT * 10):
            if not os.path.exists(path):
                return
            sleep(0.1)

    @staticmethod
    def _consume(path):
        try:
            f = open(path, 'r+')
        except FileNotFoundError:
            return False
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            left = int(f.read().strip() or 0)
            if left <= 0:
                return False
            f.seek(0)
            f.truncate()
            f.write(str(left - 1))
        return True
