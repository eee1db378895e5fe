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

import os

from cinder_store.tests.functional.loopfile import files
from cinder_store.tests.unit import base


class FakeLosetup(object):
    def __init__(self):
        self.bound = {}
        self.calls = []

    def __call__(self, *cmd):
        self.calls.append(cmd)
        if cmd[:2] == ('losetup', '-j'):
            return ''.join('%s\n' % d for d, p in self.bound.items()
                           if p == cmd[2])
        if cmd[:3] == ('losetup', '-f', '--show'):
            device = '/dev/loop%d' % len(self.bound)
            self.bound[device] = cmd[3]
            return device + '\n'
        if cmd[:2] == ('losetup', '-d'):
            del self.bound[cmd[2]]
        return ''


class TestLoopFiles(base.TestCase):

    def setUp(self):
        super(TestLoopFiles, self).setUp()
        self.losetup = FakeLosetup()
        self.files = files.LoopFiles(self.tmp, execute=self.losetup)

    def test_create_is_sparse_and_exclusive(self):
        self.files.create('v', 2)
        st = os.stat(self.files.path('v'))
        self.assertEqual(2 << 30, st.st_size)
        self.assertLess(st.st_blocks * 512, 1 << 20)
        self.assertRaises(FileExistsError, self.files.create, 'v', 1)

    def test_junk_volumes_hold_old_data_in_every_stride(self):
        junky = files.LoopFiles(self.tmp, execute=self.losetup, junk=True)
        junky.create('j', 1)
        junky.extend('j', 2)
        with open(junky.path('j'), 'rb') as f:
            for offset in (0, files.JUNK_STRIDE, (1 << 30) - files.JUNK_STRIDE,
                           1 << 30, (2 << 30) - files.JUNK_STRIDE):
                f.seek(offset)
                self.assertEqual(files.JUNK, f.read(len(files.JUNK)))

    def test_root_helper_prefixes_losetup_only(self):
        calls = []
        helped = files.LoopFiles(
            self.tmp, root_helper=('sudo',),
            execute=lambda *cmd: calls.append(cmd) or '/dev/loop7\n')
        helped.create('v', 1)
        helped.copy('v', 'w')
        self.assertEqual('/dev/loop7', helped.attach('v'))
        self.assertEqual([('sudo', 'losetup', '-j', helped.path('v'), '-O',
                           'NAME', '-n')], calls[1:2])
        self.assertEqual('cp', calls[0][0])
        self.assertTrue(all(c[0] == 'sudo' for c in calls[1:]))

    def test_attach_reuses_device_for_multiattach(self):
        self.files.create('v', 1)
        first = self.files.attach('v')
        self.assertEqual(first, self.files.attach('v'))
        self.files.detach('v')
        self.assertEqual({}, self.losetup.bound)

    def test_extend_keeps_data_and_rescans_devices(self):
        self.files.create('v', 1)
        with open(self.files.path('v'), 'r+b') as f:
            f.write(b'keep')
        device = self.files.attach('v')
        self.files.extend('v', 3)
        with open(self.files.path('v'), 'rb') as f:
            self.assertEqual(b'keep', f.read(4))
        self.assertIn(('losetup', '-c', device), self.losetup.calls)

    def test_delete_releases_devices(self):
        self.files.create('v', 1)
        self.files.attach('v')
        self.files.delete('v')
        self.assertFalse(os.path.exists(self.files.path('v')))
        self.assertEqual({}, self.losetup.bound)

    def test_clone_is_recorded_until_the_clone_is_deleted(self):
        self.files.create('src', 1)
        self.files.clone('src', 'dst')
        self.assertIn(('cp', '--sparse=always', self.files.path('src'),
                       self.files.path('dst')), self.losetup.calls)
        with open(self.files.clone_record('dst')) as f:
            self.assertEqual('src', f.read())
        self.assertFalse(os.path.exists(self.files.clone_record('src')))
        self.files.delete('dst')
        self.assertFalse(os.path.exists(self.files.clone_record('dst')))

    def test_fault_injection_counts_down_per_volume(self):
        os.makedirs(os.path.join(self.tmp, files.FAULTS_DIR))
        with open(os.path.join(self.tmp, files.FAULTS_DIR,
                               'initialize_connection@image-1'), 'w') as f:
            f.write('2')
        self.files.maybe_fail('initialize_connection', 'image-2')
        for _ in range(2):
            self.assertRaises(files.InjectedFault, self.files.maybe_fail,
                              'initialize_connection', 'image-1')
        self.files.maybe_fail('initialize_connection', 'image-1')
        self.files.maybe_fail('extend_volume', 'image-1')

    def test_stall_holds_until_the_file_goes(self):
        faults = os.path.join(self.tmp, files.FAULTS_DIR)
        os.makedirs(faults)
        stall = os.path.join(faults, 'stall-initialize_connection@image-1')
        open(stall, 'w').close()
        naps = []

        def sleep(seconds):
            # The test removes the file while the driver waits.
            self.assertTrue(os.path.exists(stall + '.stalled'))
            naps.append(seconds)
            if len(naps) == 3:
                os.unlink(stall)

        self.files.maybe_stall('initialize_connection', 'image-2', sleep)
        self.assertEqual([], naps)
        self.files.maybe_stall('initialize_connection', 'image-1', sleep)
        self.assertEqual(3, len(naps))

    def test_stall_gives_up_after_its_limit(self):
        faults = os.path.join(self.tmp, files.FAULTS_DIR)
        os.makedirs(faults)
        open(os.path.join(faults, 'stall-extend_volume@image-1'), 'w').close()
        naps = []
        self.files.maybe_stall('extend_volume', 'image-1', naps.append)
        self.assertEqual(files.STALL_LIMIT * 10, len(naps))
