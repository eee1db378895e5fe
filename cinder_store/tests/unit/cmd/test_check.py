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

import io
import os
from unittest import mock

from oslo_config import cfg

from cinder_store.cmd import check
from cinder_store.findings import system
from cinder_store import host
from cinder_store.tests.unit import base


class TestMain(base.CinderTestCase):

    def run_main(self, *args, backends='fast:cinder_store'):
        path = os.path.join(self.tmp, 'glance-api.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nenabled_backends = %s\n'
                    '[fast]\ncinder_store_lock_path = %s\n'
                    'auth_type = password\nauth_url = http://keystone/v3\n'
                    'username = glance\npassword = secret\n'
                    'project_name = service\nuser_domain_name = Default\n'
                    'project_domain_name = Default\n'
                    % (backends, self.tmp + '/locks'))
        out = io.StringIO()
        with mock.patch('os.geteuid', return_value=0), \
                mock.patch.object(system, 'filesystem_type',
                                  return_value='ext4'):
            rc = check.main(['--config-file', path] + list(args), out=out,
                            conf=cfg.ConfigOpts())
        base.join_probes()
        return rc, out.getvalue()

    def test_every_check_of_every_backend(self):
        rc, out = self.run_main()
        self.assertEqual(0, rc, out)
        self.assertIn('backend fast\n', out)
        self.assertEqual(13, out.count('  ok     '), out)
        self.assertNotIn('secret', out)

    def test_unknown_backend(self):
        rc, out = self.run_main('--backend', 'slow')
        self.assertEqual(2, rc)
        self.assertIn('slow is not a cinder_store backend of '
                      'enabled_backends (fast)', out)

    def test_no_cinder_store_backend(self):
        rc, out = self.run_main(backends='f:file')
        self.assertEqual(1, rc)
        self.assertIn('no cinder_store backend', out)

    def test_bad_configuration_fails_that_backend(self):
        with mock.patch.object(check.store.Store, 'configure',
                               side_effect=ValueError('bad option')):
            rc, out = self.run_main()
        self.assertEqual(1, rc)
        self.assertIn('FAIL   configuration bad option', out)

    def test_a_lost_host_is_never_this_one(self):
        with mock.patch.object(host, 'hostname', return_value='me'):
            rc, out = self.run_main('--lost-host', 'me')
        self.assertEqual(2, rc)
        self.assertIn('--lost-host me is this host', out)
