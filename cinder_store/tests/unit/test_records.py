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
import stat
from unittest import mock

import fixtures

from cinder_store import records
from cinder_store.tests.unit import base

DEAD = base.DEAD


class TestProcessIdentity(base.TestCase):

    def test_this_process_is_alive(self):
        self.assertTrue(records.holder_alive(records.process_id()))

    def test_a_reused_pid_is_not_the_same_process(self):
        namespace, pid, _start = records.process_id().split(':')
        self.assertFalse(records.holder_alive('%s:%s:0' % (namespace, pid)))

    def test_a_process_in_another_namespace_counts_as_alive(self):
        # It cannot be checked from here: never detach under it.
        self.assertTrue(records.holder_alive('4026599999:999999999:1'))

    def test_a_missing_process_is_dead(self):
        self.assertFalse(records.holder_alive(DEAD))
        self.assertIsNone(records.process_id(999999999))


class TestRecordFiles(base.TestCase):

    def setUp(self):
        super(TestRecordFiles, self).setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.files = records.RecordFiles(self.dir, 'p-', 'test')

    def test_round_trip_is_private_and_listed(self):
        self.files.save('v1', {'a': 1})
        self.assertEqual({'a': 1}, self.files.load('v1'))
        self.assertEqual(0o600, stat.S_IMODE(
            os.stat(self.files.path('v1')).st_mode))
        open(os.path.join(self.dir, 'other.json'), 'w').close()
        self.assertEqual(['v1'], self.files.volume_ids())
        self.files.remove('v1')
        self.files.remove('v1')  # already gone: fine
        self.assertIsNone(self.files.load('v1'))
        self.assertEqual([], self.files.volume_ids())

    def test_listing_for_a_backend_skips_other_backends_records(self):
        self.files.save('mine', {'backend': 'fast'})
        self.files.save('theirs', {'backend': 'slow'})
        self.files.save('unnamed', {})
        with open(self.files.path('torn'), 'w') as f:
            f.write('{')
        self.assertEqual(['mine', 'torn', 'unnamed'],
                         self.files.volume_ids('fast'))
        self.assertEqual(4, len(self.files.volume_ids()))

    def test_an_unreadable_record_counts_as_none(self):
        with open(self.files.path('v2'), 'w') as f:
            f.write('{not json')
        self.assertIsNone(self.files.load('v2'))

    def test_a_missing_directory_has_no_records(self):
        files = records.RecordFiles(os.path.join(self.dir, 'no'), 'p-', 't')
        self.assertEqual([], files.volume_ids())

    def test_a_record_of_another_host_is_foreign(self):
        with mock.patch.object(records.host, 'hostname', return_value='me'):
            self.assertTrue(records.written_elsewhere({'host': 'other'}))
            self.assertFalse(records.written_elsewhere({'host': 'me'}))
            # written before records named their host
            self.assertFalse(records.written_elsewhere({}))
            self.assertFalse(records.written_elsewhere(None))

    def test_records_from_another_boot_are_not_this_boot(self):
        self.assertTrue(records.this_boot({'boot': records.boot_id()}))
        self.assertFalse(records.this_boot({'boot': 'other'}))
