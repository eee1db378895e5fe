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

"""cinder_store vs the in-tree driver vs the device, in one run.

    tools/bench [--quick] [--rbd] [--sparse] [--reps N] [--json PATH]
                [--plot PATH]

Runs in the local stack's virtualenv against the running stack, through
glance_store's multi-store API: ``block`` (cinder_store) and ``upstream``
(glance_store's in-tree ``cinder`` driver) on the same Cinder backend.
With ``--rbd``, ``rbd`` and ``upstream-rbd`` on the stack's Ceph, and the
device limits are raw librbd (same chunk size, write + flush, read).
Repetitions are interleaved (ours, theirs, ours, ...); the table shows
medians and the spread of cinder_store's samples, JSON has every sample.
Every timed operation starts after an untimed ``sync``; reads start from a
dropped page cache.  ``--sparse`` runs only the real-image scenario: an
ext4 file system made by ``mke2fs -d`` from a directory tree (mostly
zeros), and a random image of the same size, added and read back by both
drivers, with the space each volume allocates for the image.
It reports; it asserts nothing about time.

The parts: :mod:`subjects` (the stores and operations on them),
:mod:`scenarios` (what is run, row by row), :mod:`measure` (clocks,
caches, call counts, the device and hash limits, the images),
:mod:`results` (rows, ratios, tables, charts) and :mod:`cli`.
"""
