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

"""How long images stay unreadable or undeletable after a kill.

After every read killed inside its attach (Cinder still shows an
attachment of its image being made a second after the kill), a probe
worker that is never killed reads the image until a read succeeds, then
deletes it until the delete succeeds.  The report gives the longest time
from a kill to each; over the limit is unexpected.
"""

import queue
import threading
import time

from campaign import stack


class Availability(object):
    """How long images stay unreadable or undeletable after a kill.

    A read killed inside its attach is an event; a probe worker (never
    killed) measures, from the kill, the time to the image's next
    successful read and then to its delete.
    """

    PROBES = 2

    def __init__(self, ledger, new_worker, limit):
        """``new_worker()`` starts a worker; ``limit``: seconds allowed."""
        self.ledger = ledger
        self.new_worker = new_worker
        self.limit = limit
        self.events = []
        self._queue = queue.Queue()
        self._threads = []

    def start(self):
        """Start the probe workers."""
        for n in range(self.PROBES):
            thread = threading.Thread(target=self._probe, daemon=True,
                                      name='chaos-probe-%d' % n)
            thread.start()
            self._threads.append(thread)

    def stop(self):
        """Let the probes finish what they measure, then stop them."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def killed(self, req, at):
        """A worker was killed running ``req`` at ``at`` (monotonic)."""
        if req['op'] != 'get':
            return
        threading.Thread(target=self._classify, args=(req, at),
                         daemon=True).start()

    def _classify(self, req, at):
        # Cinder goes on with a request the worker sent before dying
        time.sleep(1)
        volume_id = req['uri'].rsplit('/', 1)[1]
        try:
            being_made = [a for a in stack.admin_cinder().attachments.list(
                search_opts={'volume_id': volume_id, 'all_tenants': 1})
                if a.status in ('reserved', 'attaching')]
        except Exception:
            return  # deleted meanwhile
        if not being_made:
            return
        with self.ledger.lock:
            if req['image'] not in self.ledger.stored:
                return  # deleted (or being deleted) by the campaign
            self.ledger.recovering.add(req['image'])
        self._queue.put(dict(image=req['image'], backend=req['backend'],
                             uri=req['uri'], killed=at))

    def _probe(self):
        worker = self.new_worker()
        try:
            while True:
                event = self._queue.get()
                if event is None:
                    return
                self._measure(worker, event)
        finally:
            worker.stop()

    def _measure(self, worker, event):
        got = self._until_ok(worker, event, {
            'op': 'get', 'uri': event['uri'], 'backend': event['backend']})
        event['read_s'] = round(time.monotonic() - event['killed'], 1)
        with self.ledger.lock:
            digest = self.ledger.stored.get(event['image'], (0, 0, None))[2]
            if got and digest and got.get('sha256') != digest:
                self.ledger.counts['wrong bytes'] += 1
                self.ledger.unexpected.append(('wrong bytes', event))
            # From now on the campaign leaves it to the probe
            if self.ledger.stored.pop(event['image'], None):
                self.ledger.maybe[event['image']] = (event['backend'],
                                                     event['uri'])
        self._until_ok(worker, event, {
            'op': 'delete', 'uri': event['uri'],
            'backend': event['backend']})
        event['deleted_s'] = round(time.monotonic() - event['killed'], 1)
        with self.ledger.lock:
            self.ledger.maybe.pop(event['image'], None)
            self.ledger.recovering.discard(event['image'])
            self.events.append(event)
            worst = max(event['read_s'], event['deleted_s'])
            if worst > self.limit:
                self.ledger.unexpected.append((
                    'image unavailable %.0fs after a kill inside an attach '
                    '(limit %ds)' % (worst, self.limit), event))

    def _until_ok(self, worker, event, request, pause=1.0):
        """The first answer that is ok (or NotFound), or None past 3x."""
        while time.monotonic() - event['killed'] < 3 * self.limit:
            answer = worker.call(request)
            if answer and (answer['ok'] or answer.get('not_found')):
                return answer
            time.sleep(pause)
        return None

    def rows(self):
        """The report's rows of availability."""
        reads = [e['read_s'] for e in self.events]
        deletes = [e['deleted_s'] for e in self.events]
        return [
            ('reads killed inside an attach', len(self.events)),
            ('  longest until read again (s)', max(reads, default=0)),
            ('  longest until deleted (s)', max(deletes, default=0)),
            ('  limit (s)', self.limit)]
