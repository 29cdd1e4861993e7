"""`harness load`: seed if needed, run the packaged locustfile headless and bounded, merge our timings, gate.

Locust runs as a subprocess (it must own gevent's monkey-patching from its first import, and ``--processes``
forks). Every Locust process writes its exact timings (HDR histograms, ``harness.load.recorder``) to
``<report>/timings/``; the runner merges them exactly into per-query throughput and response / service
time percentiles, judges them against the p95 budgets, the thresholds and the maximum failure rate with the
gate ``harness run`` uses (``harness.verdicts.judge_load``), and writes the report folder
(``harness.report.load``). ``prepared`` holds one warm database for several runs (a sweep's steps).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness import paths
from harness.catalog import Catalog
from harness.db import connect
from harness.environment import Environment
from harness.errors import EnvironmentFailure, InputError
from harness.load.histograms import encode, percentile_ms, percentiles_ms, summary
from harness.load.recorder import ProcessRecord, QueryRecord, combined, read_processes
from harness.load.results import LoadOptions, LoadQueryResult, LoadResult, OpenLoop, ProcessShare
from harness.load.thresholds import TOTAL, Threshold, check_names
from harness.load.timeline import timeline
from harness.measure import MIN_SAMPLES_FOR_P95
from harness.report.load import write_load_reports
from harness.roles import Access, measuring_warning
from harness.verdicts import judge_load
from harness.workload import Workload, check_run_id, incomplete_reason, now_iso, run_id

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
TICK_S = 1.0  # progress snapshots: Locust rewrites its stats CSV every second
STARTUP_ALLOWANCE_S = 60.0  # locust start-up, the green check, and stopping, on top of the run time
MAX_BINS = 120  # timeline bins of a long run widen so that it keeps about this many
TIMINGS = "timings"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


@dataclass(frozen=True)
class LoadSnapshot:
    """The load so far: exact, from the processes' live timings (``exact``), else Locust's rounded stats
    (a master whose workers run elsewhere). Open loop: the target rate, the schedule lag, drops."""

    elapsed_s: float
    duration_s: float
    requests: int = 0
    failures: int = 0
    requests_per_s: float = 0.0
    p95_ms: float | None = None
    exact: bool = False
    target_rps: float | None = None
    lag_p95_ms: float | None = None
    late: int = 0
    dropped: int = 0


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
    if options.rate is not None and not (math.isfinite(options.rate) and options.rate > 0):
        raise InputError(f"--rate must be a positive number of requests per second, not {options.rate}")
    if options.latency_limit_ms is not None and options.rate is None:
        raise InputError("--latency-limit drops requests that waited too long for their start: it needs --rate")
    if options.latency_limit_ms is not None and options.latency_limit_ms <= 0:
        raise InputError(f"--latency-limit must be a positive number of ms, not {options.latency_limit_ms}")
    if options.web and options.role == "worker":
        raise InputError("--web opens Locust's UI on the master: drop --worker")
    if options.abort_on_fail and not options.thresholds:
        raise InputError("--abort-on-fail stops on a threshold breach: give at least one --threshold")
    catalog = Workload.of(options).catalog
    running = [q.name for q in catalog.queries if q.weight > 0]
    if not running:
        raise InputError(f"no query with weight > 0 in {catalog.directory}: nothing to run")
    check_names(options.thresholds, running)
    return catalog


@dataclass(frozen=True)
class Prepared:
    """A database made ready for load and held (seeds and strategy switches kept out) while it runs."""

    owner_dsn: str
    reader_dsn: str
    environment: Environment | None
    warnings: tuple[str, ...]


@contextlib.contextmanager
def prepared(
    dsn: str, options: LoadOptions, progress: LoadProgress, database_label: str = "", access: Access | None = None
) -> Iterator[Prepared]:
    """Seed if needed and hold the shared data lock until the block ends: one warm database for every run in
    it. The Locust users connect through ``access.reader_dsn`` (the measuring role)."""
    access = access or Access.owner_only(dsn)
    workload = Workload.of(options, dsn, database_label)
    with contextlib.ExitStack() as held:
        environment, warnings = None, []
        if options.role != "master":
            manifest = workload.prepare_and_hold(held, "load", progress.message)
            environment = workload.environment(manifest)
            warning = measuring_warning(access)
            if warning:
                warnings.append(warning)
                progress.message(f"warning: {warning}")
        yield Prepared(dsn, access.reader_dsn, environment, tuple(warnings))


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
    """
    progress = progress or LoadProgress()
    catalog = validate(options)
    with prepared(dsn, options, progress, database_label, access) as ready:
        return run_on(ready, options, catalog, progress, write)


def run_on(
    ready: Prepared,
    options: LoadOptions,
    catalog: Catalog,
    progress: LoadProgress,
    write: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """One load run on a database ``prepared`` holds: Locust, merge, judge, and the report folder."""
    name, directory = _new_run_directory(options)
    result = LoadResult(name, now_iso(), options, directory, ready.environment, warnings=list(ready.warnings))
    write = write or (lambda r: write_load_reports(r, r.directory))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        result.locust_exit_code, result.aborted = _run_locust(ready.reader_dsn, options, directory, progress)
        _collect(result, catalog, read_processes(directory / TIMINGS))
        if options.role != "master" and (result.locust_exit_code or (result.total and result.total.failures)):
            _probe(ready.owner_dsn)  # failures because the database went away are exit 3, not a verdict
        if result.locust_exit_code and not (result.total and (result.total.requests or result.total.failures)):
            raise EnvironmentFailure(f"locust stopped before any request; see {directory / 'locust.log'}")
        result.complete = result.aborted is None
        result.incomplete_reason = f"aborted: {result.aborted}" if result.aborted else None
    except BaseException as exc:
        result.incomplete_reason = incomplete_reason(exc)
        if not result.queries and directory.exists():  # keep whatever Locust measured before it stopped
            _collect(result, catalog, read_processes(directory / TIMINGS))
        raise
    finally:
        result.finished_at = now_iso()
        if directory.exists():
            write(result)
    return result


def _probe(dsn: str) -> None:
    """DatabaseError when the database cannot be reached any more."""
    with connect(dsn, application_name="harness-probe") as conn:
        conn.execute("SELECT 1")


def _new_run_directory(options: LoadOptions) -> tuple[str, Path]:
    """reports/<run-id>/, never one holding an earlier run's timings (they would be merged into this one)."""
    base = run_id(options.run_id, prefix="load-")
    parent = options.reports_dir or paths.reports_dir()
    name, n = base, 1
    while any((parent / name / TIMINGS).glob("*.json")):
        n += 1
        name = f"{base}-{n}"
    return name, parent / name


def locust_command(options: LoadOptions, directory: Path) -> list[str]:
    """The Locust command line for these options (headless and bounded, or the web UI on 127.0.0.1 with
    ``web``; CSV + HTML into the report folder)."""
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
    bounded = ["--headless", "-t", f"{options.duration_s}s"]
    web = ["--web-host", "127.0.0.1", "--web-port", str(options.web_port)]  # the UI's form starts at -u / -r
    command += [
        *(web if options.web else bounded),
        "-u",
        str(options.users),
        "-r",
        f"{spawn_rate:g}",
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


def locust_environment(dsn: str, options: LoadOptions, directory: Path) -> dict[str, str]:
    """The locustfile's settings (Locust owns the command line, so they go through the environment)."""
    env = {
        **os.environ,
        "HARNESS_DSN": dsn,
        "HARNESS_SEED": str(options.seed),
        "HARNESS_ONLY": ",".join(options.only),
        "HARNESS_PARAM_POOL": str(options.param_pool),
        "HARNESS_TIMINGS_DIR": str(directory / TIMINGS),
        "HARNESS_BIN_S": str(max(1, math.ceil(options.duration_s / MAX_BINS))),
        "HARNESS_SAMPLES": "1" if options.samples else "",
        "HARNESS_RATE": f"{options.rate!r}" if options.rate is not None else "",
        "HARNESS_ARRIVAL": options.arrival.value,
        "HARNESS_PROCESSES": str(options.processes),
        "HARNESS_LATENCY_LIMIT_MS": f"{options.latency_limit_ms!r}" if options.latency_limit_ms else "",
        "HARNESS_SEND_TIMINGS": "1" if options.role == "worker" else "",
        "PYTHONUNBUFFERED": "1",
    }
    if options.queries_dir is not None:
        env["HARNESS_QUERIES"] = str(options.queries_dir.resolve())
    return env


def _run_locust(dsn: str, options: LoadOptions, directory: Path, progress: LoadProgress) -> tuple[int, str | None]:
    """Run Locust to completion (or kill it past its time): its exit code (0 or 1: failures seen), and the
    threshold breach that stopped it early under ``abort_on_fail`` (else None)."""
    log_path = directory / "locust.log"
    command = locust_command(options, directory)
    load = f"{options.rate:g} req/s ({options.arrival}) on {options.users} connections" if options.rate else ""
    who = (
        (load or f"{options.users} users")
        + f", {options.duration_s} s"
        + (f", {options.processes} processes" if options.processes > 1 else "")
    )
    if options.web:
        who = f"Locust's web UI at http://127.0.0.1:{options.web_port}: start and stop tests there; Ctrl-C here ends "
        who += "the session and writes the report of every test run in it"
    progress.message(f"load: {who} (locust log: {log_path})")
    limit = options.duration_s + STARTUP_ALLOWANCE_S if options.role != "worker" and not options.web else None
    aborted = None
    env = locust_environment(dsn, options, directory)
    with open(log_path, "w") as log:
        process = _start(command, log, env)
        started = time.monotonic()
        next_tick = started + TICK_S
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a Ctrl-C from now on stops Locust
            while process.poll() is None:
                elapsed = time.monotonic() - started
                if limit is not None and elapsed > limit:
                    _stop(process, signal.SIGKILL)
                    raise EnvironmentFailure(f"locust did not stop {limit:.0f} s after starting; see {log_path}")
                if time.monotonic() >= next_tick and not options.web:
                    live = read_processes(directory / TIMINGS, "live-*.json")
                    progress.tick(live_snapshot(directory, live, options, min(elapsed, options.duration_s)))
                    next_tick += TICK_S
                    breach = first_breach(options.thresholds, combined(live)) if options.abort_on_fail else None
                    if breach:
                        aborted = f"{breach} after {elapsed:.0f} s"
                        progress.message(f"aborting: {aborted}")
                        _stop(process, signal.SIGINT)
                        break
                time.sleep(0.2)
        except KeyboardInterrupt:
            _stop(process, signal.SIGINT)  # Locust stops its users and writes what it has
            if not options.web:  # in the web UI, Ctrl-C is how a session ends
                raise
        except BaseException:
            _stop(process, signal.SIGINT)
            raise
    code = process.returncode
    if code in (0, 1) or aborted:
        return code, aborted
    reason = _refusal(log_path) or f"locust exited with code {code}; see {log_path}"
    raise (InputError if code == 2 else EnvironmentFailure)(reason)


def _start(command: list[str], log: IO[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start Locust in its own session with SIGINT held back until the caller's ``try`` can stop it: a Ctrl-C
    landing while Popen forks must not leave a Locust running unseen (the child unblocks it for itself)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}),
        )
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        raise


def first_breach(thresholds: tuple[Threshold, ...], records: dict[str, QueryRecord]) -> str | None:
    """``"<query>: threshold … breached: …"`` for the first threshold a query with enough requests for a
    p95 crosses (an early abort never acts on a handful of requests), else None."""
    total = QueryRecord()
    for record in records.values():
        total.add(record)
    for name, record in [*sorted(records.items()), (TOTAL, total)]:
        if record.requests < MIN_SAMPLES_FOR_P95:
            continue
        for threshold in thresholds:
            reason = threshold.breach(record.response) if threshold.applies_to(name) else None
            if reason:
                return f"{name}: {reason}"
    return None


def live_snapshot(directory: Path, live: list[ProcessRecord], options: LoadOptions, elapsed_s: float) -> LoadSnapshot:
    """The load so far: exact from the processes' live timings, else from Locust's rounded stats."""
    if not live:
        return snapshot(directory, elapsed_s, options.duration_s)
    total = QueryRecord()
    for record in combined(live).values():
        total.add(record)
    since_first = time.time() - total.first if total.first is not None else 0.0
    return LoadSnapshot(
        elapsed_s,
        options.duration_s,
        requests=total.requests,
        failures=total.failures,
        requests_per_s=(total.requests + total.failures) / since_first if since_first > 0 else 0.0,
        p95_ms=percentile_ms(total.response, 95) if total.requests else None,
        exact=True,
        target_rps=options.rate,
        lag_p95_ms=percentile_ms(total.lag, 95) if options.rate and total.requests else None,
        late=total.late,
        dropped=total.dropped,
    )


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


def _collect(result: LoadResult, catalog: Catalog, processes: list[ProcessRecord]) -> None:
    """Per-query and total results from every process's timings, judged against budgets, thresholds and
    the failure rate; the open-loop figures; each process's share."""
    options = result.options
    records = combined(processes)
    starts = [t for q in records.values() for t in (q.first, q.last) if t is not None]
    result.duration_s = max(max(starts) - min(starts), 1e-9) if starts else 0.0
    duration = max(result.duration_s, 1e-9)
    everything = QueryRecord()
    for query in catalog.queries:
        if query.weight <= 0:
            continue
        mine = records.get(query.name, QueryRecord())
        everything.add(mine)
        budget = options.p95_budget_ms if options.p95_budget_ms is not None else query.budget_ms
        result.queries.append(_judge(query.name, query.weight, budget, mine, duration, options))
    weight = sum(q.weight for q in result.queries)
    result.total = _judge(TOTAL, weight, options.p95_budget_ms, everything, duration, options)
    result.timeline = timeline(records, max(1, math.ceil(options.duration_s / MAX_BINS)))
    result.processes = [
        ProcessShare(
            p.pid,
            p.host,
            p.rate_per_s,
            sum(q.requests for q in p.queries.values()),
            {name: encode(q.response) for name, q in sorted(p.queries.items())},
        )
        for p in processes
    ]
    if options.rate is not None:
        result.open_loop = OpenLoop(
            target_rps=options.rate,
            arrival=options.arrival,
            intended=sum(p.intended for p in processes),
            sent=everything.requests + everything.failures,
            late=everything.late,
            dropped=everything.dropped,
            unsent=sum(p.unsent for p in processes),
            duration_s=result.duration_s,
        )


def _judge(
    name: str, weight: int, budget: float | None, record: QueryRecord, duration: float, options: LoadOptions
) -> LoadQueryResult:
    """One query's (or the total's) load result, judged by the gate ``harness run`` uses (``verdicts``):
    the response time's p95 (from the intended start under --rate); dropped requests count as failed."""
    response = summary(record.response)
    errors = dict(record.errors)
    if record.dropped:
        errors[f"dropped: no connection free within the {options.latency_limit_ms:g} ms latency limit"] = record.dropped
    verdict = judge_load(
        name,
        response,
        budget,
        record.failures + record.dropped,
        errors,
        users=options.users,
        max_failure_rate=options.max_failure_rate,
        on_master=options.role == "master",
        breaches=[r for t in options.thresholds if t.applies_to(name) and (r := t.breach(record.response))],
        load=f"{options.rate:g} req/s" if options.rate is not None else None,
    )
    return LoadQueryResult(
        name=name,
        weight=weight,
        budget_ms=budget,
        requests=record.requests,
        failures=record.failures,
        throughput_rps=record.requests / duration,
        summary=response,
        errors=dict(sorted(errors.items(), key=lambda item: -item[1])),
        status=verdict.status,
        reasons=tuple(c.reason for c in verdict.failures) + verdict.warnings,
        service=summary(record.service),
        lag=summary(record.lag) if options.rate is not None else None,
        percentiles_ms=percentiles_ms(record.response) if record.requests else {},
        dropped=record.dropped,
        late=record.late,
        histograms={"response": encode(record.response), "service": encode(record.service), "lag": encode(record.lag)},
    )
