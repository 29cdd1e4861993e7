"""`harness load`: seed if needed, run the packaged locustfile headless and bounded, merge our timings, gate.

Locust runs as a subprocess (it must own gevent's monkey-patching from its first import, and ``--processes``
forks). Every Locust process writes its exact per-request timings to ``<report>/samples/``; the runner
merges them into per-query throughput and p50/p95/p99 (``harness.stats``), judges them against the p95
budgets and the maximum failure rate with the gate ``harness run`` uses (``harness.verdicts.judge_load``),
and writes the report folder (``harness.report.load``).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.catalog import Catalog
from harness.db import connect
from harness.errors import EnvironmentFailure, InputError
from harness.load.results import LoadOptions, LoadQueryResult, LoadResult
from harness.load.samples import QuerySamples, read_samples, timeline
from harness.report.load import write_load_reports
from harness.roles import Access, measuring_warning
from harness.stats import summarize
from harness.verdicts import judge_load
from harness.workload import Workload, check_run_id, incomplete_reason, now_iso, run_id

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
TICK_S = 1.0  # progress snapshots: Locust rewrites its stats CSV every second
STARTUP_ALLOWANCE_S = 60.0  # locust start-up, the green check, and stopping, on top of the run time
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


@dataclass(frozen=True)
class LoadSnapshot:
    """The load so far, from Locust's periodic stats (its latencies are rounded: the report's are exact)."""

    elapsed_s: float
    duration_s: float
    requests: int = 0
    failures: int = 0
    requests_per_s: float = 0.0
    p95_ms: float | None = None


@dataclass(frozen=True)
class LoadProgress:
    """Callbacks for a display: a message (seeding, starting), then a snapshot about every second."""

    message: Callable[[str], None] = lambda text: None
    tick: Callable[[LoadSnapshot], None] = lambda snapshot: None


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
    if options.run_id is not None:
        check_run_id(options.run_id)
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
    catalog = Workload.of(options).catalog
    if not any(q.weight > 0 for q in catalog.queries):
        raise InputError(f"no query with weight > 0 in {catalog.directory}: nothing to run")
    return catalog


def run_load(
    dsn: str,
    options: LoadOptions,
    progress: LoadProgress | None = None,
    database_label: str = "",
    write: Callable[[LoadResult], None] | None = None,
    access: Access | None = None,
) -> LoadResult:
    """Seed if needed, run Locust for ``duration_s``, merge every process's timings, judge, report.

    ``write`` (default: ``harness.report.load.write_load_reports``) is called once at the end, also when
    the run was interrupted or Locust failed, so partial results are kept. Raises InputError (exit 2) for
    bad options, EnvironmentFailure (exit 3) when the database or Locust failed.

    The Locust users connect through ``access.reader_dsn`` (the measuring role); while they run, the shared
    data lock keeps seeds and strategy switches out.
    """
    progress = progress or LoadProgress()
    catalog = validate(options)
    workload = Workload.of(options, dsn, database_label)
    name, directory = _new_run_directory(options)
    result = LoadResult(name, now_iso(), options, directory)
    write = write or (lambda r: write_load_reports(r, r.directory))
    access = access or Access.owner_only(dsn)
    held = contextlib.ExitStack()
    try:
        if options.role != "master":
            manifest = workload.prepare_and_hold(held, "load", progress.message)
            result.environment = workload.environment(manifest)
            warning = measuring_warning(access)
            if warning:
                result.warnings.append(warning)
                progress.message(f"warning: {warning}")
        directory.mkdir(parents=True, exist_ok=True)
        started = time.time()
        result.locust_exit_code = _run_locust(access.reader_dsn, options, directory, progress)
        _collect(result, catalog, read_samples(directory / "samples"), started)
        if options.role != "master" and (result.locust_exit_code or (result.total and result.total.failures)):
            _probe(dsn)  # failures because the database went away are exit 3, not a verdict
        if result.locust_exit_code and not (result.total and (result.total.requests or result.total.failures)):
            raise EnvironmentFailure(f"locust stopped before any request; see {directory / 'locust.log'}")
        result.complete = True
    except BaseException as exc:
        result.incomplete_reason = incomplete_reason(exc)
        if not result.queries and directory.exists():  # keep whatever Locust measured before it stopped
            _collect(result, catalog, read_samples(directory / "samples"), _started_epoch(result))
        raise
    finally:
        held.close()
        result.finished_at = now_iso()
        if directory.exists():
            write(result)
    return result


def _probe(dsn: str) -> None:
    """DatabaseError when the database cannot be reached any more."""
    with connect(dsn, application_name="harness-probe") as conn:
        conn.execute("SELECT 1")


def _new_run_directory(options: LoadOptions) -> tuple[str, Path]:
    """reports/<run-id>/, never one holding an earlier run's samples (they would be merged into this one)."""
    base = run_id(options.run_id, prefix="load-")
    parent = options.reports_dir or paths.reports_dir()
    name, n = base, 1
    while any((parent / name / "samples").glob("samples-*.json")):
        n += 1
        name = f"{base}-{n}"
    return name, parent / name


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
        next_tick = started + TICK_S
        try:
            while process.poll() is None:
                elapsed = time.monotonic() - started
                if limit is not None and elapsed > limit:
                    _stop(process, signal.SIGKILL)
                    raise EnvironmentFailure(f"locust did not stop {limit:.0f} s after starting; see {log_path}")
                if time.monotonic() >= next_tick:
                    progress.tick(snapshot(directory, min(elapsed, options.duration_s), options.duration_s))
                    next_tick += TICK_S
                time.sleep(0.2)
        except BaseException:
            _stop(process, signal.SIGINT)  # Locust stops its users and writes what it has
            raise
    code = process.returncode
    if code in (0, 1):
        return code
    reason = _refusal(log_path) or f"locust exited with code {code}; see {log_path}"
    raise (InputError if code == 2 else EnvironmentFailure)(reason)


def snapshot(directory: Path, elapsed_s: float, duration_s: float) -> LoadSnapshot:
    """The load so far from Locust's ``locust_stats.csv`` "Aggregated" row (zeros before it is written)."""
    try:
        with open(directory / "locust_stats.csv", newline="") as file:
            row = next((r for r in csv.DictReader(file) if r.get("Name") == "Aggregated"), None)
    except OSError:
        row = None
    if row is None:
        return LoadSnapshot(elapsed_s, duration_s)
    try:
        requests, failures = int(row["Request Count"]), int(row["Failure Count"])
        p95 = float(row["95%"]) if row.get("95%") not in (None, "", "N/A") and requests else None
        return LoadSnapshot(elapsed_s, duration_s, requests, failures, float(row["Requests/s"]), p95)
    except (KeyError, ValueError):  # a half-written file: the next tick reads it whole
        return LoadSnapshot(elapsed_s, duration_s)


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
    """One query's (or the total's) load result, judged by the gate ``harness run`` uses (``verdicts``)."""
    summary = summarize(samples.ms) if samples.ms else None
    verdict = judge_load(
        name,
        summary,
        budget,
        samples.failures,
        samples.errors,
        users=options.users,
        max_failure_rate=options.max_failure_rate,
        on_master=options.role == "master",
    )
    return LoadQueryResult(
        name=name,
        weight=weight,
        budget_ms=budget,
        requests=len(samples.ms),
        failures=samples.failures,
        throughput_rps=len(samples.ms) / duration,
        summary=summary,
        errors=dict(samples.errors.most_common()),
        status=verdict.status,
        reasons=tuple(c.reason for c in verdict.failures) + verdict.warnings,
    )
