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

"""What the check reads of this host's system files."""

from unittest import mock

from cinder_store.findings import system
from cinder_store.tests.unit import base


class TestFilesystemType(base.TestCase):

    def test_the_deepest_mount_holding_the_path_wins(self):
        mounts = ('proc /proc proc rw 0 0\n/dev/vda1 / ext4 rw 0 0\n'
                  'tmpfs /run/lock tmpfs rw 0 0\n')
        with mock.patch('builtins.open', mock.mock_open(read_data=mounts)):
            self.assertEqual('tmpfs',
                             system.filesystem_type('/run/lock/glance'))
            self.assertEqual('tmpfs', system.filesystem_type('/run/lock'))
            self.assertEqual('ext4', system.filesystem_type('/run/locks'))
