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

"""A campaign's report: a table, and JSON."""


def rows(args, ledger, availability, fixed, unreadable, undeletable, left):
    """(name, value) rows of the table, in order."""
    c = ledger.counts
    return [
        ('operations', args.ops - ledger.remaining),
        ('kills', c['killed']), ('freezes', c['freezes']),
        ('hosts', args.hosts),
        ('whole-host kills', c['host kills']),
        ('whole-host freezes', c['host freezes']),
        ('  seconds until killed hosts were released',
         c['seconds waited for lost hosts']),
        ('driver faults injected', c['driver faults injected']),
        ('errors (all)', c['errors']),
        ('  refused a wrong declared size', c['refused wrong size']),
        ('  failed by an injected driver fault',
         c['failed by an injected fault']),
        ('  while a service was frozen', c['errors while frozen']),
        ('  of a host that was frozen', c['errors of a host frozen']),
        ('unexpected errors', len(ledger.unexpected)),
        ('wrong bytes', c['wrong bytes']),
        ('  deletes refused while read (409)',
         c['delete refused while read']),
        ('  reads racing their delete', c['reads racing their delete']),
        ('  on an image recovering from a kill',
         c['errors while recovering from a kill']),
    ] + availability.rows() + [
        ('adds completed as their worker died',
         c['adds done as their worker died']),
        ('images believed stored at the end', len(ledger.stored)),
        ('  unreadable (stuck)', len(unreadable)),
        ('undeletable', len(undeletable)),
        ('check --fix repairs', len([f for f in fixed
                                     if f.startswith('fixed')])),
    ] + [('left: ' + k, len(v)) for k, v in left.items()]


def print_table(args, table, campaign_s, total_s, worker_log, unexpected):
    print('%-40s %s' % ('chaos (seed %d)' % args.seed, 'count'))
    for name, value in table:
        print('%-40s %s' % (name, value))
    print('campaign %.0f s, with recovery and checks %.0f s; worker '
          'errors in %s' % (campaign_s, total_s, worker_log))
    for what, req in unexpected[:20]:
        print('UNEXPECTED: %s: %s' % (what, req))


def outcome(args, ledger, availability, table, fixed, unreadable,
            undeletable, left, campaign_s, total_s):
    """(the JSON report, the exit status: 1 if anything went wrong)."""
    result = {
        'args': vars(args), 'counts': dict(ledger.counts), 'rows': table,
        'unexpected': [[str(w), r] for w, r in ledger.unexpected],
        'unreadable': unreadable, 'undeletable': undeletable,
        'check_fix': fixed, 'left': left, 'campaign_s': campaign_s,
        'availability': availability.events, 'total_s': total_s}
    bad = (ledger.unexpected or ledger.counts['wrong bytes'] or unreadable
           or undeletable or any(left.values()))
    return result, 1 if bad else 0
