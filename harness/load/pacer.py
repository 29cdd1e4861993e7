"""Open-loop pacing inside one Locust process: each free user takes the next intended start and waits for it.

The users of a process share one ``Schedule``; a user that is free takes the earliest start nobody has
taken, so the requests queue for connections in intended order, as arrivals queue at a server. When every
connection is busy the start passes and the request goes out late: the lag is the wait users would see,
and it counts in the response time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.load.arrivals import Schedule


class Pacer:
    """Hands out intended starts (``perf_counter_ns``) of ``schedule``, from the first claim on."""

    def __init__(
        self,
        schedule: Schedule,
        sleep: Callable[[float], object],
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.schedule = schedule
        self.sleep = sleep
        self.clock = clock
        self.origin_ns: int | None = None
        self.origin_epoch = 0.0

    def claim(self) -> int:
        """The next intended start, after waiting until it is due (at once when it already passed)."""
        if self.origin_ns is None:
            self.origin_ns, self.origin_epoch = self.clock(), time.time()
        intended = self.origin_ns + self.schedule.next()
        wait = intended - self.clock()
        if wait > 0:
            self.sleep(wait / 1e9)
        return intended

    def epoch(self, intended_ns: int) -> float:
        """The wall-clock time (epoch s) of an intended start."""
        return self.origin_epoch + (intended_ns - (self.origin_ns or 0)) / 1e9

    def unsent(self) -> int:
        """The intended starts that are due by now but nobody took (the run stops with them queued)."""
        return 0 if self.origin_ns is None else self.schedule.due_by(self.clock() - self.origin_ns)
