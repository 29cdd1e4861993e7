"""Refuse to load-test with a psycopg that would block gevent's event loop (and so serialise every user).

psycopg 3 decides at import how it waits on sockets: its C ``wait_c`` unless gevent has already patched
``select``. Imported before the patch, every query blocks the whole process, and 10 users measure what
1 user would. ``static_problem`` reads psycopg's choice; ``concurrency_problem`` is the proof: two
``pg_sleep(0.2)`` on two greenlets must take ~0.2 s together, not ~0.4 s.
"""

from __future__ import annotations

import sys
import time

GUARD_SLEEP_S = 0.2
GUARD_LIMIT_S = 0.35  # well under the 0.4 s two blocking sleeps take
FIX = "import psycopg only after gevent's monkey.patch_all() (locust does it on import; start with `locust -f`)"


def static_problem() -> str | None:
    """Why psycopg would block gevent (from the patch state and psycopg's wait function); None if fine."""
    monkey = sys.modules.get("gevent.monkey")
    for module in ("socket", "select", "selectors"):
        if monkey is None or not monkey.is_module_patched(module):
            return f"gevent has not patched {module!r}: run under locust (which patches on import)"
    import psycopg.waiting as waiting

    if getattr(waiting, "wait_c", None) is not None and waiting.wait is waiting.wait_c:
        return f"psycopg was imported before gevent patched 'select', so it waits in C and blocks: {FIX}"
    return None


def concurrency_problem(dsn: str) -> str | None:
    """Run ``pg_sleep`` on two greenlets at once; a reason when they ran one after the other, else None."""
    import gevent

    from harness.db import connect

    conns = [connect(dsn, application_name="harness-load-guard") for _ in range(2)]
    try:
        started = time.perf_counter()
        jobs = [gevent.spawn(c.execute, "SELECT pg_sleep(%s)", [GUARD_SLEEP_S]) for c in conns]
        gevent.joinall(jobs, raise_error=True)
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            conn.close()
    if elapsed > GUARD_LIMIT_S:
        return (
            f"two concurrent pg_sleep({GUARD_SLEEP_S}) took {elapsed:.2f} s on two greenlets, so psycopg "
            f"blocks the event loop and users would not run concurrently: {FIX}"
        )
    return None
