"""What `harness check` knows about the database: tables, columns and indexes, from DDL or a live catalog.

Offline, ``schema.sql`` and the strategy files' CREATE INDEX statements are parsed with sqlglot; with a
DSN, the live catalog is read (with real size estimates for "large table" lint rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from harness.errors import ConfigError, InputError

if TYPE_CHECKING:
    import psycopg

LARGE_TABLE_ROWS = 10_000  # live mode: a table with at least this many (estimated) rows is "large"


@dataclass(frozen=True)
class SchemaInfo:
    """What the checks know about the database: tables and columns, indexes, which tables are large.

    Tables are keyed by name, or ``schema.name`` outside ``public``. ``large_tables`` None means every table
    counts as large (the DDL says nothing about sizes, and tables grow).
    """

    tables: Mapping[str, Mapping[str, str]]
    indexed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    index_expressions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    strategy_indexes: Mapping[str, frozenset[str]] = field(default_factory=dict)  # DDL mode only
    large_tables: frozenset[str] | None = None
    source: str = "schema DDL"

    def has_table(self, name: str, db: str = "") -> bool:
        return _key(name, db) in self.tables

    def columns(self, name: str, db: str = "") -> Mapping[str, str]:
        return self.tables.get(_key(name, db), {})

    def indexed_columns(self, table: str) -> frozenset[str]:
        return self.indexed.get(table.lower(), frozenset())

    def has_expression_index(self, table: str, expression: exp.Expression) -> bool:
        return _normalized(expression) in self.index_expressions.get(table.lower(), frozenset())

    def is_large(self, table: str) -> bool:
        return self.large_tables is None or table.lower() in self.large_tables


def _key(name: str, db: str = "") -> str:
    return name.lower() if db in ("", "public") else f"{db.lower()}.{name.lower()}"


def _normalized(expression: exp.Expression) -> str:
    bare = expression.copy()
    for column in bare.find_all(exp.Column):
        column.set("table", None)
    return bare.sql("postgres").lower()


def load_schema_ddl(schema_sql: Path, strategy_files: list[Path]) -> SchemaInfo:
    """Tables, columns and types from CREATE TABLE; indexed columns from primary keys and CREATE INDEX."""
    tables: dict[str, dict[str, str]] = {}
    indexed: dict[str, set[str]] = {}
    expressions: dict[str, set[str]] = {}
    strategies: dict[str, frozenset[str]] = {}
    for statement in _parse_ddl(schema_sql):
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            name, columns, primary_key = _table_from_create(statement)
            tables[name] = columns
            indexed.setdefault(name, set()).update(primary_key)
    pkeys = frozenset(f"{name}_pkey" for name in tables)
    for path in strategy_files:
        names = set(pkeys)
        for statement in _parse_ddl(path):
            if isinstance(statement, exp.Create) and statement.kind == "INDEX":
                table, index, columns, index_expressions = _index_from_create(statement)
                names.add(index)
                indexed.setdefault(table, set()).update(columns)
                expressions.setdefault(table, set()).update(index_expressions)
        strategies[path.stem] = frozenset(names)
    return SchemaInfo(
        tables=tables,
        indexed={t: frozenset(c) for t, c in indexed.items()},
        index_expressions={t: frozenset(e) for t, e in expressions.items()},
        strategy_indexes=strategies,
        source=str(schema_sql),
    )


def load_schema_live(conn: psycopg.Connection) -> SchemaInfo:
    """The same facts from a live database's catalog (all non-system schemas); sizes from reltuples."""
    tables: dict[str, dict[str, str]] = {}
    large: set[str] = set()
    rows = conn.execute(
        """SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), c.reltuples
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
           ORDER BY 1, 2, a.attnum"""
    ).fetchall()
    for schema, table, column, type_, reltuples in rows:
        key = _key(table, schema)
        tables.setdefault(key, {})[column] = type_
        if reltuples < 0 or reltuples >= LARGE_TABLE_ROWS:
            large.add(key)
    indexed: dict[str, set[str]] = {}
    expressions: dict[str, set[str]] = {}
    definitions = conn.execute(
        """SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
           JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"""
    ).fetchall()
    for (definition,) in definitions:
        statement = sqlglot.parse_one(definition, read="postgres")
        table, _, columns, index_expressions = _index_from_create(statement)
        indexed.setdefault(table, set()).update(columns)
        expressions.setdefault(table, set()).update(index_expressions)
    return SchemaInfo(
        tables=tables,
        indexed={t: frozenset(c) for t, c in indexed.items()},
        index_expressions={t: frozenset(e) for t, e in expressions.items()},
        large_tables=frozenset(large),
        source="live database",
    )


def _parse_ddl(path: Path) -> list[exp.Expression]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read schema file {path}: {exc}") from None
    try:
        return [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except (ParseError, TokenError) as exc:
        detail = exc.errors[0] if isinstance(exc, ParseError) and exc.errors else {}
        raise ConfigError(
            path, f"cannot parse DDL: {str(exc).splitlines()[0]}", detail.get("line"), detail.get("col")
        ) from None


def _table_from_create(statement: exp.Create) -> tuple[str, dict[str, str], set[str]]:
    schema = statement.this
    table = schema.this
    columns: dict[str, str] = {}
    primary_key: set[str] = set()
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            kind = item.args.get("kind")
            columns[item.name] = kind.sql("postgres").lower() if kind is not None else ""
            if any(
                isinstance(c.args.get("kind"), exp.PrimaryKeyColumnConstraint)
                for c in item.args.get("constraints") or []
            ):
                primary_key.add(item.name)
        elif isinstance(item, exp.PrimaryKey):
            primary_key.update(e.name for e in item.expressions)
    return _key(table.name, table.db), columns, primary_key


def _index_from_create(statement: exp.Expression) -> tuple[str, str, set[str], set[str]]:
    """(table, index name, plain key columns, normalized key expressions) of a CREATE INDEX."""
    index = statement.this
    table = index.args["table"]
    params = index.args.get("params")
    columns: set[str] = set()
    key_expressions: set[str] = set()
    for ordered in params.args.get("columns") or [] if params is not None else []:
        key = ordered.this if isinstance(ordered, exp.Ordered) else ordered
        if isinstance(key, exp.Paren):
            key = key.this
        if isinstance(key, exp.Column):
            columns.add(key.name)
        else:
            key_expressions.add(_normalized(key))
            columns.update(c.name for c in key.find_all(exp.Column))
    return _key(table.name, table.db), index.name, columns, key_expressions
