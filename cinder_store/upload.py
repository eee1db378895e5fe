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

"""Writing an image onto its volume, growing the volume when needed.

An image of unknown size starts on a 1 GiB volume.  Each time it outgrows
the volume, the volume grows by its current size (doubling), by at most
``MAX_STEP_GB``: a 100 GiB image needs 10 extends instead of the in-tree
driver's 99, and the volume is never more than 16 GiB or 2x too large.
Online extend (Cinder 3.42) keeps the attachment; the device is rescanned
and its new size awaited.  Where Cinder refuses to extend an attached
volume, the rest of the upload uses detach, extend, re-attach; the device
is always reopened without truncation and writing resumes at its offset.
"""

import logging
from typing import Any

from glance_store import exceptions
from oslo_utils import units

from cinder_store import attachment
from cinder_store import client
from cinder_store import dataio
from cinder_store import host
from cinder_store import settings

LOG = logging.getLogger(__name__)

MAX_STEP_GB = 16


class _Reattach(Exception):
    """The volume grew but this transport cannot see it without re-attach."""


def next_size_gb(current_gb: int) -> int:
    return current_gb + max(1, min(current_gb, MAX_STEP_GB))


def write_image(cinder: client.BoundCinder, settings: settings.Settings,
                volume: Any, writer: dataio.ImageWriter,
                online: bool) -> None:
    """Write all of ``writer``'s data to ``volume``, growing it as needed.

    Online (``online``, when Cinder can extend an attached volume), else
    detached and attached again.  The attachment is closed (fsync,
    disconnect, delete) before returning; any failure propagates with
    every attachment already undone.
    """
    extend_to = None
    while True:
        if extend_to:
            volume = _extend_offline(cinder, volume, extend_to)
            extend_to = None
        with attachment.Attachment(cinder, settings, volume,
                                   writable=True) as att:
            # Only a volume this upload created is here: never a clone
            skip_zeros = settings.new_volume_reads_zeros(att.connection_info)
            while not writer.fill(att.device, volume.size * units.Gi,
                                  skip_zeros):
                target = next_size_gb(volume.size)
                if not online:
                    extend_to = target
                    break
                try:
                    volume = _extend_online(cinder, att, volume, target)
                except _Reattach:
                    volume = cinder.get_volume(volume.id)
                    break
                except client.VolumeStatusError:
                    raise
                except exceptions.BackendException as e:
                    LOG.info('Cinder cannot extend attached volume %s (%s); '
                             'detaching to extend it', volume.id, e)
                    online = False
                    extend_to = target
                    break
            else:
                return


def _extend_online(cinder, att, volume, new_gb):
    LOG.debug('Extending attached volume %s to %d GiB', volume.id, new_gb)
    cinder.extend_volume(volume.id, new_gb)
    volume = cinder.wait_for_status(volume, 'extending', 'in-use')
    if getattr(att.device, 'is_file', False):
        return volume  # a regular file needs no rescan; pwrite extends it
    try:
        att.connector.extend_volume(
            host.connection_properties(att.connection_info))
    except NotImplementedError:
        raise _Reattach()
    att.device.wait_for_size(volume.size * units.Gi, cinder.status_timeout)
    return volume


def _extend_offline(cinder, volume, new_gb):
    LOG.debug('Extending detached volume %s to %d GiB', volume.id, new_gb)
    cinder.extend_volume(volume.id, new_gb)
    return cinder.wait_for_status(volume, 'extending', 'available')
