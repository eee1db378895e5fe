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

A record is *orphaned* when it is marked failed, was written before this
host last booted, or its process is gone.  ``cinder-store-check --fix``
then detaches the volume's attachments and deletes it.  A record written
on another host (a lock directory shared by mistake) is never acted on.
"""

import logging

from glance_store import exceptions

from cinder_store import attachment
from cinder_store import host
from cinder_store import records

LOG = logging.getLogger(__name__)

PREFIX = 'cinder_store-upload-'


class Uploads(object):
    """This host's upload records; see the module docs."""

    def __init__(self, settings):
        self.settings = settings
        self.files = records.RecordFiles(settings.lock_path, PREFIX,
                                         'upload')

    def begin(self, volume_id, image_id):
        """Record that this process is writing ``image_id`` to the volume."""
        self.files.save(volume_id, self._record(image_id))

    def end(self, volume_id):
        """Forget the upload: its image is stored or its volume deleted."""
        self.files.remove(volume_id)

    def abandon(self, volume_id, image_id, error):
        """The upload failed and its volume could not be deleted."""
        self.files.save(volume_id, dict(
            self._record(image_id),
            failed=str(error) or type(error).__name__))

    def volume_ids(self):
        """Volumes of this backend's upload records on this host."""
        return self.files.volume_ids(self.settings.backend)

    def _record(self, image_id):
        return {'boot': records.boot_id(), 'host': host.hostname(),
                'backend': self.settings.backend, 'image': image_id,
                'holder': records.process_id()}

    def inspect(self, volume_id):
        """``(record, reason)``; reason is None unless it is orphaned.

        ``record`` is None when there is none (or it is unreadable).
        """
        record = self.files.load(volume_id)
        return record, (None if record is None else why_orphaned(record))

    def reclaim(self, cinder, volume_id):
        """Detach and delete an orphaned upload's volume.

        Returns what was done, for a person; raises
        :class:`exceptions.BackendException` if Cinder refuses, leaving
        the record for a later try.  A record that is not orphaned (any
        more) is left alone: :class:`NotOrphaned`.
        """
        record, reason = self.inspect(volume_id)
        if reason is None:
            raise NotOrphaned(volume_id)
        try:
            volume = cinder.get_volume(volume_id)
        except exceptions.NotFound:
            self._forget(volume_id)
            return 'volume is gone: removed its record and locks'
        image = (getattr(volume, 'metadata', None) or {}).get(
            'glance_image_id')
        if image != record.get('image'):
            raise NotOrphaned(volume_id, 'it now carries image %s, not %s'
                              % (image, record.get('image')))
        detached = self._detach_all(cinder, volume, records.this_boot(record))
        cinder.delete_volume(volume_id)
        self._forget(volume_id)
        return ('deleted the volume of image %s (%s) after detaching %d '
                'attachment(s)' % (record.get('image'), reason, detached))

    def _detach_all(self, cinder, volume, same_boot):
        # After a reboot the device is gone and its path may now name
        # another volume's device: delete in Cinder, do not disconnect.
        found = cinder.attachments_of(volume.id)
        for att in found:
            attachment.detach_attachment(cinder, self.settings, volume,
                                         att.id, disconnect=same_boot)
        return len(found)

    def _forget(self, volume_id):
        self.files.remove(volume_id)
        self.settings.forget(volume_id)


class NotOrphaned(Exception):
    """The upload's record is live, or its volume is not its any more."""

    def __init__(self, volume_id, why='its upload is in progress'):
        super(NotOrphaned, self).__init__(
            'volume %s left alone: %s' % (volume_id, why))


def why_orphaned(record):
    """None while the upload may still be running, else why not."""
    if records.foreign(record):
        return None  # nothing here can tell
    if record.get('failed'):
        return ('its upload failed and deleting the volume failed too: %s'
                % record['failed'])
    if not records.this_boot(record):
        return 'written before this host last booted'
    holder = record.get('holder')
    if not holder or not records.alive(holder):
        return 'its process %s is gone' % holder
    return None
