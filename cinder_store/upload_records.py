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

"""Uploads in progress on this host, so that an abandoned one is found.

A Glance worker killed mid-upload (OOM killer, SIGKILL, a reboot) never
returns a location to Glance: Glance will never delete that volume, and
it may still be attached here.  While ``add`` runs, a record
``<lock_path>/cinder_store-upload-<volume>.json`` names the volume, the
image, the backend, this host, its boot and the uploading process.
``add`` removes it once the image is stored or its volume deleted; if
deleting the volume of a failed upload fails too, the record stays, marked
failed.

The volume's id is only known once Cinder answers the create call; a
worker killed inside that call, or a call that failed without an answer
(a timeout, a dropped connection), may still have made a volume.  So
before the call, ``<lock_path>/cinder_store-creating-<token>.json``
records a random token that the create call puts in the volume's metadata
(``cinder_store_upload``); it is removed once the volume record is
written, or when Cinder refused the call (a 4xx: nothing was made), and
marked failed otherwise.

When a record is *orphaned* is :func:`recovery.rules.why_upload_orphaned`;
``cinder-store-check --fix`` then detaches the volume's attachments and
deletes it (for a creation record: every volume carrying its token),
through :mod:`recovery.repairs`.  A record written on another host (a
lock directory shared by mistake) is never acted on.
"""

import logging
import uuid

from cinder_store import client
from cinder_store import host
from cinder_store import records
from cinder_store.recovery import rules
from cinder_store import settings

LOG = logging.getLogger(__name__)

PREFIX = 'cinder_store-upload-'
CREATING_PREFIX = 'cinder_store-creating-'

#: ``(record, why it is orphaned)``: None, None when there is no record.
Inspected = tuple[records.Record | None, str | None]


class Uploads(object):
    """This host's upload records; see the module docs."""

    def __init__(self, settings: settings.Settings):
        self.settings = settings
        self.files = records.RecordFiles(settings.lock_path, PREFIX,
                                         'upload')
        self.creations = records.RecordFiles(settings.lock_path,
                                             CREATING_PREFIX,
                                             'volume creation')

    def record_creation(self, image_id: str) -> str:
        """Record a volume create about to be asked for; return its token.

        The caller puts it in the volume's metadata
        (:data:`metadata.UPLOAD_TOKEN`).
        """
        token = str(uuid.uuid4())
        self.creations.save(token, dict(self._new_record(image_id),
                                        token=token))
        return token

    def forget_creation(self, token: str) -> None:
        """The created volume has its own record now."""
        self.creations.remove(token)

    def record_failed_creation(self, token: str, image_id: str,
                               error: BaseException) -> None:
        """The create call raised ``error``.

        If Cinder refused it, nothing was made and the record goes;
        otherwise Cinder may have made the volume (or may still): the
        record stays, marked failed, for ``cinder-store-check --fix``.
        """
        if client.refused(error):
            self.creations.remove(token)
            return
        LOG.warning('Creating the volume of image %s failed without an '
                    'answer from Cinder, which may have made it anyway; '
                    'cinder-store-check --fix deletes it: %s', image_id,
                    error)
        self.creations.save(token, dict(
            self._new_record(image_id), token=token,
            failed=str(error) or type(error).__name__))

    def creation_tokens(self) -> list[str]:
        """Tokens of this backend's creation records on this host."""
        return self.creations.volume_ids(self.settings.backend)

    def inspect_creation(self, token: str) -> Inspected:
        """``(record, reason)``, as :meth:`inspect_upload` for a creation."""
        return _with_verdict(self.creations.load(token))

    def record_upload(self, volume_id: str, image_id: str) -> None:
        """Record that this process is writing ``image_id`` to the volume."""
        self.files.save(volume_id, self._new_record(image_id))

    def forget_upload(self, volume_id: str) -> None:
        """Forget the upload: its image is stored or its volume deleted."""
        self.files.remove(volume_id)

    def record_failed_upload(self, volume_id: str, image_id: str,
                             error: BaseException) -> None:
        """The upload failed and its volume could not be deleted."""
        self.files.save(volume_id, dict(
            self._new_record(image_id),
            failed=str(error) or type(error).__name__))

    def volume_ids(self) -> list[str]:
        """Volumes of this backend's upload records on this host."""
        return self.files.volume_ids(self.settings.backend)

    def _new_record(self, image_id):
        return {'boot': records.boot_id(), 'host': host.hostname(),
                'backend': self.settings.backend, 'image': image_id,
                'holder': records.process_id()}

    def inspect_upload(self, volume_id: str) -> Inspected:
        """``(record, reason)``; reason is None unless it is orphaned.

        ``record`` is None when there is none (or it is unreadable).
        """
        return _with_verdict(self.files.load(volume_id))


def _with_verdict(record: records.Record | None) -> Inspected:
    if record is None:
        return None, None
    return record, rules.why_upload_orphaned(record)
