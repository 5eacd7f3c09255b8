"""How many draws a random serving workload is simulated as (see ``draws.py``).

Kept free of NumPy so that ``flopcast --help`` can quote the counts without importing it
(the CLI's start-up imports no numerical library). These are Monte Carlo settings, not
fitted values.
"""

from __future__ import annotations

import math

#: Requests the draws of a random workload simulate together, at least.
REQUESTS_OVER_DRAWS = 2000
#: Draws at most.
MAX_DRAWS = 9


def draws_needed(num_requests: int, seed_matters: bool) -> int:
    """Draws for a workload of ``num_requests`` requests: 1 when the seed does not matter,
    else ceil(REQUESTS_OVER_DRAWS / num_requests) rounded up to an odd count, between 1 and
    MAX_DRAWS."""
    if not seed_matters:
        return 1
    wanted = math.ceil(REQUESTS_OVER_DRAWS / max(num_requests, 1))
    return max(1, min(MAX_DRAWS, wanted + (wanted % 2 == 0)))
