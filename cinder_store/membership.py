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

"""Which Glance hosts are alive: a tooz group with heartbeats.

With ``cinder_store_coordination_url`` set, every process using
cinder_store joins one group as ``<host name>:<pid>`` and tooz keeps it
there with heartbeats.  A host is alive while any of its processes is a
member; a host that has been out of the group for longer than the grace
is *lost*, and what it held may be released (:mod:`recovery.repairs`).

What a caller may rely on:

* this host is never lost, nor a host that never joined the group; a
  host seen alive is never lost until it has been absent for the whole
  grace, counted from the first time this process saw it absent;
* when the coordination service cannot be asked, nobody is lost: a
  release never happens on doubt;
* a process whose membership expired (frozen, partitioned) joins again
  the next time it asks;
* a host waiting for a volume another host holds says so
  (:meth:`Membership.waiting_for`), and the holder can ask
  (:meth:`Membership.others_waiting`): turns are fair;
* a process attaching a volume claims the attachment it is making
  (:meth:`Membership.attaching`), and every host can ask which claims are
  live (:meth:`Membership.claims`): a claim of a process that died never
  counts (on its own host at once, elsewhere once its membership expires).

Without a coordination service :class:`Alone` stands in: the same
interface, nobody lost, nobody waiting, and claims unknown.
"""

import contextlib
import logging
import os
import threading
import time
from typing import Any
from typing import Callable
from typing import ContextManager
from typing import Iterable
from typing import Iterator
from urllib import parse
import uuid

import tooz
from tooz import coordination

from cinder_store import host
from cinder_store import records
from cinder_store import utils

LOG = logging.getLogger(__name__)

GROUP = b'cinder_store-glance-hosts'
# One group per host that ever joined, never deleted: only such a host
# can be lost.  Cinder's own hosts, and Glance hosts running without
# coordination, attach image-volumes too: they are never released.
HOST_GROUP_PREFIX = b'cinder_store-host:'
# Hosts waiting for a volume that is not multiattach, one group per volume
WAITING_PREFIX = b'cinder_store-waiting:'
# Processes inside an attach of a volume (attachment_create to complete)
ATTACHING_PREFIX = b'cinder_store-attaching:'
# Processes deleting a volume, asking the hosts that keep it warm to
# release it (warm_reads), one group per volume
RELEASING_PREFIX = b'cinder_store-releasing:'
# Groups that exist only while someone announces in them (one that died
# inside leaves its group): removed when found empty
ANNOUNCEMENTS = (WAITING_PREFIX, ATTACHING_PREFIX, RELEASING_PREFIX)
# Looks at the group further apart than this (seconds) may have missed
# this process's membership lapsing (frozen, cut off)
LOOK_GAP = 5
# A look this recent (seconds) answers another backend's keeper too: one
# look a second per process, whatever the number of backends
LOOK_REUSE = 0.9


def host_of(member_id: bytes) -> str:
    """The host name of a member id ``<host name>:<pid>``."""
    return member_id.decode('utf-8', 'replace').rsplit(':', 1)[0]


class Claim(object):
    """One attach in flight: which attachment a live process is making.

    ``process`` is the attacher (:func:`records.process_id`), ``since``
    the wall-clock time (seconds since the epoch) just before it sent the
    ``attachment_create`` Cinder has not answered yet (None between a
    refusal and the next try: nothing is being made), ``attachment`` the
    id Cinder answered, once known.  Whoever made the claim tells each
    request (:meth:`sending`, :meth:`refused`: it is the client's
    ``Attempts``) and calls :meth:`name` as soon as it learns the id.
    """

    def __init__(self, process: str | None, since: float | None,
                 attachment: str | None = None, token: str | None = None,
                 publish: Callable[[], None] | None = None):
        self.process = process
        self.since = since
        self.attachment = attachment
        self.token = token or uuid.uuid4().hex
        self._on_change = publish

    def name_attachment(self, attachment_id: str) -> None:
        """The attachment this attach is making is ``attachment_id``."""
        self.attachment = attachment_id
        self._publish_claim()

    def sending(self) -> None:
        """An ``attachment_create`` is about to be sent.

        The claim covers what it makes: attachments Cinder made from now.
        """
        self.since = time.time()
        self._publish_claim()

    def refused(self) -> None:
        """Cinder refused the request: it made nothing to cover."""
        self.since = None
        self._publish_claim()

    def _publish_claim(self):
        if self._on_change is not None:
            self._on_change()

    def as_dict(self) -> dict[str, Any]:
        return {'process': self.process, 'since': self.since,
                'attachment': self.attachment, 'token': self.token}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> 'Claim':
        since = d.get('since')
        return cls(d.get('process'), None if since is None else float(since),
                   d.get('attachment'), d.get('token'))

    def __repr__(self):
        return 'Claim(%s since %s: %s)' % (
            self.process, self.since, self.attachment or 'unnamed')


def _claims_of(capabilities: Any) -> list[Claim]:
    """The claims a member's capabilities carry.

    A member without any (a cinder_store from before claims) claims
    every attachment being made: it is never taken for dead.
    """
    if not isinstance(capabilities, dict) or 'claims' not in capabilities:
        return [Claim(None, 0.0)]
    return [Claim.from_dict(c) for c in capabilities['claims']]


class Membership(object):
    """This process's membership, and what it sees of the others."""

    coordinated = True

    def __init__(self, url: str, grace: float,
                 host_name: str | None = None):
        self.url = url
        self.grace = grace
        self.host_name = host_name or host.hostname()
        self.member_id = ('%s:%d' % (self.host_name, os.getpid())).encode()
        self._coordinator: coordination.CoordinationDriver | None = None
        self._absent_since: dict[str, float] = {}
        self._lock = threading.Lock()
        # group -> how many of this process's threads announce it
        self._announcing: dict[bytes, int] = {}
        # group -> this process's claims in it (threads attaching)
        self._claims: dict[bytes, list[Claim]] = {}
        # When a look (wanted) last succeeded, and since when this
        # process has been in the group without a lapse (epoch seconds)
        self._seen_at: float | None = None
        self._member_since = time.time()
        self._announced: set[str] = set()

    def start(self) -> None:
        """Join the group and start heartbeats; idempotent."""
        with self._lock:
            if self._coordinator is None:
                coordinator = coordination.get_coordinator(
                    self.url, self.member_id)
                coordinator.start(start_heart=True)
                self._coordinator = coordinator
            self._join_groups(self._coordinator)

    def stop(self) -> None:
        with self._lock:
            if self._coordinator is not None:
                self._coordinator.stop()
                self._coordinator = None

    def _join_groups(self, coordinator):
        _create_group(coordinator, HOST_GROUP_PREFIX + self.host_name.encode())
        _enter_group(coordinator, GROUP)

    def alive_hosts(self) -> set[str]:
        """The hosts with a process in the group, this one included.

        Raises what tooz raises when the service cannot be asked.
        """
        return self._ask_group()[0]

    def _ask_group(self) -> tuple[set[str], set[str]]:
        """(alive hosts, hosts that ever joined)."""
        self.start()
        coordinator = self._coordinator
        assert coordinator is not None
        members = coordinator.get_members(GROUP).get()
        known = {g[len(HOST_GROUP_PREFIX):].decode('utf-8', 'replace')
                 for g in coordinator.get_groups().get()
                 if g.startswith(HOST_GROUP_PREFIX)}
        if self.member_id not in members:
            # Our membership expired while this process could not
            # heartbeat (frozen, cut off): others may have released what
            # this host held; from now on it is a member again.
            LOG.warning('This host (%s) had dropped out of the Glance '
                        'hosts group; joining again', self.host_name)
            with self._lock:
                self._join_groups(coordinator)
        return {host_of(m) for m in members} | {self.host_name}, known

    def lost(self, host_names: Iterable[str] | None = None) -> set[str]:
        """Those of ``host_names`` out of the group for the whole grace.

        Only hosts that once joined: a host that never did (a Cinder
        host, a Glance host without coordination) is never lost.  Without
        ``host_names``: every lost host.
        """
        names = None if host_names is None else (set(host_names) -
                                                 {self.host_name})
        if names is not None and not names:
            return set()
        try:
            alive, known = self._ask_group()
        except Exception as error:
            LOG.warning('Cannot tell which Glance hosts are alive '
                        '(coordination service at %s): %s; releasing '
                        'nothing', url_without_secrets(self.url), error)
            return set()
        candidates = known - alive - {self.host_name}
        if names is not None:
            candidates &= names
        now = utils.monotonic()
        with self._lock:
            for name in alive:
                self._absent_since.pop(name, None)
            return {name for name in candidates
                    if now - self._absent_since.setdefault(name, now)
                    >= self.grace}

    def waiting_for(self, volume_id: str) -> ContextManager[None]:
        """Tell the other hosts, while inside, that this host waits.

        For a volume another host holds that is not multiattach: the
        holder then admits no new reader (:func:`contention.yield_turn`).
        Best effort: a service that cannot be told makes turns unfair,
        never fails the read.
        """
        return self._announce_inside(WAITING_PREFIX, volume_id)

    @contextlib.contextmanager
    def attaching(self, volume_id: str) -> Iterator[Claim]:
        """Claim, while inside, the attachment this process is making.

        From before ``attachment_create`` to ``attachment_complete``;
        :meth:`Claim.name` tells the id as soon as Cinder answers.  An
        attachment being made that no live claim covers is its dead
        attacher's (:func:`recovery.rules.abandoned_attachments`).  Best
        effort, like :meth:`waiting_for`.
        """
        group = ATTACHING_PREFIX + volume_id.encode()

        def publish():
            self._try_quietly('claim an attachment of %s' % volume_id,
                              self._publish_claims, group)
        claim = Claim(records.process_id(), time.time(), publish=publish)
        with self._lock:
            self._claims.setdefault(group, []).append(claim)
            joined = len(self._claims[group]) > 1
        with self._announce_inside(ATTACHING_PREFIX, volume_id):
            if joined:  # another thread of this process announces it
                publish()
            try:
                yield claim
            finally:
                with self._lock:
                    self._claims[group].remove(claim)
                    remaining = bool(self._claims[group])
                    if not remaining:
                        del self._claims[group]
                if remaining:
                    publish()

    @contextlib.contextmanager
    def _announce_inside(self, prefix: bytes,
                         volume_id: str) -> Iterator[None]:
        group = prefix + volume_id.encode()
        with self._lock:
            first = not self._announcing.get(group)
            self._announcing[group] = self._announcing.get(group, 0) + 1
        if first:
            self._try_quietly('announce %s' % group.decode(),
                              self._join_announcement, group)
        try:
            yield
        finally:
            with self._lock:
                self._announcing[group] -= 1
                last = not self._announcing[group]
                if last:
                    del self._announcing[group]
            if last:
                self._try_quietly('withdraw %s' % group.decode(),
                                  self._leave_announcement, group)

    def _coordinator_started(self) -> coordination.CoordinationDriver:
        self.start()
        assert self._coordinator is not None
        return self._coordinator

    def _claims_capabilities(self, group: bytes) -> dict[str, Any]:
        with self._lock:
            return {'claims': [c.as_dict()
                               for c in self._claims.get(group, ())]}

    def _join_announcement(self, group):
        _enter_group(self._coordinator_started(), group,
                     self._claims_capabilities(group))

    def _publish_claims(self, group):
        coordinator = self._coordinator_started()
        try:
            _set_capabilities(coordinator, group,
                              self._claims_capabilities(group))
        except (coordination.MemberNotJoined, coordination.GroupNotCreated):
            self._join_announcement(group)

    def _leave_announcement(self, group):
        coordinator = self._coordinator_started()
        try:
            coordinator.leave_group(group).get()
        except coordination.MemberNotJoined:
            pass
        try:
            coordinator.delete_group(group).get()
        except (coordination.GroupNotEmpty, coordination.GroupNotCreated):
            pass  # another host waits, or it went first

    def _try_quietly(self, what, step, *args):
        try:
            step(*args)
        except Exception as error:
            LOG.warning('Could not %s through the coordination service: '
                        '%s', what, error)

    def releasing(self, volume_id: str) -> ContextManager[None]:
        """Ask, while inside, the hosts keeping ``volume_id`` warm to let go.

        See :mod:`warm_reads`; best effort, like :meth:`waiting_for`.
        """
        return self._announce_inside(RELEASING_PREFIX, volume_id)

    def wanted(self, volume_ids: Iterable[str]) -> set[str]:
        """Those of ``volume_ids`` another process waits for or deletes.

        Waits for: a volume that is not multiattach, held here
        (:meth:`waiting_for`); deletes: :meth:`releasing`.  One look at
        the group names, then one per volume announced.  Also what
        :meth:`trusts` relies on: a look that finds this process out of
        the group, or comes more than ``LOOK_GAP`` seconds after the
        last one, means its membership may have lapsed.  Raises what
        tooz raises.
        """
        announced = self._look()
        return {v for v in set(volume_ids) & announced
                if self._announcing_members(WAITING_PREFIX, v) or
                self._announcing_members(RELEASING_PREFIX, v)}

    def _look(self) -> set[str]:
        """Volumes with a waiting or releasing group, looked up.

        Also notes this process's standing (see :meth:`wanted`).  One
        look serves every backend's keeper that asks within
        ``LOOK_REUSE`` seconds.
        """
        with self._lock:
            if (self._seen_at is not None and
                    utils.monotonic() - self._seen_at < LOOK_REUSE):
                return self._announced
        coordinator = self._coordinator_started()
        present = self.member_id in coordinator.get_members(GROUP).get()
        if not present:
            self._ask_group()  # joins again
        announced = {g.split(b':', 1)[1].decode('utf-8', 'replace')
                     for g in coordinator.get_groups().get()
                     if b'/' not in g and  # tooz lists members too
                     g.startswith((WAITING_PREFIX, RELEASING_PREFIX))}
        now = utils.monotonic()
        with self._lock:
            if (not present or self._seen_at is None or
                    now - self._seen_at > LOOK_GAP):
                self._member_since = time.time()
            self._seen_at = now
            self._announced = announced
        return announced

    def trusts(self, verified: float) -> bool:
        """Is what Cinder confirmed at ``verified`` (epoch) still true?

        Only while this process looks at the group (:meth:`wanted`) and
        has seen itself in it without a lapse since ``verified``: while
        it was out, another host may have released this host's
        attachments as a lost host's.
        """
        with self._lock:
            return (self._seen_at is not None and
                    utils.monotonic() - self._seen_at <= LOOK_GAP and
                    verified >= self._member_since)

    def remove_empty_announcements(self) -> list[bytes]:
        """Remove announcement groups nobody is in; the ones removed.

        An announcer that died inside leaves its group behind (its
        membership goes, the group stays).
        """
        coordinator = self._coordinator_started()
        removed = []
        for group in coordinator.get_groups().get():
            if b'/' in group or not group.startswith(ANNOUNCEMENTS):
                continue
            try:
                if coordinator.get_members(group).get():
                    continue
                coordinator.delete_group(group).get()
            except (coordination.GroupNotEmpty,
                    coordination.GroupNotCreated):
                continue  # joined, or removed, meanwhile
            removed.append(group)
        return removed

    def others_waiting(self, volume_id: str) -> set[str]:
        """Other hosts waiting for ``volume_id`` (empty on doubt)."""
        members = self._announcing_members(WAITING_PREFIX, volume_id)
        return {host_of(m) for m in members or ()} - {self.host_name}

    def live_claims(self, volume_id: str,
                    excluding: Claim | None = None) -> list[Claim] | None:
        """The live claims on attachments of ``volume_id``; None on doubt.

        A claim of a process of this host that is no longer running is
        left out at once (its process id and start time tell); another
        host's goes with its membership (tooz's membership timeout).
        ``excluding``: the caller's own claim.
        """
        group = ATTACHING_PREFIX + volume_id.encode()
        try:
            coordinator = self._coordinator_started()
            members = coordinator.get_members(group).get()
            found = []
            for member in members:
                try:
                    capabilities = coordinator.get_member_capabilities(
                        group, member).get()
                except coordination.MemberNotJoined:
                    continue  # withdrawn meanwhile
                found += [(member, c) for c in _claims_of(capabilities)]
        except coordination.GroupNotCreated:
            return []
        except Exception as error:
            LOG.warning('Cannot ask the coordination service about volume '
                        '%s: %s', volume_id, error)
            return None
        return [c for member, c in found
                if (excluding is None or c.token != excluding.token) and
                not self._dead_here(member, c)]

    def _dead_here(self, member: bytes, claim: Claim) -> bool:
        # Another host's process cannot be seen from here
        return (host_of(member) == self.host_name and
                claim.process is not None and
                not records.holder_alive(claim.process))

    def _announcing_members(self, prefix: bytes,
                            volume_id: str) -> set[bytes] | None:
        """Members announcing ``prefix`` for the volume; None on doubt."""
        try:
            return self._coordinator_started().get_members(
                prefix + volume_id.encode()).get()
        except coordination.GroupNotCreated:
            return set()
        except Exception as error:
            LOG.warning('Cannot ask the coordination service about volume '
                        '%s: %s', volume_id, error)
            return None

    def describe_host(self, host_name: str) -> str:
        """'alive', 'absent <n>s' or 'lost' (for people)."""
        if host_name in self.lost([host_name]):
            return 'lost (out of the group for over %ss)' % self.grace
        with self._lock:
            since = self._absent_since.get(host_name)
        if since is None:
            return 'alive'
        return 'absent for %.0fs' % (utils.monotonic() - since)


class Alone(object):
    """:class:`Membership`'s stand-in without a coordination service.

    This host knows of no other: nobody is lost or waits, and whether an
    attachment being made is claimed is unknown (``claims`` is None), so
    only its age tells it abandoned.
    """

    coordinated = False

    def __init__(self, host_name: str | None = None):
        self.host_name = host_name or host.hostname()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def alive_hosts(self) -> set[str]:
        return {self.host_name}

    def lost(self, host_names: Iterable[str] | None = None) -> set[str]:
        return set()

    def waiting_for(self, volume_id: str) -> ContextManager[None]:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def attaching(self, volume_id: str) -> Iterator[Claim]:
        yield Claim(records.process_id(), time.time())

    def live_claims(self, volume_id: str,
                    excluding: Claim | None = None) -> list[Claim] | None:
        return None

    def others_waiting(self, volume_id: str) -> set[str]:
        return set()

    def releasing(self, volume_id: str) -> ContextManager[None]:
        return contextlib.nullcontext()

    def wanted(self, volume_ids: Iterable[str]) -> set[str]:
        return set()

    def trusts(self, verified: float) -> bool:
        """Without coordination no host releases this host's attachments."""
        return True

    def remove_empty_announcements(self) -> list[bytes]:
        return []

    def describe_host(self, host_name: str) -> str:
        return 'unknown (no coordination service)'


def _create_group(coordinator: coordination.CoordinationDriver,
                  group: bytes) -> None:
    try:
        coordinator.create_group(group).get()
    except coordination.GroupAlreadyExist:
        pass


def _enter_group(coordinator: coordination.CoordinationDriver, group: bytes,
                 capabilities: Any = None) -> None:
    """Join ``group``, creating it first; idempotent.

    ``capabilities``, when given, are this member's in the group, also
    when it was a member already.
    """
    _create_group(coordinator, group)
    try:
        coordinator.join_group(group, capabilities).get()
    except coordination.MemberAlreadyExist:
        if capabilities is not None:
            _set_capabilities(coordinator, group, capabilities)


def _set_capabilities(coordinator: coordination.CoordinationDriver,
                      group: bytes, capabilities: Any) -> None:
    """This member's capabilities in ``group``, which it is a member of."""
    try:
        coordinator.update_capabilities(group, capabilities).get()
    except tooz.NotImplemented:
        # Drivers without it (file): join again, with them
        coordinator.leave_group(group).get()
        coordinator.join_group(group, capabilities).get()


def url_without_secrets(url: str) -> str:
    parts = parse.urlsplit(url)
    netloc = parts.hostname or ''
    if parts.port:
        netloc += ':%d' % parts.port
    return parts._replace(netloc=netloc, query='').geturl()


_members: dict[str, Membership] = {}
_members_lock = threading.Lock()


def for_url(url: str | None, grace: float) -> 'Membership | Alone':
    """This process's one membership for ``url`` (started on first use).

    The stores of several backends share it; the grace is the first
    asked for.  Without a URL: :class:`Alone`.
    """
    if not url:
        return Alone()
    with _members_lock:
        if url not in _members:
            _members[url] = Membership(url, grace)
        return _members[url]
