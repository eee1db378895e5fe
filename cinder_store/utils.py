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

"""Clock and sleep in one place, so that tests replace both at once."""

import time
from typing import Any
from typing import Callable

import tenacity


def monotonic() -> float:
    return time.monotonic()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


class Deadline(object):
    """A tenacity stop condition: true once ``seconds`` have passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = monotonic() + seconds

    def __call__(self, retry_state: Any = None) -> bool:
        return monotonic() >= self.end


def wait_while(condition: Callable[[], Any], stop: Deadline,
               longest: float) -> None:
    """Wait while ``condition()`` is true, up to ``stop``; never fails.

    Looks again after 0.1 s, backing off to ``longest``.
    """
    try:
        tenacity.Retrying(
            retry=tenacity.retry_if_result(bool), stop=stop,
            wait=tenacity.wait_exponential(multiplier=0.1, max=longest),
            sleep=sleep)(condition)
    except tenacity.RetryError:
        pass
