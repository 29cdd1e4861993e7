"""What-if indexes with HypoPG: the planner's cost and plan of each query with hypothetical indexes.

Nothing is built: ``hypopg_create_index`` makes the planner believe an index exists in this session only,
and everything runs in a transaction that is rolled back. The numbers are planner cost estimates (plain
EXPLAIN, never executed), not timings: they say whether the planner *would* pick an index, not how fast
the query would be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from harness.catalog import Query
from harness.db import connect
from harness.errors import InputError
from harness.params import ParamSampler
from harness.plans import PlanFacts, plan_diff, plan_facts
from harness.safety import execute_one, read_only
from harness.seed import anchor_of, read_manifest
from harness.workload import query_seed

ESTIMATE_NOTE = (
    "what-if figures are planner cost estimates (EXPLAIN without ANALYZE, arbitrary cost units) with "
    "hypothetical HypoPG indexes; nothing was built or executed, so they are not timings"
)
HYPOPG_MISSING = (
    "--what-if needs the HypoPG extension, and this PostgreSQL server does not have it{detail} (the embedded "
    "PostgreSQL 18 server does not ship HypoPG): install it on a server you control (Debian/Ubuntu: "
    "apt install postgresql-<major>-hypopg, e.g. postgresql-15-hypopg) and pass --dsn, or drop --what-if"
)


@dataclass(frozen=True)
class WhatIf:
    """One query planned without and with the hypothetical indexes (costs in planner units)."""

    query: str
    params: Mapping[str, Any]
    cost_before: float
    cost_after: float
    indexes_before: tuple[str, ...]
    indexes_after: tuple[str, ...]  # hypothetical ones are named like "<13543>btree_behavior_logs_user_id"
    plan_changes: tuple[str, ...]
    plan_before: PlanFacts
    plan_after: PlanFacts

    @property
    def cost_ratio(self) -> float:
        return self.cost_after / self.cost_before if self.cost_before else 1.0

    @property
    def uses_hypothetical(self) -> bool:
        return any(name.startswith("<") for name in self.indexes_after)


def what_if(
    dsn: str,
    create_index_sqls: Sequence[str],
    queries: Sequence[Query],
    seed: int = 42,
) -> list[WhatIf]:
    """Plan each query before and after creating ``create_index_sqls`` as HypoPG hypothetical indexes.

    Each query is planned with its representative parameters: the first draw of its seeded stream, the
    same set `harness run` EXPLAINs. InputError (exit 2) when HypoPG is not available or a statement is
    not a valid CREATE INDEX.
    """
    if not create_index_sqls:
        raise InputError('--what-if needs at least one "CREATE INDEX ..." statement')
    with connect(dsn, autocommit=False) as conn:
        try:
            _enable_hypopg(conn)
            params = _representative_params(conn, queries, seed)
            before = {q.name: _plan(conn, q, params[q.name]) for q in queries}
            for sql in create_index_sqls:
                _create_hypothetical(conn, sql)
            after = {q.name: _plan(conn, q, params[q.name]) for q in queries}
            conn.execute("SELECT hypopg_reset()")
        finally:
            conn.rollback()
    return [
        WhatIf(
            query=q.name,
            params=params[q.name],
            cost_before=before[q.name].root.total_cost,
            cost_after=after[q.name].root.total_cost,
            indexes_before=before[q.name].indexes_used,
            indexes_after=after[q.name].indexes_used,
            plan_changes=tuple(plan_diff(before[q.name], after[q.name])),
            plan_before=before[q.name],
            plan_after=after[q.name],
        )
        for q in queries
    ]


def _enable_hypopg(conn: psycopg.Connection) -> None:
    """Make HypoPG usable in this (rolled-back) transaction; in a database the harness did not seed only when
    it is installed already: there the harness runs no DDL at all, not even one it rolls back."""
    row = conn.execute("SELECT installed_version FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()
    if not row:
        raise InputError(HYPOPG_MISSING.format(detail=""))
    if row[0] is None and read_manifest(conn) is None:
        raise InputError(
            "--what-if needs the HypoPG extension in this database; the server ships it, but the harness creates "
            "no extension in a database it did not seed: a DBA adds it with CREATE EXTENSION hypopg;"
        )
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
    except psycopg.Error as exc:
        raise InputError(HYPOPG_MISSING.format(detail=f" usable ({_first_line(exc)})")) from None


def _create_hypothetical(conn: psycopg.Connection, sql: str) -> None:
    statement = sql.strip().rstrip(";").strip()
    if not statement.upper().startswith("CREATE"):
        raise InputError(f"--what-if {sql!r}: not a CREATE INDEX statement")
    try:
        with conn.transaction():  # a savepoint: a bad statement must not poison the rest
            conn.execute("SELECT * FROM hypopg_create_index(%s)", [statement])
    except psycopg.Error as exc:
        raise InputError(f"--what-if {sql!r}: HypoPG could not create it ({_first_line(exc)})") from None


def _representative_params(conn: psycopg.Connection, queries: Sequence[Query], seed: int) -> dict[str, dict[str, Any]]:
    sampler = ParamSampler(conn, anchor_of(read_manifest(conn), conn), seed)
    return {q.name: sampler.draw_sets(q, 1, query_seed(seed, q))[0] for q in queries}


def _plan(conn: psycopg.Connection, query: Query, params: Mapping[str, Any]) -> PlanFacts:
    cursor = conn.cursor()
    with read_only(conn):
        execute_one(cursor, "EXPLAIN (FORMAT JSON) " + query.sql, dict(params), prepare=False)
        row = cursor.fetchone()
    if row is None:
        raise psycopg.ProgrammingError("EXPLAIN returned no plan")
    return plan_facts(row[0])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
