"""Locust users that run the harness query catalog on psycopg 3: one connection per user, closed or open loop.

Use it directly for Locust's web UI (``harness load`` runs it headless and bounded)::

    locust -f "$(python -c 'import importlib.util as u; print(u.find_spec("harness.load.locustfile").origin)')"

Locust owns the command line, so the harness is configured through the environment:

    HARNESS_DSN          database (default: the embedded cluster, started if needed)
    HARNESS_QUERIES      query catalog directory (default: ./queries, else the reference catalog)
    HARNESS_SEED         parameter seed (default 42); user k of worker w draws from stream (seed, w, k)
    HARNESS_ONLY         comma-separated query names to run (default: all with weight > 0)
    HARNESS_PARAM_POOL   K > 0: each request picks one of the query's first K parameter sets (default 0:
                         a fresh draw per request)
    HARNESS_RATE         requests/s of this machine's processes together: an open loop (default: closed loop)
    HARNESS_ARRIVAL      poisson (default) or constant
    HARNESS_PROCESSES    how many processes share HARNESS_RATE (default 1)
    HARNESS_LATENCY_LIMIT_MS  drop a request still waiting for a connection this long after its start
    HARNESS_SAMPLES      1: keep every request's raw timings too (default: histograms only)
    HARNESS_BIN_S        timeline bin width in seconds (default 1)
    HARNESS_TIMINGS_DIR  where each process writes its exact timings (set by `harness load`)
    HARNESS_SEND_TIMINGS 1 on a worker of a master on another machine: also send them to the master, which
                         writes them into its own timings folder (merged exactly there)

Each query is a task weighted by its catalog ``weight`` and is reported to Locust under its own name;
parameters are drawn per request. Start-up refuses to run (exit 3) when psycopg would block gevent's loop,
exit 2 on a bad catalog or setting.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from locust import User, constant, events  # imports gevent and monkey-patches: must come first
from locust.runners import MasterRunner, WorkerRunner

from harness.load import green  # after locust: the patch is done

_problem = green.static_problem()
if _problem:
    sys.stderr.write(f"harness load: refusing to run: {_problem}\n")
    sys.exit(3)

import gevent  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402 - imported after gevent's patch; static_problem() verified psycopg's wait choice

from harness.db import redact, resolve  # noqa: E402
from harness.errors import EXIT_ENVIRONMENT, EnvironmentFailure, HarnessError  # noqa: E402
from harness.load.arrivals import Arrival, Schedule, parse_arrival, parse_rate  # noqa: E402
from harness.load.pacer import Pacer  # noqa: E402
from harness.load.recorder import Recorder, write_json  # noqa: E402
from harness.measure import execute_and_fetch  # noqa: E402
from harness.querylayer import QueryLayer  # noqa: E402
from harness.safety import read_only  # noqa: E402

logger = logging.getLogger("harness.load")
IS_MASTER = "--master" in sys.argv  # a master runs no users: it needs neither the database nor the guard


def _refuse(message: str, code: int) -> None:
    sys.stderr.write(f"harness load: refusing to run: {message}\n")
    sys.exit(code)


def _setup() -> QueryLayer:
    """Resolve the database, check psycopg really cooperates with gevent, load the catalog."""
    try:
        seed = int(os.environ.get("HARNESS_SEED", "42"))
    except ValueError:
        _refuse(f"HARNESS_SEED must be an integer, not {os.environ['HARNESS_SEED']!r}", 2)
    only = [name for name in os.environ.get("HARNESS_ONLY", "").split(",") if name.strip()]
    queries = Path(os.environ["HARNESS_QUERIES"]) if os.environ.get("HARNESS_QUERIES") else None
    try:
        dsn = os.environ.get("HARNESS_DSN", "")
        if not IS_MASTER:
            target = resolve()
            dsn = target.dsn
            if target.server is not None:
                parent = os.getpid()  # forked workers inherit atexit: only the process that started it stops it
                atexit.register(lambda: os.getpid() == parent and target.server.release())  # type: ignore[union-attr]
            problem = green.concurrency_problem(dsn)
            if problem:
                _refuse(problem, EXIT_ENVIRONMENT)
        layer = QueryLayer(dsn, queries, seed, only)
    except HarnessError as exc:
        _refuse(str(exc), exc.exit_code)
    weighted = [q for q in layer.queries() if q.weight > 0]
    if not weighted:
        _refuse(f"every selected query of {layer.catalog.directory} has weight = 0: nothing to run", 2)
    return layer


def _open_loop() -> tuple[float | None, Arrival, int, float | None]:
    """(requests/s of this machine or None, arrivals, processes sharing it, latency limit in ms or None)."""
    try:
        rate = parse_rate(os.environ["HARNESS_RATE"]) if os.environ.get("HARNESS_RATE") else None
        arrival = parse_arrival(os.environ.get("HARNESS_ARRIVAL") or "poisson")
        processes = max(int(os.environ.get("HARNESS_PROCESSES") or 1), 1)
        limit = float(os.environ["HARNESS_LATENCY_LIMIT_MS"]) if os.environ.get("HARNESS_LATENCY_LIMIT_MS") else None
    except (HarnessError, ValueError) as exc:
        _refuse(f"bad open-loop setting: {exc}", 2)
    return rate, arrival, processes, limit


LAYER = _setup()
RATE, ARRIVAL, PROCESSES, LATENCY_LIMIT_MS = _open_loop()
RECORDER = Recorder(int(os.environ.get("HARNESS_BIN_S") or 1), os.environ.get("HARNESS_SAMPLES") == "1")
TIMINGS_DIR = Path(os.environ["HARNESS_TIMINGS_DIR"]) if os.environ.get("HARNESS_TIMINGS_DIR") else None
PARAM_POOL = int(os.environ.get("HARNESS_PARAM_POOL") or 0)
_user_numbers = itertools.count()
RECONNECT_PAUSE_S = 1.0
LIVE_EVERY_S = 1.0
TIMINGS_MESSAGE = "harness_timings"
SEND_TIMINGS = os.environ.get("HARNESS_SEND_TIMINGS") == "1"
PACER: Pacer | None = None  # set per test under HARNESS_RATE


def _task(name: str) -> Callable[[QueryUser], None]:
    def run(user: QueryUser) -> None:
        user.run_query(name)

    run.__name__ = name
    return run


class QueryUser(User):
    """One application connection running the catalog's queries, weighted by ``weight``: back to back in a
    closed loop, or each at the next intended start of the process's schedule under HARNESS_RATE."""

    wait_time = constant(0)  # closed loop, as pgbench; the open loop waits in run_query for its start
    tasks = {_task(q.name): q.weight for q in LAYER.queries() if q.weight > 0}  # noqa: RUF012 - Locust's API

    def on_start(self) -> None:
        worker = max(getattr(self.environment.runner, "worker_index", 0), 0)
        self.rng = np.random.default_rng([LAYER.seed, worker, next(_user_numbers)])
        self.conn: psycopg.Connection | None = None

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def run_query(self, name: str) -> None:
        """Wait for the intended start (open loop), draw parameters, time execute + fetch of every row,
        report to Locust and to our recorder; a request later than the latency limit is dropped unsent."""
        intended = PACER.claim() if PACER is not None else None
        epoch = PACER.epoch(intended) if PACER is not None and intended is not None else time.time()
        lag_ns = 0
        began = time.perf_counter_ns()
        try:
            conn = self._connection()
            params = LAYER.draw_params(name, int(self.rng.integers(PARAM_POOL)) if PARAM_POOL else self.rng)
            if intended is not None:  # waiting for a connection, connecting, drawing: the user waits for all
                lag_ns = time.perf_counter_ns() - intended
                if LATENCY_LIMIT_MS is not None and lag_ns > LATENCY_LIMIT_MS * 1e6:
                    RECORDER.drop(name)
                    return
            with read_only(conn):  # BEGIN READ ONLY … ROLLBACK, outside every clock
                began = time.perf_counter_ns()
                rows = execute_and_fetch(conn.cursor(), LAYER.query(name).sql, params)
                service_ns = time.perf_counter_ns() - began
        except (psycopg.Error, HarnessError) as exc:
            self._report(name, epoch, lag_ns, time.perf_counter_ns() - began, 0, exc)
            if isinstance(exc, EnvironmentFailure) or (self.conn is not None and self.conn.broken):
                self._drop_connection()
            return
        self._report(name, epoch, lag_ns, service_ns, rows, None)

    def _connection(self) -> psycopg.Connection:
        if self.conn is None:
            self.conn = LAYER.connect()
        return self.conn

    def _drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        gevent.sleep(RECONNECT_PAUSE_S)  # the server is away: do not spin

    def _report(
        self, name: str, epoch: float, lag_ns: int, service_ns: int, rows: int, exc: BaseException | None
    ) -> None:
        if exc is None:
            RECORDER.success(name, epoch, lag_ns, service_ns)
        else:
            RECORDER.failure(name, epoch, error_message(exc))
        self.environment.events.request.fire(
            request_type="SQL",
            name=name,
            response_time=(lag_ns + service_ns) / 1e6,  # what the user waited: from the intended start
            response_length=rows,
            response=None,
            context={},
            exception=exc,
            start_time=epoch,
            url=None,
        )


def error_message(exc: BaseException) -> str:
    """One line, password-free: the exception class and the first line of its text."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {redact(lines[0]) if lines else ''}".rstrip(": ")


def _worker_index(environment) -> int:  # type: ignore[no-untyped-def]
    return max(getattr(environment.runner, "worker_index", 0), 0)


def _write_live() -> None:
    """Every second: this process's figures so far, for the live display and early aborts."""
    while TIMINGS_DIR is not None:
        gevent.sleep(LIVE_EVERY_S)
        if PACER is not None:
            RECORDER.process.intended = PACER.schedule.issued
        RECORDER.write_live(TIMINGS_DIR)


_live: list[gevent.Greenlet] = []
_received = itertools.count(1)


@events.init.add_listener
def _on_init(environment, **kwargs) -> None:  # type: ignore[no-untyped-def]
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(TIMINGS_MESSAGE, _on_worker_timings)


def _on_worker_timings(environment, msg, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """A remote worker's timings at its test stop: kept beside the master's, to be merged with them."""
    if TIMINGS_DIR is not None:
        document = msg.data
        name = f"process-{document['host']}-{document['pid']}-{next(_received)}.json".replace("/", "_")
        write_json(TIMINGS_DIR / name, document)


@events.test_start.add_listener
def _on_test_start(environment, **kwargs) -> None:  # type: ignore[no-untyped-def]
    global PACER
    RECORDER.reset()
    if isinstance(environment.runner, MasterRunner):
        return
    for query in LAYER.queries():  # fetch the sql draw pools once per process, before users start
        try:
            LAYER.draw_params(query.name, 0)
        except (psycopg.Error, HarnessError) as exc:  # its requests will fail and be counted, named
            logger.warning("%s: cannot draw parameters: %s", query.name, error_message(exc))
    if RATE is not None:
        worker = _worker_index(environment)
        rng = np.random.default_rng([LAYER.seed, worker, 1])
        share = RATE / PROCESSES
        PACER = Pacer(Schedule(share, ARRIVAL, rng, phase=(worker % PROCESSES) / PROCESSES), gevent.sleep)
        RECORDER.process.rate_per_s = share
    if TIMINGS_DIR is not None:
        _live.append(gevent.spawn(_write_live))


@events.test_stop.add_listener
def _on_test_stop(environment, **kwargs) -> None:  # type: ignore[no-untyped-def]
    global PACER
    gevent.killall(_live)
    _live.clear()
    if PACER is not None:
        RECORDER.process.unsent = PACER.unsent()
        RECORDER.process.intended = PACER.schedule.issued
        PACER = None
    if SEND_TIMINGS and isinstance(environment.runner, WorkerRunner) and RECORDER.process.queries:
        environment.runner.send_message(TIMINGS_MESSAGE, RECORDER.process.as_document())
    if TIMINGS_DIR is not None:
        RECORDER.write(TIMINGS_DIR)
        return
    from harness.load.histograms import summary

    for name, q in sorted(RECORDER.process.queries.items()):  # web UI: the exact percentiles Locust rounds
        s = summary(q.response)
        if s is not None:
            logger.info(
                "%s: n=%d p50 %.2f ms, p95 %.2f ms, p99 %.2f ms (response time), failures %d, dropped %d",
                name,
                s.n,
                s.p50,
                s.p95,
                s.p99,
                q.failures,
                q.dropped,
            )
    RECORDER.reset()


@events.quitting.add_listener
def _on_quitting(environment, **kwargs) -> None:  # type: ignore[no-untyped-def]
    LAYER.close()
