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

"""Boot storm: concurrent Glance downloads of one image, through HAProxy.

    tools/boot-storm [--size-mib 1024] [--downloads 24]
                     [--stores block,multiattach,rbd,upstream,...]
                     [--json FILE]

For each store: one image uploaded through the stack's HAProxy (the
catalog's image endpoint), then ``--downloads`` downloads of it started at
once, spread by HAProxy over the Glance hosts, each checked (length and
CRC-32).  Reports per store the failures, aggregate MB/s (bytes delivered
over the wall time of the storm), and the p50/p99 time to first byte and
to the last.  cinder_store's stores sit beside the in-tree driver's
(``upstream`` on the exclusive ``block`` backend, ``upstream-multiattach``
and ``upstream-rbd``).  Runs in the stack's virtualenv; asserts nothing.
"""

import argparse
import concurrent.futures
import json
import os
import sys
import time
import zlib

import openstack
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_stack import settings  # noqa: E402

MiB = 1 << 20
STORES = ('multiattach', 'upstream-multiattach', 'block', 'upstream', 'rbd',
          'upstream-rbd')
# Which in-tree store each of ours is compared with
THEIRS = {'multiattach': 'upstream-multiattach', 'block': 'upstream',
          'rbd': 'upstream-rbd'}


class Image(object):
    """``size`` bytes made of a 1 MiB random block, numbered per MiB."""

    def __init__(self, size):
        self.size = size
        self.block = os.urandom(MiB)
        self.crc = 0
        for chunk in self.chunks():
            self.crc = zlib.crc32(chunk, self.crc)

    def chunks(self):
        for n in range(0, self.size, MiB):
            yield (n.to_bytes(8, 'big') + self.block[8:])[:self.size - n]


def upload(api, store, image):
    r = api.post('/images', json={'name': 'boot-storm-%s' % store,
                                  'disk_format': 'raw',
                                  'container_format': 'bare'})
    r.raise_for_status()
    image_id = r.json()['id']
    t0 = time.monotonic()
    r = api.put('/images/%s/file' % image_id, data=image.chunks(),
                headers={'Content-Type': 'application/octet-stream',
                         'X-Image-Meta-Store': store})
    if r.status_code != 204:
        api.delete('/images/%s' % image_id)
        raise RuntimeError('upload to %s: %s %s' % (store, r.status_code,
                                                    r.text[:300]))
    return image_id, time.monotonic() - t0


def download(api, image_id, image, start):
    """(ok, why, seconds to first byte, seconds to last, bytes)."""
    t0 = time.monotonic()
    first = None
    got = crc = 0
    try:
        r = api.get('/images/%s/file' % image_id, stream=True,
                    timeout=900)
        if r.status_code != 200:
            return (False, 'HTTP %s: %s' % (r.status_code, r.text[:200]),
                    None, time.monotonic() - start, 0)
        for chunk in r.iter_content(MiB):
            if first is None:
                first = time.monotonic() - t0
            got += len(chunk)
            crc = zlib.crc32(chunk, crc)
    except Exception as e:
        return False, repr(e)[:200], first, time.monotonic() - start, got
    if got != image.size or crc != image.crc:
        return (False, 'wrong bytes (%d of %d, crc %s)' % (
            got, image.size, crc == image.crc), first,
            time.monotonic() - start, got)
    return True, '', first, time.monotonic() - start, got


def percentile(values, p):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    rank = int(round(p / 100 * (len(values) - 1)))
    return values[min(len(values) - 1, rank)]


def storm(api, store, image, downloads):
    try:
        image_id, up = upload(api, store, image)
    except (RuntimeError, requests.RequestException) as e:
        # A store that cannot take the image fails every boot: a result
        return {'store': store, 'downloads': downloads, 'failed': downloads,
                'why': [str(e)[:300]], 'upload_s': None, 'wall_s': None,
                'aggregate_mbs': 0.0, 'ttfb_p50': None, 'ttfb_p99': None,
                'done_p50': None, 'done_p99': None}
    try:
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(downloads) as pool:
            results = list(pool.map(
                lambda _: download(api, image_id, image, start),
                range(downloads)))
        wall = time.monotonic() - start
    finally:
        api.delete('/images/%s' % image_id)
    failed = [why for ok, why, _, _, _ in results if not ok]
    delivered = sum(r[4] for r in results if r[0])
    return {'store': store, 'downloads': downloads,
            'failed': len(failed), 'why': sorted(set(failed))[:3],
            'upload_s': up, 'wall_s': wall,
            'aggregate_mbs': delivered / wall / 1e6,
            'ttfb_p50': percentile([r[2] for r in results], 50),
            'ttfb_p99': percentile([r[2] for r in results], 99),
            'done_p50': percentile([r[3] for r in results if r[0]], 50),
            'done_p99': percentile([r[3] for r in results if r[0]], 99)}


def fmt(v, spec='%.1f'):
    return '-' if v is None else spec % v


def report(rows):
    print('%-22s %6s %9s %9s %9s %9s %9s' % (
        'store', 'failed', 'MB/s', 'ttfb p50', 'ttfb p99', 'done p50',
        'done p99'))
    for r in rows:
        print('%-22s %3d/%-2d %9s %9s %9s %9s %9s' % (
            r['store'], r['failed'], r['downloads'], fmt(r['aggregate_mbs']),
            fmt(r['ttfb_p50'], '%.2fs'), fmt(r['ttfb_p99'], '%.2fs'),
            fmt(r['done_p50'], '%.2fs'), fmt(r['done_p99'], '%.2fs')))
        for why in r['why']:
            print('    %s' % why)
    by_store = {r['store']: r for r in rows}
    for ours, theirs in sorted(THEIRS.items()):
        if ours in by_store and theirs in by_store:
            a, b = by_store[ours], by_store[theirs]
            print('%s vs %s: aggregate %sx, failures %d vs %d' % (
                ours, theirs, fmt(a['aggregate_mbs'] / b['aggregate_mbs']
                                  if b['aggregate_mbs'] else None, '%.2f'),
                a['failed'], b['failed']))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--downloads', type=int, default=24)
    parser.add_argument('--stores', default=','.join(STORES))
    parser.add_argument('--json', help='write the results as JSON here')
    args = parser.parse_args()
    os.environ.setdefault('OS_CLIENT_CONFIG_FILE', settings.CLOUDS)
    api = openstack.connect(cloud='stack-admin').image
    image = Image(args.size_mib * MiB)
    print('boot storm: %d downloads of a %d MiB image through HAProxy (%s),'
          ' %d Glance hosts' % (args.downloads, args.size_mib,
                                settings.GLANCE_URL, settings.GLANCE_HOSTS),
          flush=True)
    rows = []
    for store in args.stores.split(','):
        rows.append(storm(api, store, image, args.downloads))
        print('  %s: %d failed, %.1f MB/s' % (
            store, rows[-1]['failed'], rows[-1]['aggregate_mbs']),
            flush=True)
    report(rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
