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

"""What ``cinder-store-check`` finds on one configured backend.

:func:`check_backend` returns :class:`Finding` s, one per thing checked
or found, in order: configuration, Cinder, the lock path, this host's
os-brick connector, device hand-over privileges, stale reader records,
orphaned uploads, lock files of deleted volumes, stuck volumes, unheld
attachments, image-volumes Glance no longer knows and, for RBD backends,
the keyring, Ceph and leftover connect files.  Which leftovers are safe to
remove is :mod:`recovery.rules`; ``fix`` acts on them through
:mod:`recovery.repairs`.  Nothing is changed without ``fix``.
"""

from cinder_store.findings import host_setup
from cinder_store.findings import records
from cinder_store.findings import report
from cinder_store.findings import volumes
from cinder_store import maintenance

# What a finding is, for the CLI and other callers
Finding = report.Finding
OK, WARN, FAIL, FIXED, SKIP = (report.OK, report.WARN, report.FAIL,
                               report.FIXED, report.SKIP)


def check_backend(maintenance: maintenance.Maintenance, fix: bool = False,
                  probe: bool = False, lost_host: str | None = None,
                  drain: bool = False) -> list[Finding]:
    """Findings for one configured backend (``Store.maintenance()``).

    ``probe`` attaches one available volume of each RBD backend (one with
    ``cinder_store_rbd_keyring``) read-only to prove Ceph is reachable.
    ``lost_host`` names a Glance host gone for good, on the operator's
    word: what it held is reported, and released with ``fix``.
    ``drain`` releases this host's warm read attachments.
    """
    return ([host_setup.volume_type_in_cinder(maintenance),
             host_setup.writable_lock_path(maintenance),
             host_setup.connector_of_this_host(maintenance),
             host_setup.device_hand_over_privileges(maintenance)] +
            records.stale_reader_records(maintenance, fix) +
            [records.warm_read_attachments(maintenance, drain)] +
            records.orphaned_uploads(maintenance, fix) +
            [records.lock_files_of_gone_volumes(maintenance, fix)] +
            volumes.stuck_volumes(maintenance, fix) +
            volumes.unheld_attachments(maintenance, fix) +
            volumes.unknown_image_volumes(maintenance, fix) +
            volumes.other_hosts(maintenance, fix, lost_host) +
            host_setup.rbd_findings(maintenance, fix, probe))
