"""When requests are meant to start in an open-loop run: a seeded arrival schedule at a fixed rate.

A closed loop sends the next request when the last one returns, so a slow server slows the driver down and
its latency never shows the queue users would stand in (coordinated omission). An open loop fixes every
request's *intended* start in advance, whatever the server does; the user waits from that moment.
Poisson arrivals (exponential gaps) are what independent users produce; constant gaps are pgbench's
``--rate`` without its randomness. The union of K processes' Poisson(R/K) schedules is Poisson(R).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from harness.errors import InputError


class Arrival(StrEnum):
    POISSON = "poisson"
    CONSTANT = "constant"


def parse_rate(text: str | float) -> float:
    """Requests per second from ``--rate`` (a positive number); InputError otherwise."""
    return _positive("--rate", text, "requests per second (e.g. 50 or 12.5)")


def parse_latency_limit(text: str | float) -> float:
    """Milliseconds from ``--latency-limit`` (a positive number); InputError otherwise."""
    return _positive("--latency-limit", text, "ms (e.g. 500)")


def _positive(option: str, text: str | float, unit: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{option} must be a number of {unit}, not {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{option} must be a positive number of {unit}, not {text!r}")
    return value


def parse_arrival(text: str) -> Arrival:
    try:
        return Arrival(text.strip().lower())
    except ValueError:
        raise InputError(f"--arrival must be poisson or constant, not {text!r}") from None


class Schedule:
    """Intended start times of one process's share of the rate, in ns after the schedule's start.

    ``phase`` (a fraction of one gap) staggers the constant schedules of several processes so that
    together they stay evenly spaced.
    """

    def __init__(self, rate_per_s: float, arrival: Arrival, rng: np.random.Generator, phase: float = 0.0) -> None:
        self.gap_ns = 1e9 / rate_per_s
        self.arrival = arrival
        self.rng = rng
        self._next = phase * self.gap_ns if arrival is Arrival.CONSTANT else self._gap()
        self.issued = 0

    def _gap(self) -> float:
        return float(self.rng.exponential(self.gap_ns)) if self.arrival is Arrival.POISSON else self.gap_ns

    def next(self) -> int:
        """The next intended start (ns since the start); each one is handed out once."""
        due = self._next
        self._next += self._gap()
        self.issued += 1
        return round(due)

    def due_by(self, offset_ns: int) -> int:
        """How many more starts fall at or before ``offset_ns`` (consumes them): the requests never sent."""
        count = 0
        while self._next <= offset_ns:
            self.next()
            count += 1
        return count
