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

"""MariaDB for Cinder's and Glance's databases, on 127.0.0.1."""

import os

from local_stack import process
from local_stack import settings

DIR = os.path.join(settings.STACK, 'mysql')
# name -> password; the database user is named after its database
DATABASES = {'cinder': settings.PASSWORDS['db'],
             'glance': settings.PASSWORDS['glance-db']}


def db_url(name):
    return ('mysql+pymysql://%s:%s@%s:%d/%s?charset=utf8'
            % (name, DATABASES[name], settings.HOST,
               settings.PORTS['mariadb'], name))


def write_config():
    process.write(os.path.join(DIR, 'my.cnf'), process.ini({'mysqld': {
        'datadir': DIR + '/data', 'socket': DIR + '/mysqld.sock',
        'pid-file': DIR + '/mysqld.pid', 'bind-address': settings.HOST,
        'port': str(settings.PORTS['mariadb']), 'user': 'root',
        'skip-name-resolve': '1', 'innodb_buffer_pool_size': '64M',
        'innodb_flush_log_at_trx_commit': '2',
        'log-error': os.path.join(settings.LOGS, 'mariadb.log')},
        'client': {'socket': DIR + '/mysqld.sock', 'user': 'root'}}))


def mysql(*sql):
    process.run('mariadb', '--defaults-file=%s/my.cnf' % DIR, '-uroot',
                '-e', ';'.join(sql))


def start(state):
    if not os.path.exists(os.path.join(DIR, 'data', 'mysql')):
        process.run('mariadb-install-db', '--defaults-file=%s/my.cnf' % DIR,
                    '--auth-root-authentication-method=normal',
                    '--skip-test-db')
    if process.start(state, 'mariadb', ['/usr/sbin/mariadbd',
                                        '--defaults-file=%s/my.cnf' % DIR]):
        process.wait_for('mariadb', lambda: process.port_open(
            settings.PORTS['mariadb']), 30)
    for db, password in DATABASES.items():
        mysql("CREATE DATABASE IF NOT EXISTS %s" % db,
              "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'"
              % (db, settings.HOST, password),
              "GRANT ALL ON %s.* TO '%s'@'%s'" % (db, db, settings.HOST))
