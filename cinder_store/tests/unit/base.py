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

import contextlib
import datetime
from importlib import metadata
import io
import json
import os
import threading
from unittest import mock

import fixtures
from glance_store import location as gs_location
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg
from oslo_utils import timeutils
from oslotest import base

from cinder_store import auth
from cinder_store import client
from cinder_store.devices import rbd
from cinder_store import findings
from cinder_store.findings import system
from cinder_store import host
from cinder_store import locks
from cinder_store import membership
from cinder_store import opts
from cinder_store import records
from cinder_store import settings
from cinder_store import store
from cinder_store.tests.unit import fakes
from cinder_store import upload_records

# A holder beyond pid_max: never a running process.
DEAD = '%s:999999999:1' % records.pid_namespace()


def rewrite_record(path, drop=(), **changes):
    """Play a record's writer: change fields of the record at ``path``."""
    with open(path) as f:
        record = dict(json.load(f), **changes)
    for key in drop:
        del record[key]
    with open(path, 'w') as f:
        json.dump(record, f)


UUID = '6f9ff8d4-1b2e-4a59-9c0e-2b0f3c4e5a6b'


def skip_unless_in_tree_loads(test):
    """Skip ``test`` where the in-tree cinder driver cannot load here.

    Before glance_store 5.6, importing it reads Glance's global
    configuration (fs_mount), which only a Glance process has.
    """
    parts = metadata.version('glance_store').split('.')[:2]
    if tuple(int(p) for p in parts) < (5, 6):
        test.skipTest('glance_store < 5.6: its in-tree cinder driver loads '
                      'only inside Glance')


def made_ago(fake_cinder, attachment_id, seconds):
    """Play time: Cinder made ``attachment_id`` ``seconds`` ago."""
    made = timeutils.utcnow() - datetime.timedelta(seconds=seconds)
    fake_cinder.attachments[attachment_id]['attached_at'] = made.isoformat()


def join_probes():
    """Wait for the host probes ``Store.configure`` started in threads."""
    for thread in threading.enumerate():
        if thread.name == 'cinder_store-probe':
            thread.join()


class FakeClock(object):
    """``utils.sleep`` advances ``utils.monotonic``; nothing sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Members(membership.Alone):
    """A coordination group as a test plays it, through membership's API.

    ``lost_hosts`` are lost (``is_lost``, a callable of a host name, may
    say instead), ``waiting`` hosts wait for every volume, ``others_claims``
    are the other processes' live claims (None: unknown).  ``said`` lists
    what this process announced: ``('waits'|'done'|'attaching'|'releasing'|
    'released', volume)``; ``wanted`` volumes are wanted by others.
    """

    coordinated = True

    def __init__(self, lost=(), waiting=(), claims=(), wanted=()):
        super(Members, self).__init__('testhost')
        self.wanted_volumes = set(wanted)
        self.lost_hosts = set(lost)
        self.is_lost = lambda name: name in self.lost_hosts
        self.waiting = set(waiting)
        self.others_claims: list | None = list(claims)
        self.said: list[tuple[str, str]] = []
        self.asked: list[set[str] | None] = []

    def lost(self, host_names=None):
        self.asked.append(None if host_names is None else set(host_names))
        names = self.lost_hosts if host_names is None else set(host_names)
        return {n for n in names if self.is_lost(n)}

    @contextlib.contextmanager
    def waiting_for(self, volume_id):
        self.said.append(('waits', volume_id))
        yield
        self.said.append(('done', volume_id))

    def attaching(self, volume_id):
        self.said.append(('attaching', volume_id))
        return super(Members, self).attaching(volume_id)

    def live_claims(self, volume_id, excluding=None):
        if self.others_claims is None:
            return None
        return [c for c in self.others_claims if c is not excluding]

    def others_waiting(self, volume_id):
        return set(self.waiting)

    def wanted(self, volume_ids):
        return self.wanted_volumes & set(volume_ids)

    @contextlib.contextmanager
    def releasing(self, volume_id):
        self.said.append(('releasing', volume_id))
        yield
        self.said.append(('released', volume_id))


class TestCase(base.BaseTestCase):

    def setUp(self):
        super(TestCase, self).setUp()
        self.clock = FakeClock()
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.monotonic',
                                             self.clock.monotonic))
        self.useFixture(fixtures.MonkeyPatch('cinder_store.utils.sleep',
                                             self.clock.sleep))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        host.forget_connector_properties()
        self.addCleanup(host.forget_connector_properties)


class CinderTestCase(TestCase):
    """A fake Cinder and os-brick behind their real seams."""

    def setUp(self):
        super(CinderTestCase, self).setUp()
        self.cinder = fakes.FakeCinder(self.tmp)
        self.brick = fakes.FakeBrick()
        self.client_factory = self.useFixture(fixtures.MockPatch(
            'cinder_store.client.cinder_client.Client',
            return_value=fakes.FakeClient(self.cinder))).mock
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_store.host.brick_connector', self.brick))
        self.useFixture(fixtures.MonkeyPatch(
            'cinder_store.host.hostname', lambda: 'testhost'))
        self.useFixture(fixtures.MockPatch(
            'cinder_store.host.host_ip', return_value='192.0.2.1'))

    def bound(self, **kwargs):
        creds = mock.Mock(spec=auth.Credentials)
        creds.session = mock.sentinel.session
        creds.auth_for.return_value = (mock.sentinel.auth, None)
        creds.endpoint = auth.Endpoint('block-storage', 'public', None, None)
        parent = client.Cinder(creds, kwargs.get('retries', 2),
                               kwargs.get('attach_attempts', 3),
                               kwargs.get('timeout', 30))
        return parent.bind(None)

    def available_volume(self, api):
        """A new 1 GiB volume, waited for; the calls made are forgotten."""
        volume = api.wait_for_status(api.create_volume(1, 'v', {}, None),
                                     'creating', 'available')
        self.cinder.calls.clear()
        return volume

    def settings(self):
        return settings.Settings(locks.VolumeLocks(self.tmp + '/locks'),
                                 root_helper='', mount_base=self.tmp + '/mnt')

    def assertNothingLeft(self, volumes=0):
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual(set(), self.brick.connected)
        self.assertEqual([], self.brick.handles)
        self.assertEqual([], rbd.leftover_connect_files())
        self.assertEqual(volumes, len(self.cinder.volumes))


class StoreTestCase(CinderTestCase):
    """A configured multi-store ``Store`` for backend ``fast``."""

    backend = 'fast'

    def setUp(self):
        super(StoreTestCase, self).setUp()
        # configure() probes the host in a thread; none may outlive its test
        self.addCleanup(join_probes)
        self.conf = cfg.ConfigOpts()
        self.conf([], project='test', default_config_files=[])
        self.addCleanup(gs_location.SCHEME_TO_CLS_BACKEND_MAP.clear)
        self.store = self.make_store(
            cinder_store_lock_path=self.tmp + '/locks',
            auth_type='password', auth_url='http://keystone/v3',
            username='glance', password='secret', project_name='service',
            user_domain_name='Default', project_domain_name='Default')

    @property
    def maintenance(self):
        """What tools see of the store (``Store.maintenance()``)."""
        return self.store.maintenance()

    def make_store(self, **options):
        """A configured store; warm reads off unless ``options`` say."""
        options.setdefault('cinder_store_warm_read_idle', 0)
        s = store.Store(self.conf, backend=self.backend)
        opts.safe_register(
            self.conf, ks_loading.get_auth_plugin_conf_options('password'),
            self.backend)
        for name, value in options.items():
            self.conf.set_override(name, value, group=self.backend)
        s.configure(re_raise_bsc=True)
        s.host_probe.join()
        return s

    def assertNothingLeft(self, volumes=0):
        super(StoreTestCase, self).assertNothingLeft(volumes)
        live = set(self.cinder.volumes)
        locks = self.tmp + '/locks'
        names = os.listdir(locks) if os.path.isdir(locks) else ()
        stale = [n for n in names if not any(v in n for v in live)]
        self.assertEqual([], stale, 'lock files of deleted volumes')
        self.assertEqual([], [n for n in names
                              if n.startswith(upload_records.PREFIX)],
                         'records of finished uploads')

    def location(self, volume_id, backend='fast'):
        loc = store.StoreLocation({'volume_id': volume_id,
                                   'backend': backend}, self.conf,
                                  backend_group=backend)
        return gs_location.Location('cinder', store.StoreLocation, self.conf,
                                    uri=loc.get_uri(), backend=backend)

    def add(self, data, size=None, image_id='img-1', **kwargs):
        size = len(data) if size is None else size
        return self.store.add(image_id, io.BytesIO(data), size, 'sha512',
                              context=kwargs.pop('context', None), **kwargs)


class FindingsTestCase(StoreTestCase):
    """A configured store on a healthy host; Glance knows every image."""

    def setUp(self):
        super(FindingsTestCase, self).setUp()
        # Whatever the machine's /tmp is, the lock path counts as on disk.
        self.filesystem = self.useFixture(fixtures.MockPatchObject(
            system, 'filesystem_type', return_value='ext4')).mock
        # Glance knows every image, and will not say where it keeps it.
        self.glance_has({}, None, default={'status': 'active'})

    def findings(self, fix=False, probe=True, topic=None):
        found = findings.check_backend(self.store.maintenance(), fix, probe)
        if topic is not None:
            return [f for f in found if f.topic == topic]
        return {f.topic: f for f in found}

    def glance_has(self, images, locations=None, default=None):
        fake = mock.Mock()
        fake.find_image.side_effect = lambda i: images.get(i, default)
        fake.image_locations.return_value = locations
        self.useFixture(fixtures.MockPatchObject(
            findings.maintenance.Maintenance, 'glance_images',
            return_value=fake))
        return fake
