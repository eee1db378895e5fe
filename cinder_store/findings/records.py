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

"""What the check finds from this host's records.

Stale shared reads, orphaned uploads and volume creates, lock files of
deleted volumes.
"""

import time
from typing import Callable

from glance_store import exceptions

from cinder_store import client
from cinder_store.findings import report
from cinder_store.findings.report import Finding
from cinder_store.findings.report import FIXED
from cinder_store.findings.report import OK
from cinder_store.findings.report import SKIP
from cinder_store.findings.report import WARN
from cinder_store import host_reads
from cinder_store import maintenance
from cinder_store import metadata
from cinder_store import records
from cinder_store.recovery import repairs
from cinder_store.recovery import rules
from cinder_store import upload_records
from cinder_store import warm_reads


def stale_reader_records(maintenance: maintenance.Maintenance,
                         fix: bool) -> list[Finding]:
    readers = maintenance.host_reads
    try:
        volume_ids = readers.recorded_volumes()
    except Exception as e:
        return [report.failed_finding('shared reads', e)]
    if not volume_ids:
        return [Finding(OK, 'shared reads', 'no shared read attachment on '
                        'this host')]
    if not maintenance.has_service_credentials:
        return [Finding(SKIP, 'shared reads', '%d record(s); checking them '
                        'with Cinder needs service credentials'
                        % len(volume_ids))]
    cinder = maintenance.bound_cinder()
    return [_stale_reader_record(readers, cinder, v, fix) for v in volume_ids]


@report.guard_finder('shared reads')
def _stale_reader_record(readers: host_reads.HostReads,
                         cinder: client.BoundCinder, volume_id: str,
                         fix: bool) -> Finding:
    record, reason = readers.inspect_record(cinder, volume_id)
    if record is None:
        return Finding(OK, 'shared reads', 'volume %s: record gone' %
                       volume_id)
    if records.written_elsewhere(record):
        return _record_of_another_host('shared reads',
                                       'volume ' + volume_id, record)
    if reason is None and rules.warm(record):
        return Finding(OK, 'shared reads', 'volume %s: attachment %s warm '
                       '(unread since %s, kept until %s)' % (
                           volume_id, record['attachment'],
                           _format_clock_time(record.get('last_read', 0)),
                           _format_clock_time(record['warm_until'])))
    if reason is None:
        return Finding(OK, 'shared reads', 'volume %s: attachment %s held '
                       'by %d live process(es)' % (
                           volume_id, record['attachment'],
                           len(record['holders'])))
    if not fix:
        return Finding(WARN, 'shared reads', 'volume %s: %s, %s; --fix '
                       'detaches it' % (volume_id,
                                        _describe_record(record), reason))
    try:
        volume = cinder.get_volume(volume_id)
    except exceptions.NotFound:
        repairs.forget_gone_reader_volume(readers, volume_id)
        return Finding(FIXED, 'shared reads', 'volume %s is gone: removed '
                       'its record and locks' % volume_id)
    detached = readers.repair_record(cinder, volume)
    if detached is None:
        return Finding(OK, 'shared reads', 'volume %s: in use again, left '
                       'alone' % volume_id)
    unsure = rules.unidentified_leftovers(cinder, volume, record, detached)
    if unsure:
        return Finding(WARN, 'shared reads', 'volume %s: removed the stale '
                       'record (%s); the attachment it left may be one of '
                       '%s, which Cinder cannot tell from another host\'s '
                       'on a multiattach volume until it is old enough to '
                       'count as abandoned (cinder_store_abandoned_'
                       'attachment_age); --fix deletes it then' % (
                           volume_id, reason, ', '.join(unsure)))
    return Finding(FIXED, 'shared reads', 'volume %s: removed the stale '
                   'record (%s), detached %s' % (
                       volume_id, reason,
                       ', '.join(detached) or 'no attachment'))


def _format_clock_time(epoch: float) -> str:
    return time.strftime('%H:%M:%S', time.localtime(epoch))


@report.guard_finder('warm reads')
def warm_read_attachments(maintenance: maintenance.Maintenance,
                          drain: bool) -> Finding:
    """This host's warm read attachments; with ``drain``, released."""
    idle = maintenance.settings.warm_idle
    found = maintenance.host_reads.backend_records()
    warm = sorted(v for v, r in found.items() if rules.warm(r))
    if not drain:
        if not warm:
            return Finding(OK, 'warm reads', 'none kept on this host (kept '
                           '%ss after the last read)' % idle if idle else
                           'off (cinder_store_warm_read_idle = 0)')
        return Finding(OK, 'warm reads', '%d kept on this host, Cinder '
                       'shows their volumes in-use: %s; --drain releases '
                       'them' % (len(warm), ', '.join(warm)))
    if not maintenance.has_service_credentials:
        return Finding(SKIP, 'warm reads', '%d kept; releasing them needs '
                       'service credentials' % len(warm))
    released = warm_reads.drain(maintenance.host_reads,
                                maintenance.bound_cinder())
    return Finding(FIXED if released else OK, 'warm reads',
                   'released %d: %s' % (len(released),
                                        ', '.join(released) or 'none'))


def _describe_record(record: records.Record) -> str:
    if record.get('attachment'):
        return 'attachment %s is stale' % record['attachment']
    return 'a reader\'s record of an attachment Cinder was making is stale'


def _record_of_another_host(topic: str, subject: str,
                            record: records.Record) -> Finding:
    return Finding(WARN, topic, '%s: record written on host %s, left alone; '
                   'is the lock directory shared between hosts?'
                   % (subject, record['host']))


def orphaned_uploads(maintenance: maintenance.Maintenance,
                     fix: bool) -> list[Finding]:
    try:
        volume_ids = maintenance.uploads.volume_ids()
        tokens = maintenance.uploads.creation_tokens()
    except Exception as e:
        return [report.failed_finding('uploads', e)]
    if not volume_ids and not tokens:
        return [Finding(OK, 'uploads', 'no upload recorded on this host')]
    if not maintenance.has_service_credentials:
        return [Finding(SKIP, 'uploads', '%d record(s); checking them with '
                        'Cinder needs service credentials'
                        % (len(volume_ids) + len(tokens)))]
    cinder = maintenance.bound_cinder()
    # Volume records first: a volume they delete is not listed again.
    uploads = maintenance.uploads
    return ([_orphaned_upload(uploads, cinder, v, fix) for v in volume_ids] +
            [_cut_short_create(uploads, cinder, t, fix) for t in tokens])


@report.guard_finder('uploads')
def _orphaned_upload(recorded: upload_records.Uploads,
                     cinder: client.BoundCinder, volume_id: str,
                     fix: bool) -> Finding:
    record, reason = recorded.inspect_upload(volume_id)
    said = record or {}
    return _upload_finding(
        'volume %s' % volume_id, record, reason, fix,
        lambda: 'image %s is being uploaded by %s on %s' % (
            said.get('image'), said.get('holder'), said.get('host')),
        lambda: 'orphaned upload of image %s, %s; --fix deletes the '
                'volume' % (said.get('image'), reason),
        lambda: repairs.reclaim_orphaned_upload(cinder, recorded, volume_id))


@report.guard_finder('uploads')
def _cut_short_create(recorded: upload_records.Uploads,
                      cinder: client.BoundCinder, token: str,
                      fix: bool) -> Finding:
    record, reason = recorded.inspect_creation(token)
    said = record or {}
    return _upload_finding(
        'volume creation %s' % token, record, reason, fix,
        lambda: 'for image %s, in progress in %s' % (
            said.get('image'), said.get('holder')),
        lambda: 'for image %s, cut short: %s; --fix deletes any volume '
                'carrying metadata %s=%s' % (
                    said.get('image'), reason, metadata.UPLOAD_TOKEN,
                    token),
        lambda: repairs.reclaim_cut_short_create(cinder, recorded, token))


def _upload_finding(subject: str, record: records.Record | None,
                    reason: str | None, fix: bool,
                    live: Callable[[], str], orphaned: Callable[[], str],
                    reclaim: Callable[[], str]) -> Finding:
    """What an upload record of ``subject`` says, and --fix does of it.

    ``live``, ``orphaned`` and ``reclaim`` are called only when needed.
    """
    if record is None:
        return Finding(OK, 'uploads', '%s: record gone' % subject)
    if records.written_elsewhere(record):
        return _record_of_another_host('uploads', subject, record)
    if reason is None:
        return Finding(OK, 'uploads', '%s: %s' % (subject, live()))
    if not fix:
        return Finding(WARN, 'uploads', '%s: %s' % (subject, orphaned()))
    try:
        done = reclaim()
    except repairs.NotOrphaned as e:
        return Finding(OK, 'uploads', str(e))
    return Finding(FIXED, 'uploads', '%s: %s' % (subject, done))


@report.guard_finder('lock files')
def lock_files_of_gone_volumes(maintenance: maintenance.Maintenance,
                               fix: bool) -> Finding:
    """Lock files of volumes Cinder no longer has, with no record.

    Volumes with a record are the records' findings.  A volume that is
    gone is never attached again, so its lock files are safe to remove.
    """
    recorded = (maintenance.host_reads.recorded_volumes() +
                maintenance.uploads.volume_ids())
    candidates = rules.unrecorded_locked_volumes(maintenance.settings.locks,
                                                 recorded)
    if not candidates:
        return Finding(OK, 'lock files', 'none of a deleted volume')
    if not maintenance.has_service_credentials:
        return Finding(SKIP, 'lock files', 'lock files of %d volume(s); '
                       'checking them with Cinder needs service '
                       'credentials' % len(candidates))
    cinder = maintenance.bound_cinder()
    gone = rules.gone_locked_volumes(cinder, maintenance.settings.locks,
                                     recorded)
    if not gone:
        return Finding(OK, 'lock files', 'none of a deleted volume (%d '
                       'volume(s) with lock files exist)' % len(candidates))
    if not fix:
        return Finding(WARN, 'lock files', 'left by %d volume(s) that no '
                       'longer exist: %s; --fix removes them'
                       % (len(gone), ', '.join(gone)))
    gone = repairs.forget_gone_volumes(cinder, maintenance.settings, recorded)
    return Finding(FIXED, 'lock files', 'removed those of %d volume(s) that '
                   'no longer exist: %s' % (len(gone), ', '.join(gone)))
