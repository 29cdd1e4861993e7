"""What `harness check` knows about the database: relations, columns and indexes, from DDL or a live catalog.

Offline, the schema DDL (``pg_dump --schema-only`` output or hand-written, read by harness.ddl) and the
strategy files' CREATE INDEX statements; with a DSN, the live catalog of every schema the role can use (with
real size estimates for "large table" lint rules). Names are kept as PostgreSQL stores them: unquoted
identifiers folded to lower case, quoted ones exact. Unqualified names resolve through ``search_path``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from harness.plans import PartitionTree

if TYPE_CHECKING:
    import psycopg


LARGE_TABLE_ROWS = 10_000  # live mode: a table with at least this many (estimated) rows is "large"
DEFAULT_SEARCH_PATH = ("public",)


@dataclass(frozen=True)
class Unread:
    """A statement the reader needed but could not parse: what it defines is unknown to the checks."""

    path: str
    line: int
    kind: str
    reason: str
    col: int = 1


@dataclass(frozen=True)
class Relation:
    """Something a query can read from: a table, partitioned table, partition, view or materialized view."""

    schema: str
    name: str
    kind: str
    columns: Mapping[str, str]  # column → type ("" when the DDL does not say, e.g. a view's)
    parent: str | None = None  # ``schema.name`` of the partitioned table this is a partition of


@dataclass(frozen=True)
class Index:
    """An index (or the one behind a PRIMARY KEY / UNIQUE constraint) and the table it is on."""

    schema: str
    name: str
    table: str  # ``schema.name``
    columns: frozenset[str]  # plain key columns, and the columns inside key expressions
    expressions: frozenset[str]  # normalized key expressions
    parent: str | None = None  # ``schema.name`` of the partitioned index it is attached to


@dataclass(frozen=True)
class SchemaInfo:
    """What the checks know about the database, relations and indexes keyed by ``schema.name``.

    ``large_tables`` None means every table counts as large (the DDL says nothing about sizes, and tables
    grow). ``strategy_indexes`` (DDL mode with strategy files) lists the index names each strategy leaves
    in place, the schema's own included; without strategies, ``indexes`` is what expectations may name.
    """

    relations: Mapping[str, Relation]
    indexes: Mapping[str, Index] = field(default_factory=dict)
    strategy_indexes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    search_path: tuple[str, ...] = DEFAULT_SEARCH_PATH
    large_tables: frozenset[str] | None = None
    source: str = "schema DDL"
    unread: tuple[Unread, ...] = ()

    def resolve(self, name: str, db: str = "") -> str | None:
        """The ``schema.name`` a query's (already case-folded) table name refers to, through search_path."""
        if db:
            key = qualified(db, name)
            return key if key in self.relations else None
        return next((qualified(s, name) for s in self.search_path if qualified(s, name) in self.relations), None)

    def resolve_written(self, text: str) -> str | None:
        """``resolve`` for a name as written in a query header (``orders``, ``sales.orders``, ``"Odd"``)."""
        db, name = split_name(text)
        return self.resolve(name, db)

    @property
    def tables(self) -> dict[str, Mapping[str, str]]:
        """Relations by the name a query would use: bare when search_path finds it, else qualified."""
        return {self._display(key): relation.columns for key, relation in self.relations.items()}

    def _display(self, key: str) -> str:
        name = self.relations[key].name
        return name if self.resolve(name) == key else key

    def has_table(self, name: str, db: str = "") -> bool:
        return self.resolve(name, db) is not None

    def columns(self, name: str, db: str = "") -> Mapping[str, str]:
        key = self.resolve(name, db)
        return self.relations[key].columns if key else {}

    @property
    def index_names(self) -> frozenset[str]:
        """Every index, by bare name (as EXPLAIN prints it) and qualified."""
        return frozenset(i.name for i in self.indexes.values()) | frozenset(self.indexes)

    def indexed_columns(self, table: str, db: str = "") -> frozenset[str]:
        return frozenset().union(*(i.columns for i in self._indexes_on(table, db)))

    def has_expression_index(self, table: str, expression: exp.Expression, db: str = "") -> bool:
        wanted = normalized(expression)
        return any(wanted in i.expressions for i in self._indexes_on(table, db))

    def is_large(self, table: str, db: str = "") -> bool:
        key = self._loose(table, db)
        return self.large_tables is None or (key is not None and key in self.large_tables)

    def _indexes_on(self, table: str, db: str) -> list[Index]:
        key = self._loose(table, db)
        return [i for i in self.indexes.values() if i.table == key]

    def _loose(self, name: str, db: str) -> str | None:
        """``resolve``, or the only relation of that name in any schema (lint rules see bare names)."""
        key = self.resolve(name, db)
        if key is None and not db:
            matches = [k for k, r in self.relations.items() if r.name == name]
            key = matches[0] if len(matches) == 1 else None
        return key


def qualified(schema: str, name: str) -> str:
    return f"{schema}.{name}"


def identifier(node: exp.Expression | str | None) -> str:
    """An identifier as PostgreSQL stores it: quoted kept exact, unquoted folded to lower case."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.lower()
    if isinstance(node, exp.Identifier):
        return node.this if node.quoted else node.this.lower()
    return node.name.lower()


def split_name(text: str) -> tuple[str, str]:
    """(schema or "", name) of a possibly qualified, possibly quoted name."""
    try:
        table = exp.to_table(text.strip(), dialect="postgres")
    except (ParseError, TokenError):
        return "", text
    return identifier(table.args.get("db")), identifier(table.this)


def normalized(expression: exp.Expression) -> str:
    bare = expression.copy()
    for column in bare.find_all(exp.Column):
        column.set("table", None)
    return bare.sql("postgres").lower()


def index_key_parts(index: exp.Index) -> tuple[frozenset[str], frozenset[str]]:
    """(plain key columns + columns used in key expressions, normalized key expressions) of an index."""
    params = index.args.get("params")
    columns: set[str] = set()
    expressions: set[str] = set()
    for ordered in (params.args.get("columns") or []) if params is not None else []:
        _add_key(ordered, columns, expressions)
    return frozenset(columns), frozenset(expressions)


def _add_key(key: exp.Expression, columns: set[str], expressions: set[str]) -> None:
    while isinstance(key, exp.Ordered | exp.Paren | exp.Opclass):
        key = key.this
    if isinstance(key, exp.Column):
        columns.add(identifier(key.this))
    else:
        expressions.add(normalized(key))
        columns.update(identifier(c.this) for c in key.find_all(exp.Column))


_VISIBLE_SCHEMAS = """n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
             AND has_schema_privilege(n.oid, 'USAGE')"""


def load_schema_live(conn: psycopg.Connection) -> SchemaInfo:
    """The same facts from a live database's catalog, in every schema the role may use; sizes from
    reltuples (summed over partitions); index keys from pg_index, never by re-parsing index definitions."""
    search_path = tuple(conn.execute("SELECT current_schemas(false)").fetchone()[0])  # type: ignore[index]
    relations: dict[str, Relation] = {}
    large: set[str] = set()
    rows = conn.execute(
        f"""SELECT n.nspname, c.relname, c.relkind,
                  (SELECT pn.nspname || '.' || p.relname FROM pg_inherits h
                   JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
                   WHERE h.inhrelid = c.oid AND c.relispartition),
                  CASE WHEN c.relkind = 'p' THEN (SELECT sum(greatest(l.reltuples, 0)) FROM pg_partition_tree(c.oid) t
                                                  JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf)
                       ELSE c.reltuples END,
                  array(SELECT a.attname::text FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
                  array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_VISIBLE_SCHEMAS}"""
    ).fetchall()
    kinds = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
    for schema, name, relkind, parent, reltuples, columns, types in rows:
        key = qualified(schema, name)
        kind = "partition" if parent and relkind == "r" else kinds[relkind]
        relations[key] = Relation(schema, name, kind, dict(zip(columns, types, strict=True)), parent)
        if relkind in ("r", "p", "m", "f") and (reltuples is None or reltuples < 0 or reltuples >= LARGE_TABLE_ROWS):
            large.add(key)
    indexes: dict[str, Index] = {}
    for schema, name, table_schema, table, keys, parent in conn.execute(
        f"""SELECT n.nspname, ic.relname, tn.nspname, t.relname,
                  array(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k),
                  (SELECT pn.nspname || '.' || p.relname FROM pg_inherits h
                   JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
                   WHERE h.inhrelid = i.indexrelid)
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
           JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
           WHERE {_VISIBLE_SCHEMAS.replace("n.", "tn.")}"""
    ).fetchall():
        columns: set[str] = set()
        expressions: set[str] = set()
        for key_text in keys:
            try:
                _add_key(sqlglot.parse_one(key_text, read="postgres"), columns, expressions)
            except (ParseError, TokenError):
                continue  # an expression sqlglot cannot read: the index still counts by name
        index = Index(schema, name, qualified(table_schema, table), frozenset(columns), frozenset(expressions), parent)
        indexes[qualified(schema, name)] = index
    return SchemaInfo(
        relations=relations,
        indexes=indexes,
        search_path=search_path or DEFAULT_SEARCH_PATH,
        large_tables=frozenset(large),
        source="live database",
    )


def load_partition_tree(conn: psycopg.Connection) -> PartitionTree:
    """Which tables and indexes are partitions of which, by the bare names EXPLAIN prints."""
    parents = conn.execute(
        """SELECT c.relname, p.relname FROM pg_inherits h
           JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_class p ON p.oid = h.inhparent
           WHERE c.relispartition"""
    ).fetchall()
    if not parents:
        return PartitionTree()
    leaves = conn.execute(
        """SELECT p.relname, count(*) FROM pg_class p, pg_partition_tree(p.oid) t
           WHERE p.relkind = 'p' AND t.isleaf GROUP BY p.relname"""
    ).fetchall()
    return PartitionTree(dict(parents), {name: int(count) for name, count in leaves})
