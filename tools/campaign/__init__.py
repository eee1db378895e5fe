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

"""A randomized fault campaign against cinder_store on the local stack.

    tools/chaos [--ops N] [--seed S] [--workers W] [--kill-rate P]
                [--freeze-rate P] [--fault-rate P] [--backends a,b]
                [--hosts N [--host-kill-rate P] [--host-freeze-rate P]]
                [--time-limit SECONDS] [--json PATH]

Long-lived worker processes play Glance workers: each loads the stores
as Glance does and runs what it is sent (add of known, unknown or wrongly
declared size; get, whole or abandoned after the first chunk; delete).
The campaign sends ``--ops`` random operations over every backend and,
at random moments, SIGKILLs the worker running one (``--kill-rate``) or
freezes cinder-api, cinder-volume, RabbitMQ or the Ceph OSD for a few
seconds with SIGSTOP (``--freeze-rate``), or has the stack's volume driver
fail an add's volume create or attach (``--fault-rate``).  Then it runs
``cinder-store-check --fix`` on every backend, reads back every image it
believes stored (an add that answered success and no delete since),
deletes them all, and counts what is left: volumes, attachments, loop
devices, shared-read and upload records, lock files and temporary Ceph
configs.  It prints a table and writes JSON.  The exit status is 1 when
anything unexpected happened or was left.

With ``--hosts N`` the workers are spread over N Glance hosts, each a
UTS namespace of its own (its own host name and lock directory, a member
of the stack's coordination group), and whole hosts fail: a host killed
(every worker at once, its lock directory removed: its disk is gone) is
replaced by a new one under a new name, and its holds and unfinished
uploads must be released by the survivors with no operator action; a host
frozen (every worker stopped, for up to 40 s, past the stack's lost-host
grace) resumes.  etcd is frozen too.  At the end each surviving host runs
``cinder-store-check --fix``.

Availability: after every read killed inside its attach (Cinder still
shows an attachment of the image being made a second after the kill), a
probe worker that is never killed reads the image until a read succeeds,
then deletes it until the delete succeeds, and the campaign reports the
longest time from a kill to each.  Over ``--availability-limit`` seconds
(default: the stack's lost-host grace + 30 s; with ``--hosts``, plus the
membership timeout and 5 s of clock skew) is unexpected.

What is expected: an operation killed mid-way; an error while a service
or its host was frozen; the refusal of a wrongly declared size; an add
failed by an injected driver fault; an error on an image while it
recovers from a kill inside an attach (within the limit).  Anything else
is an unexpected error.  Attachments whose attacher was killed are
abandoned as production finds them: claimed by no live attacher, or
after ``--abandoned-age`` seconds (a config file of the campaign sets
``cinder_store_abandoned_attachment_age``; default 600, production's).

The parts: :mod:`scenario` (what is done: operations and faults),
:mod:`workers` (the worker processes and hosts), :mod:`ledger` (what
happened, and whether it was expected), :mod:`availability` (time to
recover from a kill inside an attach), :mod:`settlement` (recovery,
read-back, deletion, leftovers), :mod:`report`, and :mod:`cli`.
"""
