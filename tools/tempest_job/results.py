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

"""What a Tempest run recorded: counts, and every skip with its reason."""

import collections
import io

import subunit
import testtools

# Fixtures Tempest reports as tests (class set-up and tear-down)
FIXTURE_MARKS = ('setUpClass', 'tearDownClass')


def read(stream_bytes):
    """``{test id: (status, skip reason or failure text)}`` of a stream."""
    found = {}

    def on_test(test):
        status = test['status']
        details = test['details']
        text = ''
        if status == 'skip' and 'reason' in details:
            text = details['reason'].as_text()
        elif status == 'fail' and 'traceback' in details:
            text = details['traceback'].as_text()
        found[test['id']] = (status, text.strip())

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(stream_bytes)).run(result)
    result.stopTestRun()
    return found


def _test_name(test_id):
    # "tempest.api.image...test_x[id-...,smoke]" -> without the tags
    return test_id.split('[', 1)[0]


def summary(found):
    """Counts by outcome, skips grouped by reason, failures by test."""
    counts = collections.Counter()
    skips = collections.defaultdict(list)
    failures = {}
    for test_id, (status, text) in sorted(found.items()):
        outcome = {'success': 'passed', 'skip': 'skipped',
                   'fail': 'failed'}.get(status, status)
        counts[outcome] += 1
        if outcome == 'skipped':
            skips[text or 'no reason given'].append(_test_name(test_id))
        elif outcome == 'failed':
            failures[_test_name(test_id)] = text[-3000:]
    return {'counts': dict(counts), 'skips': dict(skips),
            'failures': failures}
