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

"""OpenStack's own suite (Tempest) against a cloud where Glance's default
store is cinder_store: the local stack or a devstack.

Runs in the Tempest virtualenv ``tools/tempest`` builds.  ``cloud`` asks
the cloud what it has, ``config`` turns that into tempest.conf,
``selection`` names the suites, ``web`` serves web-download's images over
loopback, ``results`` reads what Tempest recorded, ``cli`` runs it all.
"""
