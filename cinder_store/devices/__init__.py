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

"""An attached volume as positional reads and writes.

:func:`open_device` gives a :class:`base.Device` for what os-brick
attached: a path (:mod:`devices.fd`) or a file object (RBD in userspace,
:mod:`devices.rbd`).
"""

import os
from typing import Any

from cinder_store.devices import base
from cinder_store.devices import fd
from cinder_store.devices import rbd

Device = base.Device
zeros = base.zeros


def is_path(path_or_handle: Any) -> bool:
    """Is what os-brick returned as ``path`` a path (not a file object)?"""
    return isinstance(path_or_handle, (str, bytes, os.PathLike))


def is_userspace(device_info: dict | None) -> bool:
    """Is os-brick's connection a file object of this process (librbd)?"""
    path = (device_info or {}).get('path')
    return path is not None and not is_path(path)


def open_device(path_or_handle: Any, writable: bool,
                direct: bool = True) -> Device:
    """A :class:`Device` for what os-brick returned as ``path``.

    ``direct=False`` reads and writes a block device through the page
    cache, where what one reader read serves the next.
    """
    if is_path(path_or_handle):
        return fd.FdDevice(path_or_handle, writable, direct)
    return rbd.RBDDevice(path_or_handle)
