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

"""The package as a packager takes it: build, check, install, load.

    python tools/check_package.py [--constraints FILE]

Builds the sdist and the wheel through the PEP 517 backend, runs
``twine check`` on both, checks that both carry the licence, installs the
wheel into a fresh virtualenv with nothing but its declared requirements
(pinned by the constraints file when given), loads the driver through
glance_store's ``glance_store.drivers`` entry point with multi-store
configuration, and runs ``cinder-store-check --help``.  Prints one line per
step; exits non-zero at the first that fails.  Runs in ``tox -e package``.
"""

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOAD = '''
from glance_store import multi_backend
from oslo_config import cfg
conf = cfg.ConfigOpts()
conf.register_opt(cfg.DictOpt('enabled_backends'))
conf([], project='glance')
conf.set_override('enabled_backends', {'images': 'cinder_store'})
multi_backend.register_store_opts(conf)
store = multi_backend._load_multi_store(conf, 'cinder_store',
                                        backend='images')
assert type(store).__module__ == 'cinder_store.store', type(store)
assert 'cinder' in store.get_schemes(), store.get_schemes()
print('loaded %s.%s for backend images' % (type(store).__module__,
                                           type(store).__name__))
'''


def step(what, *cmd, **kwargs):
    print('[package] %s' % what, flush=True)
    return subprocess.run(cmd, check=True, **kwargs)


def build(out):
    step('build sdist and wheel', sys.executable, '-m', 'build', '--sdist',
         '--wheel', '--outdir', out, ROOT, stdout=subprocess.DEVNULL)
    names = sorted(os.listdir(out))
    sdist = next(os.path.join(out, n) for n in names if n.endswith('.tar.gz'))
    wheel = next(os.path.join(out, n) for n in names if n.endswith('.whl'))
    return sdist, wheel


def check_licence(sdist, wheel):
    print('[package] licence in both', flush=True)
    with tarfile.open(sdist) as tar:
        if not any(n.endswith('/LICENSE') for n in tar.getnames()):
            raise SystemExit('the sdist has no LICENSE')
    with zipfile.ZipFile(wheel) as whl:
        metadata = next(n for n in whl.namelist()
                        if n.endswith('.dist-info/METADATA'))
        text = whl.read(metadata).decode()
        licences = [n for n in whl.namelist()
                    if '.dist-info/' in n and n.endswith('LICENSE')]
    if 'License-File: LICENSE' not in text or not licences:
        raise SystemExit('the wheel does not carry LICENSE: %s' % [
            line for line in text.splitlines()
            if line.startswith('License')])
    if 'Description-Content-Type: text/x-rst' not in text:
        raise SystemExit('the wheel does not say its description is rST')


def install(wheel, venv, constraints):
    step('fresh virtualenv', sys.executable, '-m', 'venv', venv)
    pip = [os.path.join(venv, 'bin', 'pip'), 'install', '-q']
    if constraints:
        pip += ['-c', constraints]
    step('install the wheel with its declared requirements only', *pip,
         wheel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--constraints',
                        default=os.environ.get('TOX_CONSTRAINTS_FILE'))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='cinder-store-pkg-') as tmp:
        sdist, wheel = build(os.path.join(tmp, 'dist'))
        step('twine check', sys.executable, '-m', 'twine', 'check',
             '--strict', sdist, wheel)
        check_licence(sdist, wheel)
        venv = os.path.join(tmp, 'venv')
        install(wheel, venv, args.constraints)
        python = os.path.join(venv, 'bin', 'python')
        # Not from the checkout: the installed wheel alone.
        step('load through glance_store\'s entry point', python, '-c',
             LOAD, cwd=tmp, env=dict(os.environ, PYTHONWARNINGS='ignore'))
        step('cinder-store-check --help',
             os.path.join(venv, 'bin', 'cinder-store-check'), '--help',
             cwd=tmp, stdout=subprocess.DEVNULL)
    print('[package] ok: %s, %s' % (os.path.basename(sdist),
                                    os.path.basename(wheel)))


if __name__ == '__main__':
    main()
