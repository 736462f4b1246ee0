"""How a benchmark's process ends, so that `run_all.py` and the test suite tell a broken bound from a broken run.

0: every bound held. BOUND_BROKEN: it ran through and a ratio broke its bound. Anything else (a traceback's 1, a
failed request, a timeout) means the benchmark itself did not work.
"""

from __future__ import annotations

BOUND_BROKEN = 3


def exit_status(*, broken: bool) -> int:
    return BOUND_BROKEN if broken else 0
