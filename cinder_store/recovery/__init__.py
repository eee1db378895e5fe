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

"""What a dead process or a failed step left, and what is done about it.

The one home of every recovery rule:

* :mod:`recovery.rules` decides: whose a leftover is and whether it is
  safe to remove.  Its functions only look (records, Cinder).
* :mod:`recovery.repairs` acts on what the rules find, through the one
  detach and the one reclaim of :mod:`attachment`, always in one order:
  detach, then forget (a record or lock that names an attachment goes
  only once the attachment is gone, so a failed detach stays named).

The read path (:mod:`host_reads`, :mod:`attachment`), the image delete
(:mod:`store`) and ``cinder-store-check`` (:mod:`findings`) call them;
``doc/source/design.rst`` has the rules in one table.
"""
