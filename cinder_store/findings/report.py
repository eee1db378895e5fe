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

"""Findings: their form, and helpers every finder uses."""

import collections
import functools
from typing import Any
from typing import Callable

from cinder_store import client
from cinder_store import maintenance

OK, WARN, FAIL, FIXED, SKIP = 'ok', 'warn', 'FAIL', 'fixed', 'skip'

#: One line of the check: status (one of the above), topic, message.
Finding = collections.namedtuple('Finding', 'status topic message')


def failed_finding(topic: str, error: Exception) -> Finding:
    """A FAIL finding of ``topic`` naming ``error``."""
    return Finding(FAIL, topic, '%s: %s' % (type(error).__name__, error))


def guard_finder(topic: str) -> Callable[[Callable[..., Any]],
                                         Callable[..., Any]]:
    """Decorator: a finder that raises yields a FAIL finding instead.

    One failing check never hides the others.
    """
    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as e:
                return failed_finding(topic, e)
        return wrapper
    return decorator


def typed_volumes(
    maintenance: maintenance.Maintenance, statuses: tuple[str, ...],
    all_projects: bool = False
) -> tuple[client.BoundCinder, str, list[Any]]:
    """(Cinder client, the backend's type name, its volumes in statuses)."""
    cinder = maintenance.bound_cinder()
    name = cinder.volume_type_name(maintenance.volume_type)
    return cinder, name, cinder.volumes_of_type(name, statuses,
                                                all_projects)
