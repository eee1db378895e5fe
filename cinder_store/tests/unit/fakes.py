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

"""In-memory Cinder and os-brick for unit tests (the one mocking seam).

``FakeCinder`` keeps volumes and attachments like Cinder does and raises
cinderclient's own exceptions.  ``FakeBrick`` "connects" a volume by
handing out a real temporary file, so device I/O in unit tests is real.
``fail(name, exc, times)`` on either makes the named call raise.
"""

import errno
import os
import tempfile
import uuid

from cinderclient import exceptions as cinder_exc
from oslo_utils import timeutils
from oslo_utils import units


class Failures(object):
    def __init__(self):
        self._plan = {}
        self.calls = []

    def fail(self, name, exc, times=1):
        self._plan[name] = [exc, times]

    def hit(self, name, record=True):
        if record:
            self.calls.append(name)
        plan = self._plan.get(name)
        if plan and plan[1] != 0:
            plan[1] -= 1
            raise plan[0]


class Volume(object):
    def __init__(self, size, name, metadata, volume_type, multiattach=False):
        self.id = str(uuid.uuid4())
        self.size = size
        self.name = name
        self.metadata = dict(metadata or {})
        self.volume_type = volume_type or '__DEFAULT__'
        self.status = 'creating'
        self.multiattach = multiattach
        self.encrypted = False
        self.shared_targets = False
        self.service_uuid = 'svc'
        self.attachments = []
        self.readonly = False
        self.updated_at = None


class _Type(object):
    def __init__(self, name, multiattach=False):
        self.name = name
        self.extra_specs = ({'multiattach': '<is> True'} if multiattach
                            else {})


class FakeCinder(Failures):
    """Enough of Cinder for the driver; ``volumes`` maps id -> Volume."""

    def __init__(self, device_dir, host_name='testhost'):
        super(FakeCinder, self).__init__()
        self.device_dir = device_dir
        self.host_name = host_name
        self.volumes = {}
        self.attachments = {}
        self.types = {'__DEFAULT__', 'fast'}
        self.create_status = ['available']  # statuses after 'creating'
        self.extend_status = None
        self.multiattach_types = set()
        # Cinder refuses a reservation while the volume is 'attaching' (an
        # attachment being made); off by default, as the fake completes
        # attachments in whatever order the tests interleave them.
        self.refuse_while_attaching = False
        self.encrypted_types = set()
        # 'rbd': os-brick attaches in userspace (FakeBrick hands out
        # FakeRBDHandle file objects)
        self.transport = 'local'
        # the client's managers point back here
        self.volumes_api = _Volumes(self)
        self.attachments_api = _Attachments(self)
        self.volume_types_api = _Types(self)

    def device_path(self, volume_id):
        return os.path.join(self.device_dir, volume_id)

    def volume(self, volume_id):
        try:
            return self.volumes[volume_id]
        except KeyError:
            raise cinder_exc.NotFound(404, 'Volume %s could not be found.'
                                      % volume_id, request_id='req-404')

    def live_attachments(self):
        return list(self.attachments)


class _Volumes(object):
    def __init__(self, cinder):
        self.c = cinder

    def create(self, size, name=None, metadata=None, volume_type=None):
        self.c.hit('volumes.create')
        if volume_type and volume_type not in self.c.types:
            raise cinder_exc.NotFound(404, 'Volume type not found')
        vol = Volume(size, name, metadata, volume_type,
                     multiattach=volume_type in self.c.multiattach_types)
        vol.encrypted = volume_type in self.c.encrypted_types
        vol._statuses = list(self.c.create_status)
        self.c.volumes[vol.id] = vol
        with open(self.c.device_path(vol.id), 'wb') as f:
            f.truncate(size * units.Gi)
        return vol

    def list(self, search_opts=None):
        self.c.hit('volumes.list')
        wanted = (search_opts or {}).get('metadata', {})
        status = (search_opts or {}).get('status')
        return [_snapshot(v) for v in self.c.volumes.values()
                if all(v.metadata.get(k) == w for k, w in wanted.items())
                and status in (None, v.status)]

    def get(self, volume_id):
        self.c.hit('volumes.get')
        vol = self.c.volume(volume_id)
        statuses = getattr(vol, '_statuses', None)
        if vol.status in ('creating', 'extending') and statuses:
            vol.status = statuses.pop(0)
        return _snapshot(vol)

    def delete(self, volume_id):
        self.c.hit('volumes.delete')
        vol = self.c.volume(volume_id)
        if vol.attachments:
            raise cinder_exc.BadRequest(400, 'Invalid volume: Volume status '
                                        'must be available or error')
        del self.c.volumes[volume_id]
        os.unlink(self.c.device_path(volume_id))

    def extend(self, volume_id, new_size):
        self.c.hit('volumes.extend')
        vol = self.c.volume(volume_id)
        vol.size = new_size
        vol._statuses = [self.c.extend_status or
                         ('in-use' if vol.attachments else 'available')]
        vol.status = 'extending'
        with open(self.c.device_path(volume_id), 'r+b') as f:
            f.truncate(new_size * units.Gi)

    def set_metadata(self, volume_id, metadata):
        self.c.hit('volumes.set_metadata')
        self.c.volume(volume_id).metadata.update(metadata)

    def update_readonly_flag(self, volume_id, flag):
        self.c.hit('volumes.update_readonly_flag')
        vol = self.c.volume(volume_id)
        vol.readonly = flag
        # Cinder shows the flag among the volume's metadata
        vol.metadata['readonly'] = str(bool(flag))


def _snapshot(vol):
    copy = Volume.__new__(Volume)
    copy.__dict__.update(vol.__dict__)
    copy.metadata = dict(vol.metadata)
    copy.attachments = [dict(a) for a in vol.attachments]
    return copy


class _Attachment(object):
    def __init__(self, data):
        self.__dict__.update(data)


class _Attachments(object):
    def __init__(self, cinder):
        self.c = cinder

    def create(self, volume_id, connector, mode='null'):
        vol = self.c.volume(volume_id)
        try:
            self.c.hit('attachments.create.initialize', record=False)
        except Exception:
            # Cinder keeps the reservation when the backend fails to
            # initialise the connection, and returns no attachment id.
            self.c.attachments[str(uuid.uuid4())] = {
                'volume_id': volume_id, 'mode': mode, 'status': 'reserved',
                'connector': connector, 'connection_info': None}
            vol.status = 'reserved'
            vol.updated_at = timeutils.utcnow().isoformat()
            self.c.calls.append('attachments.create')
            raise
        self.c.hit('attachments.create')
        if vol.status == 'reserved' or (self.c.refuse_while_attaching and
                                        vol.status == 'attaching'):
            raise cinder_exc.BadRequest(
                400, 'Invalid volume: Volume status must be available or '
                     'in-use or downloading to reserve, but the current '
                     'status is %s.' % vol.status)
        if vol.attachments and not vol.multiattach:
            raise cinder_exc.BadRequest(
                400, 'Invalid volume: Volume status must be available or '
                     'downloading to reserve, but the current status is '
                     'in-use.')
        att_id = str(uuid.uuid4())
        info = {'driver_volume_type': self.c.transport,
                'data': {'device_path': self.c.device_path(volume_id),
                         'volume_id': volume_id, 'access_mode': mode,
                         'encrypted': vol.encrypted,
                         'auth_password': 's3cr3t'}}
        if self.c.transport == 'rbd':
            info['data'].update(name='volumes/volume-%s' % volume_id,
                                hosts=['192.0.2.9'], ports=['6789'],
                                cluster_name='ceph', auth_username='cinder')
        self.c.attachments[att_id] = {'volume_id': volume_id, 'mode': mode,
                                      'connector': connector,
                                      'status': 'attaching',
                                      'connection_info': info,
                                      'attached_at': timeutils.utcnow()
                                      .isoformat(),
                                      'completed': False}
        vol.attachments.append({'attachment_id': att_id,
                                'host_name': connector.get('host')})
        vol.status = 'attaching'
        return {'id': att_id, 'connection_info': info}

    def complete(self, attachment_id):
        self.c.hit('attachments.complete')
        self.c.attachments[attachment_id]['completed'] = True
        self.c.attachments[attachment_id]['status'] = 'attached'
        vol = self.c.volume(self.c.attachments[attachment_id]['volume_id'])
        vol.status = 'in-use'

    def list(self, search_opts=None, detailed=False):
        self.c.hit('attachments.list')
        return [_Attachment(dict(a, id=i))
                for i, a in self.c.attachments.items()
                if a['volume_id'] == search_opts['volume_id']]

    def show(self, attachment_id):
        self.c.hit('attachments.show')
        if attachment_id not in self.c.attachments:
            raise cinder_exc.NotFound(404, 'Attachment %s could not be '
                                      'found.' % attachment_id)
        return _Attachment(dict(self.c.attachments[attachment_id],
                                id=attachment_id))

    def delete(self, attachment_id):
        self.c.hit('attachments.delete')
        att = self.c.attachments.pop(attachment_id)
        vol = self.c.volumes.get(att['volume_id'])
        if vol is not None:
            vol.attachments = [a for a in vol.attachments
                               if a['attachment_id'] != attachment_id]
            if not vol.attachments:
                vol.status = 'available'


class _Types(object):
    def __init__(self, cinder):
        self.c = cinder

    def find(self, name):
        self.c.hit('volume_types.find')
        if name not in self.c.types:
            raise cinder_exc.NotFound(404, 'Volume type %s not found' % name)
        return _Type(name, name in self.c.multiattach_types)

    def default(self):
        self.c.hit('volume_types.default')
        return _Type('__DEFAULT__')


class FakeClient(object):
    """What ``cinderclient.client.Client(...)`` returns."""

    def __init__(self, cinder):
        self.volumes = cinder.volumes_api
        self.attachments = cinder.attachments_api
        self.volume_types = cinder.volume_types_api


class FakeRBDImage(object):
    """librbd's ``Image`` over a file: positional, bytes only, no growth."""

    def __init__(self, path):
        self.path = path
        self.flushes = 0
        self.aio_reads = []
        self.zeroed = []

    def size(self):
        return os.path.getsize(self.path)

    def read(self, offset, length):
        if offset >= self.size():
            raise OSError(errno.EINVAL, 'error reading at %d' % offset)
        with open(self.path, 'rb') as f:
            f.seek(offset)
            return f.read(length)

    def write(self, data, offset):
        if not isinstance(data, bytes):
            raise TypeError('data must be a byte string')
        if offset + len(data) > self.size():
            raise OSError(errno.EIO, 'Wrote only part of %d bytes'
                          % len(data))
        with open(self.path, 'r+b') as f:
            f.seek(offset)
            f.write(data)
        return len(data)

    def aio_write(self, data, offset, oncomplete):
        """Done at once; clipped at the end silently, as librbd does."""
        if not isinstance(data, bytes):
            raise TypeError('expected bytes')
        data = data[:max(0, self.size() - offset)]
        try:
            self.write(data, offset)
            ret = 0
        except OSError as e:
            ret = -e.errno
        oncomplete(_Completion(self.fail_writes or ret))

    fail_writes = 0  # a negative errno: every aio write completes with it
    fail_reads = 0  # the same for aio reads

    def aio_read(self, offset, length, oncomplete):
        """Done at once, as librbd's callback would report it."""
        self.aio_reads.append((offset, length))
        if self.fail_reads:
            oncomplete(_Completion(self.fail_reads), None)
            return
        data = FakeRBDImage.read(self, offset, length)
        oncomplete(_Completion(len(data)), data)

    # (offset, length) of the objects that exist; None: no allocation map
    extents = None

    def diff_iterate(self, offset, length, from_snapshot, iterate_cb,
                     include_parent=True, whole_object=False):
        if self.extents is None:
            raise OSError(errno.EOPNOTSUPP, 'no diff here')
        self.diff_calls += 1
        for start, n in self.extents:
            iterate_cb(start, n, True)

    diff_calls = 0

    def write_zeroes(self, offset, length):
        if offset + length > self.size():
            raise OSError(errno.EINVAL, 'zeroing past the end')
        self.zeroed.append((offset, length))
        FakeRBDImage.write(self, bytes(length), offset)

    def flush(self):
        self.flushes += 1


class _Completion(object):
    def __init__(self, ret):
        self.ret = ret

    def get_return_value(self):
        return self.ret


class FakeRBDHandle(object):
    """os-brick's ``RBDVolumeIOWrapper``: its image and its config file."""

    def __init__(self, path, conf):
        self.rbd_image = FakeRBDImage(path)
        self.rbd_conf = conf

    def flush(self):
        self.rbd_image.flush()


class FakeConnector(object):
    def __init__(self, brick, protocol):
        self.brick = brick
        self.protocol = protocol

    def connect_volume(self, data):
        self.brick.hit('connect_volume')
        self.brick.props.append(data)
        if self.protocol == 'rbd':
            # As os-brick does: a 0600 temporary config holding `keyring`
            fd, conf = tempfile.mkstemp(prefix='brickrbd_')
            with os.fdopen(fd, 'w') as f:
                f.write('[global]\nmon_host = 192.0.2.9:6789\n%s\n'
                        % data.get('keyring'))
            handle = FakeRBDHandle(data['device_path'], conf)
            self.brick.handles.append(handle)
            return {'path': handle}
        self.brick.connected.add(data['device_path'])
        return {'type': 'local', 'path': data['device_path']}

    def disconnect_volume(self, data, device_info, force=False,
                          ignore_errors=False):
        self.brick.hit('disconnect_volume')
        self.brick.forced.append(force)
        if self.protocol == 'rbd':
            handle = (device_info or {}).get('path')
            if handle is not None:
                if os.path.exists(handle.rbd_conf):
                    os.unlink(handle.rbd_conf)
                self.brick.handles.remove(handle)
            return
        self.brick.connected.discard(data['device_path'])

    def extend_volume(self, data):
        self.brick.hit('extend_volume')
        return os.path.getsize(data['device_path'])


class FakeBrick(Failures):
    """Stands in for ``os_brick.initiator.connector`` (the module)."""

    def __init__(self, host_name='testhost'):
        super(FakeBrick, self).__init__()
        self.host_name = host_name
        self.connected = set()
        self.handles = []  # userspace (rbd) connections still open
        self.props = []  # what each connect_volume was given
        self.forced = []
        self.property_calls = 0
        self.InitiatorConnector = self

    def factory(self, protocol, root_helper, **kwargs):
        self.hit('factory')
        return FakeConnector(self, protocol)

    def get_connector_properties(self, root_helper, ip, multipath, enforce,
                                 host=None):
        self.property_calls += 1
        return {'host': self.host_name, 'ip': ip, 'multipath': multipath,
                'initiator': 'iqn.test'}
