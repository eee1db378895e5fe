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

"""What is left over: the one definition the leak checks share.

The functional suite after each test (its own images), ``tools/chaos``
after a campaign (its images, its hosts' lock directories) and ``tools/
stack check`` after everything (every image) ask :func:`find`, each
with its scope.  Left over, once every image of the scope was deleted:

* a volume of an image of the scope (``image-<id>``; every volume when
  the scope is everything), and its attachments;
* in the lock directories given: a record of a shared read, an upload or
  a volume create, and a lock file of a volume Cinder no longer has;
* a loop device bound to a file that is gone (and, given a volume
  directory, any bound to a file under it);
* an RBD image of the scope in the pools given (Glance's own rbd store
  names its images after the Glance image; everything: any image);
* a temporary Ceph config of an RBD connect in the directories given
  (cinder_store's; everything: the in-tree driver's too).

No test-framework imports: tools run it from the stack's virtualenv,
``python -m cinder_store.tests.functional.leftovers`` for the stack
check.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any
from typing import Iterable

from cinder_store.devices import rbd
from cinder_store import host_reads
from cinder_store import locks
from cinder_store import upload_records

#: The scope of :func:`find` that is every image
EVERYTHING = None

RECORD_PREFIXES = (host_reads.PREFIX, host_reads.LEGACY_PREFIX,
                   upload_records.PREFIX, upload_records.CREATING_PREFIX)


def find(cinder: Any, image_ids: Iterable[str] | None = EVERYTHING,
         lock_dirs: Iterable[str] = (), volume_dir: str | None = None,
         rbd_pools: Iterable[tuple[list[str], str]] = (),
         tmp_dirs: Iterable[str] = ()) -> dict[str, list[str]]:
    """What is left over of ``image_ids`` (see the module); {kind: [what]}.

    ``cinder``: a cinderclient of an admin; ``rbd_pools``: ``(rbd CLI
    arguments, pool)`` pairs.  Every kind is listed, empty when clean.
    """
    volumes = _volumes(cinder, image_ids)
    files = [os.path.join(d, n) for d in lock_dirs if os.path.isdir(d)
             for n in sorted(os.listdir(d))]
    return {
        'volumes': ['%s %s %s' % (v.id, v.name, v.status) for v in volumes],
        'attachments': ['%s of %s (host %s)' % (
            a['attachment_id'], v.id, a.get('host_name'))
            for v in volumes for a in v.attachments],
        'records': [f for f in files
                    if os.path.basename(f).startswith(RECORD_PREFIXES)],
        'lock files of deleted volumes': [
            f for f in files if _lock_of_gone_volume(cinder, f)],
        'loop devices': loop_devices(volume_dir),
        'rbd images': _rbd_images(rbd_pools, image_ids),
        'temporary ceph configs': _connect_files(tmp_dirs, image_ids),
    }


def clean(found: dict[str, list[str]]) -> bool:
    return not any(found.values())


def _volumes(cinder, image_ids):
    everything = cinder.volumes.list(search_opts={'all_tenants': 1})
    if image_ids is EVERYTHING:
        return everything
    names = {'image-%s' % i for i in image_ids}
    return [v for v in everything if v.name in names]


def _lock_of_gone_volume(cinder, path):
    from cinderclient import exceptions
    from oslo_utils import uuidutils
    name = os.path.basename(path)
    if not name.startswith(locks.PREFIX):
        return False
    volume_id = name[-36:]
    if not uuidutils.is_uuid_like(volume_id):
        return False
    try:
        cinder.volumes.get(volume_id)
    except exceptions.NotFound:
        return True
    return False


def loop_devices(volume_dir: str | None = None) -> list[str]:
    """Loop devices bound to a file that is gone, or under ``volume_dir``."""
    out = subprocess.run(['losetup', '-l', '-n', '-O', 'NAME,BACK-FILE'],
                         capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2:
            continue
        backing = parts[1].strip()
        gone = '(deleted)' in backing or not os.path.exists(backing)
        under = volume_dir and backing.startswith(volume_dir.rstrip('/') +
                                                  '/')
        if gone or under:
            found.append(line.strip())
    return found


def _rbd_images(pools, image_ids):
    found = []
    for args, pool in pools:
        names = subprocess.run(list(args) + ['ls', pool], check=True,
                               capture_output=True, text=True,
                               timeout=60).stdout.split()
        found += ['%s/%s' % (pool, n) for n in names
                  if image_ids is EVERYTHING or n in set(image_ids)]
    return found


def _connect_files(tmp_dirs, image_ids):
    found = set()
    for directory in tmp_dirs:
        found |= set(rbd.leftover_connect_files(directory=directory))
        if image_ids is EVERYTHING:  # the in-tree driver's too
            found |= {os.path.join(directory, n)
                      for n in os.listdir(directory)
                      if n.startswith(rbd.CONNECT_FILE_PREFIX)}
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    """The stack's check: everything, every host's lock directory."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cloud', default='stack-admin')
    parser.add_argument('--lock-dir', action='append', default=[])
    parser.add_argument('--volume-dir')
    parser.add_argument('--rbd-pool', action='append', default=[],
                        help='CEPH_CONF:POOL')
    parser.add_argument('--settle', type=float, default=0,
                        help='seconds to look again while something is '
                             'found: lock files of volumes another host '
                             'deleted go with housekeeping, every few '
                             'of its intervals')
    args = parser.parse_args(argv)
    from cinderclient import client
    import openstack
    cinder = client.Client('3.54', session=openstack.connect(
        cloud=args.cloud).session)
    pools = [(['rbd', '--conf', p.rsplit(':', 1)[0]], p.rsplit(':', 1)[1])
             for p in args.rbd_pool]
    deadline = time.monotonic() + args.settle
    while True:
        found = find(cinder, EVERYTHING, args.lock_dir, args.volume_dir,
                     pools, [tempfile.gettempdir()])
        if clean(found) or time.monotonic() > deadline:
            break
        time.sleep(5)
    print(json.dumps(found, indent=2))
    return 0 if clean(found) else 1


if __name__ == '__main__':
    sys.exit(main())
