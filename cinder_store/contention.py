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

"""Reserving a volume others attach too: turns, fair between hosts.

Cinder refuses a reservation while another attachment of the volume is
being made (volume ``reserved`` or ``attaching``) and, for a volume that
is not multiattach, while another host holds it (``in-use``).
:func:`reserve` asks until Cinder accepts, within bounds, after releasing
what the dead left (:mod:`recovery.repairs`).  :func:`yield_turn` keeps a
host that holds an exclusive volume from admitting new readers while
another host waits for it.
"""

import logging
from typing import Any
from typing import Callable

from glance_store import exceptions
import tenacity

from cinder_store import client
from cinder_store.recovery import repairs
from cinder_store.recovery import rules
from cinder_store import settings
from cinder_store import utils

LOG = logging.getLogger(__name__)

# How long a host that let another take its turn gives it to do so
HANDOVER_WAIT = 6
# Longest pause between tries while another host holds the volume, and
# while an attachment is being made (abandoned ones go within seconds)
TURN_POLL = 5
BEING_MADE_POLL = 2


def reserve_volume(cinder: Any, settings: settings.Settings, volume: Any,
                   mode: str, claim: Any) -> dict[str, Any]:
    """Cinder's new attachment of ``volume`` to this host (its dict).

    ``claim`` (:class:`membership.Claim`) hears of every request sent.
    When Cinder refuses for the volume's status, see :class:`Turn`.
    Raises the refusal past the bounds, naming the hosts that hold the
    volume; any other error at once.
    """
    connector = settings.connector_properties()

    def create():
        return cinder.attachment_create(volume.id, connector, mode,
                                        attempts=claim)
    try:
        return create()
    except Exception as error:
        if not client.reservation_refused(error):
            raise
        return Turn(cinder, settings, volume,
                    claim).wait_for_turn(create, error)


class Turn(object):
    """Asking Cinder again after a refusal, until it accepts, bounded.

    Each refusal is explained, in this order:

    1. an abandoned attachment held it (:func:`repairs.reclaim_abandoned`
       deletes it): ask again at once;
    2. other hosts hold the volume (not multiattach): those that are lost
       are released; the live ones are waited for, up to
       ``exclusive_wait`` (the host tells them, through
       :meth:`membership.Membership.waiting_for`, that it waits);
    3. with a coordination service, another attacher is making an
       attachment: wait for it while that can help
       (:func:`rules.worth_waiting_for_attachment`: it completes, or is
       abandoned within seconds);
    4. nothing explains it (the holder left between Cinder's answer and
       the look): one more try, then the refusal is raised.
    """

    def __init__(self, cinder: Any, settings: settings.Settings,
                 volume: Any, claim: Any):
        self.cinder = cinder
        self.settings = settings
        self.volume = volume
        self.claim = claim
        self.holders: dict[str, str] = {}  # attachment id -> host
        self.being_made = False
        self.spare_tries = 1

    def wait_for_turn(self, create: Callable[[], Any],
                      refusal: Exception) -> Any:
        """``create()``'s answer once Cinder accepts; see the class."""
        if not self.explain_refusal(refusal):
            raise refusal
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(self.explain_refusal),
            stop=utils.Deadline(self.settings.exclusive_wait),
            wait=self.pause_between_tries, sleep=utils.sleep,
            before_sleep=self.log_wait, reraise=True)
        try:
            with self.settings.membership.waiting_for(self.volume.id):
                return retrying(create)
        except Exception as error:
            if not self.holders:
                raise
            raise exceptions.BackendException(
                'volume %s is attached on host(s) %s and is not '
                'multiattach: waited %ss (cinder_store_exclusive_attach_'
                'wait) for them to finish reading; images that several '
                'Glance hosts read at once belong on a multiattach volume '
                'type' % (self.volume.id, describe_holders(self.holders),
                          self.settings.exclusive_wait)) from error

    def explain_refusal(self, error: BaseException) -> bool:
        """Is another try worth it after ``error``?  See the class."""
        if not client.reservation_refused(error):
            return False
        if repairs.reclaim_abandoned(self.cinder, self.settings, self.volume,
                                     excluding=self.claim):
            return True
        self.holders = self.live_holders()
        self.being_made = not self.holders and self.attachment_being_made()
        if self.holders or self.being_made:
            return True
        self.spare_tries -= 1
        return self.spare_tries >= 0

    def live_holders(self) -> dict[str, str]:
        """Other hosts' attachments of an exclusive volume, lost ones gone."""
        if getattr(self.volume, 'multiattach', False):
            return {}
        holders = rules.attachments_elsewhere(
            self.cinder.get_volume(self.volume.id))
        for attachment_id in repairs.release_lost_holders(
                self.cinder, self.settings, self.volume, holders):
            del holders[attachment_id]
        return holders

    def attachment_being_made(self) -> bool:
        return rules.worth_waiting_for_attachment(
            self.cinder, self.volume.id,
            self.settings.live_claims(self.volume.id, self.claim))

    def pause_between_tries(self,
                            retry_state: tenacity.RetryCallState) -> float:
        longest = BEING_MADE_POLL if self.being_made else TURN_POLL
        return min(longest, 0.5 * 2 ** (retry_state.attempt_number - 1))

    def log_wait(self, retry_state: tenacity.RetryCallState | None) -> None:
        if self.holders:
            LOG.info('Volume %s is held by %s; waiting for its readers '
                     'there to finish', self.volume.id,
                     describe_holders(self.holders))
        elif self.being_made:
            LOG.info('Volume %s has an attachment being made; waiting for '
                     'it to complete or count as abandoned', self.volume.id)
        else:
            LOG.info('Attachment of volume %s was refused though no other '
                     'host holds it now; trying again', self.volume.id)


def describe_holders(holders: dict[str, str]) -> str:
    """``"<host> (attachment <id>), ..."`` of ``{attachment id: host}``."""
    return ', '.join('%s (attachment %s)' % (h, a)
                     for a, h in sorted(holders.items()))


def yield_turn(cinder: Any, settings: settings.Settings, volume: Any,
               held_here: Callable[[], bool]) -> None:
    """Fair turns: wait before joining this host's hold if others wait.

    On a volume that is not multiattach, held here (``held_here()``)
    while another host waits for it (``settings.membership``), a new
    reader does not join: it waits until this host's current readers
    have finished, then gives a waiting host up to ``HANDOVER_WAIT``
    seconds to take the volume, and then attaches like any reader (when
    another host took it, it waits its turn: :func:`reserve`).  Bounded by
    ``exclusive_wait``; never fails.  Without a coordination service
    nobody waits, and for a multiattach volume it returns at once.
    """
    if getattr(volume, 'multiattach', False) or not held_here():
        return
    membership = settings.membership
    waiting = membership.others_waiting(volume.id)
    if not waiting:
        return
    LOG.info('Volume %s: host(s) %s wait for it; this reader waits for '
             'the readers of this host to finish first', volume.id,
             ', '.join(sorted(waiting)))
    utils.wait_while(held_here, utils.Deadline(settings.exclusive_wait), 2)
    if membership.others_waiting(volume.id):
        utils.wait_while(lambda: not rules.attachments_elsewhere(
            cinder.get_volume(volume.id)), utils.Deadline(HANDOVER_WAIT), 1)
