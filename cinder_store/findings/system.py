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

"""What the check reads of this host's system files.

Mount points (is the lock path in memory?), rootwrap's filters (may this
user hand attached devices over?) and Ceph keyrings.
"""

import configparser
import os


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem ``path`` is on, from /proc/mounts."""
    path = os.path.realpath(path)
    best, kind = '', None
    with open('/proc/mounts') as mounts:
        for line in mounts:
            mount_point, fs_type = line.split()[1:3]
            inside = (path == mount_point or
                      path.startswith(mount_point.rstrip('/') + '/'))
            if inside and len(mount_point) > len(best):
                best, kind = mount_point, fs_type
    return kind


def rootwrap_filter_dirs(rootwrap_config: str) -> list[str] | None:
    """The ``filters_path`` directories of a rootwrap.conf; None if absent."""
    parser = configparser.RawConfigParser()
    if not parser.read(rootwrap_config):
        return None
    dirs = parser.get('DEFAULT', 'filters_path', fallback='').split(',')
    return [d.strip() for d in dirs if d.strip()]


def chown_filter(directories: list[str]) -> str | None:
    """The first rootwrap filter file in ``directories`` admitting chown.

    Device hand-over (:func:`take_ownership`) runs ``chown`` through it.
    """
    for directory in directories:
        for name in sorted(os.listdir(directory)):
            if _admits_chown(os.path.join(directory, name)):
                return name
    return None


def _admits_chown(path):
    filters = configparser.RawConfigParser()
    try:
        filters.read(path)
        return any(value.split(',')[1].strip() == 'chown'
                   for _, value in filters.items('Filters'))
    except (configparser.Error, IndexError, UnicodeDecodeError):
        return False


def keyring_clients(path: str) -> list[str] | None:
    """Ceph client names of a keyring file; None if it holds no key.

    Raises ``OSError`` when the file cannot be read.
    """
    with open(path) as f:
        text = f.read()
    clients = [line.strip()[1:-1] for line in text.splitlines()
               if line.strip().startswith('[client.')]
    if not clients or 'key' not in text:
        return None
    return clients
