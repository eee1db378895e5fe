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

"""The rootwrap filters cinder_store ships (etc/glance/rootwrap.d)."""

import os
from unittest import mock

import ddt
import fixtures
from os_brick import privileged
from oslo_privsep import priv_context
from oslo_rootwrap import wrapper

from cinder_store import host
from cinder_store.tests.unit import base


FILTERS_DIR = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                           'etc', 'glance', 'rootwrap.d')

HELPER = 'sudo glance-rootwrap /etc/glance/rootwrap.conf'


class _PrivsepConf(dict):
    """What oslo.privsep reads of ``cfg.CONF`` to build its command."""

    def __init__(self, files, dirs):
        super(_PrivsepConf, self).__init__(
            privsep_osbrick=mock.Mock(helper_command=None))
        self.config_file = files
        self.config_dir = dirs


@ddt.ddt
class TestRootwrapFilters(base.TestCase):
    """The shipped filters allow what this driver runs, and no more."""

    def setUp(self):
        super(TestRootwrapFilters, self).setUp()
        self.filters = wrapper.load_filters([FILTERS_DIR])
        self.useFixture(fixtures.MockPatchObject(
            priv_context, '_HELPER_COMMAND_PREFIX', ['sudo']))
        with mock.patch('os.geteuid', return_value=1000):
            host.route_privsep(HELPER)

    def _allowed(self, args):
        return any(f.match(args) for f in self.filters)

    def _privsep_command(self, files, dirs):
        # The command oslo.privsep itself builds for os-brick's context.
        with mock.patch('oslo_config.cfg.CONF', _PrivsepConf(files, dirs)):
            command = privileged.default.helper_command(
                '/tmp/tmpa1b2c3/privsep.sock')
        prefix = HELPER.split()
        self.assertEqual(prefix, command[:len(prefix)])
        return command[len(prefix):]  # what rootwrap matches

    @ddt.data((1, 0), (2, 1), (3, 2))
    @ddt.unpack
    def test_privsep_with_config_files_and_dirs(self, n_files, n_dirs):
        # The daemon os-brick starts goes through rootwrap (route_privsep)
        # and passes, however many config files and directories Glance has.
        files = ['/etc/glance/glance-api-%d.conf' % i
                 for i in range(n_files)]
        dirs = ['/etc/glance/glance-api.conf.d'] * n_dirs
        self.assertTrue(self._allowed(self._privsep_command(files, dirs)))

    @ddt.data('/dev/sdb', '/dev/loop3', '/dev/mapper/36001405abc',
              '/dev/disk/by-path/ip-192.0.2.1:3260-iscsi-iqn.2010-10.org.'
              'openstack:volume-1-lun-0')
    def test_chown_of_a_device(self, path):
        self.assertTrue(self._allowed(['chown', '1000', path]))
        self.assertTrue(self._allowed(['chown', '0', path]))

    @ddt.data('/dev/../etc/shadow', '/dev/sdb/../../etc/shadow',
              '/dev/shm/link-to-shadow', '/dev/mqueue/x', '/etc/shadow',
              '/dev/')
    def test_chown_elsewhere_refused(self, path):
        self.assertFalse(self._allowed(['chown', '1000', path]))

    def test_chown_options_refused(self):
        self.assertFalse(self._allowed(['chown', '-R', '1000', '/dev/sdb']))
        self.assertFalse(self._allowed(['chown', 'glance', '/dev/sdb']))
