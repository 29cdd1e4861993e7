"""The `harness` command line: options → one library call → output and an exit code. Nothing else.

Exit codes (every command): 0 passed · 1 a performance/plan check failed · 2 bad input · 3 database or
environment failure · 130 interrupted (143 on SIGTERM).

Each command imports its library module when it runs, so `harness --help` and `harness db …` start fast.
"""

from __future__ import annotations

import atexit
import functools
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness import __version__, db
from harness.catalog import MAX_BUDGET_MS
from harness.errors import (
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    HarnessError,
    Interrupted,
    os_error_fix,
)

if TYPE_CHECKING:
    from harness.load.results import LoadResult
    from harness.load.runner import LoadSnapshot
    from harness.load.sweep import SweepResult

# Ceilings a typo cannot pass (exit 2, before any connection): far above any real use, far below "forever".
MAX_ITERATIONS = 100_000
MAX_WARMUP = 10_000
MAX_ROUNDS = 1_000
MAX_USERS = 10_000
MAX_SPAWN_RATE = 10_000.0  # users started per second
MAX_PROCESSES = 256
MAX_WORKERS = 1_000
MAX_PARAM_POOL = 100_000
MAX_DURATION_S = 24 * 3600
MAX_SEED = 2**63 - 1  # numpy's generators take seeds from 0 up; the manifest keeps a bigint
SEED = click.IntRange(0, MAX_SEED)
ITERATIONS = click.IntRange(1, MAX_ITERATIONS)
WARMUP = click.IntRange(0, MAX_WARMUP)

# Outside a terminal (CI logs) rich would wrap at 80 columns; give tables room instead.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160)


def _split_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """--only a --only b,c → ("a", "b", "c")."""
    return tuple(name.strip() for item in value for name in item.split(",") if name.strip())


class Session:
    """Per-invocation state: the database target, resolved once, and the embedded server to release."""

    def __init__(self, dsn: str | None, pg_bin: str | None):
        self.dsn_option = dsn
        self.pg_bin = pg_bin
        self._target: db.Target | None = None

    @property
    def target(self) -> db.Target:
        if self._target is None:
            self._target = db.resolve(self.dsn_option, pg_bin=self.pg_bin)
            if self._target.server is not None:
                atexit.register(self._target.server.release)
        return self._target

    def release(self) -> None:
        if self._target is not None and self._target.server is not None:
            self._target.server.release()


def database_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--dsn and --pg-bin, turned into a `session` keyword argument."""

    @click.option("--dsn", envvar="HARNESS_DSN", help="PostgreSQL DSN (default: the embedded cluster).")
    @click.option("--pg-bin", type=click.Path(file_okay=False), help="Directory of PostgreSQL server binaries.")
    @functools.wraps(command)
    def wrapper(*args: Any, dsn: str | None, pg_bin: str | None, **kwargs: Any) -> Any:
        session = Session(dsn, pg_bin)
        try:
            return command(*args, session=session, **kwargs)
        finally:
            session.release()

    return wrapper


def maintenance_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--create-extensions and --analyze: the only writes to your database, each named, done before measuring."""
    options = [
        click.option("--create-extensions", is_flag=True,
                     help="Before measuring: CREATE EXTENSION pg_stat_statements, pg_prewarm where shipped."),
        click.option("--analyze", is_flag=True, help="Before measuring: ANALYZE (fresh planner statistics)."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


read_role_option = click.option(
    "--read-role",
    metavar="ROLE",
    help="With --dsn: measure as ROLE (SET ROLE); give it only SELECT. The embedded cluster uses harness_reader.",
)


def workload_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `run` and `load` share: which data, which indexes, which queries, where reports go."""
    options = [
        click.option("--tier", default="test", show_default=True, help="Tier (seeded if the database lacks it)."),
        click.option("--seed", "seed_value", default=42, show_default=True, type=SEED, help="Data and parameter seed."),
        click.option("--strategy", help="Index strategy (default: the seeded one; baseline when seeding)."),
        click.option("--queries", "queries_dir", type=click.Path(path_type=Path), help="Query catalog directory."),
        click.option("--only", multiple=True, callback=_split_names, help="Only this query (repeatable, or a,b)."),
        click.option("--no-seed", is_flag=True, help="Use the data as it is; never seed."),
        click.option("--force", is_flag=True, help="Seed even into a database holding tables harness did not create."),
        click.option("--reports-dir", type=click.Path(path_type=Path), help="Parent folder of reports/<run-id>/."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """PostgreSQL benchmark and performance-regression harness."""
    ctx.obj = {"debug": debug}


# -- db -------------------------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Manage the embedded PostgreSQL cluster (.harness/pg)."""


def _embedded(pg_bin: str | None = None):  # type: ignore[no-untyped-def]
    from harness.server import EmbeddedServer

    return EmbeddedServer(db.harness_home(), pg_bin=pg_bin)


@db_group.command("start")
@click.option("--pg-bin", type=click.Path(file_okay=False), help="Directory of PostgreSQL server binaries.")
def db_start(pg_bin: str | None) -> int:
    """Start the cluster and keep it running after this command."""
    server = _embedded(pg_bin)
    dsn = server.ensure_running(persistent=True)
    out.print(f"running: {dsn}  (data: {server.data_dir}; stop with `harness db stop`)")
    return 0


@db_group.command("stop")
def db_stop() -> int:
    """Stop the cluster."""
    stopped = _embedded().stop(on_wait=lambda message: err.print(message, markup=False))
    out.print("stopped" if stopped else "not running")
    return 0


@db_group.command("status")
def db_status() -> int:
    """Say whether the cluster runs, where, and as whom."""
    server = _embedded()
    status = server.status()
    state = "running" if status.running else "stopped"
    details = f"pid {status.pid}, port {status.port}" if status.running else "not running"
    out.print(f"{state}: {details}; data {status.data_dir}; server user {server.user.name}")
    if status.running:
        out.print(f"dsn: {server.dsn(status.port or 0)}")
    return 0


@db_group.command("url")
@click.option("--libpq", is_flag=True, help="Print a libpq key=value string instead of a postgresql:// URL.")
def db_url(libpq: bool) -> int:
    """Print the cluster's postgresql:// URL, for DATABASE_URL (starting it, and keeping it running)."""
    dsn = _embedded().ensure_running(persistent=True)
    out.print(db.redact(dsn) if libpq else db.url(dsn), markup=False)
    return 0


@db_group.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_destroy(yes: bool) -> int:
    """Stop the cluster and delete its data directory."""
    server = _embedded()
    if not yes and sys.stdin.isatty():
        click.confirm(f"delete {server.data_dir}?", abort=True)
    server.destroy()
    out.print(f"deleted {server.data_dir}")
    return 0


# -- init ---------------------------------------------------------------------------------------------


@cli.command("init")
@click.option(
    "--directory", type=click.Path(file_okay=False, path_type=Path), help="Project folder (default: the current one)."
)
@click.option("--force", is_flag=True, help="Replace starter files that exist already.")
def init_command(directory: Path | None, force: bool) -> int:
    """Write starter queries/ and a project config (harness.toml, or [tool.harness] in pyproject.toml)."""
    from harness import api

    starter = api.init(directory=directory, force=force)
    for path in starter.written:
        out.print(f"wrote {path}", markup=False)
    out.print("next:")
    for step in starter.next_steps:
        out.print(f"  {step}", markup=False)
    return 0


# -- seed and indexes -------------------------------------------------------------------------------


@cli.command("seed")
@click.option("--tier", default="test", show_default=True, help="Tier name (scenarios/tiers/NAME.toml) or path.")
@click.option("--seed", "seed_value", default=42, show_default=True, type=SEED, help="Random seed.")
@click.option("--strategy", default="baseline", show_default=True, help="Index strategy to build.")
@click.option("--force", is_flag=True, help="Write even into a database holding tables harness did not create.")
@click.option("--verify", is_flag=True, help="Only recompute the checksum of the seeded data and compare.")
@click.option("--verbose", is_flag=True, help="Print where the time went, phase by phase.")
@database_options
def seed_command(
    tier: str, seed_value: int, strategy: str, force: bool, verify: bool, verbose: bool, session: Session
) -> int:
    """Seed a tier deterministically (replacing the harness's tables atomically)."""
    from harness import api
    from harness.config import load_tier
    from harness.strategies import load_strategy

    where = {"dsn": session.dsn_option, "pg_bin": session.pg_bin}
    if verify:
        result = api.seed(verify=True, **where)
        for problem in result.problems:
            (out if problem.startswith("note:") else err).print(problem)
        out.print(f"{'intact' if result.intact else 'NOT intact'}: checksum {result.actual[:16] or '-'}")
        return 0 if result.intact else 1
    load_tier(tier)  # bad names and files are reported before the progress display starts
    load_strategy(strategy)
    phases: dict[str, float] = {}
    with _table_progress() as on_progress:
        manifest = api.seed(tier=tier, seed=seed_value, strategy=strategy, force=force, on_progress=on_progress,
                            on_phase=phases.__setitem__, **where)  # fmt: skip
    if verbose:
        _print_seed_phases(phases, manifest.durations_s)
    seconds = manifest.durations_s["total"]
    out.print(
        f"seeded tier {manifest.tier} (seed {manifest.seed}, strategy {manifest.strategy}): "
        f"{manifest.total_rows:,} rows in {seconds:.2f} s ({manifest.total_rows / seconds:,.0f} rows/s), "
        f"checksum {manifest.checksum[:16]}"
    )
    return 0


def _print_seed_phases(phases: dict[str, float], inside: dict[str, float]) -> None:
    """The phases of `harness seed` on stderr: the server's start and stop around the seed, and inside it the
    manifest's own durations, what they leave out before them, and the commit after them."""
    from harness.api import SEED_PHASES

    ready, seed, release = (phases.get(name, 0.0) for name in SEED_PHASES)
    listed = {name: value for name, value in inside.items() if name != "total"}
    rows = [
        ("database ready (server start if needed)", ready),
        ("seed", seed),
        ("  connect, lock, drop, schema, checksum", inside.get("total", 0.0) - sum(listed.values())),
        *((f"  {name.replace('_', ' ')}", value) for name, value in listed.items()),
        ("  manifest and commit", seed - inside.get("total", 0.0)),
        ("release (server stop if started)", release),
    ]
    for name, value in rows:
        err.print(f"{name:42} {value:8.3f} s", markup=False)


@cli.group("indexes")
def indexes_group() -> None:
    """Index strategies (scenarios/strategies/*.sql)."""


@indexes_group.command("list")
def indexes_list() -> int:
    """List the strategies and their indexes."""
    from harness.strategies import available_strategies, load_strategy

    for name in available_strategies():
        strategy = load_strategy(name)
        out.print(f"{name}: {len(strategy.indexes)} indexes  {', '.join(strategy.index_names)}")
    return 0


@indexes_group.command("apply")
@click.argument("strategy")
@click.option("--force", is_flag=True, help="Apply even if the database was not seeded by harness.")
@database_options
def indexes_apply(strategy: str, force: bool, session: Session) -> int:
    """Switch the seeded data to STRATEGY's indexes."""
    from harness.seed import switch_strategy

    applied = switch_strategy(session.target.dsn, strategy, force=force)
    out.print(
        f"strategy {applied.strategy}: dropped {len(applied.dropped)}, built {len(applied.created)} "
        f"indexes in {applied.build_s:.2f} s"
    )
    return 0


# -- check ----------------------------------------------------------------------------------------


@cli.command("check")
@click.option("--queries", "queries_dir", type=click.Path(path_type=Path), help="Query catalog directory.")
@click.option(
    "--schema",
    "schema_sql",
    type=click.Path(path_type=Path),
    help="Schema DDL (default scenarios/schema.sql).",
)
@click.option(
    "--strategies",
    "strategies_dir",
    type=click.Path(path_type=Path),
    help="Index strategy folder (default scenarios/strategies, not consulted when --schema is given).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Warnings fail the check too.")
@click.option("--dsn", help="Also check against this live database (PREPARE only, never executes).")
def check_command(
    queries_dir: Path | None,
    schema_sql: Path | None,
    strategies_dir: Path | None,
    fmt: str,
    strict: bool,
    dsn: str | None,
) -> int:
    """Check every query's SQL statically (sqlglot): errors, read-only, parameters, lint rules."""
    from harness import api

    text, code = api.check(
        queries_dir=queries_dir, schema_sql=schema_sql, strategies_dir=strategies_dir, fmt=fmt, strict=strict, dsn=dsn
    )
    click.echo(text, nl=not text.endswith("\n"))
    return code


# -- run ------------------------------------------------------------------------------------------


@cli.command("run")
@workload_options
@click.option("--iterations", default=30, show_default=True, type=ITERATIONS, help="Timed runs per query (at least).")
@click.option("--warmup", default=5, show_default=True, type=WARMUP, help="Untimed runs first.")
@click.option(
    "--p95-precision",
    default=0.10,
    show_default=True,
    type=click.FloatRange(0, 10),
    help="Keep timing until the p95 interval's upper bound is within this share of the p95 (0: exactly --iterations).",
)
@click.option(
    "--max-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=86_400),
    help="Per query: stop timing for --p95-precision after this long (the report says the interval was cut short).",
)
@click.option(
    "--budget",
    "budget_ms",
    type=click.FloatRange(min=0, min_open=True, max=MAX_BUDGET_MS),
    help="p95 budget in ms for every query.",
)
@click.option("--prepare", type=click.Choice(["auto", "custom", "generic"]), help="Override each query's prepare mode.")
@click.option("--allow-few-samples", is_flag=True, help="Accept fewer than 20 timed runs (warn instead of fail).")
@click.option("--run-id", callback=lambda ctx, param, value: _safe_run_id(value), help="Report folder name.")
@maintenance_options
@read_role_option
@database_options
def run_command(
    tier: str,
    seed_value: int,
    strategy: str | None,
    queries_dir: Path | None,
    only: tuple[str, ...],
    iterations: int,
    warmup: int,
    p95_precision: float,
    max_seconds: float,
    budget_ms: float | None,
    prepare: str | None,
    allow_few_samples: bool,
    no_seed: bool,
    force: bool,
    reports_dir: Path | None,
    run_id: str | None,
    create_extensions: bool,
    analyze: bool,
    read_role: str | None,
    session: Session,
) -> int:
    """Measure every query: EXPLAIN ANALYZE + timed runs, gate p95 and index use, write reports."""
    from harness import api, paths
    from harness.workload import run_id as new_run_id

    reports_dir = reports_dir or paths.reports_dir()
    run_id = new_run_id(run_id)  # the folder is known before the run starts, to name it when it stops
    display = _RunDisplay()
    try:
        result = api.run(
            tier=tier,
            seed=seed_value,
            strategy=strategy,
            queries_dir=queries_dir,
            only=only,
            iterations=iterations,
            warmup=warmup,
            p95_precision=p95_precision,
            max_seconds=max_seconds,
            budget_ms=budget_ms,
            prepare=prepare,
            allow_few_samples=allow_few_samples,
            no_seed=no_seed,
            force=force,
            reports_dir=reports_dir,
            run_id=run_id,
            create_extensions=create_extensions,
            analyze=analyze,
            read_role=read_role,
            dsn=session.dsn_option,
            pg_bin=session.pg_bin,
            progress=display.progress(),
        )
    finally:
        display.close()
        if (reports_dir / run_id).is_dir():
            err.print(f"reports: {reports_dir / run_id}")
    _print_run_table(result)
    for q in result.queries:  # hyperfine's habit: results on stdout, what makes them suspect on stderr
        for warning in q.verdict.warnings:
            err.print(f"warning: {q.name}: {warning}", markup=False)
    failed = [q.name for q in result.queries if q.verdict.status == "fail"]
    if failed:
        out.print(f"FAIL: {', '.join(failed)}")
        return 1
    out.print(f"PASS: {len(result.queries)} queries")
    return 0


def _bounded_duration(value: str) -> str:
    """``--duration`` as written, once it reads as 1 s to 24 h (a typo must not run until killed)."""
    from harness.load.runner import parse_duration

    try:
        seconds = parse_duration(value)
    except HarnessError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds > MAX_DURATION_S:
        raise click.BadParameter(f"{value!r} is longer than {MAX_DURATION_S // 3600}h")
    return value


def _safe_run_id(value: str | None) -> str | None:
    from harness.workload import check_run_id

    try:
        return None if value is None else check_run_id(value)
    except HarnessError as exc:
        raise click.BadParameter(str(exc)) from None


class _RunDisplay:
    """Progress while measuring: one line per query as it finishes (rich, on stderr)."""

    def __init__(self) -> None:
        self.status = err.status("starting") if err.is_terminal else None
        if self.status:
            self.status.start()

    def progress(self):  # type: ignore[no-untyped-def]
        from harness.run import Progress

        def started(index: int, total: int, name: str) -> None:
            self._say(f"[{index + 1}/{total}] measuring {name}")

        def finished(q) -> None:  # type: ignore[no-untyped-def]
            p95 = f"p95 {q.summary.p95:.2f} ms" if q.summary else (q.measurement.error or "no samples")
            err.print(f"  {q.verdict.status.upper():4}  {q.name}  {p95}")

        def warning(message: str) -> None:
            err.print(f"warning: {message}", markup=False)

        return Progress(query_started=started, query_finished=finished, seeding=self._note, warning=warning)

    def _say(self, message: str) -> None:
        if self.status:
            self.status.update(message)
        else:
            err.print(message)

    def _note(self, message: str) -> None:
        """A line that stays (why the data is re-seeded), and the status meanwhile."""
        err.print(message, markup=False)
        if self.status:
            self.status.update(message)

    def close(self) -> None:
        if self.status:
            self.status.stop()


def _print_run_table(result) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=f"run {result.run_id} ({result.status})", title_justify="left")
    for column in ("query", "p50 ms", "p95 ms [95% CI]", "budget", "n", "verdict", "indexes / reason"):
        table.add_column(column, justify="right" if "ms" in column or column in ("budget", "n") else "left")
    for q in result.queries:
        s = q.summary
        reason = "; ".join(c.reason for c in q.verdict.failures) or ", ".join(
            q.measurement.plan.indexes_used if q.measurement.plan else ()
        )
        style = {"pass": "green", "warn": "yellow", "fail": "bold red"}[q.verdict.status]
        table.add_row(
            q.name,
            f"{s.p50:.2f}" if s else "-",
            f"{s.p95:.2f} {s.p95_ci_text()}" if s else "-",
            f"{q.budget_ms:g}",
            str(s.n) if s else "0",
            f"[{style}]{q.verdict.status}[/]",
            reason,
        )
    out.print(table)


# -- load -----------------------------------------------------------------------------------------


class _LoadDisplay:
    """Live progress while Locust runs: a status line on a terminal, else a line every few seconds (stderr)."""

    EVERY_S = 5.0

    def __init__(self) -> None:
        self.status = err.status("starting Locust") if err.is_terminal else None
        if self.status:
            self.status.start()
        self.last = float("-inf")

    def tick(self, snap: LoadSnapshot) -> None:
        p95 = f"{snap.p95_ms:.1f} ms" if snap.p95_ms is not None else "-"
        rate = f"{snap.requests_per_s:,.1f}" + (f"/{snap.target_rps:g}" if snap.target_rps else "")
        line = (
            f"load {snap.elapsed_s:.0f}/{snap.duration_s:.0f} s  {rate} req/s  "
            f"p95 {p95}{'' if snap.exact else ' (Locust, rounded)'}  {snap.requests:,} requests  "
            f"failures {snap.failures:,}"
        )
        if snap.target_rps:
            lag = f"{snap.lag_p95_ms:.1f} ms" if snap.lag_p95_ms is not None else "-"
            line += f"  lag p95 {lag}  late {snap.late:,}  dropped {snap.dropped:,}"
        if self.status:
            self.status.update(line)
        elif time.monotonic() - self.last >= self.EVERY_S:
            self.last = time.monotonic()
            err.print(line, markup=False)

    def message(self, text: str) -> None:
        err.print(text, markup=False)

    def close(self) -> None:
        if self.status:
            self.status.stop()


@cli.command("load")
@workload_options
@click.option(
    "--users", "-u", default=10, show_default=True, type=click.IntRange(1, MAX_USERS), help="Concurrent users."
)
@click.option(
    "--spawn-rate",
    "-r",
    type=click.FloatRange(min=0, min_open=True, max=MAX_SPAWN_RATE),
    help="Users started per second (default: all within the first second).",
)
@click.option(
    "--duration",
    "-t",
    default="60s",
    show_default=True,
    callback=lambda ctx, param, value: _bounded_duration(value),
    help="Run time: 30s, 5m, 1h30m (at most 24h).",
)
@click.option("--rate", help="Open loop: requests/s across all users (--users is then the connection pool).")
@click.option("--arrival", default="poisson", show_default=True, help="Open-loop arrivals: poisson or constant.")
@click.option(
    "--latency-limit",
    metavar="MS",
    help="Open loop: drop a request still waiting for a connection MS after its intended start (pgbench's).",
)
@click.option("--sweep", help="Capacity sweep: users=1,2,4,8 or rate=50,100,200 (one run per step).")
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_PROCESSES),
    help="Locust processes on this machine (a master + K workers).",
)
@click.option("--master", "role", flag_value="master", help="Be the master of workers on other machines.")
@click.option("--worker", "role", flag_value="worker", help="Be a worker of a --master on another machine.")
@click.option("--master-host", default="127.0.0.1", show_default=True, help="The master's address (--worker).")
@click.option(
    "--master-port", default=5557, show_default=True, type=click.IntRange(1, 65535), help="The master's port."
)
@click.option(
    "--expect-workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, MAX_WORKERS),
    help="Workers the --master waits for before starting.",
)
@click.option("--web", is_flag=True, help="Open Locust's web UI on 127.0.0.1 (same catalog and database).")
@click.option(
    "--web-port", default=8089, show_default=True, type=click.IntRange(1, 65535), help="The web UI's port (--web)."
)
@click.option(
    "--param-pool",
    default=0,
    show_default=True,
    type=click.IntRange(0, MAX_PARAM_POOL),
    help="Pick among each query's first K parameter sets (0: a fresh draw per request).",
)
@click.option(
    "--p95-budget",
    "p95_budget_ms",
    type=click.FloatRange(min=0, min_open=True, max=MAX_BUDGET_MS),
    help="p95 budget in ms under load for every query (default: each query's budget_ms).",
)
@click.option(
    "--max-failure-rate",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fail a query whose failed requests exceed this fraction.",
)
@click.option(
    "--threshold",
    multiple=True,
    help="k6-style bound on response time in ms, e.g. 'p95<250' or 'daily_active_users:p(99)<400' (repeatable).",
)
@click.option("--abort-on-fail", is_flag=True, help="Stop the run as soon as a --threshold is breached.")
@click.option("--samples", is_flag=True, help="Keep every request's raw timings beside the histograms.")
@click.option("--run-id", callback=lambda ctx, param, value: _safe_run_id(value), help="Report folder name.")
@read_role_option
@database_options
def load_command(
    users: int,
    spawn_rate: float | None,
    duration: str,
    rate: str | None,
    arrival: str,
    latency_limit: str | None,
    sweep: str | None,
    processes: int,
    role: str | None,
    master_host: str,
    master_port: int,
    expect_workers: int,
    web: bool,
    web_port: int,
    tier: str,
    seed_value: int,
    strategy: str | None,
    queries_dir: Path | None,
    only: tuple[str, ...],
    param_pool: int,
    p95_budget_ms: float | None,
    max_failure_rate: float,
    threshold: tuple[str, ...],
    abort_on_fail: bool,
    samples: bool,
    no_seed: bool,
    force: bool,
    reports_dir: Path | None,
    run_id: str | None,
    read_role: str | None,
    session: Session,
) -> int:
    """Drive the query catalog with Locust users (headless, bounded), closed loop or at a --rate:
    throughput, response and service time, failures, thresholds, gate; or a capacity --sweep."""
    from harness import api
    from harness.load.runner import LoadProgress

    display = _LoadDisplay()
    try:
        result = api.load(
            dsn=session.dsn_option,
            pg_bin=session.pg_bin,
            users=users,
            spawn_rate=spawn_rate,
            duration=duration,
            rate=rate,
            arrival=arrival,
            latency_limit=latency_limit,
            sweep=sweep,
            processes=processes,
            role=role,  # type: ignore[arg-type]
            master_host=master_host,
            master_port=master_port,
            expect_workers=expect_workers,
            web=web,
            web_port=web_port,
            tier=tier,
            seed=seed_value,
            strategy=strategy,
            queries_dir=queries_dir,
            only=only,
            param_pool=param_pool,
            p95_budget_ms=p95_budget_ms,
            max_failure_rate=max_failure_rate,
            threshold=threshold,
            abort_on_fail=abort_on_fail,
            samples=samples,
            no_seed=no_seed,
            force=force,
            reports_dir=reports_dir,
            run_id=run_id,
            read_role=read_role,
            progress=LoadProgress(message=display.message, tick=display.tick),
        )
    finally:
        display.close()
    err.print(f"reports: {result.directory}")
    from harness.load.sweep import SweepResult

    return _print_sweep(result) if isinstance(result, SweepResult) else _print_load(result)


def _print_load(result: LoadResult) -> int:
    open_loop = result.open_loop
    if open_loop is not None:
        lag = result.total.lag if result.total else None
        out.print(
            f"open loop: target {open_loop.target_rps:g} req/s ({open_loop.arrival}), achieved "
            f"{open_loop.achieved_rps:.1f} req/s; lag p95 {lag.p95 if lag else 0:.2f} ms; late {open_loop.late}, "
            f"dropped {open_loop.dropped}, unsent at stop {open_loop.unsent}"
        )
    for q in [*result.queries, result.total]:
        if q is None:
            continue
        s = q.summary
        p = f"p50 {s.p50:.2f}  p95 {s.p95:.2f}  p99 {s.p99:.2f} ms" if s else "no successful request"
        if s and open_loop is not None and q.service:
            p += f"  (service p95 {q.service.p95:.2f} ms)"
        failures = q.failures + q.dropped
        out.print(f"{q.status.upper():4}  {q.name:28} {q.throughput_rps:9.1f} req/s  {p}  failures {failures}")
        for reason in q.reasons:
            out.print(f"      {reason}", markup=False)
    if result.aborted:
        out.print(f"FAIL: aborted: {result.aborted}", markup=False)
        return 1
    if result.failed:
        out.print(f"FAIL: {', '.join(result.failed)}")
        return 1
    o = result.options
    under = f"{o.rate:g} req/s" if o.rate is not None else f"{o.users} users"
    out.print(f"PASS: {len(result.queries)} queries under {under}")
    return 0


def _print_sweep(result: SweepResult) -> int:
    from harness.report.sweep import headline_text, knee_text

    out.print(f"{result.spec.axis:>8}  {'req/s':>9}  {'p95 ms':>9}  {'service p95':>11}  within budget")
    for step in result.steps:
        p95 = f"{step.p95_ms:9.2f}" if step.p95_ms is not None else f"{'-':>9}"
        service = f"{step.service_p95_ms:11.2f}" if step.service_p95_ms is not None else f"{'-':>11}"
        within = "yes" if step.within_budget else "no"
        out.print(f"{step.value:8g}  {step.throughput_rps:9.1f}  {p95}  {service}  {within}")
    out.print(f"knee: {knee_text(result)}")
    if result.headline is None:
        out.print(f"FAIL: {headline_text(result)}")
        return 1
    out.print(f"capacity: {headline_text(result)}")
    return 0


# -- compare --------------------------------------------------------------------------------------


@cli.command("compare")
@click.argument("runs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strategies", help="Comma-separated index strategies to measure side by side (first = reference).")
@click.option("--tier", default="benchmark", show_default=True, help="Tier for --strategies and the A/B gate.")
@click.option("--seed", "seed_value", default=42, show_default=True, type=SEED)
@click.option("--queries", "queries_dir", type=click.Path(path_type=Path), help="Query catalog directory.")
@click.option("--only", multiple=True, callback=_split_names, help="Only this query (repeatable, or a,b).")
@click.option("--iterations", default=30, show_default=True, type=ITERATIONS)
@click.option(
    "--warmup",
    type=WARMUP,
    help="Untimed runs per query and round (default 5 with --strategies, 2 with --base-ref / --base-queries).",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, MAX_ROUNDS),
    help="Interleaved rounds (default 3 with --strategies, 10 with --base-ref / --base-queries).",
)
@click.option("--base-ref", help="A/B gate: compare this git ref's queries/ and strategies with the working tree's.")
@click.option(
    "--base-queries",
    "base_queries_dir",
    type=click.Path(path_type=Path),
    help="A/B gate: compare this base catalog folder with the working tree's (or --queries).",
)
@click.option(
    "--base-strategies",
    "base_strategies_dir",
    type=click.Path(path_type=Path),
    help="A/B gate: the base side's strategy files (default: the ref's, or the candidate's).",
)
@click.option("--strategy", help="A/B gate: index strategy of both sides (default: the seeded one; baseline).")
@click.option("--what-if", "what_if_sql", multiple=True, help="CREATE INDEX … to evaluate with HypoPG (estimate).")
@click.option(
    "--max-regression",
    default="10%",
    show_default=True,
    help="Tolerated slowdown (typical per-draw ratio) before a significant one fails.",
)
@click.option(
    "--max-work-regression",
    default="20%",
    show_default=True,
    help="Tolerated rise of shared buffers or temp blocks per call.",
)
@click.option(
    "--alpha",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Family-wise false-alarm rate of the timing tests over the whole catalog (Holm).",
)
@click.option(
    "--floor-ms",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0, max=MAX_BUDGET_MS),
    help="Smallest slowdown in ms that can fail (the floor is max(this, 1% of the budget)).",
)
@click.option(
    "--all",
    "measure_all",
    is_flag=True,
    help="A/B gate: measure every query (default: only those whose SQL, draws or indexes changed).",
)
@click.option(
    "--fixed",
    is_flag=True,
    help="A/B gate: measure every round for every query (default: stop a query once its verdict is settled).",
)
@click.option(
    "--max-time",
    "max_time_s",
    type=click.FloatRange(min=0, min_open=True, max=86_400),
    help="A/B gate: stop measuring after this many seconds and judge what was measured (marked cut short).",
)
@click.option("--allow-mismatch", is_flag=True, help="Two-run mode: compare despite fingerprint differences.")
@click.option("--no-seed", is_flag=True, help="Use the data as it is (your own database); never seed.")
@click.option("--force", is_flag=True, help="Seed even into a database holding tables harness did not create.")
@click.option("--reports-dir", type=click.Path(path_type=Path), help="Parent folder of reports/compare-<id>/.")
@maintenance_options
@read_role_option
@database_options
def compare_command(
    runs: tuple[Path, ...],
    strategies: str | None,
    tier: str,
    seed_value: int,
    queries_dir: Path | None,
    only: tuple[str, ...],
    iterations: int,
    warmup: int | None,
    rounds: int | None,
    base_ref: str | None,
    base_queries_dir: Path | None,
    base_strategies_dir: Path | None,
    strategy: str | None,
    what_if_sql: tuple[str, ...],
    max_regression: str,
    max_work_regression: str,
    alpha: float,
    floor_ms: float,
    measure_all: bool,
    fixed: bool,
    max_time_s: float | None,
    allow_mismatch: bool,
    no_seed: bool,
    force: bool,
    reports_dir: Path | None,
    create_extensions: bool,
    analyze: bool,
    read_role: str | None,
    session: Session,
) -> int:
    """Compare two catalog versions interleaved on one server (--base-ref REF / --base-queries DIR: the
    pull-request gate), index strategies on the same data, or two saved runs (BASE/run.json CAND/run.json)."""
    from harness import api, paths
    from harness.compare import CompareProgress
    from harness.report.compare import render_compare_text, render_what_if_text
    from harness.workload import run_id

    reports_dir = reports_dir or paths.reports_dir()
    progress = CompareProgress(
        message=lambda text: err.print(text),
        measured=lambda done, total, query, arm: err.print(f"  [{done}/{total}] {arm}: {query}"),
    )
    name = run_id(prefix="compare-")
    try:
        result = api.compare(
            runs,
            strategies=strategies,
            base_ref=base_ref,
            base_queries_dir=base_queries_dir,
            base_strategies_dir=base_strategies_dir,
            strategy=strategy,
            tier=tier,
            seed=seed_value,
            queries_dir=queries_dir,
            only=only,
            iterations=iterations,
            warmup=warmup,
            rounds=rounds,
            what_if_sql=what_if_sql,
            max_regression=max_regression,
            max_work_regression=max_work_regression,
            alpha=alpha,
            floor_ms=floor_ms,
            measure_all=measure_all,
            fixed=fixed,
            max_time_s=max_time_s,
            allow_mismatch=allow_mismatch,
            no_seed=no_seed,
            force=force,
            reports_dir=reports_dir,
            run_id=name,
            create_extensions=create_extensions,
            analyze=analyze,
            read_role=read_role,
            dsn=session.dsn_option,
            pg_bin=session.pg_bin,
            progress=progress,
        )
    finally:
        if (reports_dir / name).is_dir():
            err.print(f"reports: {reports_dir / name}")
    if isinstance(result, list):
        out.print(render_what_if_text(result), markup=False)
        return 0
    out.print(render_compare_text(result), markup=False)
    return result.exit_code


@cli.command("grow")
@click.option(
    "--tiers", default="test,dev", show_default=True, help="Tiers to measure, smallest first (names or files)."
)
@click.option("--strategy", help="Index strategy at every tier (default: the seeded one; baseline when seeding).")
@click.option(
    "--target-rows", metavar="TABLE=N", help="Fail a query forecast to cross its budget below N rows of TABLE."
)
@click.option("--target-tier", metavar="TIER", help="Fail a query forecast to cross its budget below this tier's size.")
@click.option("--seed", "seed_value", default=42, show_default=True, type=int, help="Data and parameter seed.")
@click.option("--queries", "queries_dir", type=click.Path(path_type=Path), help="Query catalog directory.")
@click.option("--only", multiple=True, callback=_split_names, help="Only this query (repeatable, or a,b).")
@click.option(
    "--iterations", default=30, show_default=True, type=click.IntRange(min=2), help="Timed runs per query and tier."
)
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(min=0), help="Untimed runs first.")
@click.option(
    "--budget",
    "budget_ms",
    type=click.FloatRange(min=0, min_open=True, max=MAX_BUDGET_MS),
    help="p95 budget in ms for every query.",
)
@click.option("--force", is_flag=True, help="Seed even into a database holding tables harness did not create.")
@click.option("--reports-dir", type=click.Path(path_type=Path), help="Parent folder of reports/grow-<id>/.")
@click.option("--run-id", callback=lambda ctx, param, value: _safe_run_id(value), help="Report folder name.")
@read_role_option
@database_options
def grow_command(
    tiers: str,
    strategy: str | None,
    target_rows: str | None,
    target_tier: str | None,
    seed_value: int,
    queries_dir: Path | None,
    only: tuple[str, ...],
    iterations: int,
    warmup: int,
    budget_ms: float | None,
    force: bool,
    reports_dir: Path | None,
    run_id: str | None,
    read_role: str | None,
    session: Session,
) -> int:
    """Measure every query at each tier, fit p95 and buffers against rows per plan regime, forecast where p95
    crosses its budget (extrapolated), and fail on a crossing below --target-rows / --target-tier."""
    from harness import api, paths
    from harness.grow import GrowProgress
    from harness.workload import run_id as new_run_id

    reports_dir = reports_dir or paths.reports_dir()
    run_id = new_run_id(run_id, prefix="grow-")
    display = _RunDisplay()
    try:
        result = api.grow(
            tiers=tiers,
            strategy=strategy,
            target_rows=target_rows,
            target_tier=target_tier,
            seed=seed_value,
            queries_dir=queries_dir,
            only=only,
            iterations=iterations,
            warmup=warmup,
            budget_ms=budget_ms,
            force=force,
            reports_dir=reports_dir,
            run_id=run_id,
            read_role=read_role,
            dsn=session.dsn_option,
            pg_bin=session.pg_bin,
            progress=GrowProgress(
                tier_started=lambda i, n, name: err.print(f"tier {i + 1}/{n}: {name}", markup=False),
                run=display.progress(),
            ),
        )
    finally:
        display.close()
        if (reports_dir / run_id).is_dir():
            err.print(f"reports: {reports_dir / run_id}")
    from harness.report.grow import render_grow_text

    out.print(render_grow_text(result), markup=False)
    if result.failed:
        for text in (text for q in result.failed for text in q.failures):
            out.print(f"FAIL: {text}", markup=False)
        return 1
    gate = f"target {result.target.label}" if result.target else "no target given"
    out.print(f"PASS: {len(result.queries)} queries ({gate})")
    return 0


@cli.command("import-benchmark")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "destination", type=click.Path(path_type=Path), help="Run folder (default reports/<name>).")
def import_benchmark_command(source: Path, destination: Path | None) -> int:
    """Turn a pytest-benchmark JSON written with --harness-tier into a run.json for `harness compare`."""
    from harness import paths
    from harness.benchmark_import import write_imported_run

    run_json = write_imported_run(source, destination or paths.reports_dir() / f"pytest-{source.stem}")
    out.print(f"wrote {run_json}")
    return 0


# -- plumbing -------------------------------------------------------------------------------------


class _table_progress:
    """A rich progress bar per table, with rows/s, as a seeding progress callback."""

    def __enter__(self) -> Callable[[str, int, int], None]:
        self.progress = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err,
            transient=not err.is_terminal,
        )
        self.tasks: dict[str, Any] = {}
        self.progress.start()
        return self.update

    def update(self, table: str, done: int, total: int) -> None:
        if table not in self.tasks:
            self.tasks[table] = self.progress.add_task(table, total=total, rate="")
        task = self.tasks[table]
        elapsed = self.progress.tasks[task].elapsed or 0
        rate = f"{done / elapsed:,.0f} rows/s" if elapsed > 0 and done else ""
        self.progress.update(task, completed=done, rate=rate)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("terminated (SIGTERM)", exit_code=143)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, map every failure to its exit code, never show a traceback by default."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="harness", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Abort:
        err.print("interrupted")
        return EXIT_INTERRUPTED
    except click.BadParameter as exc:  # a value out of its range or choices: one line, like every bad input
        err.print(f"Error: {exc.format_message()}", markup=False)
        return EXIT_BAD_INPUT
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code != 1 else EXIT_BAD_INPUT
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted: partial results kept, server stopped")
        return EXIT_INTERRUPTED
    except Interrupted as exc:
        err.print(f"interrupted: {exc}")
        return exc.exit_code
    except HarnessError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"Error: {exc}", markup=False)
        return exc.exit_code
    except OSError as exc:  # the machine failed us: a full disk, a read-only or missing folder
        if debug:
            traceback.print_exc()
        err.print(f"Error: {_os_error_line(exc)}", markup=False)
        return EXIT_ENVIRONMENT
    except Exception as exc:  # a bug: still one line, and never exit 1, which CI reads as "slower"
        if debug:
            traceback.print_exc()
        detail = db.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        err.print(
            f"Error: internal error ({type(exc).__name__}: {detail}); "
            "rerun with --debug for the traceback and please report it",
            markup=False,
        )
        return EXIT_ENVIRONMENT


def _os_error_line(exc: OSError) -> str:
    """``<path>: <reason>; <fix>`` for an operating-system failure the harness did not anticipate."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}; {os_error_fix(exc)}"


if __name__ == "__main__":
    sys.exit(main())
