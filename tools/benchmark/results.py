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

"""What the benchmark reports: rows of medians, ratios and limits.

A row holds cinder_store's samples beside the in-tree driver's and the
limit (the device alone, the hashes, or Glance's own rbd store); the
ratio is cinder_store's advantage (higher is better) and the percentage
how close it comes to the limit.  Printed as it goes, and written as JSON,
reStructuredText (doc/source/benchmark.rst) or a PNG chart.
"""

import statistics

MiB = 1 << 20
GiB = 1 << 30


class Results(object):
    """The run's rows, and what it knows of its placement."""

    def __init__(self, meta):
        self.meta = meta
        self.rows = []

    def as_dict(self):
        return {'meta': self.meta, 'rows': self.rows}

    def add_row(self, scenario, unit, ours, theirs=None, limit=None,
                better='higher', note=''):
        """One scenario: samples (or one value) of each, and the limit."""
        med = (lambda v: statistics.median(v) if isinstance(v, list)
               else v)
        o, t = med(ours), med(theirs) if theirs is not None else None
        ratio = None
        if t:
            ratio = o / t if better == 'higher' else t / o
        self.rows.append({
            'scenario': scenario, 'unit': unit, 'ours': o, 'upstream': t,
            'limit': limit, 'ratio_to_upstream': ratio,
            'percent_of_limit': (None if not limit else 100 * o / limit
                                 if better == 'higher' else 100 * limit / o),
            'samples_ours': ours if isinstance(ours, list) else [ours],
            'samples_upstream': (theirs if isinstance(theirs, list)
                                 else [theirs]),
            'better': better, 'note': note})
        print_row(self.rows[-1])


def human(n):
    return '%d GiB' % (n // GiB) if n % GiB == 0 else '%d MiB' % (n // MiB)


def fmt(v):
    if v is None:
        return '-'
    return '%.0f' % v if abs(v) >= 100 else '%.2f' % v


def spread(samples):
    samples = [x for x in samples if x is not None]
    if len(samples) < 2:
        return '-'
    return '%s-%s' % (fmt(min(samples)), fmt(max(samples)))


def print_header():
    print('%-40s %6s %10s %13s %10s %13s %10s %9s %8s  %s' % (
        'scenario', 'unit', 'cinder_st', '(spread)', 'upstream', '(spread)',
        'limit', 'ratio*', '%limit', 'note'))


def print_row(r):
    print('%-40s %6s %10s %13s %10s %13s %10s %9s %8s  %s' % (
        r['scenario'], r['unit'], fmt(r['ours']), spread(r['samples_ours']),
        fmt(r['upstream']), spread(r['samples_upstream']),
        fmt(r['limit']),
        '-' if r['ratio_to_upstream'] is None
        else '%.2fx' % r['ratio_to_upstream'],
        '-' if r['percent_of_limit'] is None
        else '%.0f%%' % r['percent_of_limit'], r['note']), flush=True)


def rst(results):
    """The table as reStructuredText, for doc/source/benchmark.rst."""
    head = ('scenario', 'unit', 'cinder_store', 'spread', 'upstream',
            'limit', 'ratio*', '% of limit', 'note')
    rows = [head] + [(
        r['scenario'], r['unit'], fmt(r['ours']), spread(r['samples_ours']),
        fmt(r['upstream']), fmt(r['limit']),
        '-' if r['ratio_to_upstream'] is None
        else '%.2fx' % r['ratio_to_upstream'],
        '-' if r['percent_of_limit'] is None
        else '%.0f%%' % r['percent_of_limit'], r['note'] or '-')
        for r in results.rows]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    rule = ' '.join('=' * w for w in widths)
    lines = [rule, ' '.join(str(c).ljust(w) for c, w in zip(head, widths)),
             rule]
    lines += [' '.join(str(c).ljust(w) for c, w in zip(row, widths))
              for row in rows[1:]]
    lines.append(rule)
    return '\n'.join(line.rstrip() for line in lines) + '\n'


def plot(results, path):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot
    rows = [r for r in results.rows
            if r['ratio_to_upstream'] or r['percent_of_limit']]
    fig, (ax1, ax2) = pyplot.subplots(1, 2, figsize=(13, 5))
    with_ratio = [r for r in rows if r['ratio_to_upstream']]
    ax1.barh([r['scenario'] for r in with_ratio],
             [r['ratio_to_upstream'] for r in with_ratio], color='tab:blue')
    ax1.axvline(1, color='grey', linestyle='--')
    ax1.set_title('cinder_store vs in-tree (x, higher is better)')
    with_limit = [r for r in rows if r['percent_of_limit']]
    ax2.barh([r['scenario'] for r in with_limit],
             [r['percent_of_limit'] for r in with_limit], color='tab:green')
    ax2.axvline(100, color='grey', linestyle='--')
    ax2.set_title('cinder_store, % of the limit')
    fig.suptitle('placement: %s' % results.meta['placement'])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
