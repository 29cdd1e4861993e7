"""Measuring one query: warm-up, N timed executions, an EXPLAIN ANALYZE beside them, index usability.

Timing is ``perf_counter_ns`` around execute + fetch of every row, on a dedicated autocommit connection
under a ``statement_timeout``; each execution runs in its own transaction, READ ONLY from its start and
rolled back (``safety.read_only``: its BEGIN and ROLLBACK stay outside the clock), on a connection whose
``default_transaction_read_only`` is on as a second lock on the door. The
EXPLAIN ANALYZE is taken separately: its instrumentation skews time, so it never feeds the gate. Around the
timed executions the work they did is taken too (``harness.work``: pg_stat_statements deltas, else EXPLAIN
ANALYZE per distinct draw), with a plan-shape fingerprint per timed draw.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql as pgsql

from harness.catalog import Query
from harness.db import connect, redact
from harness.errors import DatabaseError
from harness.plans import PlanFacts, index_serving, plan_facts, plan_shape, shape_fingerprint
from harness.safety import execute_one, explain_one, read_only
from harness.schema import load_partition_tree
from harness.stats import MIN_SAMPLES_FOR_P95_UPPER, p95_interval
from harness.work import Work, WorkProbe, draw_key, explain_work

# How psycopg prepares statements, made explicit because it changes plans (custom vs generic):
#   auto    psycopg's default: server-side prepared after 5 executions; PostgreSQL's plan cache then
#           chooses custom or generic plans (plan_cache_mode=auto)
#   custom  never prepared: every execution is planned for its own parameters
#   generic prepared at once and plan_cache_mode=force_generic_plan: one plan for all parameters
PREPARE_MODES = {
    "auto": "psycopg prepare_threshold=5, plan_cache_mode=auto",
    "custom": "unprepared (prepare_threshold=None): a custom plan per execution",
    "generic": "prepared at first execution, plan_cache_mode=force_generic_plan",
}
DEFAULT_ITERATIONS = 30
MIN_SAMPLES_FOR_P95 = 20
DEFAULT_WARMUP = 5
DEFAULT_P95_PRECISION = 0.10  # sample until the p95 interval's upper bound is within 10% of the p95
DEFAULT_MAX_ITERATIONS = 100  # sub-millisecond timings on a busy machine rarely get tighter than this gives
DEFAULT_MAX_SECONDS = 60.0  # per query: a 0.5 s query still reaches the 72 samples a bounded p95 needs
EXTEND_BATCH = 10  # executions timed between two looks at the interval
MAX_TIMEOUT_MS = 2**31 - 1  # statement_timeout is a 32-bit integer of milliseconds
FETCH_BATCH = 10_000  # rows converted at a time: as fast as fetchall for small results


@dataclass(frozen=True)
class MeasureOptions:
    """How one query is measured. ``iterations`` timed executions at least; given more parameter sets, timing
    goes on until the p95's distribution-free interval is bounded with its upper limit within ``p95_precision``
    of the estimate, or ``max_iterations`` / ``max_seconds`` cut it short (hyperfine's and Criterion's habit)."""

    iterations: int = DEFAULT_ITERATIONS
    warmup: int = DEFAULT_WARMUP
    prepare: str | None = None  # None: each query's own `prepare` (default auto)
    timeout_factor: float = 4.0  # statement_timeout = budget x factor (at least min_timeout_ms)
    min_timeout_ms: float = 2000.0
    retries_on_lost_backend: int = 1
    p95_precision: float | None = DEFAULT_P95_PRECISION  # None: exactly ``iterations``
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    max_seconds: float = DEFAULT_MAX_SECONDS

    def draws_needed(self) -> int:
        """How many parameter sets to draw per query: the warm-up and every execution timing may go on to."""
        timed = max(self.iterations, self.max_iterations) if self.p95_precision is not None else self.iterations
        return self.warmup + timed

    def timeout_ms(self, budget_ms: float) -> int:
        return int(min(max(budget_ms * self.timeout_factor, self.min_timeout_ms), MAX_TIMEOUT_MS))


@dataclass(frozen=True)
class IndexUsability:
    """Whether the planner *can* use an index for the query (checked with seq scans disabled)."""

    index: str
    usable: bool
    plan_indexes: tuple[str, ...]
    via: str | None = None  # the partition's index that served it, for an index on a partitioned table


@dataclass
class Measurement:
    """Everything measured for one query; ``error`` set when it could not be measured completely."""

    query: str
    prepare: str
    timeout_ms: int
    samples_ms: list[float] = field(default_factory=list)
    params_example: dict[str, Any] = field(default_factory=dict)
    rows_returned: int | None = None
    plan: PlanFacts | None = None
    explain_json: Any = None
    usability: list[IndexUsability] = field(default_factory=list)
    error: str | None = None
    timed_out: bool = False
    retried: int = 0
    cut_short: str | None = None  # why sampling stopped before the p95 interval was as tight as asked
    work: Work | None = None  # over the timed executions (harness.work says where it came from)
    draw_plans: list[str] = field(default_factory=list)  # plan-shape fingerprint of each timed draw
    plan_shapes: dict[str, list[str]] = field(default_factory=dict)  # fingerprint -> plan_shape lines
    draws_digest: str = ""  # equal digests: the same draws in the same order (samples pair by index)
    slices: list[int] = field(default_factory=list)  # samples per interleaved round (compare); empty for a run


# Runs the warm-up and timed executions of ``param_sets`` on ``conn``: each timed one's milliseconds go to
# ``result.samples_ms`` and its row count to ``result.rows_returned``; ``probe`` starts at the first timed one.
Timer = Callable[[psycopg.Connection, Query, Sequence[Mapping[str, Any]], int, Measurement, WorkProbe | None], None]


def measure_query(
    dsn: str,
    query: Query,
    param_sets: Sequence[Mapping[str, Any]],
    options: MeasureOptions,
    budget_ms: float,
    table_rows: Mapping[str, int] | None = None,
    usability_indexes: Sequence[str] = (),
    admin_dsn: str | None = None,
    reader_role: str | None = None,
    timer: Timer | None = None,
) -> Measurement:
    """Warm up, time ``len(param_sets) - warmup`` executions, EXPLAIN the first parameter set.

    ``timer`` runs the executions (default ``time_executions``; the pytest plugin's times them through
    pytest-benchmark); everything around them (work, plan shapes, EXPLAIN, usability, errors) is the same.

    ``dsn`` connects as the measuring role; the usability check needs ``admin_dsn`` (to drop indexes in a
    rolled-back transaction) and plans as ``reader_role`` there.

    A backend terminated mid-query (``pg_terminate_backend``) is retried once on a new connection; a
    statement_timeout ends the query's measurement with ``timed_out``. Losing the server raises
    DatabaseError so the run can stop and keep its partial report.

    Work metrics come from pg_stat_statements read on ``admin_dsn`` (default ``dsn``), else from EXPLAIN
    (ANALYZE, BUFFERS) of each distinct timed draw; every timed draw also gets a plan-shape fingerprint.
    """
    adaptive = timer is None and options.p95_precision is not None
    timer = timer or time_executions
    prepare = options.prepare or query.prepare or "auto"
    result = Measurement(query.name, prepare, options.timeout_ms(budget_ms))
    if param_sets:
        result.params_example = dict(param_sets[0])
    fixed = options.warmup + options.iterations
    extra = list(param_sets[fixed : options.warmup + options.max_iterations]) if adaptive else []
    param_sets = param_sets[:fixed]
    timed_sets = list(param_sets[options.warmup :])  # the fixed prefix: its digest and plan shapes pair runs
    result.draws_digest = draws_digest(timed_sets)
    attempts = 0
    while True:
        try:
            with timing_connection(dsn, prepare, result.timeout_ms) as conn:
                probe = WorkProbe(admin_dsn or dsn)
                timer(conn, query, param_sets, options.warmup, result, probe)
                if adaptive:
                    time_until_bounded(conn, query, extra, result, options)
                result.work = probe.finish()
                _work_and_shapes(conn, query, timed_sets, result)
                result.explain_json, result.plan = explain(conn, query, result.params_example, table_rows)
            if usability_indexes:  # drops indexes (rolled back): the owner's connection, planning as the reader
                with timing_connection(admin_dsn or dsn, prepare, result.timeout_ms) as admin:
                    result.usability = [
                        check_usable(admin, query, result.params_example, name, reader_role)
                        for name in usability_indexes
                    ]
            return result
        except pg_errors.QueryCanceled:
            result.timed_out = True
            result.error = f"timed out after {result.timeout_ms} ms (statement_timeout)"
            return result
        except (pg_errors.AdminShutdown, psycopg.OperationalError) as exc:
            if exc.sqlstate and not exc.sqlstate.startswith("57P"):  # an ERROR the query itself raised (dblink)
                result.error = f"{type(exc).__name__}: {_one_line(exc)}"
                return result
            if _server_gone(dsn):
                raise DatabaseError(f"lost the database while measuring {query.name}: {_one_line(exc)}") from None
            if attempts >= options.retries_on_lost_backend:
                result.error = f"connection lost twice while measuring ({_one_line(exc)})"
                return result
            attempts += 1
            result.retried = attempts
            result.samples_ms.clear()
            result.cut_short = None
        except psycopg.Error as exc:
            result.error = f"{type(exc).__name__}: {_one_line(exc)}"
            return result


def timing_connection(dsn: str, prepare: str, timeout_ms: int) -> psycopg.Connection:
    """A dedicated autocommit connection whose statements run read-only, bounded, in ``prepare`` mode."""
    conn = connect(dsn, autocommit=True, application_name="harness-measure")
    conn.execute(f"SET statement_timeout = {int(timeout_ms)}")
    conn.execute("SET default_transaction_read_only = on")
    if prepare == "custom":
        conn.prepare_threshold = None
    elif prepare == "generic":
        conn.prepare_threshold = 0
        conn.execute("SET plan_cache_mode = force_generic_plan")
    return conn


def time_executions(
    conn: psycopg.Connection,
    query: Query,
    param_sets: Sequence[Mapping[str, Any]],
    warmup: int,
    result: Measurement,
    probe: WorkProbe | None = None,
) -> None:
    """The default ``Timer``: ``perf_counter_ns`` around each execution (execute + fetch of every row), each in
    its own read-only transaction whose BEGIN and ROLLBACK are outside the clock."""
    cursor = conn.cursor()
    for i, params in enumerate(param_sets):
        if i == warmup and probe is not None:
            probe.start(conn, query.sql, params)
        with read_only(conn):
            started = time.perf_counter_ns()
            rows = execute_and_fetch(cursor, query.sql, params)
            elapsed = time.perf_counter_ns() - started
        if i >= warmup:
            result.samples_ms.append(elapsed / 1e6)
        result.rows_returned = rows


def time_until_bounded(
    conn: psycopg.Connection,
    query: Query,
    param_sets: Sequence[Mapping[str, Any]],
    result: Measurement,
    options: MeasureOptions,
) -> None:
    """Time more of ``param_sets``, a batch at a time, until the p95 interval is precise enough (``options``)."""
    started = time.monotonic()
    position = 0
    while not p95_precise(result.samples_ms, options.p95_precision or 0.0):
        if position >= len(param_sets):
            result.cut_short = f"stopped at {len(result.samples_ms)} executions (--max-iterations)"
            return
        if time.monotonic() - started > options.max_seconds:
            result.cut_short = f"stopped at {len(result.samples_ms)} executions after {options.max_seconds:g} s"
            return
        time_executions(conn, query, param_sets[position : position + EXTEND_BATCH], 0, result)
        position += EXTEND_BATCH


def p95_precise(samples_ms: Sequence[float], precision: float) -> bool:
    """The p95's interval is bounded above, and its upper limit is within ``precision`` of the p95 itself."""
    if len(samples_ms) < MIN_SAMPLES_FOR_P95_UPPER:
        return False
    _, high = p95_interval(samples_ms)
    p95 = float(np.percentile(samples_ms, 95.0))
    return high is not None and high <= p95 * (1.0 + precision)


def execute_and_fetch(cursor: psycopg.Cursor[Any], sql: str, params: Mapping[str, Any]) -> int:
    """What one timed execution is, whoever holds the clock: the statement and the fetch of every row."""
    execute_one(cursor, sql, params)
    return fetch_count(cursor)


def fetch_count(cursor: psycopg.Cursor[Any]) -> int:
    """Fetch (and convert) every row of the current result, keeping none: the row count.

    A query returning millions of rows costs the driver's result buffer, not millions of Python tuples.
    """
    count = 0
    while batch := cursor.fetchmany(FETCH_BATCH):
        count += len(batch)
    return count


def _work_and_shapes(
    conn: psycopg.Connection, query: Query, timed_sets: Sequence[Mapping[str, Any]], result: Measurement
) -> None:
    """Each timed draw's plan shape (plain EXPLAIN, or the fallback's EXPLAIN ANALYZE); work if still missing."""
    if result.work is None:
        result.work, plans = explain_work(conn, query.sql, timed_sets)
    else:
        by_key: dict[str, Any] = {}
        for params in timed_sets:
            key = draw_key(params)
            if key not in by_key:
                by_key[key] = explain_one(conn, "COSTS ON", query.sql, params)
        plans = [by_key[draw_key(p)] for p in timed_sets]
    result.draw_plans.clear()
    for plan in plans:
        facts = plan_facts(plan)
        fingerprint = shape_fingerprint(facts)
        result.draw_plans.append(fingerprint)
        result.plan_shapes.setdefault(fingerprint, plan_shape(facts))


def draws_digest(param_sets: Sequence[Mapping[str, Any]]) -> str:
    """A short digest of the draws in order: two measurements with equal digests timed the same draws."""
    text = "\n".join(draw_key(p) for p in param_sets)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def explain(
    conn: psycopg.Connection, query: Query, params: Mapping[str, Any], table_rows: Mapping[str, int] | None
) -> tuple[Any, PlanFacts]:
    """EXPLAIN (ANALYZE, BUFFERS, SETTINGS, FORMAT JSON) of one execution (read-only, so it cannot write)."""
    plan = explain_one(conn, "ANALYZE, BUFFERS, SETTINGS", query.sql, params)
    return plan, plan_facts(plan, table_rows, partitions=load_partition_tree(conn))


def check_usable(
    conn: psycopg.Connection, query: Query, params: Mapping[str, Any], index: str, role: str | None = None
) -> IndexUsability:
    """Can the planner serve the query with ``index``? For tiers too small for the planner to prefer it.

    Inside a transaction that is always rolled back, the table's other secondary indexes are dropped and
    sequential scans disabled, then the query is only planned (EXPLAIN without ANALYZE: nothing runs, but
    immutable functions are evaluated while planning), in a savepoint switched to read-only after the DDL.
    ``conn`` must be allowed to drop the indexes; the planning then runs as ``role`` (the measuring role,
    ``SET LOCAL``: undone with the transaction).
    On a partitioned table "the table" is its whole partition tree; an index attached to a partitioned
    index cannot be dropped alone, so the topmost parent is dropped instead (taking its children along),
    and an expected parent index is served by any of its partitions' indexes.
    """
    tree = load_partition_tree(conn)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ WRITE")  # DDL below is undone by the rollback
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute("SET LOCAL enable_seqscan = off")
            found = conn.execute(_INDEX_OID, _index_name_parts(index)).fetchone()
            if found is None:
                return IndexUsability(index, False, ())
            for (other,) in conn.execute(_COMPETING_INDEXES, {"index": found[0]}).fetchall():
                conn.execute(f"DROP INDEX {other}")  # regclass text: already quoted and qualified as needed
            if role:
                conn.execute(pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(role)))
            cursor = conn.cursor()
            with read_only(conn):
                execute_one(cursor, "EXPLAIN (FORMAT JSON) " + query.sql, params, prepare=False)
                row = cursor.fetchone()
    except pg_errors.UndefinedTable:
        return IndexUsability(index, False, ())
    if row is None:
        raise psycopg.ProgrammingError("EXPLAIN returned no plan")
    facts = plan_facts(row[0], partitions=tree)
    serving = index_serving(facts, index)
    via = serving if serving is not None and serving != index.rsplit(".", 1)[-1] else None
    return IndexUsability(index, serving is not None, facts.indexes_used, via)


def _index_name_parts(index: str) -> dict[str, str | None]:
    schema, _, name = index.rpartition(".")
    return {"schema": schema or None, "name": name}


# An index by name: in the given schema, else the one search_path finds, else the first by schema name.
_INDEX_OID = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(name)s AND c.relkind IN ('i', 'I')
  AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
ORDER BY pg_table_is_visible(c.oid) DESC, n.nspname LIMIT 1
"""

# Secondary indexes competing with %(index)s: on its table, or anywhere in the table's partition tree, each
# as its topmost parent index; the expected index's own tree and indexes backing constraints stay.
_COMPETING_INDEXES = """
WITH target AS (
    SELECT coalesce(pg_partition_root(i.indexrelid), i.indexrelid) AS index_root,
           coalesce(pg_partition_root(i.indrelid), i.indrelid) AS table_root
    FROM pg_index i WHERE i.indexrelid = %(index)s
), tables AS (
    SELECT table_root AS relid FROM target
    UNION SELECT t.relid FROM target, pg_partition_tree(target.table_root) t
), competing AS (
    SELECT DISTINCT coalesce(pg_partition_root(i.indexrelid), i.indexrelid) AS root
    FROM pg_index i WHERE i.indrelid IN (SELECT relid FROM tables)
)
SELECT c.root::regclass::text FROM competing c, target
WHERE c.root <> target.index_root
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.root)
"""


def _server_gone(dsn: str) -> bool:
    try:
        with connect(dsn, application_name="harness-probe") as probe:
            probe.execute("SELECT 1")
        return False
    except DatabaseError:
        return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__
