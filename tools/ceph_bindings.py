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

"""Make Debian's Ceph bindings (rados, rbd) importable in a virtualenv.

    python tools/ceph_bindings.py VENV_PYTHON

PyPI has no rados/rbd bindings; Debian's python3-rados and python3-rbd
build them for Debian's python only.  This links just those two modules
into a directory of the venv and adds it to the venv's path with a .pth
file (not the whole of Debian's dist-packages).  It does nothing, and
says so, when the packages are missing or were built for another python
version: RBD tests then skip with the reason.  Standard library only.
"""

import glob
import os
import subprocess
import sys

DIST = '/usr/lib/python3/dist-packages'
MODULES = ('rados', 'rbd')


def main(python):
    info = subprocess.run(
        [python, '-c', 'import sys, sysconfig; print(sys.prefix); '
         'print(sysconfig.get_paths()["purelib"]); '
         'print(sysconfig.get_config_var("SOABI"))'],
        check=True, capture_output=True, text=True).stdout.split()
    prefix, purelib, soabi = info
    found = {m: os.path.join(DIST, '%s.%s.so' % (m, soabi)) for m in MODULES}
    missing = [p for p in found.values() if not os.path.exists(p)]
    if missing:
        have = sorted(glob.glob(os.path.join(DIST, 'rbd.*.so')))
        print('ceph bindings: none for %s (%s); Debian has: %s'
              % (soabi, ', '.join(missing), ', '.join(have) or 'nothing'))
        return 0
    target = os.path.join(prefix, 'ceph-bindings')
    os.makedirs(target, exist_ok=True)
    for path in found.values():
        link = os.path.join(target, os.path.basename(path))
        if os.path.realpath(link) != path:
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(path, link)
    with open(os.path.join(purelib, 'ceph-debian-bindings.pth'), 'w') as f:
        f.write(target + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
