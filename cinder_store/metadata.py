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

"""What an image-volume's Cinder metadata says, and who wrote which key.

cinder_store writes every key at the volume's create, but the image size
of an image of unknown size (written once it is stored); Cinder adds
``readonly`` once the image is stored.  ``glance_image_id`` and
``image_size`` are the in-tree driver's too, so either driver reads the
other's images.
"""

from typing import Any

from oslo_utils import units

#: The Glance image the volume holds (the volume is named image-<id>)
IMAGE_ID = 'glance_image_id'
#: Bytes of image data on the volume (the volume is whole GiB)
IMAGE_SIZE = 'image_size'
#: The project of the image's owner, when the request named one
IMAGE_OWNER = 'image_owner'
#: The token of the upload record of the create call
#: (:mod:`upload_records`): a create cut short is found by it
UPLOAD_TOKEN = 'cinder_store_upload'
#: The host uploading to the volume: another host tells an upload still
#: running there (or cut short with that host) from Cinder alone, until
#: the volume's read-only flag (Cinder's ``readonly`` key) ends it
UPLOAD_HOST = 'cinder_store_upload_host'
#: Cinder's key for the read-only flag
READONLY = 'readonly'


def for_upload(image_id: str, image_size: int, token: str, host_name: str,
               owner: str | None = None) -> dict[str, str]:
    """The metadata of a new image-volume, as its create call sets it."""
    metadata = {IMAGE_ID: image_id, IMAGE_SIZE: str(image_size),
                UPLOAD_TOKEN: token, UPLOAD_HOST: host_name}
    if owner:
        metadata[IMAGE_OWNER] = owner
    return metadata


def of_volume(volume: Any) -> dict[str, str]:
    """The volume's metadata ({} when Cinder shows none)."""
    return getattr(volume, 'metadata', None) or {}


def image_size(volume: Any) -> int:
    """Bytes of image data on ``volume`` (in-tree images included).

    The whole volume when the size was never written.
    """
    try:
        return int(of_volume(volume)[IMAGE_SIZE])
    except (KeyError, TypeError, ValueError):
        return volume.size * units.Gi
