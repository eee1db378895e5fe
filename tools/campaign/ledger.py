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

"""What happened in a campaign: the images, the counts, the surprises.

One :class:`Ledger` per campaign, shared by its threads under ``lock``.
:meth:`Ledger.record` says of every answer whether it was expected:
an operation killed mid-way; an error while a service or its host was
frozen; the refusal of a wrongly declared size; an add failed by an
injected driver fault; an error on an image recovering from a kill
inside an attach.  Anything else is unexpected.
"""

import collections
import threading
import time


class Ledger(object):
    """The campaign's books; every field is read and written under lock."""

    def __init__(self, operations):
        self.lock = threading.Lock()
        self.remaining = operations
        self.stored = {}  # image id -> (backend, uri, sha256)
        self.believed = {}  # the same, for every add that succeeded
        self.maybe = {}  # image id -> (backend, uri): a delete was killed
        self.adds = {}  # image id -> backend, for every add sent
        self.recovering = set()  # images measured by the availability probe
        self.counts = collections.Counter()
        self.unexpected = []  # (what, request)
        self.freezes = []  # (start, end) of each service freeze
        self.dead_hosts = []  # names of the hosts killed whole

    def add_unexpected(self, what, request):
        with self.lock:
            self.unexpected.append((what, request))

    def record(self, req, answer, started, host=None):
        """Book the ``answer`` to ``req`` sent at ``started`` (monotonic)."""
        self.counts[req['kind']] += 1
        with self.lock:
            if req['image'] in self.recovering:
                # The probe measures it and deletes it: its books now
                if not answer['ok']:
                    self.counts['errors'] += 1
                    self.counts['errors while recovering from a kill'] += 1
                return
            if answer['ok']:
                self._book_success(req, answer)
            else:
                self.counts['errors'] += 1
                self._book_error(req, answer, started, host)

    def _book_success(self, req, answer):
        if req['op'] == 'add':
            if req['kind'] == 'add-wrong':
                self.unexpected.append(('accepted a wrong size', req))
            self.stored[req['image']] = self.believed[req['image']] = (
                req['backend'], answer['uri'], answer['sha256'])
        elif req['op'] == 'get' and not req['abandon']:
            if answer['sha256'] != self.stored.get(
                    req['image'], (None, None, answer['sha256']))[2]:
                self.counts['wrong bytes'] += 1
                self.unexpected.append(('wrong bytes', req))
        elif req['op'] == 'delete':
            self.maybe.pop(req['image'], None)

    def _book_error(self, req, answer, started, host):
        if req['op'] == 'delete' and answer['error'].startswith(
                'InUseByStore'):
            # A live reader on this host: Glance answers 409, keeps it
            self.counts['delete refused while read'] += 1
            self.maybe.pop(req['image'], None)
            self.stored[req['image']] = self.believed[req['image']]
        elif req.get('fault'):
            self.counts['failed by an injected fault'] += 1
        elif req['kind'] == 'add-wrong':
            self.counts['refused wrong size'] += 1
        elif self.frozen_during(started):
            self.counts['errors while frozen'] += 1
        elif host is not None and host.frozen_until >= started:
            # Its reads and uploads may fail once it resumes: others
            # released what it held
            self.counts['errors of a host frozen'] += 1
        elif req['op'] == 'delete' and answer.get('not_found'):
            self.maybe.pop(req['image'], None)
        elif req['op'] == 'get' and req['image'] not in self.stored:
            self.counts['reads racing their delete'] += 1
        else:
            self.unexpected.append((answer['error'], req))

    def frozen_during(self, started):
        """Was a service frozen at some time since ``started``?"""
        return any(start <= time.monotonic() and end >= started
                   for start, end in self.freezes)
