"""Interleaved measurement: several arms measured on one server in rounds, so drift spreads over all of them.

An arm is whatever is being compared: an index strategy (`compare --strategies`) or a version of the query
catalog (`compare --base-ref`). Every arm gets the same parameter draws where its queries allow, and each
round times the next contiguous slice of them, so an arm's samples stay in draw order and pair by index
with another arm's. Between arms the caller may rebuild indexes (``enter``); the measuring itself is
``harness.measure.measure_query`` with a statement_timeout loose enough for slow arms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from harness.catalog import Query
from harness.measure import Measurement, MeasureOptions, measure_query
from harness.plans import PlanFacts
from harness.roles import Access
from harness.work import Work

# A comparison wants a number for every arm, including the slow ones: strategy `none` may take many times a
# query's budget on the benchmark tier, so the statement_timeout is far looser than `harness run`'s.
COMPARE_TIMEOUT_FACTOR = 20.0
COMPARE_MIN_TIMEOUT_MS = 60_000.0

ParamSets = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Arm:
    """One side of an interleaved comparison: its name, its queries, and their draws (warm-up + timed)."""

    name: str
    queries: tuple[Query, ...]
    draws: Mapping[str, ParamSets]


@dataclass
class Accumulated:
    """What one query measured under one arm so far, over every round (samples in draw order)."""

    samples: list[float] = field(default_factory=list)
    plan: PlanFacts | None = None
    error: str | None = None
    timed_out: bool = False
    first: Measurement | None = None  # the first round's measurement: its EXPLAIN, rows and parameters
    work: Work | None = None  # summed over the rounds' slices (each a pg_stat_statements delta of its own)
    draw_plans: list[str] = field(default_factory=list)  # plan-shape fingerprint per timed draw, in draw order
    plan_shapes: dict[str, list[str]] = field(default_factory=dict)
    slices: list[int] = field(default_factory=list)  # samples per round: the gate's unit of independence


Block = tuple[Arm, Query]


@dataclass(frozen=True)
class CompareProgress:
    """Callbacks for a display: a status line, and (done, total, query, arm) after each measurement."""

    message: Callable[[str], None] = lambda text: None
    measured: Callable[[int, int, str, str], None] = lambda done, total, query, strategy: None


def rotated(names: Sequence[str], round_index: int) -> list[str]:
    """Round r visits the strategies starting at the r-th: A B C, B C A, C A B, A B C, ..."""
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]


def balanced(pair: Sequence[str], round_index: int, rounds: int, seed: int, *keys: int) -> list[str]:
    """The two sides' order in round ``round_index``: each goes first in half the rounds (ABBA-balanced; one
    more for the first side when ``rounds`` is odd), which rounds is seeded by ``keys`` (a query)."""
    firsts = np.random.default_rng([seed, *keys]).permutation([r % 2 for r in range(rounds)])
    return list(pair) if firsts[round_index] == 0 else list(reversed(pair))


def round_slices(iterations: int, rounds: int) -> list[range]:
    """Split ``iterations`` timed executions into ``rounds`` contiguous, nearly equal slices."""
    base, extra = divmod(iterations, rounds)
    slices, start = [], 0
    for r in range(rounds):
        size = base + (1 if r < extra else 0)
        slices.append(range(start, start + size))
        start += size
    return slices


def measure_rounds(
    access: Access,
    schedule: Callable[[int], Sequence[Block]],
    acc: Mapping[tuple[str, str], Accumulated],
    *,
    iterations: int,
    warmup: int,
    rounds: int,
    row_counts: Mapping[str, int],
    enter: Callable[[Arm], None] = lambda arm: None,
    measured: Callable[[int, int, str, str], None] = lambda done, total, query, arm: None,
    round_done: Callable[[], None] = lambda: None,
    active: Callable[[str], bool] = lambda query: True,
) -> None:
    """Measure every (arm, query) block of ``schedule(r)`` for each round r, into ``acc[query, arm]``.

    A query for which ``active`` turns False (a sequential comparison settled it, or a time cap) is skipped
    from then on, on every arm alike, so its arms keep the same rounds.

    ``enter(arm)`` runs at the start of each round for the first block of every arm and whenever the
    arm changes, before its warm-up (where a strategy comparison rebuilds that arm's indexes). The queries run
    as ``access``'s measuring role; work metrics are read with its admin connection.
    """
    plans = [schedule(r) for r in range(rounds)]
    total, done = sum(len(blocks) for blocks in plans), 0
    for timed, blocks in zip(round_slices(iterations, rounds), plans, strict=True):
        previous: str | None = None
        for arm, query in blocks:
            if not active(query.name):
                continue
            if arm.name != previous:
                enter(arm)
                previous = arm.name
            sets = arm.draws[query.name]
            param_sets = [*sets[:warmup], *(sets[warmup + i] for i in timed)]
            measure_slice(access, query, param_sets, warmup, row_counts, acc[query.name, arm.name])
            done += 1
            measured(done, total, query.name, arm.name)
        round_done()


def measure_slice(
    access: Access,
    query: Query,
    param_sets: ParamSets,
    warmup: int,
    row_counts: Mapping[str, int],
    acc: Accumulated,
) -> None:
    """Warm up and time one round's slice of draws; a query that failed or timed out is not retried."""
    if acc.error:
        return
    options = MeasureOptions(
        iterations=len(param_sets) - warmup,
        warmup=warmup,
        timeout_factor=COMPARE_TIMEOUT_FACTOR,
        min_timeout_ms=COMPARE_MIN_TIMEOUT_MS,
    )
    measured = measure_query(
        access.reader_dsn, query, param_sets, options, query.budget_ms, row_counts, admin_dsn=access.admin_dsn
    )
    acc.samples += measured.samples_ms
    acc.slices.append(len(measured.samples_ms))
    acc.plan = acc.plan or measured.plan
    acc.first = acc.first or measured
    acc.error = measured.error
    acc.timed_out = measured.timed_out
    if measured.work is not None:
        acc.work = measured.work if acc.work is None else acc.work + measured.work
    acc.draw_plans += measured.draw_plans
    acc.plan_shapes.update(measured.plan_shapes)


def checkpoint(conn: psycopg.Connection) -> None:
    """Flush the index build's dirty pages now, not during the next arm's timings (needs privilege)."""
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")
