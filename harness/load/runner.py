"""`harness load`: seed if needed, run the packaged locustfile headless and bounded, merge our timings, gate.

Locust runs as a subprocess (it must own gevent's monkey-patching from its first import, and ``--processes``
forks). Every Locust process writes its exact per-request timings to ``<report>/samples/``; the runner
merges them into per-query throughput and p50/p95/p99 (``harness.stats``), judges them against the p95
budgets and the maximum failure rate, and writes the report folder (``harness.load.report``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness import paths
from harness.catalog import Catalog
from harness.errors import EnvironmentFailure, InputError
from harness.load.samples import QuerySamples, Timeline, read_samples, timeline
from harness.results import Environment, now_iso
from harness.stats import Summary, summarize

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MIN_SAMPLES_FOR_P95 = 20
STARTUP_ALLOWANCE_S = 60.0  # locust start-up, the green check, and stopping, on top of the run time
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
Role = Literal["local", "master", "worker"]


@dataclass(frozen=True)
class LoadOptions:
    users: int = 10
    spawn_rate: float | None = None  # users started per second; None: all of them within the first second
    duration_s: int = 60
    processes: int = 1  # Locust processes on this machine (>1: --processes K, a master and K workers)
    role: Role = "local"  # "master" / "worker": one side of a run spread over several machines
    master_host: str = "127.0.0.1"  # for --worker
    master_port: int = 5557
    expect_workers: int = 1  # for --master
    tier: str = "test"
    seed: int = 42
    strategy: str | None = None
    queries_dir: Path | None = None
    only: tuple[str, ...] = ()
    param_pool: int = 0  # >0: draw among the first K parameter sets of each query (what a pgbench replay uses)
    p95_budget_ms: float | None = None  # None: each query's budget_ms
    max_failure_rate: float = 0.01
    seed_if_needed: bool = True
    force: bool = False
    reports_dir: Path | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class LoadQueryResult:
    """One query under load: our exact timings, its failures, and the gate's verdict."""

    name: str
    weight: int
    budget_ms: float | None  # None: not gated on p95 (the total, without a global --p95-budget)
    requests: int  # completed without error
    failures: int
    throughput_rps: float
    summary: Summary | None
    errors: dict[str, int]
    status: Literal["pass", "fail", "warn"]
    reasons: tuple[str, ...]

    @property
    def failure_rate(self) -> float:
        total = self.requests + self.failures
        return self.failures / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary.as_dict() if self.summary else None
        data["failure_rate"] = self.failure_rate
        return data


@dataclass
class LoadResult:
    run_id: str
    started_at: str
    options: LoadOptions
    directory: Path
    environment: Environment | None = None
    queries: list[LoadQueryResult] = field(default_factory=list)
    total: LoadQueryResult | None = None
    duration_s: float = 0.0  # first request start to last request start
    timeline: Timeline | None = None
    locust_exit_code: int | None = None
    complete: bool = False
    incomplete_reason: str | None = None
    finished_at: str | None = None

    @property
    def failed(self) -> list[str]:
        """Names of the queries that failed the gate (what exit 1 names)."""
        return [q.name for q in self.queries if q.status == "fail"]

    @property
    def status(self) -> str:
        if self.failed:
            return "fail"
        if not self.complete:
            return "incomplete"
        return "warn" if any(q.status == "warn" for q in self.queries) else "pass"


@dataclass(frozen=True)
class LoadProgress:
    """Callbacks for a display: a message (seeding, starting), then ticks while Locust runs."""

    message: Callable[[str], None] = lambda text: None
    tick: Callable[[float, float], None] = lambda elapsed_s, duration_s: None


def parse_duration(text: str) -> int:
    """Seconds from Locust-style ``90``, ``90s``, ``5m``, ``1h30m``; InputError otherwise."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise InputError(f"invalid duration {text!r}: use e.g. 30s, 5m or 1h30m")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total < 1:
        raise InputError(f"duration {text!r} must be at least 1s")
    return total


def validate(options: LoadOptions) -> Catalog:
    """Check the options and the catalog before any database work (bad input is exit 2, not 3)."""
    from harness.catalog import load_catalog
    from harness.check import refuse_unrunnable

    if options.users < 1:
        raise InputError(f"--users must be at least 1, not {options.users}")
    if options.spawn_rate is not None and options.spawn_rate <= 0:
        raise InputError(f"--spawn-rate must be positive, not {options.spawn_rate}")
    if options.processes < 1:
        raise InputError(f"--processes must be at least 1, not {options.processes}")
    if options.processes > 1 and options.role != "local":
        raise InputError("--processes runs a master and its workers on this machine: drop --master/--worker")
    if not 0 <= options.max_failure_rate <= 1:
        raise InputError(f"--max-failure-rate is a fraction between 0 and 1, not {options.max_failure_rate}")
    catalog = load_catalog(options.queries_dir or paths.queries_dir()).select(list(options.only))
    refuse_unrunnable(catalog)
    if not any(q.weight > 0 for q in catalog.queries):
        raise InputError(f"no query with weight > 0 in {catalog.directory}: nothing to run")
    return catalog


def run_load(
    dsn: str,
    options: LoadOptions,
    progress: LoadProgress | None = None,
    database_label: str = "",
    write: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Seed if needed, run Locust for ``duration_s``, merge every process's timings, judge, report.

    ``write`` (default: ``harness.load.report.write_load_reports``) is called once at the end, also when
    the run was interrupted or Locust failed, so partial results are kept. Raises InputError (exit 2) for
    bad options, EnvironmentFailure (exit 3) when the database or Locust failed.
    """
    from harness.db import redact
    from harness.load.report import write_load_reports
    from harness.run import Progress, RunOptions, fingerprint, prepare_database

    progress = progress or LoadProgress()
    catalog = validate(options)
    run_id, directory = _new_run_directory(options)
    result = LoadResult(run_id, now_iso(), options, directory)
    write = write or (lambda r: write_load_reports(r, r.directory))
    try:
        if options.role != "master":
            run_options = RunOptions(
                tier=options.tier,
                seed=options.seed,
                strategy=options.strategy,
                seed_if_needed=options.seed_if_needed,
                force=options.force,
            )
            manifest = prepare_database(dsn, run_options, Progress(seeding=progress.message))
            result.environment = fingerprint(dsn, manifest, database_label or redact(dsn))
        directory.mkdir(parents=True, exist_ok=True)
        started = time.time()
        result.locust_exit_code = _run_locust(dsn, options, directory, progress)
        _collect(result, catalog, read_samples(directory / "samples"), started)
        if options.role != "master" and (result.locust_exit_code or (result.total and result.total.failures)):
            _probe(dsn)  # failures because the database went away are exit 3, not a verdict
        if result.locust_exit_code and not (result.total and (result.total.requests or result.total.failures)):
            raise EnvironmentFailure(f"locust stopped before any request; see {directory / 'locust.log'}")
        result.complete = True
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        result.incomplete_reason = "interrupted (SIGINT)" if interrupted else f"stopped: {type(exc).__name__}: {exc}"
        if not result.queries and directory.exists():  # keep whatever Locust measured before it stopped
            _collect(result, catalog, read_samples(directory / "samples"), _started_epoch(result))
        raise
    finally:
        result.finished_at = now_iso()
        if directory.exists():
            write(result)
    return result


def _probe(dsn: str) -> None:
    """DatabaseError when the database cannot be reached any more."""
    from harness.db import connect

    with connect(dsn, application_name="harness-probe") as conn:
        conn.execute("SELECT 1")


def _new_run_directory(options: LoadOptions) -> tuple[str, Path]:
    """reports/<run-id>/, never one holding an earlier run's samples (they would be merged into this one)."""
    base = options.run_id or "load-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    parent = options.reports_dir or paths.reports_dir()
    run_id, n = base, 1
    while any((parent / run_id / "samples").glob("samples-*.json")):
        n += 1
        run_id = f"{base}-{n}"
    return run_id, parent / run_id


def _started_epoch(result: LoadResult) -> float:
    return dt.datetime.fromisoformat(result.started_at).timestamp()


def locust_command(options: LoadOptions, directory: Path) -> list[str]:
    """The Locust command line for these options (headless, bounded, CSV + HTML into the report folder)."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--only-summary"]
    if options.role == "worker":
        return [
            *command,
            "--worker",
            "--master-host",
            options.master_host,
            "--master-port",
            str(options.master_port),
        ]
    spawn_rate = options.spawn_rate or float(options.users)
    command += [
        "--headless",
        "-u",
        str(options.users),
        "-r",
        f"{spawn_rate:g}",
        "-t",
        f"{options.duration_s}s",
        "--csv",
        str(directory / "locust"),
        "--html",
        str(directory / "locust.html"),
    ]
    if options.processes > 1:
        command += ["--processes", str(options.processes)]
    if options.role == "master":
        command += [
            "--master",
            "--master-bind-port",
            str(options.master_port),
            "--expect-workers",
            str(options.expect_workers),
        ]
    return command


def _run_locust(dsn: str, options: LoadOptions, directory: Path, progress: LoadProgress) -> int:
    """Run Locust to completion (or kill it past its time); its exit code, 0 or 1 (failures seen)."""
    env = {
        **os.environ,
        "HARNESS_DSN": dsn,
        "HARNESS_SEED": str(options.seed),
        "HARNESS_ONLY": ",".join(options.only),
        "HARNESS_PARAM_POOL": str(options.param_pool),
        "HARNESS_SAMPLES_DIR": str(directory / "samples"),
        "PYTHONUNBUFFERED": "1",
    }
    if options.queries_dir is not None:
        env["HARNESS_QUERIES"] = str(options.queries_dir.resolve())
    log_path = directory / "locust.log"
    command = locust_command(options, directory)
    who = f"{options.users} users, {options.duration_s} s" + (
        f", {options.processes} processes" if options.processes > 1 else ""
    )
    progress.message(f"load: {who} (locust log: {log_path})")
    limit = options.duration_s + STARTUP_ALLOWANCE_S if options.role != "worker" else None
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        started = time.monotonic()
        try:
            while process.poll() is None:
                elapsed = time.monotonic() - started
                if limit is not None and elapsed > limit:
                    _stop(process, signal.SIGKILL)
                    raise EnvironmentFailure(f"locust did not stop {limit:.0f} s after starting; see {log_path}")
                progress.tick(min(elapsed, options.duration_s), options.duration_s)
                time.sleep(0.2)
        except BaseException:
            _stop(process, signal.SIGINT)  # Locust stops its users and writes what it has
            raise
    code = process.returncode
    if code in (0, 1):
        return code
    reason = _refusal(log_path) or f"locust exited with code {code}; see {log_path}"
    raise (InputError if code == 2 else EnvironmentFailure)(reason)


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal Locust's whole process group (its forked workers too), then wait for it, killing if it hangs."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _refusal(log_path: Path) -> str | None:
    """The locustfile's own one-line reason for refusing to start, if it gave one."""
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("harness load: refusing to run: "):
            return line.removeprefix("harness load: ")
    return None


def _collect(result: LoadResult, catalog: Catalog, samples: dict[str, QuerySamples], started: float) -> None:
    """Per-query and total results from the merged samples, judged against budgets and the failure rate."""
    options = result.options
    starts = [t for q in samples.values() for t in (*q.t, *q.failed_t)]
    t0 = min(starts) if starts else started
    result.duration_s = max(max(starts) - t0, 1e-9) if starts else 0.0
    duration = max(result.duration_s, 1e-9)
    everything = QuerySamples()
    for query in catalog.queries:
        if query.weight <= 0:
            continue
        mine = samples.get(query.name, QuerySamples())
        everything.extend(mine)
        budget = options.p95_budget_ms if options.p95_budget_ms is not None else query.budget_ms
        result.queries.append(_judge(query.name, query.weight, budget, mine, duration, options))
    total_budget = options.p95_budget_ms
    result.total = _judge("total", sum(q.weight for q in result.queries), total_budget, everything, duration, options)
    result.timeline = timeline(samples, t0)


def _judge(
    name: str, weight: int, budget: float | None, samples: QuerySamples, duration: float, options: LoadOptions
) -> LoadQueryResult:
    summary = summarize(samples.ms) if samples.ms else None
    reasons: list[str] = []
    warnings: list[str] = []
    if summary is not None and budget is not None and summary.p95 > budget:
        reasons.append(
            f"p95 {summary.p95:.2f} ms > budget {budget:g} ms under load ({options.users} users, n={summary.n})"
        )
    total = len(samples.ms) + samples.failures
    rate = samples.failures / total if total else 0.0
    if rate > options.max_failure_rate:
        top = "; ".join(f"{message} ×{count}" for message, count in samples.errors.most_common(3))
        reasons.append(
            f"failure rate {rate:.1%} > {options.max_failure_rate:.1%} ({samples.failures} of {total}: {top})"
        )
    if total == 0 and options.role == "master":
        warnings.append(
            "the workers keep the exact timings (their reports/<run-id>/load.md); "
            "Locust's rounded view is in locust_stats.csv here"
        )
    elif total == 0:
        warnings.append("no request completed: lengthen --duration or raise its weight")
    elif summary is not None and summary.n < MIN_SAMPLES_FOR_P95:
        warnings.append(f"only {summary.n} successful requests: a p95 needs at least {MIN_SAMPLES_FOR_P95}")
    status = "fail" if reasons else "warn" if warnings else "pass"
    return LoadQueryResult(
        name=name,
        weight=weight,
        budget_ms=budget,
        requests=len(samples.ms),
        failures=samples.failures,
        throughput_rps=len(samples.ms) / duration,
        summary=summary,
        errors=dict(samples.errors.most_common()),
        status=status,
        reasons=tuple(reasons + warnings),
    )
