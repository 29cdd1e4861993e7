"""The read-only guard: how catalog SQL is sent so the server runs one statement, and what is refused up front.

Catalog queries run read-only because of layers, each of which blocks a write on its own (README,
"Guarantees"):

1. **one statement per execution** (``execute_one``): every measured, explained, drawn or loaded statement
   goes over the extended query protocol, whose Parse message the server rejects when it holds several
   commands ("cannot insert multiple commands into a prepared statement");
2. **nothing runs that the parser did not understand** (``check.refuse_unrunnable``): SQL sqlglot cannot parse is
   refused unless the file says why it is safe with ``[lint.allow] unparsed = "reason"``;
3. **a measuring role that can only read** (``harness.roles``);
4. **every execution in a transaction that is READ ONLY from its start and rolled back** (``read_only``):
   PostgreSQL refuses ``transaction_read_only = off`` once the transaction has taken a snapshot (and in any
   subtransaction), so the query cannot switch it; the ROLLBACK undoes whatever it did that is
   transactional, a session-level ``set_config`` included. ``execute_one`` refuses to run outside one.

The function denylist (``is_writing_function``, names compared after PostgreSQL's folding and the decoding of
escapes, ``harness.check.escapes``) is a run blocker on top of them: it names file:line before anything runs,
but nothing rests on it being complete.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


# The [lint.allow] key that lets the server judge SQL sqlglot cannot parse (layers 1, 3 and 4 still apply).
UNPARSED = "unparsed"

WRITING_FUNCTIONS = frozenset(
    {
        "nextval",
        "setval",
        "set_config",
        "setseed",  # the session's random() sequence: outlives the rolled-back transaction
        "set_limit",  # pg_trgm: sets pg_trgm.similarity_threshold for the session
        "isn_weak",  # isn: sets isn.weak for the session
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_rotate_logfile_old",
        "pg_switch_wal",
        "pg_promote",
        "pg_notify",
        "txid_current",
        "pg_current_xact_id",
        "pg_export_snapshot",
        "pg_import_system_collations",
        "pg_sync_replication_slots",
        "pg_nextoid",
        "pg_stop_making_pinned_objects",
        "pg_extension_config_dump",
        "pg_stat_force_next_flush",  # publishes counters early: what the run's witness reads
        "pg_truncate_visibility_map",
        "gin_clean_pending_list",
    }
)
# Functions that execute SQL (or a cursor's query) given to them as a string: the check cannot see that SQL.
SQL_TEXT_FUNCTIONS = frozenset(
    {
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "ts_stat",
        "ts_rewrite",  # ts_rewrite(tsquery, text): the text is a SELECT
        "connectby",  # tablefunc
        "xpath_table",  # xml2
    }
)
SQL_TEXT_FAMILIES = (re.compile(r"^crosstab\d*$"),)  # tablefunc: crosstab, crosstab2, crosstab3, crosstab4
# Whole families, so a function added to PostgreSQL or an extension next year is caught too.
WRITING_FAMILIES = (
    re.compile(r"^dblink(_\w+)?$"),  # another connection: anything can happen there
    re.compile(r"^lo(_\w+|read|write)$"),  # large objects
    re.compile(r"^pg_(restore|clear)_\w*stats$"),  # planner statistics writers (skew every later plan)
    re.compile(r"^pg_replication_\w+$"),
    re.compile(r"^pg_(create|drop|copy|alter)_\w+$"),  # replication slots, restore points
    re.compile(r"^pg_logical_\w+$"),  # pg_logical_emit_message, slot peeks that advance a slot
    re.compile(r"(^|_)reset(_(?!time)\w+)?$"),  # pg_stat_reset*, pg_stat_statements_reset, hypopg_reset, …
    re.compile(r"^pg_(try_)?advisory_\w*$"),  # advisory locks (and could block the harness's own)
    re.compile(r"^pg_(backup|wal_replay)_\w+$"),
    re.compile(r"^pg_\w+_backend$"),  # pg_terminate_backend, pg_cancel_backend
    re.compile(r"^pg_log_\w+$"),  # pg_log_backend_memory_contexts, pg_log_standby_snapshot
    re.compile(r"^pg_file_(write|rename|unlink|sync)$"),  # adminpack
    re.compile(r"^(pg_prewarm|autoprewarm_\w+|pg_buffercache_evict\w*)$"),  # the cache state a run states
    re.compile(r"^brin_(de)?summarize_\w+$"),  # index maintenance
    re.compile(r"^heap_force_\w+$"),  # pg_surgery
    re.compile(r"^binary_upgrade_\w+$"),
    re.compile(r"^hypopg_(create|drop|hide|unhide)\w*$"),
    re.compile(r"^postgres_fdw_disconnect\w*$"),
)


def is_writing_function(name: str) -> bool:
    """Whether a call to ``name`` (folded as PostgreSQL folds it, without its schema) changes state or runs SQL
    given as a string: the denylist, a run blocker that names file:line, though the guarantee rests on the
    layers."""
    return name in WRITING_FUNCTIONS or any(family.search(name) for family in WRITING_FAMILIES) or runs_sql_text(name)


def runs_sql_text(name: str) -> bool:
    """Whether ``name`` executes SQL given to it as a string (which no check of the query's own text can see)."""
    return name in SQL_TEXT_FUNCTIONS or any(family.search(name) for family in SQL_TEXT_FAMILIES)


@contextlib.contextmanager
def read_only(conn: psycopg.Connection) -> Iterator[None]:
    """Run the block in a transaction that is READ ONLY from its first statement and is always rolled back.

    On an idle autocommit connection (the measuring ones) that is ``BEGIN READ ONLY`` … ``ROLLBACK``: one round
    trip each, which the timers keep outside the clock. Inside a transaction the caller already opened (the
    usability check's, after its DDL) it is a savepoint switched to read-only and rolled back to: a
    subtransaction cannot switch back to read-write either.
    """
    from psycopg import pq

    if not (conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE):
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY", prepare=False)
            yield
        return
    begin_read_only(conn)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the connection may be gone; the server rolls back then
            roll_back(conn)
        raise
    roll_back(conn)


def begin_read_only(conn: psycopg.Connection) -> None:
    """``BEGIN READ ONLY`` on an idle autocommit connection (for a timer whose setup and clock are apart)."""
    conn.execute("BEGIN READ ONLY", prepare=False)


def roll_back(conn: psycopg.Connection) -> None:
    """End the connection's open transaction, if any, with ROLLBACK: nothing a query did is committed."""
    from psycopg import pq

    if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK", prepare=False)


def execute_one(
    cursor: psycopg.Cursor[Any], sql: str, params: Mapping[str, Any] | None = None, prepare: bool | None = None
) -> None:
    """Execute ``sql`` as exactly one statement: over the extended protocol, which rejects a second one.

    psycopg sends a query without parameters over the simple protocol, where ``BEGIN; DELETE …; COMMIT;
    SELECT 1`` would run every statement. So a parameterless query is prepared instead (its prepared plan is
    the plan a custom one would be: there is nothing to specialise it for), or, on a connection that never
    prepares (``prepare = "custom"``) or when ``prepare`` is False, sent unnamed with binary results (planned
    at every execution, as before). Without parameters psycopg leaves the text alone, so a literal ``%``
    keeps working; with them, ``%%`` is a percent sign as usual.

    It refuses to run outside a transaction block (``read_only``): a call site that forgot the transaction fails
    loudly instead of running the query in autocommit.
    """
    from psycopg import ProgrammingError, pq

    if cursor.connection.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise ProgrammingError("catalog SQL runs only inside harness.safety.read_only()")
    if params:
        cursor.execute(sql, params, prepare=prepare)
    elif prepare is False or cursor.connection.prepare_threshold is None:
        cursor.execute(sql, None, prepare=False, binary=True)
    else:
        cursor.execute(sql, None, prepare=True)


def explain_one(conn: psycopg.Connection, options: str, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    """The JSON plan of ``EXPLAIN (options, FORMAT JSON) sql``, sent as one statement like any catalog SQL
    (EXPLAIN ANALYZE runs the query; even a plain EXPLAIN evaluates immutable functions while planning)."""
    cursor = conn.cursor()
    with read_only(conn):
        execute_one(cursor, f"EXPLAIN ({options}, FORMAT JSON) " + sql, params, prepare=False)
        row = cursor.fetchone()
    if row is None:
        import psycopg  # here, not at the top: in a Locust process psycopg must follow gevent's patch

        raise psycopg.ProgrammingError("EXPLAIN returned no plan")
    return row[0]
