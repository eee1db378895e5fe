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

"""The benchmark's scenarios, each reported as rows.

:class:`StandardRun` (the default): the limits, add and get of a large
image, the 1 MiB cycle, Cinder calls per operation, an image of unknown
size, concurrent adds and gets, memory.  :class:`SparseRun` (``--sparse``):
real images, an ext4 file system mostly of zeros and a random one,
through glance_store and through Glance, with the space they allocate.
:class:`DownloadRun` (``--downloads``): repeated downloads through Glance,
warm and cold.
Repetitions are interleaved (ours, theirs, ours, ...).
"""

import concurrent.futures
import statistics
import tempfile
import time
import tracemalloc

from benchmark import measure
from benchmark import results
from local_stack import settings

MiB = measure.MiB
GiB = measure.GiB
human = results.human


class StandardRun(object):
    """The default scenarios (``tools/bench``, ``--quick``, ``--rbd``)."""

    def __init__(self, args, subjects, report):
        self.args = args
        self.subjects = subjects
        self.report = report
        self.ours = subjects.placement.ours
        self.theirs = subjects.placement.theirs
        self.shared = subjects.placement.shared
        self.calls = measure.CallCounter()
        self.returned_at_start = measure.returned_to_host()

    def interleave(self, func, reps):
        samples = {self.ours: [], self.theirs: []}
        for _ in range(reps):
            for backend in (self.ours, self.theirs):
                samples[backend].append(func(backend))
        return samples

    def add_get(self, size, reps, reads=3):
        """One volume at a time: add, read back ``reads`` times, delete."""
        def one(backend):
            t_add, uri = measure.timed(
                lambda: self.subjects.add(backend, size))
            t_gets = [measure.timed(lambda: self.subjects.get(backend, uri))[0]
                      for _ in range(reads)]
            self.subjects.delete(backend, uri)
            return size / t_add, [size / t for t in t_gets]
        samples = self.interleave(one, reps)
        adds = {b: [x[0] for x in v] for b, v in samples.items()}
        gets = {b: [g for x in v for g in x[1]] for b, v in samples.items()}
        return adds, gets

    def small_cycle(self, reps):
        def cycle(backend):
            def run():
                uri = self.subjects.add(backend, MiB)
                self.subjects.get(backend, uri)
                self.subjects.delete(backend, uri, wait=False)
                return uri
            t, uri = measure.timed(run)
            self.subjects.wait_deleted(uri)  # Cinder's own async work, untimed
            return t
        return self.interleave(cycle, reps)

    def call_counts(self):
        out = {}
        for backend in (self.ours, self.theirs):
            uri, add_calls = self.calls.measure(
                lambda: self.subjects.add(backend, MiB))
            _, get_calls = self.calls.measure(
                lambda: self.subjects.get(backend, uri))
            self.subjects.delete(backend, uri)
            out[backend] = (add_calls, get_calls)
        return out

    def unknown_size(self, size, reps):
        def one(backend):
            t, uri = measure.timed(
                lambda: self.subjects.add(backend, size, declared=False))
            self.subjects.delete(backend, uri)
            return t
        return self.interleave(one, reps)

    def concurrent_adds(self, n, size):
        def run():
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                return list(pool.map(
                    lambda _: self.subjects.add(self.ours, size), range(n)))
        t, uris = measure.timed(run)
        for uri in uris:
            self.subjects.delete(self.ours, uri)
        return n * size / t

    def concurrent_gets(self, n, size):
        uri = self.subjects.add(self.shared, size)
        measure.drop_caches()

        def run():
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                return sum(pool.map(
                    lambda _: self.subjects.get(self.shared, uri), range(n)))
        t, total = measure.timed(run)
        cinder = self.subjects.store(
            self.shared).maintenance().bound_cinder(self.subjects.ctx)
        leaked = cinder.get_volume(uri.rsplit('/', 1)[1]).attachments
        self.subjects.delete(self.shared, uri)
        return total / t, len(leaked)

    def peak_memory(self, size):
        tracemalloc.start()
        try:
            uri = self.subjects.add(self.ours, size)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.subjects.delete(self.ours, uri)
        return peak

    def run(self):
        a = self.args
        big = 64 * MiB if a.quick else GiB
        reps = a.reps or (1 if a.quick else 3)
        mb = 1e6
        print('placement: %s; page cache: %s' % (
            self.report.meta['placement'],
            self.report.meta['page_cache']))
        results.print_header()
        md5 = measure.hash_rate(self.subjects.block, 'md5', big) / mb
        sha = measure.hash_rate(self.subjects.block, 'sha512', big) / mb
        self.report.add_row('md5, one core', 'MB/s', md5)
        self.report.add_row('sha512, one core', 'MB/s', sha)
        raws = [self.subjects.raw_device(big) for _ in range(reps)]
        raw_w = statistics.median(r[0] for r in raws) / mb
        raw_r = statistics.median(r[1] for r in raws) / mb
        device = 'raw librbd' if a.rbd else 'device'
        self.report.add_row('%s write+%s (fresh volume)' % (
            device, 'flush' if a.rbd else 'fsync'), 'MB/s',
            [r[0] / mb for r in raws])
        self.report.add_row('%s read' % device, 'MB/s',
                            [r[1] / mb for r in raws])
        adds, gets = self.add_get(big, reps, reads=1 if a.quick else 3)
        add_limit = min(md5, sha, raw_w)
        self.report.add_row('add %s known size' % human(big), 'MB/s',
                            [x / mb for x in adds[self.ours]],
                            [x / mb for x in adds[self.theirs]], add_limit,
                            note='in-tree does not fsync')
        self.report.add_row('get %s' % human(big), 'MB/s',
                            [x / mb for x in gets[self.ours]],
                            [x / mb for x in gets[self.theirs]], raw_r)
        cycles = self.small_cycle(2 if a.quick else 5)
        self.report.add_row('1 MiB add+get+delete', 's', cycles[self.ours],
                            cycles[self.theirs], better='lower')
        counts = self.call_counts()
        self.report.add_row('Cinder calls per add', 'calls',
                            counts[self.ours][0], counts[self.theirs][0],
                            better='lower')
        self.report.add_row('Cinder calls per get', 'calls',
                            counts[self.ours][1], counts[self.theirs][1],
                            better='lower')
        unknown = (GiB + 64 * MiB) if a.quick else 3 * GiB
        raw_big = self.subjects.raw_device(unknown, read=False)[0] / mb
        self.report.add_row('%s write+%s (fresh %s volume)' % (
            device, 'flush' if a.rbd else 'fsync', human(unknown)),
            'MB/s', raw_big)
        times = self.unknown_size(unknown, 1 if a.quick else 2)
        self.report.add_row(
            'add %s unknown size' % human(unknown), 's', times[self.ours],
            times[self.theirs], limit=unknown / mb / min(md5, sha, raw_big),
            better='lower', note='limit: size / min(md5, sha512, '
            'device write of this size)')
        n_add, add_size = (4, 16 * MiB) if a.quick else (8, 128 * MiB)
        agg = self.concurrent_adds(n_add, add_size) / mb
        self.report.add_row('%d concurrent adds (aggregate)' % n_add, 'MB/s',
                            agg, limit=raw_w)
        n_get, get_size = (8, 32 * MiB) if a.quick else (16, 256 * MiB)
        agg, leaked = self.concurrent_gets(n_get, get_size)
        self.report.add_row('%d concurrent gets, 1 %s image' % (
            n_get, 'RBD' if a.rbd else 'multiattach'), 'MB/s',
            agg / mb, limit=raw_r, note='%d attachments left' % leaked)
        self.report.meta['guest_memory_returned_to_host_bytes'] = (
            measure.returned_to_host() - self.returned_at_start)
        peak = self.peak_memory(64 * MiB if a.quick else 256 * MiB)
        self.report.meta['add_peak_python_memory_bytes'] = peak
        print('peak Python memory during one add: %.1f MiB' % (peak / MiB))
        print('guest memory handed back to the host during the run '
              '(refaulted at first touch): %.1f GiB' % (
                  self.report.meta['guest_memory_returned_to_host_bytes']
                  / GiB))
        return self.report


class SparseRun(StandardRun):
    """Real images (``--sparse``): mostly zeros, and random."""

    def run(self):
        """Real images: an ext4 file system mostly of zeros, and random.

        Each through glance_store's API, then through Glance's (HAProxy).
        With ``--rbd``, Glance's own rbd store (thin) is the limit column.
        """
        a = self.args
        size = 512 * MiB if a.quick else 2 * GiB
        reps = a.reps or 1
        results.print_header()
        with tempfile.TemporaryDirectory(dir=settings.STACK) as tmp:
            path, data_bytes = measure.ext4_image(tmp, size, a.quick)
            images = (('ext4 %s, %d MiB of data' % (
                human(size), data_bytes // MiB), path),
                ('random %s' % human(size), None))
            for name, image in images:
                # cinder_store as it was before runs of zeros were found
                with measure.writing_every_byte():
                    before = [self.subjects.sparse_cycle(
                        self.ours, size, image) for _ in range(reps)]
                self.report.add_row(
                    '%s: add, every byte written' % name, 'MB/s',
                    [size / x[0] / 1e6 for x in before],
                    note='cinder_store before zeros were found')
                cycles = (('', self.subjects.sparse_cycle),
                          (', through Glance', self.subjects.rest_cycle))
                for how, cycle in cycles:
                    samples = self.interleave(
                        lambda backend: cycle(backend, size, image), reps)
                    native = None
                    if a.rbd:
                        native = [cycle(settings.GLANCE_RBD_BACKEND, size,
                                        image) for _ in range(reps)]
                    self.add_rows(name + how, size, samples, native)
        return self.report

    def add_rows(self, name, size, samples, native=None):
        mb = 1e6

        def med(values):
            return statistics.median(values) if values else None
        native = native or []
        note = "; limit: Glance's rbd store (thin)" if native else ''
        self.report.add_row('%s: add' % name, 'MB/s',
                            [size / x[0] / mb for x in samples[self.ours]],
                            [size / x[0] / mb for x in samples[self.theirs]],
                            med([size / x[0] / mb for x in native]),
                            note='MB/s of virtual size' + note)
        self.report.add_row('%s: get' % name, 'MB/s',
                            [size / x[1] / mb for x in samples[self.ours]],
                            [size / x[1] / mb for x in samples[self.theirs]],
                            med([size / x[1] / mb for x in native]),
                            note=note[2:])
        self.report.add_row('%s: allocated' % name, 'MiB',
                            [x[2] / MiB for x in samples[self.ours]],
                            [x[2] / MiB for x in samples[self.theirs]],
                            med([x[2] / MiB for x in native]), better='lower',
                            note="of the image's range" + note)
        if len(samples[self.ours][0]) > 3:  # through Glance
            self.report.add_row('%s: first byte' % name, 's',
                                [x[3] for x in samples[self.ours]],
                                [x[3] for x in samples[self.theirs]],
                                med([x[3] for x in native]), better='lower',
                                note='of a download (response headers)' + note)


class DownloadRun(StandardRun):
    """Repeated downloads through Glance (``--downloads``), warm and cold.

    One random image per store, downloaded through Glance's API behind
    HAProxy, as clients do.  cinder_store warm: the host that serves it
    keeps its read attachment (``cinder_store_warm_read_idle``); cold:
    every host was asked to let go first (as an image delete asks), so
    the download attaches.  HAProxy sends each request to the next
    Glance host, so before the warm one every other host downloads it
    once too (not measured).  Beside them the in-tree driver and, with
    ``--rbd``, Glance's own rbd store (the limit column).  Rounds are
    interleaved: cold, warm, in-tree, rbd store, cold, ...
    """

    def run(self):
        a = self.args
        size = 64 * MiB
        rounds = a.reps or (3 if a.quick else 7)
        if not a.rbd:
            # With several Glance hosts alive only multiattach volumes
            # stay warm (rules.worth_keeping_warm); the stack's Ceph has
            # no multiattach type, so on RBD warm measures that bound
            self.ours, self.theirs = settings.MULTIATTACH_TYPES
        results.print_header()
        stores = [self.ours, self.theirs] + (
            [settings.GLANCE_RBD_BACKEND] if a.rbd else [])
        images = {b: self.subjects.rest_image(b, size)[0] for b in stores}
        try:
            samples = {k: [] for k in ('cold', 'warm', 'theirs', 'native')}
            for _ in range(rounds):
                self.release_everywhere(images[self.ours])
                samples['cold'].append(self.download(self.ours, images))
                for _host in range(settings.GLANCE_HOSTS - 1):
                    self.download(self.ours, images)  # warms the others
                samples['warm'].append(self.download(self.ours, images))
                samples['theirs'].append(self.download(self.theirs, images))
                if a.rbd:
                    samples['native'].append(self.download(
                        settings.GLANCE_RBD_BACKEND, images))
        finally:
            for image in images.values():
                self.subjects.rest_delete(image)
        self.add_download_rows(human(size), samples)
        return self.report

    def download(self, backend, images):
        return self.subjects.rest_download(
            self.subjects.glance_api(), backend, images[backend], 64 * MiB)

    def release_everywhere(self, image_id):
        """Ask every Glance host to let go of the image's volume; wait."""
        volume_id = self.subjects.location_of(
            self.subjects.glance_api(), image_id).rsplit('/', 1)[1]
        maintenance = self.subjects.store(self.ours).maintenance()
        cinder = maintenance.bound_cinder()
        with maintenance.settings.membership.releasing(volume_id):
            deadline = time.monotonic() + 30
            while (cinder.get_volume(volume_id).attachments and
                   time.monotonic() < deadline):
                time.sleep(0.2)

    def add_download_rows(self, size, samples):
        native = ([statistics.median(x[i] for x in samples['native'])
                   for i in (1, 0)] if samples['native'] else [None, None])
        note = "limit: Glance's rbd store" if samples['native'] else ''
        for how in ('warm', 'cold'):
            for i, (what, limit) in enumerate((('first byte', native[0]),
                                               ('whole download',
                                                native[1]))):
                index = 1 - i  # samples are (whole, first byte)
                self.report.add_row(
                    '%s download, %s: %s' % (size, how, what), 's',
                    [x[index] for x in samples[how]],
                    [x[index] for x in samples['theirs']], limit,
                    better='lower', note=note)
