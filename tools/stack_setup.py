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

"""Idempotent Keystone and Cinder set-up for tools/stack (runs in its venv).

    python stack_setup.py identity
    python stack_setup.py volume-types
"""

import os
import sys
import time

from cinderclient import client as cinder_client
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity import v3
from keystoneauth1 import session
from keystoneclient.v3 import client as ks_client

from local_stack import settings
# Image-volumes live in the service project (Glance's) and, for Cinder's
# clones and uploads, in the admin project: sized for the functional
# suite and the benchmark, far above Cinder's default of 10 volumes.
QUOTAS = {'volumes': 1000, 'gigabytes': 10000, 'snapshots': 100,
          'backups': 100, 'backup_gigabytes': 1000}


def admin_session():
    return session.Session(auth=v3.Password(
        auth_url=settings.KEYSTONE_URL, username='admin',
        password=settings.PASSWORDS['admin'],
        project_name='admin', user_domain_name='Default',
        project_domain_name='Default'))


def find_or_create(manager, name, **kwargs):
    for item in manager.list():
        if item.name == name:
            return item
    return manager.create(name=name, **kwargs)


def identity():
    ks = ks_client.Client(session=admin_session())
    domain = ks.domains.get('default')
    service_project = find_or_create(ks.projects, 'service', domain=domain)
    roles = {r.name: r for r in ks.roles.list()}
    for user in settings.SERVICE_USERS:
        u = find_or_create(ks.users, user, domain=domain,
                           password=settings.PASSWORDS[user])
        for role in ('admin', 'service'):
            ks.roles.grant(roles[role], user=u, project=service_project)
    for name, stype, url in (
            ('cinderv3', 'block-storage', settings.CINDER_URL),
            ('glance', 'image', settings.GLANCE_URL)):
        svc = find_or_create(ks.services, name, type=stype)
        have = {e.interface for e in ks.endpoints.list(service=svc)}
        for interface in ('public', 'internal', 'admin'):
            if interface not in have:
                ks.endpoints.create(service=svc, url=url,
                                    interface=interface,
                                    region=settings.REGION)
    rehash_passwords(ks)  # last: it ends this session's token


def rehash_passwords(ks):
    """Hash the stack's passwords again at the configured rounds, once.

    Users made before keystone.conf lowered them keep their hash until
    their password is set again.
    """
    marker = os.path.join(settings.STACK, 'keystone', '.passwords-rehashed')
    if os.path.exists(marker):
        return
    # The admin's last: a new password revokes its tokens, ks's included
    users = sorted((u for u in ks.users.list()
                    if u.name in settings.PASSWORDS),
                   key=lambda u: u.name == 'admin')
    for user in users:
        ks.users.update(user, password=settings.PASSWORDS[user.name])
    open(marker, 'w').close()


def wait(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (ks_exc.ClientException, Exception):
            pass
        time.sleep(0.5)
    raise SystemExit('%s not ready after %ss' % (what, timeout))


def volume_types():
    cinder = cinder_client.Client('3.54', session=admin_session())

    def services_up():
        up = {s.host for s in cinder.services.list() if s.state == 'up'}
        return {'stack'} | {'stack@%s' % b
                            for b in settings.CINDER_BACKENDS} <= up
    wait('cinder services', services_up, 90)
    existing = {t.name: t for t in cinder.volume_types.list()}
    for name, backend in settings.VOLUME_TYPES.items():
        vtype = existing.get(name) or cinder.volume_types.create(name)
        specs = {'volume_backend_name': backend}
        if name in settings.MULTIATTACH_TYPES:
            specs['multiattach'] = '<is> True'
        # Cinder refuses (400) to change the specs of a type in use: set
        # only what differs, so `up` works whatever is stored.
        have = vtype.get_keys()
        wanted = {k: v for k, v in specs.items() if have.get(k) != v}
        if wanted:
            vtype.set_keys(wanted)
    ks = ks_client.Client(session=admin_session())
    for project in ('service', 'admin'):
        (found,) = [p for p in ks.projects.list() if p.name == project]
        cinder.quotas.update(found.id, **QUOTAS)
    # The scheduler learns each backend's capacity from its first stats
    # report; a canary volume per type proves volumes can be created.
    for name in settings.VOLUME_TYPES:
        def canary_ok(name=name):
            vol = cinder.volumes.create(1, name='stack-canary-%s' % name,
                                        volume_type=name)
            try:
                for _ in range(120):
                    vol = cinder.volumes.get(vol.id)
                    if vol.status != 'creating':
                        break
                    time.sleep(0.1)
                return vol.status == 'available'
            finally:
                cinder.volumes.delete(vol.id)
        wait('volume type %s' % name, canary_ok, 60)


if __name__ == '__main__':
    {'identity': identity, 'volume-types': volume_types}[sys.argv[1]]()
