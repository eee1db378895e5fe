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

"""What a Glance host among several tidies up on its own, periodically.

Runs with a coordination service (``Settings.membership``), that is
on deployments of several Glance hosts:

* **What lost hosts held.**  A reader refused by a lost host's hold, or
  an image delete refused for one, releases it on the spot
  (:func:`recovery.repairs.release_lost_holders`).  What nobody asks for is
  found here: the volume of an upload a lost host never finished, and
  its holds on images nobody reads now.  The coordination service is
  asked every ``interval`` seconds; the backend's volumes are listed
  only when a host is newly lost.
* **Lock files of volumes other hosts deleted.**  A host that read an
  image keeps its lock files; the host that deleted the image removed
  only its own.  Every ``LOCKS_EVERY`` intervals, lock files of volumes
  no record names and Cinder no longer has are removed.
* **Announcements of the dead.**  A process that died while it announced
  a wait, an attach or a delete leaves its group in the coordination
  service; every ``LOCKS_EVERY`` intervals the empty ones are removed.

Several processes' runs may overlap: each action is idempotent (an
attachment or volume already gone counts as released).
"""

import logging
import random
import threading
from typing import Any
from typing import Callable

from cinder_store.recovery import repairs
from cinder_store.recovery import rules
from cinder_store import settings

LOG = logging.getLogger(__name__)

# Where a lost host may have left an image-volume: an unfinished upload's
# is available (created), attaching or reserved (killed in the attach),
# in-use (attached to write) or error (a failed step it never cleaned
# up); a read hold keeps its volume in-use.
STATUSES = ('available', 'in-use', 'attaching', 'reserved', 'error')
# Lock files are looked at every this many intervals
LOCKS_EVERY = 4


class Housekeeping(object):
    """One backend's periodic tidying on this host (a daemon thread)."""

    def __init__(self, cinder: Callable[[], Any], settings: settings.Settings,
                 volume_type: str | None, interval: float,
                 recorded: Callable[[], list[str]]):
        """``recorded()``: the volumes this host's records name."""
        self._cinder = cinder
        self.settings = settings
        self.volume_type = volume_type
        self.interval = interval
        self._recorded = recorded
        self._stopped = threading.Event()
        # Lost hosts whose holds on this backend are all released
        self._swept: set[str] = set()

    def release_lost_hosts(self) -> set[str]:
        """Release what newly lost hosts held; the hosts looked for.

        A lost host makes nothing new, so once everything it held of this
        backend is released it is not looked for again (unless it comes
        back and is lost again).
        """
        lost = self.settings.membership.lost()
        self._swept &= lost
        pending = lost - self._swept
        if not pending:
            return set()
        cinder = self._cinder()
        name = cinder.volume_type_name(self.volume_type)
        volumes = cinder.volumes_of_type(name, STATUSES, all_projects=True)
        if repairs.release_lost_hosts(cinder, self.settings, volumes,
                                      pending):
            self._swept |= pending
        return pending

    def forget_gone_volumes(self) -> list[str]:
        """Remove lock files of volumes Cinder no longer has; their ids."""
        if not rules.unrecorded_locked_volumes(self.settings.locks,
                                               self._recorded()):
            return []  # nothing to ask Cinder about
        return repairs.forget_gone_volumes(self._cinder(), self.settings,
                                           self._recorded())

    def remove_empty_announcements(self) -> list[bytes]:
        """Remove the announcement groups of processes that died inside."""
        removed = self.settings.membership.remove_empty_announcements()
        if removed:
            LOG.info('Removed %d empty announcement group(s) from the '
                     'coordination service', len(removed))
        return removed

    def start(self) -> None:
        threading.Thread(target=self._run_periodically,
                         name='cinder_store-housekeeping', daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _run_periodically(self) -> None:
        # Spread the runs of a deployment's processes over the interval
        ticks = random.randrange(LOCKS_EVERY)
        while not self._stopped.wait(self.interval *
                                     random.uniform(0.5, 1.0)):
            ticks += 1
            self._run_guarded(self.release_lost_hosts)
            if ticks % LOCKS_EVERY == 0:
                self._run_guarded(self.forget_gone_volumes)
                self._run_guarded(self.remove_empty_announcements)

    def _run_guarded(self, duty: Callable[[], Any]) -> None:
        try:
            duty()
        except Exception as error:
            LOG.warning('Housekeeping (%s) failed, tried again in about '
                        '%ss: %s', duty.__name__, self.interval, error)
