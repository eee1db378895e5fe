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

"""web-download's source: two small images served over loopback.

Tempest fetches ``http_image`` (any bytes) and ``http_qcow2_image`` (a
qcow2 Glance converts on import) from the internet by default; the cloud
here has none, and Glance's import filter allows loopback on the stack's
port.
"""

import contextlib
import functools
import http.server
import os
import subprocess
import threading

from oslo_utils import units

HOST = '127.0.0.1'
IMAGE = 'image.bin'
QCOW2 = 'image.qcow2'


def make_images(directory, size=4 * units.Mi):
    """The raw and the qcow2 image, made once in ``directory``."""
    os.makedirs(directory, exist_ok=True)
    raw = os.path.join(directory, IMAGE)
    if not os.path.exists(raw):
        with open(raw + '.part', 'wb') as f:
            f.write(os.urandom(size))
        os.rename(raw + '.part', raw)
    qcow2 = os.path.join(directory, QCOW2)
    if not os.path.exists(qcow2):
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        raw, qcow2 + '.part'], check=True,
                       capture_output=True)
        os.rename(qcow2 + '.part', qcow2)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(directory, port):
    """Serve ``directory`` on loopback; yields ``{name: url}``."""
    make_images(directory)
    handler = functools.partial(_Quiet, directory=directory)
    server = http.server.ThreadingHTTPServer((HOST, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              name='tempest-web-download')
    thread.start()
    try:
        yield {name: 'http://%s:%d/%s' % (HOST, port, name)
               for name in (IMAGE, QCOW2)}
    finally:
        server.shutdown()
        server.server_close()
