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

"""``cinder-store-check``: can this Glance host use its cinder_store backends?

    cinder-store-check [--config-file /etc/glance/glance-api.conf]
                       [--backend ID] [--fix] [--probe] [--lost-host NAME]
                       [--drain]

Loads each ``cinder_store`` backend of ``enabled_backends`` the way
glance-api does and checks, in order: its configuration, Cinder (as the
service user, at the driver's API microversion), this host's os-brick
connector, the privileges device hand-over needs, the read-only
attachments Glance workers on this host share, the uploads recorded
on this host, and what Cinder and Glance say of the backend's volumes.
What it finds is :mod:`findings`.  One line per finding; exit status 1
if anything failed, 2 for a --backend that is not one.

Without ``--fix`` it changes nothing.  With ``--fix`` it detaches the
shared read attachments no live Glance process holds any more (what the
next download of that image, or its delete, would do anyway); deletes the
volumes of orphaned uploads (their worker died, or their clean-up failed:
Glance has no location for them and never will); removes the lock files
of volumes that no longer exist; and deletes the attachments Cinder made
but nobody completed within cinder_store_abandoned_attachment_age (they
leave a volume stuck ``attaching``) and detaches the attachments of this
host that no record names and are older than that age (their process
died); and deletes image-volumes Glance will never know (their image is
gone, deleted, or stored elsewhere, or their upload ended without
registering them), once untouched for that age.  Uploads in progress are
never touched.

It lists other Glance hosts' attachments of the backend's volumes with
their age, and warns when several hosts read a type that is not
multiattach.  ``--lost-host NAME`` names a host gone for good, on the
operator's word: what it held (read attachments, uploads it never
finished) is listed, and ``--fix`` deletes it in Cinder.

For an RBD backend (``cinder_store_rbd_keyring`` set) it checks the
keyring and lists temporary Ceph configs a connect cut short left (``--fix``
removes them); ``--probe`` also attaches one available volume of the
backend read-only, as a download does, and says what to fix when Ceph
cannot be reached or refuses the key.

It lists the read attachments this host keeps warm between downloads
(their volumes show in-use in Cinder); ``--drain`` releases them, before
a retype or migration of image-volumes or taking the host out.
"""

import logging
import sys
from typing import TextIO

from glance_store import multi_backend
from oslo_config import cfg

from cinder_store import findings
from cinder_store import host
from cinder_store import maintenance
from cinder_store import store

CLI_OPTS = [
    cfg.StrOpt('backend',
               help='Check only this backend (default: every backend of '
                    'type cinder_store in enabled_backends).'),
    cfg.BoolOpt('probe', default=False,
                help='For RBD backends (cinder_store_rbd_keyring set), '
                     'attach one available volume of the backend '
                     'read-only, as a download does, to prove this host '
                     'reaches Ceph with its keyring; a failure says what '
                     'to fix.  A download of that image meanwhile waits '
                     'for it (under a second).'),
    cfg.StrOpt('lost-host',
               help='A Glance host gone for good (its processes dead, its '
                    'disk gone), on the operator\'s word, as a compute host '
                    'is forced down before evacuation: the check lists what '
                    'it held of each backend (read attachments, uploads it '
                    'never finished) and, with --fix, deletes them in '
                    'Cinder. Never name a host that may still run Glance.'),
    cfg.BoolOpt('drain', default=False,
                help='Release every read attachment this host keeps warm '
                     'between downloads (cinder_store_warm_read_idle), so '
                     'that no image-volume stays in-use because of this '
                     'host: before a retype or migration of image-volumes '
                     'or taking the host out.  Downloads that start '
                     'meanwhile keep theirs warm again.'),
    cfg.BoolOpt('fix', default=False,
                help='Detach shared read attachments no live Glance process '
                     'holds, delete the volumes of uploads whose worker '
                     'died or whose clean-up failed, remove the lock '
                     'files of volumes that no longer exist, delete '
                     'abandoned attachments, detach attachments of this '
                     'host no record names, and delete image-volumes '
                     'Glance will never know.'),
]


def _load_conf(argv: list[str],
               conf: cfg.ConfigOpts | None = None) -> cfg.ConfigOpts:
    # Glance's own global: oslo.privsep reads [privsep_osbrick] from it.
    conf = cfg.CONF if conf is None else conf
    conf.register_cli_opts(CLI_OPTS)
    conf.register_opt(cfg.DictOpt('enabled_backends'))
    conf(argv, project='glance', prog='glance-api')
    multi_backend.register_store_opts(conf)
    return conf


def _cinder_store_backends(conf: cfg.ConfigOpts) -> list[str]:
    names = maintenance.backends_of_this_driver(conf)
    if conf.backend:
        if conf.backend not in names:
            raise ValueError('%s is not a cinder_store backend of '
                             'enabled_backends (%s)' % (
                                 conf.backend, ', '.join(names) or 'none'))
        names = [conf.backend]
    return names


def _refuse_this_host(lost_host: str | None) -> None:
    if lost_host and lost_host == host.hostname():
        raise ValueError('--lost-host %s is this host, which is running: '
                         'run the check on a surviving host' % lost_host)


def _format_finding(finding: findings.Finding) -> str:
    return '  %-5s  %-13s %s\n' % (finding.status, finding.topic,
                                   finding.message)


def main(argv: list[str] | None = None, out: TextIO = sys.stdout,
         conf: cfg.ConfigOpts | None = None) -> int:
    logging.basicConfig(level=logging.ERROR)
    conf = _load_conf(sys.argv[1:] if argv is None else argv, conf)
    try:
        names = _cinder_store_backends(conf)
        _refuse_this_host(conf.lost_host)
    except ValueError as e:
        out.write('%s\n' % e)
        return 2
    if not names:
        out.write('no cinder_store backend in enabled_backends\n')
        return 1
    failed = False
    for name in names:
        out.write('backend %s\n' % name)
        try:
            backend = store.Store(conf, backend=name)
            backend.configure(re_raise_bsc=True)
        except Exception as e:
            found = [findings.Finding(findings.FAIL, 'configuration',
                                      str(e))]
        else:
            found = ([findings.Finding(findings.OK, 'configuration',
                                       'loaded')] +
                     findings.check_backend(backend.maintenance(),
                                            fix=conf.fix, probe=conf.probe,
                                            lost_host=conf.lost_host,
                                            drain=conf.drain))
        for f in found:
            out.write(_format_finding(f))
            failed = failed or f.status == findings.FAIL
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
