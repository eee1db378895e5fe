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

"""The periodic release of what lost Glance hosts held.

A reader refused by a lost host's hold, or an image delete refused for
one, releases it on the spot (:func:`attachment.release_lost_holders`).
What nobody asks for is found here: the volume of an upload a lost host
never finished, and its holds on images nobody reads now.  Only with a
coordination service (``HostSettings.membership``); each process sweeps
its backend's volume type every ``interval`` seconds.  Sweeps of several
processes may overlap: each release is idempotent (an attachment or
volume already gone counts as released).
"""

import logging
import random
import threading
from typing import Any
from typing import Callable

from cinder_store import host
from cinder_store.recovery import repairs

LOG = logging.getLogger(__name__)

# An unfinished upload's volume is available (created) or in-use
# (attached to write); a read hold keeps its volume in-use.
STATUSES = ('available', 'in-use')


class Sweeper(object):
    """Sweeps one backend's volumes for what lost hosts held."""

    def __init__(self, cinder: Callable[[], Any], settings: host.HostSettings,
                 volume_type: str | None, interval: float):
        self._cinder = cinder
        self.settings = settings
        self.volume_type = volume_type
        self.interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> list[str]:
        """One sweep; what it released, for a person."""
        cinder = self._cinder()
        name = self.volume_type or cinder.default_volume_type().name
        volumes = cinder.volumes_of_type(name, STATUSES, all_projects=True)
        return repairs.release_lost_hosts(cinder, self.settings, volumes)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name='cinder_store-lost-hosts', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        # Spread the sweeps of a deployment's processes over the interval
        while not self._stopped.wait(self.interval *
                                     random.uniform(0.5, 1.0)):
            try:
                self.sweep()
            except Exception as error:
                LOG.warning('Sweep for what lost Glance hosts held failed '
                            '(next in about %ss): %s', self.interval, error)
