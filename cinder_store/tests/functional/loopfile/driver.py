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

"""A Cinder volume driver for the local test stack (not for production).

Each volume is a sparse file.  ``loopfile_mode = block`` hands it over as a
loop device, ``file`` as the plain file path (the way NFS-style backends
hand over regular files), both as ``driver_volume_type: local``.  Online
and offline extend, multiattach, clones and snapshots (sparse copies of
the file) work; see
:mod:`files` for fault injection.  Loaded by cinder-volume as
``cinder_store.tests.functional.loopfile.driver.LoopFileDriver``.
"""

from cinder import interface
from cinder import utils
from cinder.volume import driver
from oslo_config import cfg

from cinder_store.tests.functional.loopfile import files

OPTS = [
    cfg.StrOpt('loopfile_volume_dir', help='Directory of the volume files.'),
    cfg.IntOpt('loopfile_capacity_gb', default=200,
               help='Capacity reported to the scheduler.'),
    cfg.StrOpt('loopfile_mode', default='block', choices=['block', 'file'],
               help='Hand volumes over as loop devices or as file paths.'),
    cfg.BoolOpt('loopfile_junk', default=False,
                help='New volumes, and what an extend adds, hold old data '
                     '(as thick LVM with volume_clear = none) instead of '
                     'reading zeros.'),
    cfg.StrOpt('loopfile_root_helper', default='',
               help='Command prefix for losetup when cinder-volume does '
                    'not run as root, e.g. "sudo" (devstack).'),
]
cfg.CONF.register_opts(OPTS, group='backend_defaults')


@interface.volumedriver
class LoopFileDriver(driver.VolumeDriver):
    """Sparse files on loop devices, ``local`` protocol."""

    VERSION = '1.0.0'
    CI_WIKI_NAME = 'none'

    def __init__(self, *args, **kwargs):
        super(LoopFileDriver, self).__init__(*args, **kwargs)
        self.configuration.append_config_values(OPTS)
        self.files = None

    @staticmethod
    def get_driver_options():
        return OPTS

    def do_setup(self, context):
        self.files = files.LoopFiles(
            self.configuration.loopfile_volume_dir,
            junk=self.configuration.loopfile_junk,
            root_helper=self.configuration.loopfile_root_helper.split())
        self.files.setup()

    def check_for_setup_error(self):
        pass

    def _update_volume_stats(self):
        capacity = self.configuration.loopfile_capacity_gb
        used = self.files.used_gb() if self.files else 0
        name = self.configuration.safe_get('volume_backend_name')
        self._stats = {
            'volume_backend_name': name or 'loopfile',
            'vendor_name': 'cinder_store tests',
            'driver_version': self.VERSION,
            'storage_protocol': 'local',
            'total_capacity_gb': capacity,
            'free_capacity_gb': max(capacity - used, 0),
            'provisioned_capacity_gb': used,
            'reserved_percentage': 0,
            'thin_provisioning_support': True,
            'max_over_subscription_ratio': 20.0,
            'multiattach': True,
            'online_extend_support': True,
        }

    def create_volume(self, volume):
        self.files.maybe_fail('create_volume', volume.display_name)
        self.files.create(volume.name, volume.size)

    def create_cloned_volume(self, volume, src_vref):
        self.files.clone(src_vref.name, volume.name)
        if volume.size > src_vref.size:
            self.files.extend(volume.name, volume.size)

    def delete_volume(self, volume):
        self.files.delete(volume.name)

    def create_snapshot(self, snapshot):
        # A copy of the file is the snapshot: what Cinder's snapshot
        # workflows (and Tempest's image/volume dependency tests) need.
        self.files.copy(snapshot.volume_name, snapshot.name)

    def delete_snapshot(self, snapshot):
        self.files.delete(snapshot.name)

    def create_volume_from_snapshot(self, volume, snapshot):
        self.files.copy(snapshot.name, volume.name)
        if volume.size > snapshot.volume_size:
            self.files.extend(volume.name, volume.size)

    def extend_volume(self, volume, new_size):
        self.files.maybe_fail('extend_volume', volume.display_name)
        self.files.extend(volume.name, new_size)

    def create_export(self, context, volume, connector):
        pass

    def ensure_export(self, context, volume):
        pass

    def remove_export(self, context, volume):
        pass

    def validate_connector(self, connector):
        return True

    def initialize_connection(self, volume, connector):
        # Stalled outside the lock: other volumes' attaches go on.
        self.files.maybe_stall('initialize_connection', volume.display_name)
        return self._initialize_connection(volume, connector)

    @utils.synchronized('loopfile-attach', external=True)
    def _initialize_connection(self, volume, connector):
        self.files.maybe_fail('initialize_connection',
                              volume.display_name)
        if self.configuration.loopfile_mode == 'file':
            path = self.files.path(volume.name)
        else:
            path = self.files.attach(volume.name)
        return {'driver_volume_type': 'local',
                'data': {'device_path': path, 'volume_id': volume.id,
                         'format': 'raw'}}

    @utils.synchronized('loopfile-attach', external=True)
    def terminate_connection(self, volume, connector, **kwargs):
        # Every attachment not yet detached shares the device, 'reserved'
        # ones included: their initialize_connection may already have been
        # handed this device while Cinder has not yet moved them on.
        live = [a for a in (volume.volume_attachment or [])
                if a.attach_status != 'detached']
        if len(live) > 1:
            return True  # shared: another attachment still uses the device
        if self.configuration.loopfile_mode != 'file':
            self.files.detach(volume.name)
        return False
