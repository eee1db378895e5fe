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

import errno
import hashlib
import io
import json
import os
import threading
from unittest import mock

from cinderclient import exceptions as cinder_exc
import ddt
from glance_store import exceptions
from keystoneauth1 import exceptions as ks_exc
from oslo_config import cfg
from oslo_utils import units

from cinder_store import auth
from cinder_store.devices import rbd
from cinder_store import host
from cinder_store import host_reads
from cinder_store import metadata
from cinder_store import records
from cinder_store.recovery import repairs
from cinder_store.recovery import rules
from cinder_store import store
from cinder_store.tests.unit import base
from cinder_store.tests.unit import fakes
from cinder_store import upload_records


class Context(object):
    project_id = 'owner-project'


@ddt.ddt
class TestAdd(base.StoreTestCase):

    def test_add_returns_five_tuple_and_stores_bytes(self):
        data = b'x' * 5000 + b'y'
        url, size, md5, multihash, meta = self.add(data, context=Context())
        (volume,) = self.cinder.volumes.values()
        self.assertEqual('cinder://fast/%s' % volume.id, url)
        self.assertEqual(len(data), size)
        self.assertEqual(hashlib.md5(data).hexdigest(), md5)
        self.assertEqual(hashlib.sha512(data).hexdigest(), multihash)
        self.assertEqual({'store': 'fast'}, meta)
        with open(self.cinder.device_path(volume.id), 'rb') as f:
            self.assertEqual(data, f.read(len(data)))
        self.assertEqual('image-img-1', volume.name)
        token = volume.metadata.pop('cinder_store_upload')
        self.assertEqual({'glance_image_id': 'img-1',
                          'image_size': str(len(data)),
                          'image_owner': 'owner-project',
                          # the uploading host; read-only: it finished
                          'cinder_store_upload_host': 'testhost',
                          'readonly': 'True'}, volume.metadata)
        self.assertEqual(4, token.count('-'))  # a uuid
        self.assertTrue(volume.readonly)
        self.assertFalse(rules.unfinished_upload_of(volume, 'testhost'))
        self.assertNothingLeft(volumes=1)

    def test_add_attaches_rw_with_connector_in_one_call(self):
        self.add(b'abc')
        calls = self.cinder.calls
        self.assertEqual(1, calls.count('attachments.create'))
        self.assertNotIn('attachments.update', calls)
        self.assertEqual([True], self.brick.forced)

    def test_add_uses_configured_volume_type(self):
        self.conf.set_override('cinder_store_volume_type', 'fast',
                               group='fast')
        self.add(b'abc')
        (volume,) = self.cinder.volumes.values()
        self.assertEqual('fast', volume.volume_type)

    def test_add_empty_image(self):
        url, size, md5, _, _ = self.add(b'')
        self.assertEqual(0, size)
        self.assertEqual(hashlib.md5(b'').hexdigest(), md5)

    def test_add_makes_fewer_cinder_calls_than_in_tree(self):
        self.add(b'abc')
        # create, 1 status poll, attach, complete, delete, read-only: the
        # in-tree driver needs at least 8.
        self.assertEqual(6, len(self.cinder.calls))

    @ddt.data(('creating', 'error'), ('creating', 'creating'))
    def test_volume_that_never_becomes_available_is_deleted(self, statuses):
        self.cinder.create_status = list(statuses) * 1000
        self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertNothingLeft()
        self.assertEqual(0, self.cinder.calls.count('attachments.create'))

    def test_status_wait_polls_fast_then_backs_off(self):
        self.cinder.create_status = ['creating'] * 6 + ['available']
        self.add(b'abc')
        self.assertLessEqual(self.clock.sleeps[0], 0.25)
        self.assertGreater(self.clock.sleeps[-1], self.clock.sleeps[0])
        self.assertTrue(all(s <= 2 for s in self.clock.sleeps))

    @ddt.data('attachments.create', 'connect_volume', 'attachments.complete')
    def test_attach_step_failure_leaves_nothing(self, step):
        if step == 'connect_volume':
            self.brick.fail(step, RuntimeError('no device'), times=-1)
            expected = RuntimeError
        else:
            self.cinder.fail(step, cinder_exc.ClientException(500, 'boom'),
                             times=-1)
            expected = exceptions.BackendException
        self.assertRaises(expected, self.add, b'abc')
        self.assertNothingLeft()

    def test_failed_initialize_reservation_does_not_leak_volume(self):
        self.cinder.fail('attachments.create.initialize',
                         cinder_exc.ClientException(500, 'backend down'),
                         times=-1)
        self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertNothingLeft()

    def test_deleting_volume_is_not_found(self):
        url = self.add(b'abc')[0]
        volume_id = url.rsplit('/', 1)[1]
        self.cinder.volumes[volume_id].status = 'deleting'
        self.assertRaises(exceptions.NotFound, self.store.get,
                          self.location(volume_id))

    def test_write_error_maps_enospc_and_leaves_nothing(self):
        with mock.patch('os.pwrite',
                        side_effect=OSError(errno.ENOSPC, 'full')):
            self.assertRaises(exceptions.StorageFull, self.add, b'abc')
        self.assertNothingLeft()

    def test_write_error_maps_eacces(self):
        with mock.patch('os.pwrite',
                        side_effect=OSError(errno.EACCES, 'denied')):
            self.assertRaises(exceptions.StorageWriteDenied, self.add,
                              b'abc')
        self.assertNothingLeft()

    def test_fsync_failure_fails_upload(self):
        with mock.patch('os.fsync', side_effect=OSError(errno.EIO, 'eio')):
            self.assertRaises(OSError, self.add, b'abc')
        self.assertNothingLeft()

    def test_disconnect_failure_after_write_fails_upload(self):
        self.brick.fail('disconnect_volume', RuntimeError('flush failed'))
        self.assertRaisesRegex(RuntimeError, 'flush failed', self.add,
                               b'abc')
        self.assertEqual({}, self.cinder.attachments)
        self.assertEqual(0, len(self.cinder.volumes))

    @ddt.data(2, 4)
    def test_declared_size_mismatch_is_invalid(self, declared):
        self.assertRaises(exceptions.Invalid, self.add, b'abc',
                          size=declared)
        self.assertNothingLeft()

    def test_readonly_flag_failure_deletes_volume(self):
        self.cinder.fail('volumes.update_readonly_flag',
                         cinder_exc.ClientException(500, 'x'), times=-1)
        self.assertRaises(exceptions.BackendException, self.add, b'abc')
        self.assertNothingLeft()

    def test_an_upload_is_recorded_until_it_is_stored(self):
        seen = []

        class Watched(io.BytesIO):
            def read(inner, n=-1):
                seen.extend(self.maintenance.uploads.files.volume_ids())
                return io.BytesIO.read(inner, n)

        self.store.add('img-1', Watched(b'abc'), 3, 'sha512')
        self.assertEqual(list(self.cinder.volumes), sorted(set(seen)))
        self.assertNothingLeft(volumes=1)  # and no record any more

    def test_an_upload_whose_record_cannot_be_removed_fails(self):
        # Its record would outlive the worker and mark the image's volume
        # as orphaned: the upload fails and its volume goes instead.
        files = self.maintenance.uploads.files
        failures = [PermissionError('ro')]

        def remove(volume_id, real=files.remove):
            if failures:
                raise failures.pop()
            real(volume_id)

        with mock.patch.object(files, 'remove', side_effect=remove):
            self.assertRaises(PermissionError, self.add, b'abc')
        self.assertNothingLeft()

    def test_a_volume_that_cannot_be_deleted_is_recorded(self):
        self.cinder.fail('volumes.update_readonly_flag',
                         cinder_exc.ClientException(500, 'x'), times=-1)
        self.cinder.fail('volumes.delete',
                         cinder_exc.ClientException(500, 'down'), times=-1)
        self.assertRaises(exceptions.BackendException, self.add, b'abc')
        (volume_id,) = self.cinder.volumes
        record, reason = self.maintenance.uploads.inspect_upload(volume_id)
        self.assertEqual('img-1', record['image'])
        self.assertIn('deleting the volume failed too', reason)
        self.assertIn('read-only flag', reason)

    def test_quota_is_storage_full(self):
        self.cinder.fail('volumes.create',
                         cinder_exc.OverLimit(413, 'VolumeLimitExceeded'))
        self.assertRaises(exceptions.StorageFull, self.add, b'abc')
        self.assertNothingLeft()
        # Cinder refused: nothing was made, nothing to record.
        self.assertEqual([], self.maintenance.uploads.creation_tokens())

    def test_the_create_call_is_recorded_before_it_is_made(self):
        seen = []
        real_create = fakes._Volumes.create

        def create(volumes, size, **kwargs):
            (token,) = self.maintenance.uploads.creation_tokens()
            seen.append((token, kwargs['metadata'][metadata.UPLOAD_TOKEN]))
            return real_create(volumes, size, **kwargs)

        with mock.patch.object(fakes._Volumes, 'create', create):
            self.add(b'abc')
        ((recorded, sent),) = seen
        self.assertEqual(recorded, sent)
        self.assertEqual([], self.maintenance.uploads.creation_tokens())
        self.assertEqual([], self.maintenance.uploads.volume_ids())

    def test_a_failed_create_stays_the_error_when_recording_it_fails(self):
        self.cinder.fail('volumes.create',
                         cinder_exc.ClientException(500, 'boom'))
        with mock.patch.object(upload_records.Uploads,
                               'record_failed_creation',
                               side_effect=OSError(28, 'no space')):
            self.assertRaisesRegex(exceptions.BackendException, 'boom',
                                   self.add, b'abc')
        # Still recorded as in progress by this process: orphaned once it
        # ends.
        self.assertEqual(1, len(self.maintenance.uploads.creation_tokens()))

    def test_a_create_cinder_never_answered_is_found_by_its_token(self):
        real_create = fakes._Volumes.create

        def create_then_time_out(volumes, *args, **kwargs):
            real_create(volumes, *args, **kwargs)
            raise ks_exc.ConnectTimeout('read timed out')

        with mock.patch.object(fakes._Volumes, 'create',
                               create_then_time_out):
            self.assertRaises(exceptions.BackendException, self.add, b'abc')
        (token,) = self.maintenance.uploads.creation_tokens()
        _, reason = self.maintenance.uploads.inspect_creation(token)
        self.assertIn('read timed out', reason)
        (volume_id,) = self.cinder.volumes  # made, unknown to us
        api = self.maintenance.bound_cinder()
        self.assertRaisesRegex(repairs.NotOrphaned, 'still creating',
                               repairs.reclaim_cut_short_create, api,
                               self.maintenance.uploads,
                               token)
        api.wait_for_status(api.get_volume(volume_id), 'creating',
                            'available')
        repairs.reclaim_cut_short_create(api, self.maintenance.uploads, token)
        self.assertNothingLeft()

    def test_encrypted_volume_type_refused(self):
        self.cinder.encrypted_types.add('fast')
        self.conf.set_override('cinder_store_volume_type', 'fast',
                               group='fast')
        self.assertRaisesRegex(exceptions.BackendException, 'encrypted',
                               self.add, b'abc')
        self.assertNothingLeft()

    def test_unknown_size_grows_volume_and_records_size(self):
        data = b'z' * (3 * units.Mi)
        with mock.patch.object(units, 'Gi', units.Mi):
            url, size, md5, _, _ = self.add(data, size=0)
        (volume,) = self.cinder.volumes.values()
        self.assertEqual(len(data), size)
        self.assertEqual(str(len(data)), volume.metadata['image_size'])
        self.assertEqual(4, volume.size)  # 1 -> 2 -> 4 "GiB"
        self.assertEqual(2, self.cinder.calls.count('volumes.extend'))
        # online: one attachment for the whole upload
        self.assertEqual(1, self.cinder.calls.count('attachments.create'))
        with open(self.cinder.device_path(volume.id), 'rb') as f:
            self.assertEqual(data, f.read(len(data)))
        self.assertNothingLeft(volumes=1)

    def test_unknown_size_offline_extend_never_truncates(self):
        self.conf.set_override('cinder_store_extend_online', False,
                               group='fast')
        data = bytes(range(256)) * (3 * units.Mi // 256 + 7)
        with mock.patch.object(units, 'Gi', units.Mi):
            self.add(data, size=0)
        (volume,) = self.cinder.volumes.values()
        self.assertEqual(3, self.cinder.calls.count('attachments.create'))
        with open(self.cinder.device_path(volume.id), 'rb') as f:
            self.assertEqual(data, f.read(len(data)))
        self.assertNothingLeft(volumes=1)

    def test_online_extend_refused_falls_back_to_offline(self):
        self.cinder.fail('volumes.extend', cinder_exc.BadRequest(
            400, 'cannot extend attached volume'))
        data = b'q' * (3 * units.Mi // 2)
        with mock.patch.object(units, 'Gi', units.Mi):
            self.add(data, size=0)
        (volume,) = self.cinder.volumes.values()
        self.assertEqual(2, self.cinder.calls.count('attachments.create'))
        self.assertNothingLeft(volumes=1)

    def test_extend_into_error_deletes_volume(self):
        self.cinder.extend_status = 'error_extending'
        with mock.patch.object(units, 'Gi', units.Mi):
            self.assertRaises(exceptions.BackendException, self.add,
                              b'e' * (units.Mi + 1), size=0)
        self.assertNothingLeft()


@ddt.ddt
class TestGet(base.StoreTestCase):

    def setUp(self):
        super(TestGet, self).setUp()
        self.data = bytes(range(256)) * 100
        url, _, _, _, _ = self.add(self.data)
        self.volume_id = url.rsplit('/', 1)[1]
        self.loc = self.location(self.volume_id)

    def test_get_whole_image_and_releases_attachment(self):
        it, length = self.store.get(self.loc)
        self.assertEqual(len(self.data), length)
        self.assertEqual(self.data, b''.join(it))
        self.assertNothingLeft(volumes=1)

    def test_get_attaches_read_only(self):
        before = len(self.cinder.calls)
        it, _ = self.store.get(self.loc)
        (att,) = self.cinder.attachments.values()
        self.assertEqual('ro', att['mode'])
        b''.join(it)
        # get, attach, complete, delete: the in-tree driver needs 6
        self.assertEqual(4, len(self.cinder.calls) - before)

    def test_concurrent_readers_of_one_image_share_its_attachment(self):
        # The volume is not multiattach: Cinder would refuse a second one.
        first, _ = self.store.get(self.loc)
        second, _ = self.store.get(self.loc, offset=100)
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertEqual(self.data, b''.join(first))
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertEqual(self.data[100:], b''.join(second))
        self.assertNothingLeft(volumes=1)

    @ddt.data((True, 1), (False, 2))
    @ddt.unpack
    def test_volume_lookups_of_concurrent_readers(self, service, lookups):
        # Service credentials: a reader joining an attachment needs no
        # GET.  User tokens: each GET is that user's access check.
        before = self.cinder.calls.count('volumes.get')
        with mock.patch.object(auth.Credentials,
                               'has_service_credentials',
                               new_callable=mock.PropertyMock,
                               return_value=service):
            first, _ = self.store.get(self.loc)
            second, _ = self.store.get(self.loc)
        self.assertEqual(before + lookups,
                         self.cinder.calls.count('volumes.get'))
        self.assertEqual(self.data, b''.join(first))
        self.assertEqual(self.data, b''.join(second))
        self.assertNothingLeft(volumes=1)

    @ddt.data((0, None), (10, None), (10, 100), (len(bytes(range(256)) * 100)
                                                 - 5, 100))
    @ddt.unpack
    def test_offset_and_length(self, offset, chunk):
        it, length = self.store.get(self.loc, offset=offset,
                                    chunk_size=chunk)
        expected = self.data[offset:offset + chunk if chunk else None]
        self.assertEqual(len(expected), length)
        self.assertEqual(expected, b''.join(it))
        self.assertNothingLeft(volumes=1)

    def test_offset_past_end_is_invalid(self):
        self.assertRaisesRegex(exceptions.Invalid, 'offset',
                               self.store.get, self.loc,
                               offset=len(self.data) + 1)
        self.assertNothingLeft(volumes=1)

    def test_abandoned_iterator_releases_attachment(self):
        it, _ = self.store.get(self.loc)
        self.assertEqual(1, len(self.cinder.attachments))
        del it
        for thread in threading.enumerate():  # released on one of its own
            if thread.name == 'cinder_store-release':
                thread.join(timeout=30)
        self.assertNothingLeft(volumes=1)

    def test_closed_iterator_releases_attachment(self):
        with mock.patch('cinder_store.dataio.CHUNK_SIZE', 1000):
            it, _ = self.store.get(self.loc)
        next(it)
        it.close()
        self.assertNothingLeft(volumes=1)
        self.assertRaises(StopIteration, next, it)

    def test_read_error_releases_attachment(self):
        it, _ = self.store.get(self.loc)
        with mock.patch('os.pread', side_effect=OSError(errno.EIO, 'eio')):
            self.assertRaises(OSError, b''.join, it)
        self.assertNothingLeft(volumes=1)

    def test_missing_volume_is_not_found(self):
        self.assertRaises(exceptions.NotFound, self.store.get,
                          self.location(base.UUID))

    def test_image_of_in_tree_driver_without_metadata(self):
        volume = self.cinder.volumes[self.volume_id]
        volume.metadata = {}
        self.assertEqual(units.Gi, self.store.get_size(self.loc))


class TestSizeDeleteAssociate(base.StoreTestCase):

    def test_get_size(self):
        url, _, _, _, _ = self.add(b'12345')
        self.assertEqual(5, self.store.get_size(
            self.location(url.rsplit('/', 1)[1])))

    def test_get_size_not_found(self):
        self.assertRaises(exceptions.NotFound, self.store.get_size,
                          self.location(base.UUID))

    def test_get_size_other_error_is_backend_exception(self):
        self.cinder.fail('volumes.get', cinder_exc.ClientException(
            403, 'forbidden', request_id='req-42'), times=-1)
        self.assertRaisesRegex(exceptions.BackendException, 'req-42',
                               self.store.get_size, self.location(base.UUID))

    def test_delete(self):
        url, _, _, _, _ = self.add(b'12345')
        self.store.delete(self.location(url.rsplit('/', 1)[1]))
        self.assertNothingLeft()

    def test_delete_is_one_call_when_nothing_is_attached(self):
        url, _, _, _, _ = self.add(b'12345')
        before = len(self.cinder.calls)
        self.store.delete(self.location(url.rsplit('/', 1)[1]))
        self.assertEqual(['volumes.delete'], self.cinder.calls[before:])

    def test_delete_of_a_volume_attached_elsewhere_is_in_use(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        loc = self.location(volume_id)
        it, _ = self.store.get(loc)  # a download here, left alone
        self.cinder.volumes[volume_id].attachments.append(
            {'attachment_id': 'x', 'host_name': 'another-host'})
        self.assertRaisesRegex(
            exceptions.InUseByStore, 'volume %s is attached elsewhere: x '
            r'\(host another-host\)' % volume_id, self.store.delete, loc)
        self.assertEqual(1, len(self.cinder.attachments))
        self.assertEqual(b'12345', b''.join(it))
        self.cinder.volumes[volume_id].attachments = []

    def test_delete_of_a_volume_being_attached_is_in_use(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        self.cinder.attachments['p'] = {'volume_id': volume_id,
                                        'status': 'reserved'}
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'))
        self.assertRaisesRegex(
            exceptions.InUseByStore, r'being attached: p \(reserved\)',
            self.store.delete, self.location(volume_id))
        self.assertEqual(1, len(self.cinder.volumes))
        del self.cinder.attachments['p']

    def test_delete_deletes_an_abandoned_attachment_first(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        self.cinder.attachments['p'] = {'volume_id': volume_id,
                                        'status': 'attaching',
                                        'connection_info': None}
        base.made_ago(self.cinder, 'p', 601)
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'))
        self.store.delete(self.location(volume_id))
        self.assertNothingLeft()

    def test_delete_races_a_reader_that_detaches_first(self):
        # Cinder listed the reader's attachment with the volume; the reader
        # detached it before the delete got to it.
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        real_get = self.cinder.volumes_api.get

        def listed_before_the_reader_left(vid):
            volume = real_get(vid)
            volume.attachments.append({'attachment_id': 'gone',
                                       'host_name': 'testhost'})
            return volume
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'))
        with mock.patch.object(self.cinder.volumes_api, 'get',
                               listed_before_the_reader_left):
            self.store.delete(self.location(volume_id))  # not NotFound
        self.assertNothingLeft()

    def test_delete_refused_for_another_reason_raises(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'), times=-1)
        self.assertRaisesRegex(exceptions.BackendException, 'must be',
                               self.store.delete, self.location(volume_id))
        self.assertEqual(1, len(self.cinder.volumes))
        # Looked at again twice: a reader may have attached meanwhile
        self.assertEqual(4, self.cinder.calls.count('volumes.delete'))

    def test_delete_a_reader_attached_meanwhile_is_in_use(self):
        # Refused; nothing held it by the time the delete looked; another
        # host's reader attached just before the delete was tried again.
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        api = self.maintenance.bound_cinder()
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'))
        real = self.cinder.volumes_api.delete
        tried = []

        def delete(vid):
            tried.append(vid)
            if len(tried) == 2:
                theirs = api.attachment_create(vid, {'host': 'otherhost'},
                                               'ro')
                api.attachment_complete(theirs['id'])
            return real(vid)
        with mock.patch.object(self.cinder.volumes_api, 'delete', delete):
            self.assertRaisesRegex(exceptions.InUseByStore,
                                   'attached elsewhere.*otherhost',
                                   self.store.delete,
                                   self.location(volume_id))
        self.assertEqual(1, len(self.cinder.volumes))
        self.assertEqual(2, len(tried))

    def test_delete_refused_while_a_read_attaching_then_ended(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'))
        # Fetched while the read was still attaching; over by the time the
        # attachments are listed.
        self.cinder.volumes[volume_id].status = 'reserved'

        def read_ends(cinder, settings, volume):
            self.cinder.volumes[volume_id].status = 'available'
            return []
        with mock.patch.object(store.repairs, 'reclaim_abandoned',
                               side_effect=read_ends):
            self.store.delete(self.location(volume_id))
        self.assertEqual(0, len(self.cinder.volumes))

    def test_delete_refused_while_a_read_that_ended_held_it(self):
        # Refused for the attachment of a read that ended before the
        # delete looked at the volume: nothing is attached, try again.
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'))
        self.store.delete(self.location(volume_id))
        self.assertNothingLeft()

    def test_delete_without_host_names_detaches_the_recorded_reader(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        loc = self.location(volume_id)
        it, _ = self.store.get(loc)  # a reader that died mid-download
        it._finalizer.detach()
        base.rewrite_record(self.reader_record(volume_id),
                            holders=[base.DEAD])
        for a in self.cinder.volumes[volume_id].attachments:
            a['host_name'] = None  # a Cinder that does not report it
        self.store.delete(loc)
        self.assertNothingLeft()

    def test_delete_detaches_what_a_reader_killed_in_attach_left(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        api = self.maintenance.bound_cinder()
        leaked = api.attachment_create(
            volume_id, self.maintenance.settings.connector_properties(), 'ro')
        # Cinder lists only attached attachments with the volume.
        self.cinder.volumes[volume_id].attachments = []
        path = os.path.join(self.maintenance.settings.lock_path,
                            host_reads.PREFIX + volume_id + '.json')
        with open(path, 'w') as f:
            json.dump({'boot': records.boot_id(), 'host': 'testhost',
                       'attachment': None, 'holders': [base.DEAD]}, f)
        self.cinder.fail('volumes.delete', cinder_exc.BadRequest(
            400, 'Volume status must be available'))
        self.store.delete(self.location(volume_id))
        self.assertNotIn(leaked['id'], self.cinder.attachments)
        self.assertFalse(os.path.exists(path))
        self.assertNothingLeft()

    def test_delete_not_found(self):
        self.assertRaises(exceptions.NotFound, self.store.delete,
                          self.location(base.UUID))

    def test_delete_of_a_volume_already_gone_removes_its_locks(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        loc = self.location(volume_id)
        b''.join(self.store.get(loc)[0])  # takes the read lock too
        lock_dir = self.maintenance.settings.lock_path
        self.assertIn('cinder_store-read-' + volume_id, os.listdir(lock_dir))
        del self.cinder.volumes[volume_id]  # deleted behind Glance's back
        self.assertRaises(exceptions.NotFound, self.store.delete, loc)
        self.assertEqual([], [n for n in os.listdir(lock_dir)
                              if volume_id in n])

    def reader_record(self, volume_id):
        return os.path.join(self.maintenance.settings.lock_path,
                            host_reads.PREFIX + volume_id + '.json')

    def test_delete_detaches_leftover_attachment_of_this_host(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        loc = self.location(volume_id)
        it, _ = self.store.get(loc)  # a reader that died mid-download
        it._finalizer.detach()
        base.rewrite_record(self.reader_record(volume_id),
                            holders=[base.DEAD])
        self.store.delete(loc)
        self.assertNothingLeft()

    def test_delete_of_a_volume_read_here_by_a_live_process_is_in_use(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        loc = self.location(volume_id)
        it, _ = self.store.get(loc)  # a download still going on
        self.assertRaisesRegex(exceptions.InUseByStore,
                               'being read on this host',
                               self.store.delete, loc)
        self.assertEqual(b'12345', b''.join(it))  # its device stayed
        self.assertIn(volume_id, self.cinder.volumes)
        self.store.delete(loc)
        self.assertNothingLeft()

    def test_is_image_associated_with_store(self):
        url, _, _, _, _ = self.add(b'12345')
        volume_id = url.rsplit('/', 1)[1]
        self.assertTrue(self.store.is_image_associated_with_store(
            None, volume_id))
        self.conf.set_override('cinder_store_volume_type', 'fast',
                               group='fast')
        self.assertFalse(self.store.is_image_associated_with_store(
            None, volume_id))
        self.assertFalse(self.store.is_image_associated_with_store(
            None, base.UUID))


class TestConfigure(base.StoreTestCase):

    def test_missing_lock_path_is_a_startup_error(self):
        self.conf.clear_override('cinder_store_lock_path', group='fast')
        self.assertRaisesRegex(exceptions.BadStoreConfiguration,
                               'lock_path', self.store.configure)

    def test_host_is_probed_at_configure_not_at_first_upload(self):
        self.assertEqual(1, self.brick.property_calls)
        self.add(b'abc')
        self.assertEqual(1, self.brick.property_calls)

    def test_failed_probe_is_logged_and_the_first_attach_retries(self):
        host.forget_connector_properties()
        self.brick.property_calls = 0
        real = self.brick.get_connector_properties
        with mock.patch.object(self.brick, 'get_connector_properties',
                               side_effect=[OSError('no initiator'), real(
                                   '', '192.0.2.1', False, False)]):
            with mock.patch.object(store.LOG, 'warning') as warn:
                self.store.configure()
                self.store.host_probe.join()
            self.assertIn('no initiator', str(warn.call_args))
            self.add(b'abc')
        self.assertNothingLeft(volumes=1)

    def test_orphaned_uploads_are_reported_at_start(self):
        self.maintenance.uploads.record_upload('vol-live', 'img-1')
        self.maintenance.uploads.record_failed_upload(
            'vol-dead', 'img-2', OSError('x'))
        self.addCleanup(self.maintenance.uploads.forget_upload, 'vol-live')
        self.addCleanup(self.maintenance.uploads.forget_upload, 'vol-dead')
        with mock.patch.object(store.LOG, 'warning') as warn:
            self.store.configure()
            self.store.host_probe.join()
        (message, backend, count, names), _ = warn.call_args
        self.assertIn('cinder-store-check --fix', message)
        self.assertEqual(('fast', 1, 'vol-dead'), (backend, count, names))

    def test_create_calls_cut_short_are_reported_at_start(self):
        live = self.maintenance.uploads.record_creation('img-1')
        dead = self.maintenance.uploads.record_creation('img-2')
        self.maintenance.uploads.record_failed_creation(
            dead, 'img-2', OSError('x'))
        self.addCleanup(self.maintenance.uploads.forget_creation, live)
        self.addCleanup(self.maintenance.uploads.forget_creation, dead)
        with mock.patch.object(store.LOG, 'warning') as warn:
            self.store.configure()
            self.store.host_probe.join()
        (message, backend, count, tokens), _ = warn.call_args
        self.assertIn('cut short', message)
        self.assertEqual(('fast', 1, dead), (backend, count, tokens))

    def test_oslo_concurrency_lock_path_is_enough(self):
        self.conf.clear_override('cinder_store_lock_path', group='fast')
        self.conf.set_override('lock_path', self.tmp,
                               group='oslo_concurrency')
        self.store.configure()
        self.assertEqual(self.tmp, self.maintenance.settings.lock_path)

    def test_unknown_volume_type_warns_and_keeps_writes(self):
        self.conf.set_override('cinder_store_volume_type', 'nope',
                               group='fast')
        with mock.patch.object(store.LOG, 'warning') as warn:
            self.store.configure()
        self.assertIn('does not exist', warn.call_args[0][0])
        self.assertTrue(self.store.is_capable(
            store.capabilities.BitMasks.WRITE_ACCESS))

    def test_cinder_down_at_startup_warns(self):
        self.conf.set_override('cinder_store_volume_type', 'fast',
                               group='fast')
        self.cinder.fail('volume_types.find',
                         ks_exc.ConnectFailure('down'), times=-1)
        with mock.patch.object(store.LOG, 'warning') as warn:
            self.store.configure()
        self.assertIn('Could not check', warn.call_args[0][0])

    def test_schemes_include_entry_point_name(self):
        self.assertEqual(('cinder_store', 'cinder'),
                         self.store.get_schemes())
        self.assertEqual('cinder://fast/', self.store.url_prefix)

    def test_in_tree_option_names_are_read_with_a_warning(self):
        path = os.path.join(self.tmp, 'glance-api.conf')
        with open(path, 'w') as f:
            f.write('[fast]\ncinder_volume_type = fast\n'
                    'cinder_state_transition_timeout = 11\n'
                    'cinder_store_auth_address = http://keystone/v3\n'
                    'cinder_store_user_name = glance\n'
                    'cinder_store_password = secret\n'
                    'cinder_store_project_name = service\n'
                    'cinder_catalog_info = volumev3::internalURL\n')
        conf = cfg.ConfigOpts()
        conf(['--config-file', path], project='test')
        s = store.Store(conf, backend='fast')
        self.assertEqual('fast', s.backend_conf.cinder_store_volume_type)
        self.assertEqual(
            11, s.backend_conf.cinder_store_state_transition_timeout)
        creds = store.auth.Credentials(s.backend_conf)
        self.assertTrue(creds.has_service_credentials)
        self.assertEqual('glance', creds.service.auth_methods[0].username)
        self.assertEqual('internal', creds.endpoint.interface)
        self.assertEqual('volumev3', creds.endpoint.service_type)

    def test_backend_defaults_fallback(self):
        self.conf.set_override('cinder_store_state_transition_timeout', 7,
                               group='backend_defaults')
        self.assertEqual(
            7, self.store.backend_conf.cinder_store_state_transition_timeout)
        self.conf.set_override('cinder_store_state_transition_timeout', 9,
                               group='fast')
        self.assertEqual(
            9, self.store.backend_conf.cinder_store_state_transition_timeout)

    def test_option_in_backend_overrides_even_when_default(self):
        self.conf.set_override('cinder_store_extend_online', False,
                               group='backend_defaults')
        self.conf.set_override('cinder_store_extend_online', True,
                               group='fast')
        self.assertTrue(self.store.backend_conf.cinder_store_extend_online)


class TestNoCredentials(base.StoreTestCase):

    def test_without_credentials_context_is_required(self):
        s = store.Store(self.conf, backend='ctx')
        self.conf.set_override('cinder_store_lock_path', self.tmp,
                               group='ctx')
        s.configure()
        self.assertRaisesRegex(exceptions.BadStoreConfiguration,
                               'service catalog', s.get_size,
                               self.location(base.UUID, backend='ctx'))


class TestRBDStore(base.StoreTestCase):
    """The store on a userspace (RBD) transport, end to end."""

    def setUp(self):
        super(TestRBDStore, self).setUp()
        self.cinder.transport = 'rbd'
        self.store = self.make_store(cinder_store_rbd_keyring='/etc/k')

    def test_add_get_delete(self):
        data = b'x' * 5000 + b'y'
        loc, size = self.add(data)[:2]
        self.assertEqual(len(data), size)
        got = b''.join(self.store.get(self.location(
            loc.rsplit('/', 1)[1]))[0])
        self.assertEqual(data, got)
        # Both connects named the keyring file, never a key
        self.assertEqual(2, len(self.brick.props))
        for props in self.brick.props:
            self.assertIn('keyring = /etc/k', props['keyring'])
            self.assertIn('client_mount_timeout = 30', props['keyring'])
        self.store.delete(self.location(loc.rsplit('/', 1)[1]))
        self.assertNothingLeft()

    def test_a_failed_flush_fails_the_upload_and_leaves_nothing(self):
        def failing(handle):
            raise IOError('flush failed')
        self.useFixture(base.fixtures.MonkeyPatch(
            'cinder_store.tests.unit.fakes.FakeRBDHandle.flush', failing))
        error = self.assertRaises(OSError, self.add, b'data')
        self.assertEqual('flush failed', str(error))
        self.assertNothingLeft()

    def test_a_refused_ceph_connect_says_what_to_fix(self):
        self.brick.fail('connect_volume', OSError('RADOS timed out'))
        with mock.patch.object(rbd, 'monitor_reachable', return_value=True):
            error = self.assertRaises(exceptions.BackendException,
                                      self.add, b'data')
        self.assertIn('did not accept the key in /etc/k', str(error))
        self.assertIsInstance(error.__cause__, OSError)
        self.assertNothingLeft()
