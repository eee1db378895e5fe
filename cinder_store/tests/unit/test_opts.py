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

from unittest import mock

import fixtures
import glance_store
from glance_store import location
from glance_store import multi_backend
from oslo_concurrency import opts as lockutils_opts
from oslo_config import cfg

from cinder_store import opts
from cinder_store import store
from cinder_store.tests.unit import base
from cinder_store.tests.unit import fakes


class TestListOpts(base.TestCase):

    def test_every_option_has_help(self):
        for _group, options in opts.list_opts():
            for opt in options:
                self.assertTrue(opt.help, opt.name)

    def test_names_are_ours_and_unique(self):
        names = [o.name for o in opts.OPTIONS]
        self.assertEqual(len(names), len(set(names)))
        self.assertTrue(all(n.startswith('cinder_store_') for n in names))
        in_tree = {o.name for o in opts.LEGACY_OPTIONS}
        self.assertFalse(in_tree & set(names))

    def test_sample_lists_every_in_tree_name_as_deprecated(self):
        ((group, options),) = opts.list_opts()
        listed = {o.name: o for o in options}
        ours = {o.name for o in opts.OPTIONS}
        renamed = {d.name for o in options if o.name in ours
                   for d in o.deprecated_opts}
        for legacy in opts.LEGACY_OPTIONS:
            self.assertTrue(listed[legacy.name].deprecated_for_removal)
            self.assertIn('. Use ', listed[legacy.name].deprecated_reason)
        self.assertIn('cinder_volume_type', renamed)
        self.assertEqual(10, len(renamed))
        # the runtime options themselves are not marked
        self.assertFalse(any(o.deprecated_for_removal
                             for o in opts.LEGACY_OPTIONS))

    def test_sample_group_lists_keystone_options(self):
        ((group, options),) = opts.list_opts()
        names = {o.name for o in options}
        self.assertIn('auth_type', names)
        self.assertIn('cafile', names)
        self.assertIn('cinder_store_volume_type', names)


class TestLoadingBesideInTree(base.TestCase):
    """glance_store's own loading path, legacy registration included."""

    def setUp(self):
        super(TestLoadingBesideInTree, self).setUp()
        base.skip_unless_in_tree_loads(self)
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_store.host.brick_connector', fakes.FakeBrick()))
        self.addCleanup(base.join_probes)
        self.addCleanup(location.SCHEME_TO_CLS_BACKEND_MAP.clear)
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.DictOpt('enabled_backends'))
        glance_store.register_opts(conf)  # every driver into [glance_store]
        for group, options in lockutils_opts.list_opts():
            conf.register_opts(options, group)
        conf([], project='test', default_config_files=[])
        conf.set_override('enabled_backends', {'fast': 'cinder_store',
                                               'upstream': 'cinder'})
        multi_backend.register_store_opts(conf)
        conf.set_override('default_backend', 'fast', group='glance_store')
        conf.set_override('lock_path', self.tmp, group='oslo_concurrency')
        self.conf = conf

    def test_both_stores_load_and_resolve(self):
        with mock.patch.object(multi_backend, 'CONF', self.conf):
            # ours under two schemes, the in-tree one under one
            self.assertEqual(3, multi_backend.create_multi_stores(self.conf))
            ours = multi_backend.get_store_from_store_identifier('fast')
            theirs = multi_backend.get_store_from_store_identifier(
                'upstream')
        self.assertIsInstance(ours, store.Store)
        self.assertEqual('cinder://fast/', ours.url_prefix)
        self.assertEqual('cinder', theirs.get_schemes()[0])
        loc = location.get_location_from_uri_and_backend(
            'cinder://fast/%s' % base.UUID, 'fast', conf=self.conf)
        self.assertEqual(base.UUID, loc.store_location.volume_id)

    def test_in_tree_defaults_survive_in_backend_defaults(self):
        with mock.patch.object(multi_backend, 'CONF', self.conf):
            multi_backend.create_multi_stores(self.conf)
        self.assertEqual('Default', self.conf.backend_defaults
                         .cinder_store_user_domain_name)


class TestBackendConf(base.TestCase):

    def setUp(self):
        super(TestBackendConf, self).setUp()
        self.conf = cfg.ConfigOpts()
        self.conf([], project='test', default_config_files=[])
        self.view = opts.BackendConf(self.conf, 'fast')

    def test_the_backend_wins_then_the_defaults_then_the_default(self):
        self.assertEqual(600, self.view.cinder_store_abandoned_attachment_age)
        self.conf.set_override('cinder_store_abandoned_attachment_age', 60,
                               group='backend_defaults')
        self.assertEqual(60, self.view.cinder_store_abandoned_attachment_age)
        self.conf.set_override('cinder_store_abandoned_attachment_age', 30,
                               group='fast')
        self.assertEqual(30, self.view.value(
            'cinder_store_abandoned_attachment_age'))

    def test_every_option_of_ours_is_an_attribute(self):
        for opt in opts.OPTIONS + opts.LEGACY_OPTIONS:
            self.assertEqual(self.view.value(opt.dest),
                             getattr(self.view, opt.dest))
        # keystoneauth1's too, by name
        for opt in opts.keystone_options():
            self.view.value(opt.dest)

    def test_a_misspelt_option_is_an_error_not_unset(self):
        self.assertRaises(AttributeError, getattr, self.view,
                          'cinder_store_volumetype')
        self.assertRaises(AttributeError, self.view.value,
                          'cinder_store_volumetype')
