"""A capacity sweep (``harness load --sweep users=1,2,4`` or ``--sweep rate=50,100,200``): its steps, the
throughput–latency curve, its knee and the headline capacity (``sweep_runner`` runs the steps).

The knee is the last step before saturation: the next step turned less than half of the load it added into
throughput (``KNEE_EFFICIENCY``), or its p95 response time more than doubled the first step's (and by more
than ``KNEE_FLOOR_MS``, so sub-millisecond noise is no knee). The headline is the highest throughput at which
every query's p95 stayed within its budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.environment import Environment
from harness.errors import InputError
from harness.load.results import LoadOptions, LoadResult

KNEE_EFFICIENCY = 0.5
KNEE_LATENCY_FACTOR = 2.0
KNEE_FLOOR_MS = 1.0
MAX_STEPS = 20


class Axis(StrEnum):
    USERS = "users"
    RATE = "rate"


@dataclass(frozen=True)
class SweepSpec:
    axis: Axis
    values: tuple[float, ...]

    @property
    def text(self) -> str:
        return f"{self.axis}=" + ",".join(f"{v:g}" for v in self.values)


def parse_sweep(text: str) -> SweepSpec:
    """``users=1,2,4`` or ``rate=50,100,200`` (increasing); InputError (exit 2) otherwise."""
    axis_text, sep, values_text = text.partition("=")
    try:
        axis = Axis(axis_text.strip().lower())
    except ValueError:
        raise InputError(f"--sweep {text!r}: sweep users=1,2,4 or rate=50,100,200") from None
    try:
        values = tuple(float(v) for v in values_text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--sweep {text!r}: the steps must be numbers, e.g. {axis}=1,2,4") from None
    if not sep or len(values) < 2:
        raise InputError(f"--sweep {text!r}: give at least two steps, e.g. {axis}=1,2,4")
    if len(values) > MAX_STEPS:
        raise InputError(f"--sweep {text!r}: at most {MAX_STEPS} steps")
    if any(not b > a for a, b in itertools.pairwise(values)) or values[0] <= 0:
        raise InputError(f"--sweep {text!r}: the steps must be positive and increasing")
    if axis is Axis.USERS and any(v != int(v) for v in values):
        raise InputError(f"--sweep {text!r}: users are whole numbers")
    return SweepSpec(axis, values)


@dataclass(frozen=True)
class SweepStep:
    """One step's load: what was offered, what came through, and the response-time p95s."""

    value: float
    run_id: str
    throughput_rps: float  # completed requests per second, all queries
    p95_ms: float | None  # the mix's response-time p95
    service_p95_ms: float | None
    query_p95_ms: dict[str, float | None]
    within_budget: bool  # every query's p95 within its budget
    failures: int
    dropped: int
    status: str

    @classmethod
    def of(cls, value: float, load: LoadResult) -> SweepStep:
        total = load.total
        within = all(
            q.budget_ms is None or (q.summary is not None and q.summary.p95 <= q.budget_ms) for q in load.queries
        )
        return cls(
            value=value,
            run_id=load.run_id,
            throughput_rps=total.throughput_rps if total else 0.0,
            p95_ms=total.summary.p95 if total and total.summary else None,
            service_p95_ms=total.service.p95 if total and total.service else None,
            query_p95_ms={q.name: q.summary.p95 if q.summary else None for q in load.queries},
            within_budget=within and bool(total and total.requests),
            failures=total.failures if total else 0,
            dropped=total.dropped if total else 0,
            status=load.status,
        )


def find_knee(offered: Sequence[float], throughput: Sequence[float], p95_ms: Sequence[float | None]) -> int | None:
    """The index of the last step before saturation (see the module docstring); None if no step saturated."""
    first = p95_ms[0]
    for i in range(1, len(offered)):
        added = offered[i] / offered[i - 1] - 1.0
        gained = throughput[i] / throughput[i - 1] - 1.0 if throughput[i - 1] > 0 else 0.0
        latency = p95_ms[i]
        slower = (
            first is not None
            and latency is not None
            and latency > KNEE_LATENCY_FACTOR * first
            and latency - first > KNEE_FLOOR_MS
        )
        if gained < KNEE_EFFICIENCY * added or slower:
            return i - 1
    return None


@dataclass
class SweepResult:
    run_id: str
    started_at: str
    spec: SweepSpec
    options: LoadOptions
    directory: Path
    environment: Environment | None = None
    steps: list[SweepStep] = field(default_factory=list)
    complete: bool = False
    incomplete_reason: str | None = None
    stopped: str | None = None  # the step whose threshold breach ended the sweep (--abort-on-fail)
    finished_at: str | None = None

    @property
    def knee(self) -> SweepStep | None:
        if len(self.steps) < 2:
            return None
        index = find_knee(
            [s.value for s in self.steps], [s.throughput_rps for s in self.steps], [s.p95_ms for s in self.steps]
        )
        return None if index is None else self.steps[index]

    @property
    def status(self) -> str:
        """fail: no step kept every p95 within budget; incomplete: stopped early; pass otherwise."""
        if self.steps and self.headline is None:
            return "fail"
        return "pass" if self.complete else "incomplete"

    @property
    def headline(self) -> SweepStep | None:
        """The step with the highest throughput at which every query's p95 stayed within its budget."""
        within = [s for s in self.steps if s.within_budget]
        return max(within, key=lambda s: s.throughput_rps) if within else None
