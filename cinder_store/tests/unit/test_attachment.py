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

"""The attachment lifecycle: every step, and every unwind."""

import errno
import logging
from unittest import mock

from cinderclient import exceptions as cinder_exc
import ddt
import fixtures
from glance_store import exceptions

from cinder_store import attachment
from cinder_store import connection
from cinder_store.tests.unit import base


class Boom(Exception):
    pass


@ddt.ddt
class TestAttachment(base.CinderTestCase):

    def setUp(self):
        super(TestAttachment, self).setUp()
        self.api = self.bound()
        self.volume = self.available_volume(self.api)

    def attach(self, writable=True):
        return attachment.Attachment(self.api, self.settings(), self.volume,
                                     writable)

    def test_open_close_order(self):
        att = self.attach().open()
        att.device.pwrite(b'hello', 0)
        att.close()
        self.assertEqual(['attachments.create', 'attachments.complete',
                          'attachments.delete'], self.cinder.calls)
        self.assertEqual(['factory', 'connect_volume', 'disconnect_volume'],
                         self.brick.calls)
        self.assertEqual([True], self.brick.forced)
        self.assertNothingLeft(volumes=1)

    def test_connection_secrets_never_logged(self):
        logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        with self.attach():
            pass
        self.assertIn('auth_password', logs.output)
        self.assertNotIn('s3cr3t', logs.output)

    def test_connector_passed_with_mountpoint_and_mode(self):
        with self.attach(writable=False):
            (att,) = self.cinder.attachments.values()
            self.assertEqual('ro', att['mode'])
            self.assertEqual('glance_store', att['connector']['mountpoint'])
            self.assertEqual('testhost', att['connector']['host'])

    def test_connector_properties_computed_once_per_process(self):
        for _ in range(3):
            with self.attach():
                pass
        self.assertEqual(1, self.brick.property_calls)

    @ddt.data(
        ('cinder', 'attachments.create', 0),
        ('brick', 'factory', 0),
        ('brick', 'connect_volume', 0),
        ('cinder', 'attachments.complete', 1),
    )
    @ddt.unpack
    def test_failure_at_each_step_unwinds_what_succeeded(
            self, who, step, disconnects):
        target = self.cinder if who == 'cinder' else self.brick
        target.fail(step, Boom(step))
        error = self.assertRaises(Boom, self.attach().open)
        self.assertEqual(step, str(error))
        self.assertEqual(disconnects,
                         self.brick.calls.count('disconnect_volume'))
        self.assertNothingLeft(volumes=1)

    def test_device_open_failure_unwinds(self):
        with mock.patch('os.open', side_effect=OSError(errno.EACCES, 'no')):
            self.assertRaises(OSError, self.attach().open)
        self.assertEqual(1, self.brick.calls.count('disconnect_volume'))
        self.assertNothingLeft(volumes=1)

    def test_cleanup_error_is_noted_not_masking(self):
        self.cinder.fail('attachments.complete', Boom('original'))
        self.cinder.fail('attachments.delete',
                         cinder_exc.ClientException(500, 'delete broke'),
                         times=4)
        error = self.assertRaises(Boom, self.attach().open)
        self.assertEqual('original', str(error))
        self.assertIn('attachment delete', ' '.join(error.__notes__))

    def test_body_failure_unwinds_without_fsync(self):
        with mock.patch('os.fsync') as fsync:
            with self.assertRaisesRegex(Boom, 'in body'):
                with self.attach():
                    raise Boom('in body')
        fsync.assert_not_called()
        self.assertNothingLeft(volumes=1)

    def test_write_close_fsyncs_before_disconnect(self):
        order = []
        with mock.patch('os.fsync', side_effect=lambda fd: order.append(
                'fsync')):
            self.brick.hit = (lambda name, orig=self.brick.hit:
                              (order.append(name), orig(name)))
            with self.attach():
                pass
        self.assertLess(order.index('fsync'),
                        order.index('disconnect_volume'))

    def test_read_close_tolerates_detach_error_and_keeps_naming_it(self):
        self.brick.fail('disconnect_volume', Boom('disconnect'))
        att = self.attach(writable=False).open()
        with mock.patch.object(attachment.LOG, 'error') as log:
            self.assertFalse(att.close())
        self.assertTrue(log.called)
        self.assertTrue(att.stranded)
        # Cinder's attachment still names the host connection: a later
        # detach of it (record, delete, check) disconnects and deletes.
        self.assertEqual([att.id], list(self.cinder.attachments))
        connection.detach_attachment(self.api, self.settings(),
                                     self.volume, att.id)
        self.assertNothingLeft(volumes=1)

    def test_write_close_raises_detach_error_and_keeps_naming_it(self):
        self.brick.fail('disconnect_volume', Boom('disconnect'))
        att = self.attach().open()
        self.assertRaisesRegex(Boom, 'disconnect', att.close)
        self.assertTrue(att.stranded)
        self.assertEqual([att.id], list(self.cinder.attachments))

    def test_failed_unwind_of_a_connected_attach_keeps_naming_it(self):
        self.cinder.fail('attachments.complete', Boom('complete'))
        self.brick.fail('disconnect_volume', Boom('disconnect'))
        att = self.attach()
        error = self.assertRaises(Boom, att.open)
        self.assertEqual('complete', str(error))
        self.assertIn('detach', ' '.join(error.__notes__))
        self.assertTrue(att.stranded)
        self.assertEqual([att.id], list(self.cinder.attachments))

    def test_encrypted_volume_refused_before_connect(self):
        self.cinder.volumes[self.volume.id].encrypted = True
        self.assertRaisesRegex(exceptions.BackendException, 'encrypted',
                               self.attach().open)
        self.assertNotIn('connect_volume', self.brick.calls)
        self.assertNothingLeft(volumes=1)

    def test_reservation_left_by_failed_initialize_is_released(self):
        self.cinder.fail('attachments.create.initialize',
                         cinder_exc.ClientException(500, 'initialize failed'))
        self.assertRaises(exceptions.BackendException, self.attach().open)
        self.assertNothingLeft(volumes=1)
