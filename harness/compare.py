"""`harness compare`: index strategies side by side on the same data, or a baseline run against a candidate.

Mode 1 (``compare_strategies``) measures every query under each strategy with the same parameter draws,
in interleaved rounds (A B C, B C A, C A B, ...) so drift on a noisy machine spreads over all strategies
instead of favouring whichever ran first, and weighs what each strategy costs: index size, build time and
insert throughput. Mode 2 (``compare_runs``) reads two saved run.json files, refuses to compare runs whose
fingerprints differ (data, server, settings) unless told to, and gates on work and timing regressions.

Mode 2's gate is ``harness.gate`` (work first, then a paired timing test with a catalog-wide error rate).
Mode 1 describes strategies with ``harness.stats.compare_samples``: a bootstrap CI of the ratio candidate /
reference, which must exclude 1 *and* clear a minimum effect before anything is called faster or slower.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import statistics
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from harness.cache import warm_cache
from harness.catalog import Query
from harness.db import connect
from harness.environment import COMPARED_SETTINGS, Environment
from harness.errors import DatabaseError, InputError
from harness.gate import (
    DEFAULT_ALPHA,
    DEFAULT_FLOOR_MS,
    DEFAULT_MAX_REGRESSION,
    DEFAULT_MAX_WORK_REGRESSION,
    DEFAULT_SEPARATE_RUNS_BUDGET_SHARE,
    GateOptions,
    QueryDecision,
    Side,
    decide,
)
from harness.interleave import Accumulated, Arm, Design, measure_rounds, rotated
from harness.locks import exclusively
from harness.measure import MIN_SAMPLES_FOR_P95
from harness.plans import PlanChange, PlanFacts, plan_diff
from harness.results import SavedQuery, SavedRun
from harness.roles import Access, measuring_warning
from harness.seed import switch_strategy
from harness.stats import Comparison, Summary, compare_samples, summarize
from harness.strategies import StrategyApplied, load_strategy
from harness.work import ensure_pg_stat_statements
from harness.workload import Workload, incomplete_reason, now_iso

# What must be equal for two runs' timings to be comparable at all (mode 2).
FINGERPRINT_FIELDS = ("tier", "seed", "data_checksum", "postgres_major")
DEFAULT_ROUNDS = 3
DEFAULT_WRITE_ROWS = 20_000
DEFAULT_WRITE_TRIALS = 3


# -- mode 2: two saved runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """One fingerprint field that differs between the baseline and the candidate run."""

    field: str
    base: str
    cand: str

    def __str__(self) -> str:
        return f"{self.field}: {self.base} (base) vs {self.cand} (candidate)"


@dataclass(frozen=True)
class QueryDelta:
    """One query in both runs: the gate's decision (work, timing test), and each side's summary and indexes."""

    name: str
    decision: QueryDecision
    base_summary: Summary | None
    cand_summary: Summary | None
    base_indexes: tuple[str, ...]
    cand_indexes: tuple[str, ...]

    @property
    def regressed(self) -> bool:
        return self.decision.regressed

    @property
    def verdict(self) -> str:
        return self.decision.timing_verdict

    @property
    def plan_changes(self) -> tuple[PlanChange, ...]:
        return self.decision.work.plan_changes

    def headline(self) -> str:
        """The sentence a reviewer reads first: "q3: work regressed: shared buffers per call 12 → 4,210 (351x);
        plan switched from Index Scan using … to Seq Scan on …"."""
        return self.decision.headline()


@dataclass(frozen=True)
class RunComparison:
    """Baseline vs candidate run: per-query deltas, fingerprint mismatches, and the gate's exit code."""

    base_path: str
    cand_path: str
    base_run_id: str
    cand_run_id: str
    base_strategy: str
    cand_strategy: str
    max_regression: float
    gate: GateOptions
    mismatches: tuple[Mismatch, ...]
    queries: tuple[QueryDelta, ...]
    only_in_base: tuple[str, ...]
    only_in_cand: tuple[str, ...]
    warnings: tuple[str, ...]
    kind: str = "runs"  # "catalogs" for an interleaved A/B of two catalog versions (``design`` says how)
    design: Design | None = None

    @property
    def regressions(self) -> list[QueryDelta]:
        return [q for q in self.queries if q.regressed]

    @property
    def improvements(self) -> list[QueryDelta]:
        return [q for q in self.queries if q.decision.improved]

    @property
    def exit_code(self) -> int:
        """1 when any query failed the gate (work regressed, or significantly slower beyond both thresholds)."""
        return 1 if self.regressions else 0


def parse_max_regression(text: str, option: str = "--max-regression") -> float:
    """ "10%" or "0.1" → 0.10; InputError naming ``option`` for anything else (negative, not a number)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"{option} {text!r}: write a percentage like 10% (or a fraction like 0.1)") from None
    if value < 0 or value != value:
        raise InputError(f"{option} {text!r} must be a non-negative percentage, e.g. 10%")
    return value


def fingerprint_mismatches(base: Environment | None, cand: Environment | None) -> list[Mismatch]:
    """The fingerprint fields (data, server major, compared settings) on which two run environments differ."""
    if not base or not cand:
        return [Mismatch("environment fingerprint", "present" if base else "missing", "present" if cand else "missing")]
    found = [
        Mismatch(name, str(getattr(base, name)), str(getattr(cand, name)))
        for name in FINGERPRINT_FIELDS
        if getattr(base, name) != getattr(cand, name)
    ]
    base_settings, cand_settings = base.settings, cand.settings
    found += [
        Mismatch(name, str(base_settings.get(name)), str(cand_settings.get(name)))
        for name in COMPARED_SETTINGS
        if base_settings.get(name) != cand_settings.get(name)
    ]
    return found


def compare_runs(
    base: SavedRun,
    cand: SavedRun,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    allow_mismatch: bool = False,
    max_work_regression: float = DEFAULT_MAX_WORK_REGRESSION,
    alpha: float = DEFAULT_ALPHA,
    floor_ms: float = DEFAULT_FLOOR_MS,
    separate_runs_budget_share: float = DEFAULT_SEPARATE_RUNS_BUDGET_SHARE,
    interleaved: bool = False,
) -> RunComparison:
    """Compare a candidate run against a baseline; InputError when the fingerprints differ (unless allowed).

    The decision is ``harness.gate.decide``: work first, then a timing test paired by draw where both runs
    timed the same draws, Holm-corrected across the catalog at ``alpha``. The runs were measured separately,
    so a time-only change (same work, same plan) fails only beyond ``separate_runs_budget_share`` of the
    budget, unless ``interleaved`` (the two runs are the sides of one A/B job, sharing the machine's noise).
    """
    if max_regression < 0 or max_work_regression < 0:
        raise InputError("max_regression and max_work_regression must be >= 0 (a fraction: 0.10 for 10%)")
    if not 0 < alpha < 1:
        raise InputError(f"alpha {alpha!r} must be between 0 and 1, e.g. 0.01")
    gate = GateOptions(
        max_regression,
        max_work_regression,
        alpha,
        floor_ms,
        interleaved=interleaved,
        separate_runs_budget_share=separate_runs_budget_share,
    )
    mismatches = fingerprint_mismatches(base.environment, cand.environment)
    if mismatches and not allow_mismatch:
        raise InputError(
            f"{base.path} and {cand.path} are not comparable: {'; '.join(map(str, mismatches))} — re-run "
            "both on the same data and server settings, or pass --allow-mismatch to compare anyway"
        )
    warnings = [f"FINGERPRINT MISMATCH (compared anyway): {m}" for m in mismatches]
    base_strategy = base.environment.strategy if base.environment else "?"
    cand_strategy = cand.environment.strategy if cand.environment else "?"
    if base_strategy != cand_strategy:
        warnings.append(f"index strategy differs: {base_strategy} (base) vs {cand_strategy} (candidate)")
    for label, run in (("base", base), ("candidate", cand)):
        if not run.complete:
            warnings.append(f"the {label} run {run.run_id} is incomplete: queries it did not reach are missing")
    base_host = base.environment.host.get("hostname") if base.environment else None
    cand_host = cand.environment.host.get("hostname") if cand.environment else None
    if base_host != cand_host:
        warnings.append(f"runs come from different machines ({base_host} vs {cand_host}): timings may differ "
                        "for reasons unrelated to the change")  # fmt: skip
    common = [name for name in base.queries if name in cand.queries]
    decisions = decide(
        {name: (saved_side(base.queries[name]), saved_side(cand.queries[name])) for name in common}, gate
    )
    deltas = [_query_delta(base.queries[d.name], cand.queries[d.name], d) for d in decisions]
    few = sorted(d.name for d in decisions if d.timing and min(d.timing.n_base, d.timing.n_cand) < MIN_SAMPLES_FOR_P95)
    if few:
        warnings.append(
            f"fewer than {MIN_SAMPLES_FOR_P95} samples for {', '.join(few)}: timing tests have little power; "
            "re-run with more --iterations"
        )
    unpaired = sorted(d.name for d in decisions if d.timing and not d.timing.paired)
    if unpaired:
        warnings.append(
            f"samples not paired by draw for {', '.join(unpaired)} (different draws, or a run.json without a "
            "draws digest): compared with Mann-Whitney U, which has less power"
        )
    if any(d.work.status == "unknown" for d in decisions):
        warnings.append("no work metrics on one side (a schema 1 run.json?): those queries gate on timing only")
    return RunComparison(
        base_path=str(base.path),
        cand_path=str(cand.path),
        base_run_id=base.run_id,
        cand_run_id=cand.run_id,
        base_strategy=base_strategy,
        cand_strategy=cand_strategy,
        max_regression=max_regression,
        gate=gate,
        mismatches=tuple(mismatches),
        queries=tuple(deltas),
        only_in_base=tuple(n for n in base.queries if n not in cand.queries),
        only_in_cand=tuple(n for n in cand.queries if n not in base.queries),
        warnings=tuple(warnings),
    )


def saved_side(query: SavedQuery) -> Side:
    """A saved query as one side of the gate."""
    return Side(
        samples_ms=tuple(query.samples_ms),
        work=query.work,
        plan=query.plan,
        draw_plans=query.draw_plans,
        draws_digest=query.draws_digest,
        budget_ms=query.budget_ms,
        error=query.error,
    )


def _query_delta(base: SavedQuery, cand: SavedQuery, decision: QueryDecision) -> QueryDelta:
    base_idx = base.plan.indexes_used if base.plan else ()
    cand_idx = cand.plan.indexes_used if cand.plan else ()
    return QueryDelta(base.name, decision, base.summary, cand.summary, base_idx, cand_idx)


# -- mode 1: strategies on the same data ---------------------------------------------------------------


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
class CompareProgress:
    """Callbacks for a display: a status line, and (done, total, query, strategy) after each measurement."""

    message: Callable[[str], None] = lambda text: None
    measured: Callable[[int, int, str, str], None] = lambda done, total, query, strategy: None


def _holding_data_lock(function: Callable[..., StrategyComparison]) -> Callable[..., StrategyComparison]:
    """Run ``function`` holding the data lock exclusively: it switches indexes itself (its own seeds and
    switches go ahead), and no other seed, run or load may start meanwhile. Names and the catalog are
    validated first: bad input is exit 2 before any connection."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def holding(*args: Any, **kwargs: Any) -> StrategyComparison:
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        _validate_strategies(given["strategies"], given["strategies_dir"])
        Workload.resolve(
            tier=given["tier"],
            queries_dir=given["queries_dir"],
            only=tuple(given["only"]),
            seed_if_needed=given["seed_if_needed"],
        )
        with exclusively(given["dsn"], "compare --strategies"):
            return function(*args, **kwargs)

    return holding


@_holding_data_lock
def compare_strategies(
    dsn: str,
    strategies: Sequence[str],
    tier: str = "benchmark",
    seed: int = 42,
    queries_dir: Path | None = None,
    only: Sequence[str] = (),
    iterations: int = 30,
    warmup: int = 5,
    rounds: int = DEFAULT_ROUNDS,
    force: bool = False,
    progress: CompareProgress | None = None,
    *,
    strategies_dir: Path | None = None,
    write_table: str | None = None,  # None: the largest table of the seeded data
    write_rows: int = DEFAULT_WRITE_ROWS,
    write_trials: int = DEFAULT_WRITE_TRIALS,
    seed_if_needed: bool = True,
    database_label: str = "",
    write: Callable[[StrategyComparison], None] | None = None,
    access: Access | None = None,
) -> StrategyComparison:
    """Measure every query under every strategy on one seeded dataset; the first strategy is the reference.

    Queries and draws run through ``access.reader_dsn`` (the measuring role; default ``dsn``).

    Each query gets one set of parameter draws, shared by all strategies. ``iterations`` timed executions
    per query and strategy are split over ``rounds``; each round visits the strategies in a rotated order,
    rebuilding their indexes (and ANALYZE) before warming up and timing its slice. Write cost is measured
    after the reads, so the dead rows its rolled-back inserts leave (vacuumed at the end) never touch
    a read measurement. The strategy in place before the comparison is restored at the end, even on error.

    ``write`` receives the comparison so far before the first round and after each one, then the final
    one; on failure it receives what was measured, marked incomplete, and the exception propagates.
    """
    progress = progress or CompareProgress()
    names = _validate_strategies(strategies, strategies_dir)
    if rounds < 1 or iterations < rounds:
        raise InputError(f"need 1 <= --rounds <= --iterations (got rounds={rounds}, iterations={iterations})")
    if write_rows < 1 or write_trials < 1:
        raise InputError("write_rows and write_trials must be >= 1")
    workload = Workload.resolve(
        dsn,
        tier=tier,
        seed=seed,
        queries_dir=queries_dir,
        only=only,
        force=force,
        seed_if_needed=seed_if_needed,
        database_label=database_label,
    )
    catalog = workload.catalog
    manifest = workload.prepare(progress.message)
    if manifest is None:
        raise InputError(
            "strategies can only be compared on data seeded by harness: run harness seed, or drop --no-seed"
        )
    started_at = now_iso()
    environment = workload.environment(manifest)
    access = access or Access.owner_only(dsn)
    warning = measuring_warning(access)
    if warning:
        progress.message(f"warning: {warning}")
    ensure_pg_stat_statements(dsn)  # else every measurement adds EXPLAIN ANALYZEs for its work metrics
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
    write_table = write_table or max(manifest.row_counts, key=lambda table: manifest.row_counts[table])
    state = _Session(dsn, names, catalog.queries, strategies_dir, manifest.strategy, progress)
    state.access = access

    def snapshot() -> StrategyComparison:
        return state.comparison(empty, seed, write_table, write_rows)

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
            _checkpoint(conn)
        warm_cache(self.dsn, vacuum_new=True)  # every strategy's timings start from the same stated state

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
                conn.execute(f"VACUUM {_ident(self.written)}")

    def comparison(self, empty: StrategyComparison, seed: int, table: str, rows: int) -> StrategyComparison:
        """``empty`` filled with everything measured so far (a strategy not measured yet has no samples)."""
        measurements = tuple(
            StrategyMeasurement(q, s, tuple(a.samples), _summary(a.samples, seed), a.plan, a.error)
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


def _summary(samples: Sequence[float], seed: int) -> Summary | None:
    return summarize(samples) if samples else None


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


def _validate_strategies(strategies: Sequence[str], directory: Path | None) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(s.strip() for s in strategies if s.strip()))
    if len(names) < 2:
        raise InputError("compare needs at least two strategies, e.g. --strategies none,baseline,tuned")
    for name in names:
        load_strategy(name, directory)  # InputError naming the known strategies when one is unknown
    return names


def _index_bytes(conn: psycopg.Connection, names: Sequence[str]) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c "
        "WHERE c.relname = ANY (%s) AND c.relnamespace = current_schema()::regnamespace",
        [list(names)],
    ).fetchone()
    return int(row[0]) if row else 0


def _checkpoint(conn: psycopg.Connection) -> None:
    """Flush the index build's dirty pages now, not during the next strategy's timings (needs privilege)."""
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


# -- write cost ---------------------------------------------------------------------------------------


def insert_throughput(dsn: str, table: str, rows: int, trials: int = DEFAULT_WRITE_TRIALS) -> list[float]:
    """Rows per second of inserting ``rows`` copies of existing rows into ``table``, each trial rolled back.

    The batch copies the table's own rows (so values, foreign keys and payload sizes are realistic) with
    the primary key moved past the current maximum and every timestamp column moved past the data's last
    one, the way new events arrive. One untimed trial warms the caches first.
    """
    with connect(dsn, autocommit=False) as conn:
        sql = _copy_rows_sql(conn, table, rows)
        conn.rollback()
        speeds = []
        for trial in range(trials + 1):
            try:
                started = time.perf_counter()
                conn.execute(sql)
                elapsed = time.perf_counter() - started
            except psycopg.Error as exc:
                raise InputError(
                    f"cannot measure write cost on {table}: copying its rows failed "
                    f"({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); pick another write table"
                ) from None
            finally:
                conn.rollback()
            if trial:
                speeds.append(rows / elapsed if elapsed > 0 else float("inf"))
    return speeds


def _copy_rows_sql(conn: psycopg.Connection, table: str, rows: int) -> str:
    """The INSERT ... SELECT of one batch; offsets are computed here so the timed statement only inserts."""
    columns = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "       coalesce(a.attnum = ANY (i.indkey) AND cardinality(i.indkey::int2[]) = 1, false) "
        "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "  AND a.attgenerated = '' ORDER BY a.attnum",
        [table],
    ).fetchall()
    if not columns:
        raise InputError(f"write-cost table {table!r} does not exist in this database")
    source = _ident(table)
    count_row = conn.execute(f"SELECT count(*) FROM {source}").fetchone()
    count = int(count_row[0]) if count_row else 0
    if count == 0:
        raise InputError(f"write-cost table {table!r} is empty: there are no rows to copy")
    shifted = []
    for name, type_name, is_key in columns:
        col = _ident(name)
        if is_key and type_name in ("bigint", "integer", "smallint"):
            row = conn.execute(f"SELECT max({col}) - min({col}) + 1 FROM {source}").fetchone()
            shifted.append(f"{col} + k * {int(row[0]) if row else 1}")
        elif type_name.startswith("timestamp"):
            row = conn.execute(f"SELECT extract(epoch FROM max({col}) - min({col})) FROM {source}").fetchone()
            seconds = float(row[0]) + 1.0 if row and row[0] is not None else 86_400.0
            shifted.append(f"{col} + k * interval '{seconds:.0f} seconds'")
        else:
            shifted.append(col)
    names = ", ".join(_ident(c[0]) for c in columns)
    return (
        f"INSERT INTO {source} ({names}) SELECT {', '.join(shifted)} "
        f"FROM generate_series(1, {-(-rows // count)}) AS k, {source} LIMIT {int(rows)}"
    )


def _ident(name: str) -> str:
    """Quote an identifier (possibly schema-qualified) for SQL text."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
