"""Which queries a pull request can have changed: the A/B gate measures only those.

A query's time and plan depend on what runs (its SQL, comments and whitespace aside), how it runs (its
parameter draws and prepare mode), and the indexes on the tables it reads; the data, server and settings are
the same for both sides of an A/B by construction. When all of that is equal on both sides the query is
"unchanged" and is not measured; anything that cannot be read with certainty counts as changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError

from harness.catalog import Query
from harness.check.parse import rewrite
from harness.strategies import Strategy


@dataclass(frozen=True)
class Change:
    """Whether one query differs between the sides, and why (or why it is judged the same)."""

    name: str
    changed: bool
    reason: str


def query_change(base: Query, cand: Query, base_strategy: Strategy, cand_strategy: Strategy) -> Change:
    """Compare what decides ``cand``'s time and plan with ``base``'s."""
    base_tokens, cand_tokens = sql_tokens(base.sql), sql_tokens(cand.sql)
    if base_tokens is None or cand_tokens is None:
        return Change(cand.name, True, "its SQL cannot be tokenized: measured to be sure")
    if base_tokens != cand_tokens:
        return Change(cand.name, True, "its SQL changed")
    if _draws(base) != _draws(cand):
        return Change(cand.name, True, "its parameter draws changed")
    if base.prepare != cand.prepare:
        return Change(cand.name, True, f"its prepare mode changed ({base.prepare} → {cand.prepare})")
    tables = tables_read(cand.sql)
    if tables is None:
        return Change(cand.name, True, "the tables it reads cannot be named: measured to be sure")
    before, after = _indexes_on(base_strategy, tables), _indexes_on(cand_strategy, tables)
    if before != after:
        changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
        return Change(cand.name, True, f"indexes on the tables it reads changed ({', '.join(changed)})")
    where = ", ".join(sorted(tables)) or "no table"
    same = "same SQL (comments and whitespace aside), draws, prepare mode and indexes on"
    return Change(cand.name, False, f"{same} {where}")


def sql_tokens(sql: str) -> tuple[tuple[str, str], ...] | None:
    """The SQL as PostgreSQL's lexer would see it: token types and texts, comments and whitespace gone."""
    text, _, _ = rewrite(sql, lambda name: ":" + name)
    try:
        return tuple((t.token_type.name, t.text) for t in Postgres().tokenize(text))
    except SqlglotError:
        return None


def tables_read(sql: str) -> frozenset[str] | None:
    """The bare names of the tables ``sql`` reads (CTE names aside); None when it does not parse."""
    text, _, _ = rewrite(sql, lambda name: ":" + name)
    try:
        statements = [s for s in Postgres().parse(text) if s is not None]
    except SqlglotError:
        return None
    names: set[str] = set()
    for statement in statements:
        ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        names |= {t.name.lower() for t in statement.find_all(exp.Table) if t.name and t.name.lower() not in ctes}
    return frozenset(names)


def _draws(query: Query) -> tuple[object, ...]:
    """The parameter declarations without their line numbers (a header that moved is the same header)."""
    return tuple(dataclasses.replace(p, line=0) for p in query.params)


def _indexes_on(strategy: Strategy, tables: frozenset[str]) -> dict[str, str]:
    """{index name: its definition, whitespace normalised} for the strategy's indexes on ``tables``."""
    return {i.name: " ".join(i.sql.split()) for i in strategy.indexes if i.table.rsplit(".", 1)[-1].lower() in tables}
