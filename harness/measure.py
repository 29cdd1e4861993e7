"""Measuring one query: warm-up, N timed executions, an EXPLAIN ANALYZE beside them, index usability.

Timing is ``perf_counter_ns`` around execute + fetch of every row, on a dedicated autocommit connection
whose statements run read-only (``default_transaction_read_only``) under a ``statement_timeout``. The
EXPLAIN ANALYZE is taken separately: its instrumentation skews time, so it never feeds the gate. Around the
timed executions the work they did is taken too (``harness.work``: pg_stat_statements deltas, else EXPLAIN
ANALYZE per distinct draw), with a plan-shape fingerprint per timed draw.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from harness.catalog import Query
from harness.db import connect, redact
from harness.errors import DatabaseError
from harness.plans import PlanFacts, plan_facts, plan_shape, shape_fingerprint
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


@dataclass(frozen=True)
class MeasureOptions:
    iterations: int = DEFAULT_ITERATIONS
    warmup: int = DEFAULT_WARMUP
    prepare: str | None = None  # None: each query's own `prepare` (default auto)
    timeout_factor: float = 4.0  # statement_timeout = budget x factor (at least min_timeout_ms)
    min_timeout_ms: float = 2000.0
    retries_on_lost_backend: int = 1

    def timeout_ms(self, budget_ms: float) -> int:
        return int(max(budget_ms * self.timeout_factor, self.min_timeout_ms))


@dataclass(frozen=True)
class IndexUsability:
    """Whether the planner *can* use an index for the query (checked with seq scans disabled)."""

    index: str
    usable: bool
    plan_indexes: tuple[str, ...]


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
    work: Work | None = None  # over the timed executions (harness.work says where it came from)
    draw_plans: list[str] = field(default_factory=list)  # plan-shape fingerprint of each timed draw
    plan_shapes: dict[str, list[str]] = field(default_factory=dict)  # fingerprint -> plan_shape lines
    draws_digest: str = ""  # equal digests: the same draws in the same order (samples pair by index)


def measure_query(
    dsn: str,
    query: Query,
    param_sets: Sequence[Mapping[str, Any]],
    options: MeasureOptions,
    budget_ms: float,
    table_rows: Mapping[str, int] | None = None,
    usability_indexes: Sequence[str] = (),
    admin_dsn: str | None = None,
) -> Measurement:
    """Warm up, time ``len(param_sets) - warmup`` executions, EXPLAIN the first parameter set.

    A backend terminated mid-query (``pg_terminate_backend``) is retried once on a new connection; a
    statement_timeout ends the query's measurement with ``timed_out``. Losing the server raises
    DatabaseError so the run can stop and keep its partial report.

    Work metrics come from pg_stat_statements read on ``admin_dsn`` (default ``dsn``), else from EXPLAIN
    (ANALYZE, BUFFERS) of each distinct timed draw; every timed draw also gets a plan-shape fingerprint.
    """
    prepare = options.prepare or query.prepare or "auto"
    result = Measurement(query.name, prepare, options.timeout_ms(budget_ms))
    if param_sets:
        result.params_example = dict(param_sets[0])
    timed_sets = list(param_sets[options.warmup :])
    result.draws_digest = draws_digest(timed_sets)
    attempts = 0
    while True:
        try:
            with timing_connection(dsn, prepare, result.timeout_ms) as conn:
                probe = WorkProbe(admin_dsn or dsn)
                _run_timed(conn, query, param_sets, options.warmup, prepare, result, probe)
                result.work = probe.finish()
                _work_and_shapes(conn, query, timed_sets, result)
                result.explain_json, result.plan = explain(conn, query, result.params_example, table_rows)
                result.usability = [
                    check_usable(conn, query, result.params_example, name) for name in usability_indexes
                ]
            return result
        except pg_errors.QueryCanceled:
            result.timed_out = True
            result.error = f"timed out after {result.timeout_ms} ms (statement_timeout)"
            return result
        except (pg_errors.AdminShutdown, psycopg.OperationalError) as exc:
            if _server_gone(dsn):
                raise DatabaseError(f"lost the database while measuring {query.name}: {_one_line(exc)}") from None
            if attempts >= options.retries_on_lost_backend:
                result.error = f"connection lost twice while measuring ({_one_line(exc)})"
                return result
            attempts += 1
            result.retried = attempts
            result.samples_ms.clear()
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


def _run_timed(
    conn: psycopg.Connection,
    query: Query,
    param_sets: Sequence[Mapping[str, Any]],
    warmup: int,
    prepare: str,
    result: Measurement,
    probe: WorkProbe | None = None,
) -> None:
    cursor = conn.cursor()
    sql = query.sql
    for i, params in enumerate(param_sets):
        if i == warmup and probe is not None:
            probe.start(conn, sql, params)
        started = time.perf_counter_ns()
        cursor.execute(sql, params or None)  # None: a query without parameters keeps a literal %
        rows = cursor.fetchall()
        elapsed = time.perf_counter_ns() - started
        if i >= warmup:
            result.samples_ms.append(elapsed / 1e6)
        result.rows_returned = len(rows)


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
                row = conn.execute("EXPLAIN (FORMAT JSON) " + query.sql, params or None, prepare=False).fetchone()
                by_key[key] = row[0] if row else None
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
    row = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, SETTINGS, FORMAT JSON) " + query.sql, params or None, prepare=False
    ).fetchone()
    if row is None:
        raise psycopg.ProgrammingError("EXPLAIN returned no plan")
    return row[0], plan_facts(row[0], table_rows)


def check_usable(conn: psycopg.Connection, query: Query, params: Mapping[str, Any], index: str) -> IndexUsability:
    """Can the planner serve the query with ``index``? For tiers too small for the planner to prefer it.

    Inside a transaction that is always rolled back, the table's other secondary indexes are dropped and
    sequential scans disabled, then the query is only planned (EXPLAIN without ANALYZE: nothing runs).
    """
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ WRITE")  # DDL below is undone by the rollback
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute("SET LOCAL enable_seqscan = off")
            for (other,) in conn.execute(_COMPETING_INDEXES, [index, index]).fetchall():
                conn.execute(f'DROP INDEX "{other}"')
            row = conn.execute("EXPLAIN (FORMAT JSON) " + query.sql, params or None, prepare=False).fetchone()
    except pg_errors.UndefinedTable:
        return IndexUsability(index, False, ())
    if row is None:
        raise psycopg.ProgrammingError("EXPLAIN returned no plan")
    facts = plan_facts(row[0])
    return IndexUsability(index, index in facts.indexes_used, facts.indexes_used)


# Secondary indexes on the same table as %s (those backing constraints cannot be dropped and stay).
_COMPETING_INDEXES = """
SELECT c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = (SELECT indrelid FROM pg_index WHERE indexrelid = %s::regclass)
  AND i.indexrelid <> %s::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
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
