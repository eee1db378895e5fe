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

"""Read attachments kept warm between downloads, and let go on demand.

Every download used to pay an attach (``attachment_create``, os-brick's
connect, ``attachment_complete``) and a detach; an image-volume is never
rewritten once stored, so one attachment per host serves every download
of it.  :mod:`host_reads` keeps a read attachment up when its last reader
leaves (warm) and lets the next reader of any worker join it without a
Cinder call.  The :class:`Keeper` of each worker, a daemon thread, looks
every ``TICK`` seconds at this host's records and releases a warm
attachment

* whose idle time ran out (whichever worker looks first);
* beyond ``warm_limit``, the least recently read first;
* that another process wants: a host waiting for its turn on a volume
  that is not multiattach, or deleting its image
  (:meth:`membership.Membership.wanted`; needs a coordination service).

It also asks Cinder, every ``VERIFY_EVERY`` seconds, whether each of this
host's recorded attachments is still there: someone may have deleted one
by hand.  An image delete on this host releases its warm attachment
itself (:meth:`host_reads.HostReads.release_warm`).
"""

import logging
import threading
import time
from typing import Any
from typing import Callable

from cinder_store import host_reads
from cinder_store import locks
from cinder_store import records
from cinder_store.recovery import rules
from cinder_store import settings

LOG = logging.getLogger(__name__)

#: Seconds between two looks of a worker
TICK = settings.Settings.WARM_LOOK_EVERY
#: Seconds after which a recorded attachment is confirmed with Cinder again
VERIFY_EVERY = 60


class Keeper(object):
    """One backend's warm attachments on this host, looked after."""

    def __init__(self, reads: host_reads.HostReads,
                 cinder: Callable[[], Any]):
        """``cinder()``: a client with the service credentials."""
        self.reads = reads
        self.settings = reads.settings
        self._cinder = cinder
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name='cinder_store-warm-reads',
                         daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(TICK):
            try:
                self.look_after()
            except Exception as error:
                LOG.warning('Looking after warm read attachments failed, '
                            'tried again in %ss: %s', TICK, error)

    def look_after(self) -> dict[str, str]:
        """One look: release what should go, confirm what is due.

        Returns ``{volume id: why}`` of those released.
        """
        found = {v: r for v, r in self.reads.backend_records().items()
                 if records.this_boot(r)}
        wanted = self._wanted([v for v, r in found.items()
                               if 'warm_until' in r])
        released = {}
        for volume_id, why in rules.warm_to_release(
                found, self.settings.warm_limit, wanted).items():
            if self._unless_busy(self.reads.release_warm, volume_id, why):
                released[volume_id] = why
        now = time.time()
        for volume_id, record in found.items():
            if (volume_id not in released and
                    now - record.get('verified', 0) > VERIFY_EVERY):
                self._unless_busy(self.reads.confirm_record, volume_id,
                                  VERIFY_EVERY)
        return released

    def _unless_busy(self, step, volume_id, *args):
        # A reader joining holds the volume's lock for its whole attach
        # (minutes, if Cinder is slow): never wait for it, and keep
        # looking after the other volumes; this one is looked at again
        # in a second.
        try:
            return step(self._cinder(), volume_id, *args, blocking=False)
        except locks.Busy:
            return False

    def _wanted(self, warm: list[str]) -> set[str]:
        # Nothing warm, nothing to ask: an idle host's workers leave the
        # coordination service alone (until its next look, a record made
        # meanwhile is confirmed with Cinder once: see trusts())
        if not warm:
            return set()
        try:
            return self.settings.membership.wanted(warm)
        except Exception as error:
            LOG.warning('Cannot ask the coordination service which warm '
                        'attachments other hosts want: %s', error)
            return set()


def drain(reads: host_reads.HostReads, cinder: Any) -> list[str]:
    """Release every warm attachment of this host's backend; their ids.

    For maintenance: retype or migrate an image-volume, take the host
    out.  Readers that start meanwhile keep theirs warm again.
    """
    return [volume_id for volume_id in sorted(reads.backend_records())
            if reads.release_warm(cinder, volume_id,
                                  'drained by the operator')]
