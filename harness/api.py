"""The public Python API: one function per command, each taking the command's options as keyword arguments.

    import harness
    result = harness.run(tier="test", only=["daily_active_users"], reports_dir=Path("reports"))

As in sqlite-utils, every CLI option is a keyword of the call behind it (``--seed`` → ``seed``, the others by
their dashes turned into underscores, e.g. ``--no-seed`` → ``no_seed``); the CLI only adds the output and
the exit code. With neither ``dsn`` nor ``HARNESS_DSN``/``DATABASE_URL``/``PG*`` set, each call starts the
embedded cluster if needed and releases it when it returns. Errors are ``harness.errors.HarnessError``
subclasses carrying the exit code the CLI would use.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from harness import db, paths
from harness.check import run_check
from harness.compare import (
    DEFAULT_AB_ROUNDS,
    DEFAULT_AB_WARMUP,
    DEFAULT_ROUNDS,
    CompareOptions,
    CompareProgress,
    RunComparison,
    StrategyComparison,
    compare_catalogs,
    compare_runs,
    compare_strategies,
    parse_max_regression,
)
from harness.config import load_tier
from harness.errors import InputError
from harness.gate import DEFAULT_ALPHA, DEFAULT_FLOOR_MS, DEFAULT_MAX_REGRESSION, DEFAULT_MAX_WORK_REGRESSION
from harness.grow import GrowOptions, GrowProgress, parse_target_rows
from harness.grow import grow as grow_tiers
from harness.grow import validate as validate_grow
from harness.growth_analysis import GrowResult
from harness.load.arrivals import parse_arrival, parse_latency_limit, parse_rate
from harness.load.results import LoadOptions, LoadResult, Role
from harness.load.runner import LoadProgress, parse_duration, run_load, validate
from harness.load.sweep import Axis, SweepResult, parse_sweep
from harness.load.sweep_runner import run_sweep, step_options
from harness.load.thresholds import parse_threshold
from harness.maintenance import Maintenance
from harness.measure import (
    DEFAULT_ITERATIONS,
    DEFAULT_MAX_SECONDS,
    DEFAULT_P95_PRECISION,
    DEFAULT_WARMUP,
    MeasureOptions,
)
from harness.report.compare import write_compare_reports
from harness.results import RunResult, load_run
from harness.roles import Access, access_for
from harness.run import Progress, RunOptions, selected_catalog
from harness.run import run as run_options
from harness.seed import Manifest, VerifyResult
from harness.seed import seed as seed_data
from harness.seed import verify as verify_seed
from harness.starter import Starter, write_starter
from harness.strategies import load_strategy
from harness.whatif import WhatIf, what_if
from harness.workload import Workload
from harness.workload import run_id as new_run_id


def seed(
    *,
    tier: str = "test",
    seed: int = 42,
    strategy: str = "baseline",
    force: bool = False,
    verify: bool = False,
    dsn: str | None = None,
    pg_bin: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> Manifest | VerifyResult:
    """Seed ``tier`` deterministically (the manifest), or with ``verify`` recompute its checksum instead.

    ``on_phase(name, seconds)`` hears the phases around the seed itself (``SEED_PHASES``: the database made
    ready, the seed, the release), which the manifest's own durations do not cover."""
    if verify:
        with _database(dsn, pg_bin) as (target, _, _):
            result = verify_seed(target)
        if not result.expected:  # exit 2, not 1: CI reads 1 as "slower"
            raise InputError(
                "this database was not seeded by harness (no harness_manifest): nothing to verify; "
                "seed it first (harness seed), or point --dsn at the seeded database"
            )
        return result
    chosen = load_tier(tier)
    load_strategy(strategy)
    phase = on_phase or (lambda name, seconds: None)
    started = time.perf_counter()
    with _database(dsn, pg_bin) as (target, _, _):
        phase(SEED_PHASES[0], time.perf_counter() - started)
        started = time.perf_counter()
        manifest = seed_data(target, chosen, seed, strategy, force=force, on_progress=on_progress)
        phase(SEED_PHASES[1], time.perf_counter() - started)
        started = time.perf_counter()
    phase(SEED_PHASES[2], time.perf_counter() - started)
    return manifest


SEED_PHASES = ("database ready", "seed", "release")  # server start (if needed) · the seed and its commit · stop


def check(
    *,
    queries_dir: Path | None = None,
    schema_sql: Path | None = None,
    strategies_dir: Path | None = None,
    fmt: str = "text",
    strict: bool = False,
    dsn: str | None = None,
) -> tuple[str, int]:
    """Check every query's SQL (offline, or PREPAREd against ``dsn``): (rendered findings, exit code)."""
    if dsn:
        db.validate_dsn(dsn)
    if schema_sql is None:  # the scenarios' schema and strategies; a user's own schema comes without them
        scenarios = paths.scenarios_dir()
        schema_sql, strategies_dir = scenarios / "schema.sql", strategies_dir or scenarios / "strategies"
    return run_check(queries_dir or paths.queries_dir(), schema_sql, strategies_dir, dsn, fmt, strict)


def init(*, directory: Path | None = None, force: bool = False) -> Starter:
    """``harness init``: starter queries and a project config in ``directory`` (default: the current folder)."""
    return write_starter(directory or Path.cwd(), force)


def run(
    *,
    tier: str = "test",
    seed: int = 42,
    strategy: str | None = None,
    queries_dir: Path | None = None,
    only: Sequence[str] = (),
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    p95_precision: float = DEFAULT_P95_PRECISION,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    budget_ms: float | None = None,
    prepare: str | None = None,
    allow_few_samples: bool = False,
    no_seed: bool = False,
    force: bool = False,
    reports_dir: Path | None = None,
    run_id: str | None = None,
    create_extensions: bool = False,
    analyze: bool = False,
    read_role: str | None = None,
    dsn: str | None = None,
    pg_bin: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Measure and judge every selected query (``harness run``); reports go to ``reports_dir``/<run-id>/.
    ``create_extensions`` / ``analyze``: the maintenance steps done before measuring (``harness.maintenance``)."""
    options = RunOptions(
        tier=tier,
        seed=seed,
        strategy=strategy,
        queries_dir=queries_dir,
        only=tuple(only),
        budget_ms=budget_ms,
        measure=MeasureOptions(
            iterations=iterations,
            warmup=warmup,
            prepare=prepare,
            p95_precision=p95_precision or None,  # 0: exactly ``iterations``
            max_seconds=max_seconds,
        ),
        allow_few_samples=allow_few_samples,
        seed_if_needed=not no_seed,
        force=force,
        reports_dir=reports_dir,
        run_id=run_id,
        maintenance=Maintenance(create_extensions, analyze),
    )
    selected_catalog(options)  # bad input is reported before a server starts
    with _database(dsn, pg_bin, read_role) as (target, label, access):
        return run_options(target, options, progress, label, access=access)


def grow(
    *,
    tiers: str | Sequence[str] = ("test", "dev"),
    strategy: str | None = None,
    target_rows: str | tuple[str, float] | None = None,
    target_tier: str | None = None,
    seed: int = 42,
    queries_dir: Path | None = None,
    only: Sequence[str] = (),
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int = DEFAULT_WARMUP,
    budget_ms: float | None = None,
    force: bool = False,
    reports_dir: Path | None = None,
    run_id: str | None = None,
    read_role: str | None = None,
    dsn: str | None = None,
    pg_bin: str | None = None,
    progress: GrowProgress | None = None,
) -> GrowResult:
    """Measure the catalog at each of ``tiers`` (``"test,dev,demo"`` or a list), fit each query's cost against
    its driving table's rows and forecast where p95 crosses its budget (``harness grow``); ``target_rows``
    (``"TABLE=N"``) or ``target_tier`` is the size a crossing below fails. Reports go to ``reports_dir``/<id>/."""
    names = [n.strip() for n in tiers.split(",")] if isinstance(tiers, str) else list(tiers)
    measured = RunOptions(strategy=strategy, seed=seed, queries_dir=queries_dir, only=tuple(only), budget_ms=budget_ms,
                          measure=MeasureOptions(iterations=iterations, warmup=warmup), force=force,
                          reports_dir=reports_dir, run_id=run_id)  # fmt: skip
    options = GrowOptions(
        tiers=tuple(n for n in names if n),
        target_rows=parse_target_rows(target_rows) if isinstance(target_rows, str) else target_rows,
        target_tier=target_tier,
        run=measured,
    )
    validate_grow(options)  # bad input is reported before a server starts
    with _database(dsn, pg_bin, read_role) as (target, label, access):
        return grow_tiers(target, options, progress, label, access=access)


def load(
    *,
    users: int = 10,
    spawn_rate: float | None = None,
    duration: str | int = "60s",
    rate: str | float | None = None,
    arrival: str = "poisson",
    latency_limit: str | float | None = None,
    sweep: str | None = None,
    processes: int = 1,
    role: Role | None = None,
    master_host: str = "127.0.0.1",
    master_port: int = 5557,
    expect_workers: int = 1,
    web: bool = False,
    web_port: int = 8089,
    tier: str = "test",
    seed: int = 42,
    strategy: str | None = None,
    queries_dir: Path | None = None,
    only: Sequence[str] = (),
    param_pool: int = 0,
    p95_budget_ms: float | None = None,
    max_failure_rate: float = 0.01,
    threshold: Sequence[str] = (),
    abort_on_fail: bool = False,
    samples: bool = False,
    no_seed: bool = False,
    force: bool = False,
    reports_dir: Path | None = None,
    run_id: str | None = None,
    read_role: str | None = None,
    dsn: str | None = None,
    pg_bin: str | None = None,
    progress: LoadProgress | None = None,
) -> LoadResult | SweepResult:
    """Drive the catalog with Locust users, headless and bounded (``harness load``); ``duration`` as
    ``--duration`` (``"5m"``) or in seconds. ``rate`` (requests/s) makes it an open loop; ``threshold``
    takes k6-style bounds (``"p95<250"``); ``sweep`` (``"users=1,2,4"``, ``"rate=50,100"``) runs a capacity
    sweep instead of one load and returns its ``SweepResult``."""
    options = LoadOptions(
        users=users,
        spawn_rate=spawn_rate,
        duration_s=duration if isinstance(duration, int) else parse_duration(duration),
        rate=parse_rate(rate) if rate is not None else None,
        arrival=parse_arrival(arrival),
        latency_limit_ms=parse_latency_limit(latency_limit) if latency_limit is not None else None,
        processes=processes,
        role=role or "local",
        master_host=master_host,
        master_port=master_port,
        expect_workers=expect_workers,
        web=web,
        web_port=web_port,
        tier=tier,
        seed=seed,
        strategy=strategy,
        queries_dir=queries_dir,
        only=tuple(only),
        param_pool=param_pool,
        p95_budget_ms=p95_budget_ms,
        max_failure_rate=max_failure_rate,
        thresholds=tuple(parse_threshold(text) for text in threshold),
        abort_on_fail=abort_on_fail,
        samples=samples,
        seed_if_needed=not no_seed,
        force=force,
        reports_dir=reports_dir,
        run_id=run_id,
    )
    spec = parse_sweep(sweep) if sweep is not None else None
    if spec is not None and (options.role != "local" or options.web):
        raise InputError("--sweep runs every step from this machine, headless: drop --master/--worker/--web")
    if spec is not None and spec.axis is Axis.RATE and options.rate is not None:
        raise InputError("--sweep rate=… sets the rate of each step: drop --rate")
    validate(step_options(options, spec, 0, Path(".")) if spec else options)  # before a server starts
    with _database(dsn, pg_bin, read_role) as (target, label, access):
        if spec is not None:
            return run_sweep(target, options, spec, progress, label, access=access)
        return run_load(target, options, progress, label, access=access)


def compare(
    runs: Sequence[Path] = (),
    *,
    strategies: str | Sequence[str] | None = None,
    base_ref: str | None = None,
    base_queries_dir: Path | None = None,
    base_strategies_dir: Path | None = None,
    strategy: str | None = None,
    tier: str = "benchmark",
    seed: int = 42,
    queries_dir: Path | None = None,
    only: Sequence[str] = (),
    iterations: int = DEFAULT_ITERATIONS,
    warmup: int | None = None,
    rounds: int | None = None,
    what_if_sql: Sequence[str] = (),
    max_regression: str | float = DEFAULT_MAX_REGRESSION,
    max_work_regression: str | float = DEFAULT_MAX_WORK_REGRESSION,
    alpha: float = DEFAULT_ALPHA,
    floor_ms: float = DEFAULT_FLOOR_MS,
    measure_all: bool = False,
    fixed: bool = False,
    max_time_s: float | None = None,
    allow_mismatch: bool = False,
    no_seed: bool = False,
    force: bool = False,
    reports_dir: Path | None = None,
    run_id: str | None = None,
    create_extensions: bool = False,
    analyze: bool = False,
    read_role: str | None = None,
    dsn: str | None = None,
    pg_bin: str | None = None,
    progress: CompareProgress | None = None,
) -> RunComparison | StrategyComparison | list[WhatIf]:
    """``harness compare``, one of four comparisons:

    - ``base_ref`` / ``base_queries_dir``: the base catalog against the candidate (``queries_dir``), interleaved
      on one server (the pull-request gate; ``strategy`` for both sides, ``base_strategies_dir`` for the base);
    - ``runs=[BASE, CAND]``: two saved run.json files;
    - ``strategies``: index strategies side by side on the same data;
    - ``what_if_sql``: HypoPG hypothetical indexes (planner estimates, no report).

    ``warmup`` and ``rounds`` default per mode (A/B: 2 and 10; strategies: 5 and 3). The A/B measures only the
    queries a change can affect unless ``measure_all``, stops measuring a query once its verdict is settled
    unless ``fixed``, and ends at ``max_time_s`` if given.
    With ``reports_dir`` the comparison's reports go to ``reports_dir``/<run_id>/ (default compare-<time>; for
    strategies: after each round; for A/B with both sides' run.json). ``no_seed``: measure the data as it is
    (``--no-seed``); ``create_extensions`` / ``analyze`` (A/B only): the maintenance steps done before measuring."""
    directory = reports_dir / new_run_id(run_id, prefix="compare-") if reports_dir is not None else None
    names = [n.strip() for n in strategies.split(",")] if isinstance(strategies, str) else list(strategies or ())
    names = [n for n in names if n]
    given = {"BASE CAND run files": runs, "--strategies": names, "--what-if": what_if_sql,
             "--base-ref": base_ref, "--base-queries": base_queries_dir}  # fmt: skip
    modes = [name for name, value in given.items() if value]
    if len(modes) > 1:
        raise InputError(f"{' and '.join(modes)} are different comparisons: give one of them")
    if (base_strategies_dir or strategy) and not (base_ref or base_queries_dir):
        raise InputError("--base-strategies and --strategy go with --base-ref REF or --base-queries DIR")
    if (create_extensions or analyze) and not (base_ref or base_queries_dir):
        raise InputError("--create-extensions and --analyze go with --base-ref REF or --base-queries DIR")
    gate = {
        "max_regression": _fraction(max_regression, "--max-regression"),
        "max_work_regression": _fraction(max_work_regression, "--max-work-regression"),
        "alpha": alpha,
        "floor_ms": floor_ms,
    }
    if base_ref or base_queries_dir:
        with _database(dsn, pg_bin, read_role) as (target, label, access):
            for line in Maintenance(create_extensions, analyze).run(target):
                (progress or CompareProgress()).message(line)
            result = compare_catalogs(
                target,
                base_ref=base_ref,
                base_queries_dir=base_queries_dir,
                base_strategies_dir=base_strategies_dir,
                queries_dir=queries_dir,
                tier=tier,
                seed=seed,
                strategy=strategy,
                only=only,
                iterations=iterations,
                warmup=DEFAULT_AB_WARMUP if warmup is None else warmup,
                rounds=rounds or DEFAULT_AB_ROUNDS,
                force=force,
                seed_if_needed=not no_seed,
                runs_dir=directory,
                progress=progress,
                database_label=label,
                access=access,
                sequential=not fixed,
                max_time_s=max_time_s,
                measure_all=measure_all,
                **gate,
            )
        if directory is not None:
            write_compare_reports(result, directory)
        return result
    if runs:
        if len(runs) != 2:
            raise InputError("give two run.json files (BASE CAND)")
        result = compare_runs(load_run(Path(runs[0])), load_run(Path(runs[1])), allow_mismatch=allow_mismatch, **gate)
        if directory is not None:
            write_compare_reports(result, directory)
        return result
    if what_if_sql:
        workload = Workload.resolve(tier=tier, seed=seed, queries_dir=queries_dir, only=only)
        with _database(dsn, pg_bin) as (target, _, _):
            return what_if(target, list(what_if_sql), workload.catalog.queries, seed)
    if not names:
        raise InputError("nothing to compare: pass BASE CAND run files, --strategies a,b,… or --what-if SQL")
    if len(names) < 2:
        raise InputError("--strategies needs at least two names, e.g. none,baseline,tuned")
    with _database(dsn, pg_bin, read_role) as (target, label, access):
        return compare_strategies(
            target,
            CompareOptions(
                tuple(names),
                tier=tier,
                seed=seed,
                queries_dir=queries_dir,
                only=tuple(only),
                iterations=iterations,
                warmup=DEFAULT_WARMUP if warmup is None else warmup,
                rounds=rounds or DEFAULT_ROUNDS,
                force=force,
                seed_if_needed=not no_seed,
            ),
            progress,
            database_label=label,
            write=_compare_writer(directory),
            access=access,
        )


def _fraction(value: str | float, option: str) -> float:
    """A threshold as given on the command line ("10%", "0.1") or from Python (0.1)."""
    return parse_max_regression(value, option) if isinstance(value, str) else float(value)


def _compare_writer(directory: Path | None) -> Callable[[StrategyComparison], None]:
    """Rewrite the comparison's reports into ``directory`` (the HTML once finished); nothing when None."""

    def write(comparison: StrategyComparison) -> None:
        if directory is not None:
            write_compare_reports(comparison, directory, html=comparison.finished_at is not None)

    return write


@contextlib.contextmanager
def _database(dsn: str | None, pg_bin: str | None, read_role: str | None = None) -> Iterator[tuple[str, str, Access]]:
    """(DSN, label for reports, how to measure) of the chosen database: the embedded cluster measures as its
    read-only role, a ``dsn`` as ``read_role`` when given. An embedded server started for it is released after."""
    target = db.resolve(dsn, pg_bin=pg_bin)
    try:
        access = access_for(target, read_role)
        yield target.dsn, "embedded" if target.server else target.display, access
    finally:
        if target.server is not None:
            target.server.release()
