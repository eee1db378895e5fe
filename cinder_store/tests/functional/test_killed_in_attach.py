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

"""A reader killed at each point of its attach, with live readers around.

Issue #31: a reader of a multiattach image killed inside its attach left
an attachment ``attaching`` that blocked every read and delete of the
image for minutes, whenever other readers were attaching the image at
the same time (each refused reader's announcement hid the dead one).
Here a reader on this host stops for good at one point of its attach and
is killed; at once ``others`` readers on other Glance hosts start reading
the image (refused, they retry and claim their attaches meanwhile).  The
image must be read here, by every other reader, and deleted, each
within the lost-host grace + 30 s of the kill.

Points: ``create`` (inside ``attachment_create``: Cinder is held inside
the driver's ``initialize_connection`` as the reader dies), ``created``
(Cinder answered, the reader has not recorded the id), ``connected``
(os-brick connected, Cinder shows the attachment ``attaching``),
``completing`` (about to call ``attachment_complete``).  Needs the local
stack (its driver's stall, its Glance hosts' coordination).
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid

import ddt
import fixtures
from glance_store import exceptions
from glance_store import multi_backend
from testtools import content

from cinder_store.tests.functional import base

POINTS = ('create', 'created', 'connected', 'completing')
# Every point on both types, each with 0, 1 and 3 other readers somewhere
# (CI); CINDER_STORE_FUNCTIONAL_FULL=1: every combination (24 cases)
OTHERS = {'multiattach': (3, 0, 1, 3), 'block': (0, 3, 3, 1)}


def _cases():
    if os.environ.get('CINDER_STORE_FUNCTIONAL_FULL') == '1':
        return [(role, point, others) for role in OTHERS
                for point in POINTS for others in (0, 1, 3)]
    return [(role, point, OTHERS[role][n]) for role in OTHERS
            for n, point in enumerate(POINTS)]


@ddt.ddt
class TestKilledInAttach(base.FunctionalTestCase):

    def setUp(self):
        super(TestKilledInAttach, self).setUp()
        self.store = None

    def bound(self):
        """Grace + 30 s: what a kill inside an attach may cost (#22)."""
        settings = self.store.maintenance().settings
        if not settings.membership.coordinated:
            self.skipTest('no coordination service configured: a dead '
                          'attacher is told by its age alone')
        return multi_backend.get_store_from_store_identifier(
            self.backend).backend_conf.cinder_store_lost_host_grace + 30

    def stored(self, role):
        self.backend = self.backend_for(role)
        self.store = multi_backend.get_store_from_store_identifier(
            self.backend)
        volumes = base.local_volume_dir(self.backend)
        if volumes is None:
            self.skipTest('needs the local stack (its driver\'s stall)')
        data = base.pattern_bytes(24 * base.MiB, seed=31)
        image_id = self.new_image_id()
        uri = self.add(self.backend, data, image_id=image_id)[0]
        # A test that fails half-way still deletes its image, once the
        # dead reader's attachment is released
        self.addCleanup(self.delete_eventually, uri)
        return uri, image_id, hashlib.sha256(data).hexdigest(), volumes

    def delete_eventually(self, uri):
        deadline = time.monotonic() + self.bound() + 15
        while True:
            try:
                self.delete(uri, self.backend)
                return
            except exceptions.NotFound:
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def stop_reader(self, uri, image_id, point, volumes):
        """A reader of this host stopped at ``point``, then SIGKILLed."""
        sync = self.useFixture(fixtures.TempDir()).path
        helper = 'stopped_reader'
        args = [uri, self.backend, point, sync]
        marker = os.path.join(sync, 'at-' + point)
        if point == 'create':
            faults = os.path.join(volumes, 'faults')
            os.makedirs(faults, exist_ok=True)
            stall = os.path.join(faults, 'stall-initialize_connection@image-'
                                 + image_id)
            open(stall, 'w').close()
            self.addCleanup(lambda: os.path.exists(stall) and
                            os.unlink(stall))
            helper, args, marker = 'reader', [uri, self.backend, '1'], (
                stall + '.stalled')
        reader = subprocess.Popen(
            [sys.executable, '-m', 'cinder_store.tests.functional.' + helper]
            + args, stdout=subprocess.DEVNULL)
        self.addCleanup(lambda: reader.poll() is None and reader.kill())
        deadline = time.monotonic() + 120
        while not os.path.exists(marker):
            self.assertLess(time.monotonic(), deadline,
                            'the reader never reached %s' % point)
            self.assertIsNone(reader.poll(), 'the reader ended early')
            time.sleep(0.05)
        reader.send_signal(signal.SIGKILL)
        reader.wait()
        if point == 'create':
            os.unlink(marker[:-len('.stalled')])  # Cinder goes on alone

    def other_readers(self, uri, count):
        """``count`` readers on other Glance hosts, ready to start.

        Returns (them, the path whose creation starts them).
        """
        start = os.path.join(self.useFixture(fixtures.TempDir()).path, 'go')
        readers = []
        for n in range(count):
            name = 'other-%d-%s' % (n, uuid.uuid4().hex[:6])
            locks = self.useFixture(fixtures.TempDir()).path
            readers.append(subprocess.Popen(
                ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"',
                 name, sys.executable, '-m',
                 'cinder_store.tests.functional.reader', uri, self.backend,
                 '1'],
                env=dict(os.environ, CINDER_STORE_FUNCTIONAL_LOCK_PATH=locks,
                         CINDER_STORE_FUNCTIONAL_START=start),
                stdout=subprocess.PIPE, text=True))
            self.addCleanup(lambda r=readers[-1]: r.poll() is None and
                            r.kill())
        # Loading Glance's stores takes each process seconds, minutes when
        # the machine is busy with the tests beside
        deadline = time.monotonic() + 300
        while len([n for n in os.listdir(os.path.dirname(start))
                   if n.startswith('go.ready-')]) < count:
            self.assertLess(time.monotonic(), deadline,
                            'the other readers never got ready')
            for reader in readers:
                self.assertIsNone(reader.poll(), 'another reader ended')
            time.sleep(0.05)
        return readers, start

    def first_success(self, what, call, since, bound):
        """Seconds from ``since`` to ``call()``'s first success."""
        while True:
            try:
                result = call()
                break
            except Exception as error:
                self.assertLess(time.monotonic() - since, bound,
                                '%s still fails %ds after the kill: %s'
                                % (what, bound, error))
                time.sleep(1)
        return time.monotonic() - since, result

    @ddt.data(*_cases())
    @ddt.unpack
    def test_image_is_read_and_deleted_within_the_bound(self, role, point,
                                                        others):
        uri, image_id, sha, volumes = self.stored(role)
        bound = self.bound()
        readers, start = self.other_readers(uri, others)
        self.stop_reader(uri, image_id, point, volumes)
        killed = time.monotonic()
        open(start, 'w').close()
        read_after, got = self.first_success(
            'reading here', lambda: self.read(uri, self.backend), killed,
            bound)
        self.assertEqual(sha, got[0])
        for reader in readers:
            out, _ = reader.communicate(timeout=bound)
            self.assertEqual((0, sha), (reader.returncode, out.strip()))
        others_after = time.monotonic() - killed
        self.assertLess(others_after, bound)
        deleted_after, _ = self.first_success(
            'deleting', lambda: self.delete(uri, self.backend), killed,
            bound)
        self.addDetail('timings', content.text_content(
            '%s %s, %d other readers: read here %.1fs, by all %.1fs, '
            'deleted %.1fs after the kill (bound %ds)' % (
                role, point, others, read_after, others_after,
                deleted_after, bound)))
