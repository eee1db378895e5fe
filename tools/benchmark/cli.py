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

"""``tools/bench``'s command line."""

import argparse
import json
import os

from benchmark import measure
from benchmark import results
from benchmark import scenarios
from benchmark import subjects
from cinder_store.findings import system
from local_stack import settings


def placement_of(placement):
    """Where the volumes live, for the report."""
    if placement.rbd:
        osd = settings.CEPH + '/osd'
        return 'Ceph RBD, one BlueStore OSD on a file in %s (%s)' % (
            osd, system.filesystem_type(osd) or '?')
    path = os.path.realpath(settings.VOLUMES)
    fstype = system.filesystem_type(path) or '?'
    return '%s (%s)' % (path, 'memory' if fstype == 'tmpfs' else fstype)


def parse_args(argv, description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--quick', action='store_true',
                        help='a smaller set for CI (under 3 minutes)')
    parser.add_argument('--rbd', action='store_true',
                        help='on the stack\'s Ceph: rbd vs upstream-rbd, '
                             'beside raw librbd')
    parser.add_argument('--sparse', action='store_true',
                        help='only real images: ext4 mostly of zeros, '
                             'and random, with the space allocated')
    parser.add_argument('--downloads', action='store_true',
                        help='only repeated 64 MiB downloads through Glance: '
                             'cinder_store warm and cold, the in-tree '
                             'driver, and with --rbd Glance\'s rbd store')
    parser.add_argument('--reps', type=int, default=0)
    parser.add_argument('--json', help='write the results as JSON here')
    parser.add_argument('--plot', help='write a PNG bar chart here')
    parser.add_argument('--rst', help='write the table as reST here')
    return parser.parse_args(argv)


def main(argv=None, description=None):
    args = parse_args(argv, description)
    placement = subjects.PLACEMENTS['rbd' if args.rbd else 'block']
    report = results.Results({
        'placement': placement_of(placement), 'quick': args.quick,
        'reps': args.reps, 'page_cache': 'dropped before each read'
        if measure.drop_caches() else 'NOT dropped (no permission)'})
    run = (scenarios.SparseRun if args.sparse else
           scenarios.DownloadRun if args.downloads else
           scenarios.StandardRun)(args, subjects.Subjects(placement), report)
    run.run()
    print('* ratio: cinder_store over upstream for throughput, upstream over '
          'cinder_store for times and call counts (>1: cinder_store better)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report.as_dict(), f, indent=2)
    if args.plot:
        results.plot(report, args.plot)
    if args.rst:
        with open(args.rst, 'w') as f:
            f.write(results.rst(report))
    return 0
