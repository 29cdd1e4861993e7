"""Reading schema DDL as users have it: ``pg_dump --schema-only`` output or hand-written CREATE statements.

Statements are split here (quotes, dollar quotes, comments and psql meta-commands such as ``\\restrict``
respected). Only what a query can read is kept: tables, partitions, views, materialized views, their columns,
and indexes (CREATE INDEX, including ``ON ONLY``; PRIMARY KEY / UNIQUE constraints, also when added by
``ALTER TABLE``), with the partition tree from ``PARTITION OF`` / ``ATTACH PARTITION``. Everything else
(SET, OWNER TO, COMMENT, GRANT, functions, types, sequences, extensions …) is skipped. A needed statement
that cannot be parsed is reported once, with its line, and never stops the reading.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from harness.errors import InputError
from harness.schema import (
    DEFAULT_SEARCH_PATH,
    Index,
    Relation,
    SchemaInfo,
    Unread,
    identifier,
    index_key_parts,
    qualified,
)

_WORD = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_NAME = rf"{_WORD}(?:\s*\.\s*{_WORD})?"
_CREATE_TABLE = re.compile(
    rf"CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED|FOREIGN)\s+)?TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})",
    re.I,
)
_PARTITION_BY = re.compile(r"\)\s*PARTITION\s+BY\b|\bPARTITION\s+BY\s+(?:RANGE|LIST|HASH)\b", re.I)
_PARTITION_OF = re.compile(rf"\bPARTITION\s+OF\s+({_NAME})", re.I)
_CREATE_VIEW = re.compile(
    rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:TEMP|TEMPORARY)\s+)?(?:RECURSIVE\s+)?(MATERIALIZED\s+)?VIEW\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})",
    re.I,
)
_CREATE_INDEX = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\b", re.I)
_ON_ONLY = re.compile(r"\bON\s+ONLY\s+", re.I)
_ALTER_TABLE = re.compile(
    rf"ALTER\s+(?:FOREIGN\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({_NAME})\s*(.*)", re.I | re.S
)
_ATTACH = re.compile(rf"ATTACH\s+PARTITION\s+({_NAME})", re.I)
_ALTER_INDEX_ATTACH = re.compile(
    rf"ALTER\s+INDEX\s+(?:IF\s+EXISTS\s+)?({_NAME})\s+ATTACH\s+PARTITION\s+({_NAME})", re.I
)
_ADD_KEY = re.compile(
    rf"ADD\s+CONSTRAINT\s+({_WORD})\s+(PRIMARY\s+KEY|UNIQUE)\s*(?:NULLS\s+(?:NOT\s+)?DISTINCT\s*)?\(([^)]*)\)", re.I
)
_ADD_COLUMN = re.compile(r"ADD\s+(?:COLUMN\s+)?(?!CONSTRAINT\b|PRIMARY\b|UNIQUE\b|CHECK\b|FOREIGN\b|EXCLUDE\b)", re.I)
_SEARCH_PATH = re.compile(
    r"(?:SET\s+(?:SESSION\s+|LOCAL\s+)?search_path\s*(?:=|TO)\s*(.*)"
    r"|SELECT\s+(?:pg_catalog\.)?set_config\(\s*'search_path'\s*,\s*'([^']*)')",
    re.I | re.S,
)
_WITH_DATA = re.compile(r"\s+WITH\s+(?:NO\s+)?DATA\s*$", re.I)
# PostgreSQL 18: GENERATED ALWAYS AS (…) VIRTUAL, the default kind, which sqlglot reads when the word is left out
_VIRTUAL = re.compile(r"(\bGENERATED\s+ALWAYS\s+AS\s*\(.*?\))\s*VIRTUAL\b", re.I | re.S)


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a DDL file and the 1-based line it starts on."""

    text: str
    line: int
    col: int = 1

    @property
    def kind(self) -> str:
        """The statement's leading keywords, for messages: "CREATE TABLE", "ALTER INDEX"."""
        words = re.findall(r"[A-Za-z]+", self.text[:80])
        skip = {"OR", "REPLACE", "UNIQUE", "UNLOGGED", "TEMP", "TEMPORARY", "GLOBAL", "LOCAL", "RECURSIVE"}
        head = [w.upper() for w in words[:6] if w.upper() not in skip]
        if not head or head[0] not in ("CREATE", "ALTER", "DROP"):
            return (head[:1] or ["?"])[0]
        return " ".join(head[:3] if len(head) > 2 and head[1] in ("FOREIGN", "MATERIALIZED") else head[:2])


@dataclass
class DdlSchema:
    """What the DDL files define, keyed by ``schema.name`` (identifiers as PostgreSQL stores them)."""

    relations: dict[str, Relation] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    unread: list[Unread] = field(default_factory=list)
    search_path: tuple[str, ...] = ()  # the first non-empty SET search_path (pg_dump sets an empty one)


def split_statements(text: str) -> Iterator[Statement]:
    """Statements separated by ``;`` outside quotes, dollar quotes and comments; psql meta-command lines
    (a backslash first on a line, between statements) and ``COPY … FROM stdin`` data are left out."""
    i, n, line = 0, len(text), 1
    start, start_line, start_col = None, 0, 1
    while i < n:
        ch = text[i]
        if start is None:
            if ch == "\\" and (i == 0 or text[i - 1] == "\n"):
                i = _line_end(text, i)
                continue
            if ch.isspace() or text.startswith("--", i) or text.startswith("/*", i):
                end = _skip_comment_or_space(text, i)
                line += text.count("\n", i, end)
                i = end
                continue
            start, start_line, start_col = i, line, i - text.rfind("\n", 0, i)
        if ch == "'" or ch == '"':
            end = _quoted_end(text, i, ch, backslashes=ch == "'" and i > 0 and text[i - 1] in "eE")
        elif ch == "$" and (match := re.match(r"\$(?:[A-Za-z_][\w]*)?\$", text[i:])) and not _in_word(text, i):
            close = text.find(match.group(0), i + len(match.group(0)))
            end = n if close < 0 else close + len(match.group(0))
        elif text.startswith("--", i) or text.startswith("/*", i):
            end = _skip_comment_or_space(text, i)
        elif ch == ";":
            statement = text[start:i].strip()
            if statement:
                yield Statement(statement, start_line, start_col)
            start = None
            i += 1
            if re.match(r"COPY\b.*\bFROM\s+stdin\b", statement, re.I | re.S):
                data_end = text.find("\n\\.", i)
                end = n if data_end < 0 else _line_end(text, data_end + 1)
                line += text.count("\n", i, end)
                i = end
            continue
        else:
            end = i + 1
        line += text.count("\n", i, end)
        i = end
    if start is not None and text[start:].strip():
        yield Statement(text[start:].strip(), start_line, start_col)


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _in_word(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$")


def _quoted_end(text: str, i: int, quote: str, backslashes: bool) -> int:
    j = i + 1
    while j < len(text):
        if backslashes and text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            if text.startswith(quote * 2, j):
                j += 2
                continue
            return j + 1
        j += 1
    return len(text)


def _skip_comment_or_space(text: str, i: int) -> int:
    if text.startswith("--", i):
        return _line_end(text, i)
    if text.startswith("/*", i):
        depth, j = 0, i
        while j < len(text):
            if text.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif text.startswith("*/", j):
                depth, j = depth - 1, j + 2
                if depth == 0:
                    return j
            else:
                j += 1
        return len(text)
    return i + 1


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs "contains unsupported syntax. Falling back to parsing as a 'Command'" for DDL it does not
    model; the reader reports what it could not use itself, so that logging stays off meanwhile."""
    logger = logging.getLogger("sqlglot")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def read_ddl(paths: list[Path], into: DdlSchema | None = None) -> DdlSchema:
    """Relations, columns, indexes and partition links defined by ``paths``, read in order."""
    schema = into or DdlSchema()
    with quiet_sqlglot():
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(
                    f"cannot read schema file {path}: {exc}; give SQL text (pg_dump --schema-only, plain format)"
                ) from None
            _Reader(schema, str(path)).read(text)
    _inherit_partition_columns(schema)
    return schema


@dataclass
class _Reader:
    schema: DdlSchema
    path: str
    creation_schema: str = "public"  # where unqualified names go, per the file's search_path

    def read(self, text: str) -> None:
        for statement in split_statements(text):
            try:
                self._statement(statement)
            except Exception as exc:  # sqlglot raises more than ParseError on odd DDL: report, never stop
                line, col, reason = _where_it_failed(statement, exc)
                self.schema.unread.append(Unread(self.path, line, statement.kind, reason[:160], col))

    def _statement(self, statement: Statement) -> None:
        text = statement.text
        head = text[:200]
        if path := _SEARCH_PATH.match(text):
            self._set_search_path(path.group(1) if path.group(1) is not None else path.group(2))
        elif _CREATE_TABLE.match(head):
            self._create_table(text)
        elif _CREATE_VIEW.match(head):
            self._create_view(text)
        elif _CREATE_INDEX.match(head):
            self._create_index(text)
        elif match := _ALTER_INDEX_ATTACH.match(text):
            parent, child = self._name(match.group(1)), self._name(match.group(2))
            index = self.schema.indexes.get(child)
            if index is not None:
                self.schema.indexes[child] = replace(index, parent=parent)
        elif match := _ALTER_TABLE.match(text):
            self._alter_table(self._name(match.group(1)), match.group(2))

    def _set_search_path(self, value: str) -> None:
        schemas = [s.strip() for s in value.replace("'", "").split(",")]
        schemas = [s[1:-1] if s.startswith('"') else s.lower() for s in schemas if s]
        schemas = [s for s in schemas if s not in ("$user", "default")]
        self.creation_schema = schemas[0] if schemas else "public"
        if schemas and not self.schema.search_path:
            self.schema.search_path = tuple(schemas)

    def _name(self, text: str) -> str:
        """``schema.name`` of a written name, unquoted identifiers folded to lower case."""
        table = exp.to_table(text.strip(), dialect="postgres")
        return qualified(identifier(table.args.get("db")) or self.creation_schema, identifier(table.this))

    def _create_table(self, text: str) -> None:
        name = self._name(_CREATE_TABLE.match(text).group(1))  # type: ignore[union-attr]
        kind = "foreign table" if re.match(r"CREATE\s+FOREIGN", text, re.I) else "table"
        if _PARTITION_BY.search(text):
            kind = "partitioned table"
        parent_of = _PARTITION_OF.search(text)
        if parent_of:  # columns come from the parent (added once every statement is read)
            parent = self._name(parent_of.group(1))
            kind = "partitioned table" if _PARTITION_BY.search(text) else "partition"
            self.schema.relations[name] = Relation(*name.split(".", 1), kind=kind, columns={}, parent=parent)
            return
        if kind == "foreign table":  # the column list is a table's; SERVER … OPTIONS (…) is not needed
            text = re.sub(
                r"\)\s*SERVER\b.*$", ")", re.sub(r"\bFOREIGN\s+", "", text, count=1, flags=re.I), flags=re.I | re.S
            )
        statement = sqlglot.parse_one(_VIRTUAL.sub(r"\1", _WITH_DATA.sub("", text)), read="postgres")
        if isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query):  # CREATE TABLE … AS
            columns_ = dict.fromkeys(self._query_columns(statement.expression), "")
            self.schema.relations[name] = Relation(*name.split(".", 1), kind=kind, columns=columns_)
            return
        if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Schema):
            raise ValueError("not understood as CREATE TABLE name (columns …)")
        columns: dict[str, str] = {}
        schema_name, table = name.split(".", 1)
        keys: list[tuple[str | None, tuple[str, ...], bool]] = []  # (constraint name, columns, primary?)
        for item in statement.this.expressions:
            if isinstance(item, exp.ColumnDef):
                column = identifier(item.this)
                kind_ = item.args.get("kind")
                columns[column] = kind_.sql("postgres").lower() if kind_ is not None else ""
                for constraint in item.args.get("constraints") or []:
                    found = constraint.args.get("kind")
                    if isinstance(found, exp.PrimaryKeyColumnConstraint | exp.UniqueColumnConstraint):
                        named = constraint.args.get("this")
                        primary = isinstance(found, exp.PrimaryKeyColumnConstraint)
                        keys.append((identifier(named) if named else None, (column,), primary))
            elif isinstance(item, exp.LikeProperty):
                like = self._name(item.this.sql("postgres"))
                columns.update(self.schema.relations[like].columns if like in self.schema.relations else {})
            else:
                keys += _table_keys(item)
        for inherits in statement.find_all(exp.InheritsProperty):  # legacy inheritance: the parents' columns first
            inherited: dict[str, str] = {}
            for parent in inherits.expressions:
                inherited.update(self.schema.relations.get(self._name(parent.sql("postgres")), _EMPTY).columns)
            columns = {**inherited, **columns}
        self.schema.relations[name] = Relation(schema_name, table, kind=kind, columns=columns)
        for constraint, key, primary in keys:
            default = f"{table}_pkey" if primary else f"{table}_{'_'.join(key)}_key"  # PostgreSQL's own names
            self._add_index(Index(schema_name, constraint or default[:63], name, frozenset(key), frozenset()))

    def _create_view(self, text: str) -> None:
        match = _CREATE_VIEW.match(text)
        name = self._name(match.group(2))  # type: ignore[union-attr]
        materialized = bool(match.group(1))  # type: ignore[union-attr]
        body = _WITH_DATA.sub("", text)
        if materialized:  # sqlglot reads the plain view form; the columns are the same
            body = re.sub(r"\bMATERIALIZED\s+", "", body, count=1, flags=re.I)
        statement = sqlglot.parse_one(body, read="postgres")
        query = statement.expression if isinstance(statement, exp.Create) else None
        if not isinstance(query, exp.Query):
            raise ValueError("not understood as CREATE VIEW name AS query")
        target = statement.this
        if isinstance(target, exp.Schema) and target.expressions:
            names = [identifier(e) for e in target.expressions]
        else:
            names = self._query_columns(query)
        kind = "materialized view" if materialized else "view"
        self.schema.relations[name] = Relation(*name.split(".", 1), kind=kind, columns=dict.fromkeys(names, ""))

    def _query_columns(self, query: exp.Query) -> list[str]:
        names: list[str] = []
        for projection in query.selects:
            if isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            ):
                for table in query.find_all(exp.Table):
                    names.extend(self.schema.relations.get(self._name(table.sql("postgres")), _EMPTY).columns)
            else:
                names.append(identifier(projection.args.get("alias")) or _output_name(projection))
        return names

    def _create_index(self, text: str) -> None:
        statement = sqlglot.parse_one(_ON_ONLY.sub("ON ", text, count=1), read="postgres")
        if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Index):
            raise ValueError("not understood as CREATE INDEX name ON table (…)")
        index = statement.this
        table = index.args["table"]
        table_name = self._name(table.sql("postgres"))
        columns, expressions = index_key_parts(index)
        schema_name = table_name.split(".", 1)[0]
        self._add_index(Index(schema_name, identifier(index.this), table_name, columns, expressions))

    def _alter_table(self, table: str, rest: str) -> None:
        schema_name = table.split(".", 1)[0]
        if match := _ATTACH.match(rest.strip()):
            child = self._name(match.group(1))
            if child in self.schema.relations:
                relation = self.schema.relations[child]
                kind = "partitioned table" if relation.kind == "partitioned table" else "partition"
                self.schema.relations[child] = replace(relation, parent=table, kind=kind)
            return
        for key in _ADD_KEY.finditer(rest):
            columns = frozenset(self._column(c) for c in key.group(3).split(",") if c.strip())
            self._add_index(Index(schema_name, self._column(key.group(1)), table, columns, frozenset()))
        if _ADD_COLUMN.match(rest.strip()) and table in self.schema.relations:
            statement = sqlglot.parse_one("ALTER TABLE x " + _VIRTUAL.sub(r"\1", rest), read="postgres")
            added = {
                identifier(c.this): (c.args["kind"].sql("postgres").lower() if c.args.get("kind") else "")
                for c in statement.find_all(exp.ColumnDef)
            }
            relation = self.schema.relations[table]
            self.schema.relations[table] = replace(relation, columns={**relation.columns, **added})

    @staticmethod
    def _column(text: str) -> str:
        text = text.strip()
        return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()

    def _add_index(self, index: Index) -> None:
        self.schema.indexes[qualified(index.schema, index.name)] = index


def _where_it_failed(statement: Statement, exc: Exception) -> tuple[int, int, str]:
    """(file line, file column, reason) of a statement the reader could not use: sqlglot's position is the
    statement's own ("Line 4, Col: 83"), so it is moved to where the statement starts in the file."""
    error = exc.errors[0] if isinstance(exc, ParseError) and exc.errors else {}
    reason = error.get("description") or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if not isinstance(error.get("line"), int) or not isinstance(error.get("col"), int):
        return statement.line, statement.col, reason
    line, col = error["line"], max(1, error["col"] - len(error.get("highlight") or "x") + 1)
    return statement.line + line - 1, col + (statement.col - 1 if line == 1 else 0), reason


def _table_keys(item: exp.Expression) -> list[tuple[str | None, tuple[str, ...], bool]]:
    """PRIMARY KEY (…) / UNIQUE (…) table constraints, named (CONSTRAINT x …) or not."""
    named = identifier(item.this) if isinstance(item, exp.Constraint) else None
    found = []
    for key in item.expressions if isinstance(item, exp.Constraint) else [item]:
        if isinstance(key, exp.PrimaryKey):
            found.append((named, _key_columns(key.expressions), True))
        elif isinstance(key, exp.UniqueColumnConstraint) and isinstance(key.this, exp.Schema):
            found.append((named, _key_columns(key.this.expressions), False))
    return found


def _key_columns(items: list[exp.Expression]) -> tuple[str, ...]:
    return tuple(identifier(e.this if isinstance(e, exp.Ordered) else e) for e in items)


_EMPTY = Relation("", "", kind="table", columns={})


def _output_name(projection: exp.Expression) -> str:
    """The column name PostgreSQL gives an unaliased select item: the column, else the function's name."""
    if isinstance(projection, exp.Column):
        return identifier(projection.this)
    inner = projection
    while isinstance(inner, exp.Cast | exp.Paren):
        inner = inner.this
    if isinstance(inner, exp.Column):
        return identifier(inner.this)
    if isinstance(inner, exp.Func):
        return (inner.name if isinstance(inner, exp.Anonymous) else inner.sql_name()).lower()
    return "?column?"


def _inherit_partition_columns(schema: DdlSchema) -> None:
    """``PARTITION OF parent`` tables have their parent's columns."""
    for _ in range(8):  # sub-partitions: a few levels at most
        pending = [r for r in schema.relations.values() if r.parent and not r.columns]
        if not pending:
            return
        for relation in pending:
            parent = schema.relations.get(relation.parent or "")
            if parent is not None and parent.columns:
                key = qualified(relation.schema, relation.name)
                schema.relations[key] = replace(relation, columns=dict(parent.columns))


def load_schema_ddl(schema_sql: Path, strategy_files: list[Path]) -> SchemaInfo:
    """The schema DDL's relations and indexes; each strategy file's indexes on top of them, by strategy."""
    base = read_ddl([schema_sql])
    own = frozenset(i.name for i in base.indexes.values())
    indexes = dict(base.indexes)
    unread = list(base.unread)
    strategies: dict[str, frozenset[str]] = {}
    for path in strategy_files:
        extra = read_ddl([path], into=DdlSchema(relations=dict(base.relations)))
        strategies[path.stem] = own | frozenset(i.name for i in extra.indexes.values())
        indexes.update(extra.indexes)
        unread += extra.unread
    return SchemaInfo(
        relations=base.relations,
        indexes=indexes,
        strategy_indexes=strategies,
        search_path=base.search_path or DEFAULT_SEARCH_PATH,
        source=str(schema_sql),
        unread=tuple(unread),
    )
