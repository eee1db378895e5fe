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

"""Tempest's image suites against the local stack or another cloud.

    tools/tempest run [--backend block] [--backend rbd] [--suite image]...
    tools/tempest run --clouds /etc/openstack/clouds.yaml \\
        --cloud devstack-admin            (a devstack, or any cloud)
    tools/tempest list [--suite ...]      the tests a run would run

For each Glance default backend asked for (the local stack only: Glance
is restarted with it, then with the stack's own again), a public image
for Cinder's volume-from-image tests is stored, tempest.conf is written
from what the cloud says of itself, web-download's images are served on
loopback, and each suite runs (serially unless ``--concurrency``).
Afterwards every image and volume the run made must be gone (images it
left queued, never uploaded, are deleted and reported).  Exit status 1
if a test failed, a suite ran no test, or something was left behind.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from local_stack import settings  # noqa: E402
from tempest_job import cloud  # noqa: E402
from tempest_job import config  # noqa: E402
from tempest_job import results  # noqa: E402
from tempest_job import selection  # noqa: E402
from tempest_job import web  # noqa: E402

BIN = os.path.dirname(sys.executable)
# What Tempest, Glance and Cinder take to delete what a run made
SETTLE_TIMEOUT = 180


def say(msg, *args):
    print('[tempest] ' + (msg % args if args else msg), flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='tools/tempest',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('verb', choices=('run', 'list'))
    parser.add_argument('--suite', action='append',
                        choices=sorted(selection.SUITES),
                        help='default: every suite')
    parser.add_argument('--backend', action='append',
                        help="Glance's default store for the run (the "
                             'local stack only; default: as configured)')
    parser.add_argument('--clouds', default=settings.CLOUDS,
                        help='clouds.yaml (default: the local stack\'s)')
    parser.add_argument('--cloud', default='stack-admin',
                        help='its admin entry')
    parser.add_argument('--workdir',
                        default=os.path.join(settings.STACK, 'tempest'),
                        help='tempest.conf, logs and results')
    parser.add_argument('--web-port', type=int,
                        default=settings.WEB_DOWNLOAD_PORT,
                        help='loopback port web-download fetches from '
                             "(Glance's import filter must allow it)")
    parser.add_argument('--no-image-conversion', action='store_true',
                        help="the cloud's Glance converts no image on "
                             'import')
    parser.add_argument('--concurrency', type=int, default=1,
                        help='test workers (default 1: serially; test '
                             'classes are spread over them)')
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args(argv)
    args.suite = args.suite or list(selection.SUITES)
    if args.backend and args.clouds != settings.CLOUDS:
        parser.error('--backend switches the local stack\'s Glance only')
    return args


def tempest(args, *command, check=True):
    if not os.path.isdir(os.path.join(args.workdir, '.stestr')):
        subprocess.run([os.path.join(BIN, 'stestr'), 'init'],
                       cwd=args.workdir, check=True,
                       stdout=subprocess.DEVNULL)
    return subprocess.run(
        [os.path.join(BIN, 'tempest'), *command, '--config-file',
         os.path.join(args.workdir, 'etc', 'tempest.conf')],
        cwd=args.workdir, check=check)


def write_conf(args, target, image_ref, web_urls):
    os.makedirs(os.path.join(args.workdir, 'etc'), exist_ok=True)
    config.write(os.path.join(args.workdir, 'etc', 'tempest.conf'),
                 config.sections(target, image_ref, web_urls,
                                 not args.no_image_conversion,
                                 os.path.join(args.workdir, 'tempest.log')))


def run_suite(args, name):
    """Run one suite; its :func:`results.summary`."""
    say('%s: %s', name, selection.SUITES[name][0])
    started = time.monotonic()
    workers = (['--serial'] if args.concurrency == 1 else
               ['--concurrency', str(args.concurrency)])
    tempest(args, 'run', *workers, '--regex', selection.regex([name]),
            check=False)
    stream = subprocess.run([os.path.join(BIN, 'stestr'), 'last',
                             '--subunit'], cwd=args.workdir,
                            capture_output=True).stdout
    outcome = results.summary(results.read(stream))
    outcome['seconds'] = round(time.monotonic() - started)
    return outcome


def switch_default_backend(backend):
    """Restart the local stack's Glance with ``backend`` as its default.

    None: the stack's own default again.
    """
    env = dict(os.environ)
    env.pop('STACK_GLANCE_DEFAULT_BACKEND', None)
    if backend:
        env['STACK_GLANCE_DEFAULT_BACKEND'] = backend
    say("restarting Glance with default store %s",
        backend or settings.GLANCE_DEFAULT_BACKEND)
    subprocess.run([os.path.join(settings.ROOT, 'tools', 'stack'),
                    'restart', 'glance'], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def default_store(target):
    return next((s['id'] for s in target.stores() if s.get('default')),
                None)


def remove_never_stored(target, images):
    """Delete images the run left ``queued``; their ids.

    Tempest 47.0.0's test_image_web_download_import_with_bad_url creates
    an image with no cleanup; one never uploaded has no data in any store
    (no volume), so it says nothing of the store.
    """
    queued = sorted(i for i, status in target.image_statuses().items()
                    if status == 'queued' and i not in images)
    for image_id in queued:
        target.delete_image(image_id)
    return queued


def wait_for_cleanup(target, images, volumes):
    """What the run made that is still there after the settle time."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        left = {'images': sorted(target.image_ids() - images),
                'volumes': sorted(target.volume_ids() - volumes)}
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(5)


def run_backend(args, target):
    """Every suite against the cloud as it is now."""
    backend = default_store(target)
    say("Glance's default store: %s", backend)
    images, volumes = target.image_ids(), target.volume_ids()
    outcome = {'default_store': backend, 'suites': {}}
    with web.serving(os.path.join(args.workdir, 'web'),
                     args.web_port) as urls:
        image_ref = target.create_image('tempest-volume-source',
                                        os.urandom(1024 * 1024))
        try:
            write_conf(args, target, image_ref, urls)
            for name in args.suite:
                outcome['suites'][name] = run_suite(args, name)
        finally:
            target.delete_image(image_ref)
    outcome['never_stored'] = remove_never_stored(target, images)
    outcome['left'] = wait_for_cleanup(target, images, volumes)
    return outcome


def report(outcomes):
    """Print the results; True if every suite passed and nothing is left."""
    ok = True
    for outcome in outcomes:
        for name, suite in outcome['suites'].items():
            counts = suite['counts']
            say('%s on %s: %d passed, %d failed, %d skipped (%ds)', name,
                outcome['default_store'], counts.get('passed', 0),
                counts.get('failed', 0), counts.get('skipped', 0),
                suite['seconds'])
            for reason, tests in sorted(suite['skips'].items()):
                say('  skipped %d: %s', len(tests), reason)
            for test, text in sorted(suite['failures'].items()):
                say('  FAILED %s\n%s', test, text)
            ok = ok and not suite['failures'] and bool(counts.get('passed'))
        if outcome['never_stored']:
            say('deleted %d image(s) the run left queued (never uploaded, '
                'so nothing in any store): %s', len(outcome['never_stored']),
                ', '.join(outcome['never_stored']))
        for kind, ids in outcome['left'].items():
            if ids:
                say('LEFT after the run on %s: %s %s',
                    outcome['default_store'], kind, ', '.join(ids))
                ok = False
    return ok


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.makedirs(args.workdir, exist_ok=True)
    target = cloud.Cloud(args.clouds, args.cloud)
    if args.verb == 'list':
        write_conf(args, target, 'none', {web.IMAGE: '', web.QCOW2: ''})
        return tempest(args, 'run', '--list-tests', '--regex',
                       selection.regex(args.suite), check=False).returncode
    outcomes = []
    switched = False
    try:
        for backend in args.backend or [None]:
            if backend and backend != default_store(target):
                switch_default_backend(backend)
                switched = True
            outcomes.append(run_backend(args, target))
    finally:
        if switched:
            switch_default_backend(None)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(outcomes, f, indent=2)
    return 0 if report(outcomes) else 1


if __name__ == '__main__':
    sys.exit(main())
