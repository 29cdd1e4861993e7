"""`harness compare --strategies a,b,c`: index strategies side by side on the same seeded data.

Every query is measured under each strategy with the same parameter draws, in interleaved rounds (A B C,
B C A, C A B, ...) so drift on a noisy machine spreads over all strategies instead of favouring whichever
ran first, and each strategy's costs are weighed: index size, build time and insert throughput
(``harness.compare.write_cost``). Strategies are described with ``harness.stats.compare_samples``: a
bootstrap CI of the ratio candidate / reference, which must exclude 1 *and* clear a minimum effect before
anything is called faster or slower. The comparison informs a decision; it gates nothing.
"""

from __future__ import annotations

import contextlib
import statistics
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from harness.cache import warm_cache
from harness.capabilities import capabilities
from harness.catalog import Query
from harness.compare.interleave import Accumulated, Arm, CompareProgress, checkpoint, measure_rounds, rotated
from harness.compare.write_cost import DEFAULT_WRITE_ROWS, DEFAULT_WRITE_TRIALS, insert_throughput, quote_ident
from harness.db import connect
from harness.environment import Environment
from harness.errors import DatabaseError, InputError
from harness.locks import exclusively
from harness.measure import MIN_SAMPLES_FOR_P95
from harness.plans import PlanFacts, plan_diff
from harness.roles import Access, measuring_warning
from harness.seed import switch_strategy
from harness.stats import Comparison, Summary, compare_samples, summarize
from harness.strategies import StrategyApplied, load_strategy
from harness.workload import Workload, incomplete_reason, now_iso

DEFAULT_ROUNDS = 3


@dataclass(frozen=True)
class StrategyCost:
    """What a strategy costs besides reads: its indexes, their size, build time and insert throughput.

    In an incomplete comparison a strategy not built yet has no size or build time, and one whose write
    cost was not measured yet has no throughput: those are None.
    """

    strategy: str
    index_names: tuple[str, ...]
    index_bytes: int | None
    build_s: float | None  # median over every time the strategy was built during the comparison
    build_s_samples: tuple[float, ...]
    write_table: str
    write_rows: int
    write_rows_per_s: float | None  # median over trials
    write_rows_per_s_samples: tuple[float, ...]

    @property
    def index_count(self) -> int:
        return len(self.index_names)


@dataclass(frozen=True)
class StrategyMeasurement:
    """One query under one strategy: every timed sample over all rounds, and the plan it used."""

    query: str
    strategy: str
    samples_ms: tuple[float, ...]
    summary: Summary | None
    plan: PlanFacts | None
    error: str | None

    @property
    def indexes_used(self) -> tuple[str, ...]:
        return self.plan.indexes_used if self.plan else ()


@dataclass(frozen=True)
class PairVerdict:
    """A strategy against the reference strategy on one query (ratio = strategy / reference)."""

    query: str
    strategy: str
    reference: str
    p50: Comparison
    p95: Comparison
    plan_changes: tuple[str, ...]

    @property
    def verdict(self) -> str:
        return self.p95.verdict


@dataclass(frozen=True)
class StrategyComparison:
    """Strategies side by side: per query × strategy timings, verdicts vs the reference, costs."""

    strategies: tuple[str, ...]
    reference: str
    queries: tuple[str, ...]
    measurements: tuple[StrategyMeasurement, ...]
    verdicts: tuple[PairVerdict, ...]
    costs: tuple[StrategyCost, ...]
    environment: Environment
    rounds: int
    iterations: int
    warmup: int
    original_strategy: str  # restored when the comparison ends, whether it completes or not
    started_at: str
    finished_at: str | None = None  # None while the comparison is still running
    original_restored: bool = False  # False until the original indexes are back (or if the restore failed)
    complete: bool = False
    incomplete_reason: str | None = None
    warnings: tuple[str, ...] = ()
    kind: str = "strategies"
    exit_code: int = 0  # the comparison informs a decision; it gates nothing

    def measurement(self, query: str, strategy: str) -> StrategyMeasurement:
        return next(m for m in self.measurements if m.query == query and m.strategy == strategy)

    def verdict(self, query: str, strategy: str) -> PairVerdict | None:
        return next((v for v in self.verdicts if v.query == query and v.strategy == strategy), None)

    def cost(self, strategy: str) -> StrategyCost:
        return next(c for c in self.costs if c.strategy == strategy)


@dataclass(frozen=True)
class CompareOptions:
    """What a strategy comparison measures: the strategies (the first is the reference), the workload, how
    many rounds, and the write cost's table, batch and trials (``harness compare --strategies``)."""

    strategies: tuple[str, ...]
    tier: str = "benchmark"
    seed: int = 42
    queries_dir: Path | None = None
    only: tuple[str, ...] = ()
    iterations: int = 30
    warmup: int = 5
    rounds: int = DEFAULT_ROUNDS
    force: bool = False
    strategies_dir: Path | None = None
    write_table: str | None = None  # None: the largest table of the seeded data
    write_rows: int = DEFAULT_WRITE_ROWS
    write_trials: int = DEFAULT_WRITE_TRIALS
    seed_if_needed: bool = True

    def validate(self) -> tuple[str, ...]:
        """The strategy names, deduplicated; InputError (exit 2, before any connection) for bad values."""
        names = tuple(dict.fromkeys(s.strip() for s in self.strategies if s.strip()))
        if len(names) < 2:
            raise InputError("compare needs at least two strategies, e.g. --strategies none,baseline,tuned")
        for name in names:
            load_strategy(name, self.strategies_dir)  # InputError naming the known strategies when one is unknown
        if self.rounds < 1 or self.iterations < self.rounds:
            raise InputError(
                f"need 1 <= --rounds <= --iterations (got rounds={self.rounds}, iterations={self.iterations})"
            )
        if self.write_rows < 1 or self.write_trials < 1:
            raise InputError("write_rows and write_trials must be >= 1")
        return names


def compare_strategies(
    dsn: str,
    options: CompareOptions,
    progress: CompareProgress | None = None,
    *,
    database_label: str = "",
    write: Callable[[StrategyComparison], None] | None = None,
    access: Access | None = None,
) -> StrategyComparison:
    """Measure every query under every strategy on one seeded dataset; the first strategy is the reference.

    Bad options are exit 2 before any connection. The comparison holds the data lock exclusively: it
    switches indexes itself, and no other seed, run or load may start meanwhile. Queries and draws run
    through ``access.reader_dsn`` (the measuring role; default ``dsn``).

    Each query gets one set of parameter draws, shared by all strategies. ``iterations`` timed executions
    per query and strategy are split over ``rounds``; each round visits the strategies in a rotated order,
    rebuilding their indexes (and ANALYZE) before warming up and timing its slice. Write cost is measured
    after the reads, so the dead rows its rolled-back inserts leave (vacuumed at the end) never touch
    a read measurement. The strategy in place before the comparison is restored at the end, even on error.

    ``write`` receives the comparison so far before the first round and after each one, then the final
    one; on failure it receives what was measured, marked incomplete, and the exception propagates.
    """
    names = options.validate()
    workload = Workload.resolve(
        dsn,
        tier=options.tier,
        seed=options.seed,
        queries_dir=options.queries_dir,
        only=options.only,
        force=options.force,
        seed_if_needed=options.seed_if_needed,
        database_label=database_label,
    )
    with exclusively(dsn, "compare --strategies"):
        return _compare(
            workload, names, options, progress or CompareProgress(), write, access or Access.owner_only(dsn)
        )


def _compare(
    workload: Workload,
    names: tuple[str, ...],
    options: CompareOptions,
    progress: CompareProgress,
    write: Callable[[StrategyComparison], None] | None,
    access: Access,
) -> StrategyComparison:
    dsn, catalog = workload.dsn, workload.catalog
    manifest = workload.prepare(progress.message)
    if manifest is None:
        raise InputError(
            "strategies can only be compared on data seeded by harness (the comparison drops and rebuilds "
            "indexes, which it never does to a database it did not seed): run harness seed into a database of "
            "its own, or compare catalog versions on your data with --no-seed --base-queries DIR / --base-ref REF"
        )
    started_at = now_iso()
    environment = workload.environment(manifest)
    warning = measuring_warning(access)
    if warning:
        progress.message(f"warning: {warning}")
    for note in capabilities(dsn).notes():  # e.g. no pg_stat_statements: work from EXPLAIN instead
        progress.message(note)
    iterations, warmup, rounds = options.iterations, options.warmup, options.rounds
    draws = workload.draws(manifest, warmup + iterations, access.reader_dsn)  # the user's SQL: as the reader
    empty = StrategyComparison(
        strategies=names,
        reference=names[0],
        queries=tuple(q.name for q in catalog.queries),
        measurements=(),
        verdicts=(),
        costs=(),
        environment=replace(environment, strategy=", ".join(names)),
        rounds=rounds,
        iterations=iterations,
        warmup=warmup,
        original_strategy=manifest.strategy,
        started_at=started_at,
        warnings=(warning,) if warning else (),
    )
    write = write or (lambda comparison: None)
    write_table = options.write_table or max(manifest.row_counts, key=lambda table: manifest.row_counts[table])
    write_rows, write_trials = options.write_rows, options.write_trials
    state = _Session(dsn, names, catalog.queries, options.strategies_dir, manifest.strategy, progress)
    state.access = access

    def snapshot() -> StrategyComparison:
        return state.comparison(empty, write_table, write_rows)

    try:
        write(snapshot())
        state.measure_rounds(draws, iterations, warmup, rounds, manifest.row_counts, lambda: write(snapshot()))
        state.measure_writes(write_table, write_rows, write_trials)
        state.restore()
    except BaseException as exc:
        try:
            with contextlib.suppress(DatabaseError):  # the server is gone: report why it failed, not the restore
                state.restore()
        finally:
            write(replace(snapshot(), finished_at=now_iso(), incomplete_reason=incomplete_reason(exc)))
        raise
    result = replace(snapshot(), finished_at=now_iso(), complete=True)
    write(result)
    return result


class _Session:
    """The mutable part of a strategy comparison: which strategy is built, what was measured so far."""

    def __init__(
        self,
        dsn: str,
        names: tuple[str, ...],
        queries: Sequence[Query],
        directory: Path | None,
        original: str,
        progress: CompareProgress,
    ) -> None:
        self.dsn, self.names, self.queries, self.directory, self.progress = dsn, names, queries, directory, progress
        self.original = original
        self.current = original
        self.restored = False
        self.acc = {(q.name, s): Accumulated() for q in queries for s in names}
        self.built: dict[str, list[StrategyApplied]] = {s: [] for s in names}
        self.index_bytes: dict[str, int] = {}
        self.write_costs: dict[str, list[float]] = {}
        self.written: str | None = None  # a table whose rolled-back inserts left dead rows to vacuum
        self.access = Access.owner_only(dsn)  # who runs the queries: the measuring role

    def switch(self, name: str) -> None:
        self.progress.message(f"building indexes of strategy {name}")
        applied = switch_strategy(self.dsn, name, directory=self.directory)
        self.current = name
        self.built[name].append(applied)
        with connect(self.dsn) as conn:
            self.index_bytes[name] = _index_bytes(conn, applied.created)
            checkpoint(conn)
        warm_cache(self.dsn)  # every strategy's timings start from the same stated state

    def measure_rounds(
        self,
        draws: Mapping[str, list[dict[str, Any]]],
        iterations: int,
        warmup: int,
        rounds: int,
        row_counts: Mapping[str, int],
        round_done: Callable[[], None],
    ) -> None:
        arms = {name: Arm(name, tuple(self.queries), draws) for name in self.names}
        measure_rounds(
            self.access,
            lambda r: [(arms[name], query) for name in rotated(self.names, r) for query in self.queries],
            self.acc,
            iterations=iterations,
            warmup=warmup,
            rounds=rounds,
            row_counts=row_counts,
            enter=lambda arm: self.switch(arm.name),
            measured=self.progress.measured,
            round_done=round_done,
        )

    def measure_writes(self, table: str, rows: int, trials: int) -> None:
        """Insert throughput per strategy, starting with the one in place and ending with the original."""
        order = sorted(self.names, key=lambda s: (s != self.current, s == self.original))
        for name in order:
            if name != self.current:
                self.switch(name)
            self.progress.message(f"measuring write cost of strategy {name} ({rows:,} rows into {table})")
            self.written = table
            self.write_costs[name] = insert_throughput(self.dsn, table, rows, trials)

    def restore(self) -> None:
        """Put back the original strategy's indexes and vacuum away the dead rows of the write trials."""
        if self.current != self.original:
            self.progress.message(f"restoring strategy {self.original}")
            switch_strategy(self.dsn, self.original, directory=self.directory)
            self.current = self.original
        self.restored = True
        if self.written:
            with connect(self.dsn) as conn:
                conn.execute(f"VACUUM {quote_ident(self.written)}")

    def comparison(self, empty: StrategyComparison, table: str, rows: int) -> StrategyComparison:
        """``empty`` filled with everything measured so far (a strategy not measured yet has no samples)."""
        measurements = tuple(
            StrategyMeasurement(q, s, tuple(a.samples), summarize(a.samples) if a.samples else None, a.plan, a.error)
            for (q, s), a in self.acc.items()
        )
        costs = tuple(
            StrategyCost(
                strategy=s,
                index_names=tuple(self.built[s][-1].created) if self.built[s] else (),
                index_bytes=self.index_bytes.get(s),
                build_s=statistics.median(a.build_s for a in self.built[s]) if self.built[s] else None,
                build_s_samples=tuple(round(a.build_s, 4) for a in self.built[s]),
                write_table=table,
                write_rows=rows,
                write_rows_per_s=statistics.median(self.write_costs[s]) if s in self.write_costs else None,
                write_rows_per_s_samples=tuple(self.write_costs.get(s, ())),
            )
            for s in self.names
        )
        return replace(
            empty,
            measurements=measurements,
            verdicts=tuple(_pair_verdicts(measurements, self.names)),
            costs=costs,
            original_restored=self.restored,
            warnings=empty.warnings + tuple(_strategy_warnings(measurements, empty.iterations)),
        )


def _pair_verdicts(measurements: Sequence[StrategyMeasurement], names: Sequence[str]) -> list[PairVerdict]:
    by_key = {(m.query, m.strategy): m for m in measurements}
    reference = names[0]
    verdicts = []
    for query in dict.fromkeys(m.query for m in measurements):
        ref = by_key[query, reference]
        for name in names[1:]:
            other = by_key[query, name]
            if not ref.samples_ms or not other.samples_ms:
                continue
            seed = zlib.crc32(f"{query}:{name}".encode())
            changes = tuple(plan_diff(ref.plan, other.plan)) if ref.plan and other.plan else ()
            verdicts.append(
                PairVerdict(
                    query, name, reference,
                    compare_samples(ref.samples_ms, other.samples_ms, metric="p50", seed=seed),
                    compare_samples(ref.samples_ms, other.samples_ms, metric="p95", seed=seed),
                    changes,
                )
            )  # fmt: skip
    return verdicts


def _strategy_warnings(measurements: Sequence[StrategyMeasurement], iterations: int) -> list[str]:
    found = [f"{m.query} under {m.strategy}: {m.error}" for m in measurements if m.error]
    if iterations < MIN_SAMPLES_FOR_P95:
        found.append(f"only {iterations} timed executions per query and strategy: p95 CIs are unreliable "
                     f"below {MIN_SAMPLES_FOR_P95}; use more --iterations")  # fmt: skip
    return found


def _index_bytes(conn: psycopg.Connection, names: Sequence[str]) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c "
        "WHERE c.relname = ANY (%s) AND c.relnamespace = current_schema()::regnamespace",
        [list(names)],
    ).fetchone()
    return int(row[0]) if row else 0
