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
