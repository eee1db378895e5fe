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

"""Processes, state and configuration files of the local stack.

Each service runs in its own process group, recorded by PID in
``$STACK_DIR/state.json``: ``stop`` signals exactly what ``start``
started.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from local_stack import settings


def say(msg, *args):
    print('[stack] ' + (msg % args if args else msg), flush=True)


class StackError(Exception):
    pass


# -- state -------------------------------------------------------------------

def load_state():
    try:
        with open(settings.STATE) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {'pids': {}}


def save_state(state):
    os.makedirs(settings.STACK, exist_ok=True)
    with open(settings.STATE + '.tmp', 'w') as f:
        json.dump(state, f, indent=2)
    os.replace(settings.STATE + '.tmp', settings.STATE)


def alive(pid):
    """Running and not a zombie (orphans linger as zombies here)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, IndexError):
        return False


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((settings.HOST, port)) == 0


def wait_for(what, check, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise StackError('%s not ready after %ss; see %s'
                     % (what, timeout, settings.LOGS))


def http_ok(url):
    def check():
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status < 500
        except urllib.error.HTTPError as e:
            return e.code < 500
        except OSError:
            return False
    return check


# -- commands and services ---------------------------------------------------

def run(*cmd, env=None, quiet=True, **kw):
    full_env = dict(os.environ, **settings.QUIET_ENV, **(env or {}))
    out = subprocess.DEVNULL if quiet else None
    log = open(os.path.join(settings.LOGS, 'setup.log'), 'a')
    try:
        subprocess.run(cmd, check=True, env=full_env, stdout=log if quiet
                       else out, stderr=log if quiet else None, **kw)
    except subprocess.CalledProcessError as e:
        raise StackError('%s failed (exit %s); see %s'
                         % (' '.join(cmd[:3]), e.returncode, log.name))
    finally:
        log.close()


def start(state, name, cmd, env=None, cwd=None):
    pid = state['pids'].get(name)
    if pid and alive(pid):
        return False
    os.makedirs(settings.LOGS, exist_ok=True)
    log = open(os.path.join(settings.LOGS, name + '.out'), 'ab')
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=cwd,
                            env=dict(os.environ, **settings.QUIET_ENV,
                                     **(env or {})),
                            start_new_session=True)
    log.close()
    state['pids'][name] = proc.pid
    save_state(state)
    return True


def stop(names):
    """SIGTERM each named service's process group, SIGKILL after 15 s."""
    state = load_state()
    pids = {n: state['pids'][n] for n in names
            if alive(state['pids'].get(n) or 0)}
    for name, pid in pids.items():
        try:
            os.killpg(pid, signal.SIGTERM)  # each service has its own group
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p)
                                              for p in pids.values()):
        time.sleep(0.2)
    for name, pid in pids.items():
        if alive(pid):
            say('%s (pid %d) ignored SIGTERM; killing', name, pid)
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    state = load_state()
    for name in names:
        state['pids'].pop(name, None)
    save_state(state)
    return pids


def gunicorn(module, port, workers, threads=4):
    return [settings.BIN + '/gunicorn', '--no-control-socket', '-b',
            '%s:%d' % (settings.HOST, port), '-w', str(workers),
            '--threads', str(threads), '--timeout', '600',
            module + ':application']


def write_wsgi_wrapper(module, application):
    """``$STACK_DIR/wsgi/<module>.py`` serving ``application``.

    keystone and glance parse sys.argv with oslo.config; gunicorn's own
    arguments must not reach them.
    """
    write(os.path.join(settings.STACK, 'wsgi', module + '.py'),
          'import sys\nsys.argv = sys.argv[:1]\n'
          'from %s import application  # noqa\n' % application)


def loop_devices_under(directory):
    out = subprocess.run(['losetup', '-l', '-n', '-O', 'NAME,BACK-FILE'],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].strip().startswith(directory + '/'):
            yield parts[0]


# -- configuration files -----------------------------------------------------

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text.lstrip())


def ini(sections, service=None):
    """Render ``sections``, with ``overrides/<service>.conf`` laid over."""
    if service:
        sections = overridden(sections, service)
    out = []
    for name, values in sections.items():
        out.append('[%s]' % name)
        out.extend('%s = %s' % kv for kv in values.items())
        out.append('')
    return '\n'.join(out)


def overridden(sections, service):
    """``sections`` with the operator's override file applied.

    A plain parser: configparser would fold [DEFAULT] into every section.
    """
    path = os.path.join(settings.OVERRIDES, service + '.conf')
    merged = {name: dict(values) for name, values in sections.items()}
    if not os.path.exists(path):
        return merged
    section = None
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('[') and line.endswith(']'):
                section = merged.setdefault(line[1:-1].strip(), {})
            elif '=' in line and section is not None:
                key, value = (p.strip() for p in line.split('=', 1))
                if value:
                    section[key] = value
                else:
                    section.pop(key, None)
            else:
                raise StackError('%s line %d: expected [section] or key = '
                                 'value' % (path, number))
    return merged
