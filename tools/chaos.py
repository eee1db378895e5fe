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

"""``tools/chaos``: a randomized fault campaign (see tools/campaign).

``tools/chaos.py --worker FILES...`` is a worker process of a campaign.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from campaign import cli  # noqa: E402
from campaign import workers  # noqa: E402

if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--worker':
        workers.serve_requests(sys.argv[2:])
        sys.exit(0)
    import campaign  # noqa: E402
    sys.exit(cli.main(description=campaign.__doc__.split('\n')[0]))
