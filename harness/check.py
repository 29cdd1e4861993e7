"""``harness check``: find broken or risky catalog SQL before anything is timed, with file:line:col.

Offline, the schema comes from the DDL (``schema.sql`` + the strategies' CREATE INDEX statements), parsed
with sqlglot; with a DSN it comes from the live catalog, and every query is also PREPAREd (never executed)
inside a read-only transaction. Correctness rules live here, style/performance rules in ``harness.lint``.
The SQL that runs is always the file's own text: sqlglot only reads it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import Token, TokenType

from harness.catalog import (
    Catalog,
    IndexExpectation,
    ParamSpec,
    Query,
    load_query,
    query_files,
    scan_placeholders,
)
from harness.check_format import FORMATTERS, summarize
from harness.db import connect
from harness.ddl import load_schema_ddl
from harness.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, ConfigError, InputError
from harness.lint import RULES, LintContext, run_lints
from harness.safety import UNPARSED, execute_one, is_writing_function
from harness.schema import SchemaInfo, load_schema_live

if TYPE_CHECKING:
    pass

PREPARE_TIMEOUT_MS = 5_000

# Correctness rules: id → (severity, fix). Lint rules add theirs from harness.lint.RULES.
CHECK_RULES: dict[str, tuple[str, str]] = {
    "config_error": ("error", "fix the metadata header as the message says (README: 'Query files')"),
    "parse_error": ("error", "fix the SQL syntax at this position"),
    "unparsed": (
        "error",
        f'the harness runs only SQL it understands: rewrite it, or add [lint.allow] {UNPARSED} = "why it is safe"',
    ),
    "no_statement": ("error", "write one SELECT query after the header (the file holds only comments or ';')"),
    "multiple_statements": ("error", "keep one statement per file; split the rest into their own .sql files"),
    "not_read_only": ("error", "catalog queries must be read-only SELECT/WITH: remove the write"),
    "unknown_table": ("error", "use a table of the schema, or define it in a WITH clause"),
    "unknown_column": ("error", "use a column of the table (see the schema DDL)"),
    "ambiguous_column": ("error", "qualify the column with its table alias"),
    "undeclared_param": ("error", "declare it under [params] in the header, or remove the placeholder"),
    "unused_param": ("error", "remove it from [params], or use %(name)s in the SQL"),
    "bad_placeholder": ("error", "use named placeholders %(name)s and write a literal percent sign as %%"),
    "bad_expectation": ("error", "name indexes, strategies and tables that the scenarios define"),
    "prepare_error": ("error", "fix the query so the server accepts it (message from PostgreSQL)"),
    "schema_unread": (
        "warning",
        "what this statement defines is unknown to check: simplify it, or check live with --dsn",
    ),
}
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,
    exp.Copy,
)
_LOCK_WORDS = frozenset({"UPDATE", "SHARE", "NO", "KEY"})  # FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE


@dataclass(frozen=True)
class Finding:
    """One problem in one query file, at a 1-based line and column of that file."""

    rule_id: str
    severity: str  # "error" | "warning"
    path: str
    line: int
    col: int
    message: str
    fix: str


# --- parsing a query ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    """A query's SQL as sqlglot reads it: placeholders as ``:name``, ``%%`` as ``%``, offsets mapped back."""

    text: str
    offsets: list[int]  # offsets[i] = offset in Query.sql of text[i]
    tokens: list[Token]
    statements: list[exp.Expression]

    def original(self, offset: int) -> int:
        return self.offsets[min(offset, len(self.offsets) - 1)]


def _rewrite(sql: str, placeholder: Callable[[str], str]) -> tuple[str, list[int], list[tuple[str, int]]]:
    """``sql`` with each ``%(name)s`` replaced and ``%%`` → ``%`` (what the server receives from psycopg).

    Returns the text, the offset map back into ``sql`` and (name, offset in text) of each placeholder.
    """
    pieces: list[str] = []
    offsets: list[int] = []
    placeholders: list[tuple[str, int]] = []
    position = 0
    for match in re.finditer(r"%(?:\(([^)]*)\)[sbt]|[sbt]|%)", sql):
        pieces.append(sql[position : match.start()])
        offsets.extend(range(position, match.start()))
        if match.group(0) == "%%":
            replacement = "%"
        else:
            name = match.group(1) if match.group(1) and match.group(1).isidentifier() else "_placeholder"
            placeholders.append((name, len(offsets)))
            replacement = placeholder(name)
        pieces.append(replacement)
        offsets.extend([match.start()] * len(replacement))
        position = match.end()
    pieces.append(sql[position:])
    offsets.extend(range(position, len(sql) + 1))
    return "".join(pieces), offsets, placeholders


def _parse(sql: str) -> _Parsed | tuple[int, str]:
    """The parsed statements, or (offset in sql, message) of the syntax error."""
    text, offsets, placeholders = _rewrite(sql, lambda name: ":" + name)
    dialect = Postgres()
    try:
        tokens = dialect.tokenize(text)
        parsed = dialect.parser().parse(tokens, text)
        statements = [  # ";" + comment parses as a Semicolon; names fold as PostgreSQL folds them
            normalize_identifiers(s, dialect="postgres")
            for s in parsed
            if s is not None and not isinstance(s, exp.Semicolon)
        ]
    except TokenError:
        offset, what = _token_error(text)
        return offsets[offset], what
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        offset = _line_col_offset(text, error.get("line", 1), error.get("col", 1))
        offset = max(0, offset - len(error.get("highlight") or "x") + 1)
        return offsets[offset], _readable(error.get("description") or str(exc).splitlines()[0])
    _place_placeholders(statements, placeholders)
    return _Parsed(text, offsets, tokens, statements)


def _place_placeholders(statements: list[exp.Expression], placeholders: list[tuple[str, int]]) -> None:
    """Give Placeholder nodes the positions sqlglot leaves out, by order of appearance per name."""
    remaining: dict[str, list[int]] = {}
    for name, offset in placeholders:
        remaining.setdefault(name, []).append(offset)
    for statement in statements:
        for node in statement.walk(bfs=False):
            if isinstance(node, exp.Placeholder) and remaining.get(node.name):
                node.meta["start"] = remaining[node.name].pop(0)


def _line_col_offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(lines[i]) + 1 for i in range(min(line, len(lines)) - 1)) + max(col, 1) - 1


def _token_error(text: str) -> tuple[int, str]:
    """Where tokenizing fails: in practice an unterminated quote or comment — find its opener."""
    for pattern, what in (
        (r"/\*(?:(?!\*/).)*$", "unterminated /* comment"),
        (r"'(?:[^']|'')*$", "unterminated string literal"),
        (r'"[^"]*$', "unterminated quoted identifier"),
    ):
        opened = re.search(pattern, text, re.S)
        if opened:
            return opened.start(), what
    return 0, "cannot split the SQL into tokens"


def _readable(description: str) -> str:
    """sqlglot's "Required keyword: 'expression' missing for <class '…And'>" → "incomplete AND: …"."""
    missing = re.match(r"Required keyword: '(\w+)' missing for <class '[\w.]*\.(\w+)'>", description)
    if missing:
        return f"incomplete {missing.group(2).upper()} expression: its {missing.group(1)} is missing"
    return description


# --- checking ----------------------------------------------------------------------------------------


@dataclass
class _Reporter:
    """Collects findings for one query file, turning text offsets into file positions."""

    query: Query
    findings: list[Finding] = field(default_factory=list)

    def at_offset(self, rule_id: str, offset: int, message: str) -> None:
        self.at_line(rule_id, *self.query.position(offset), message)

    def at_line(self, rule_id: str, line: int, col: int, message: str) -> None:
        severity, fix = _rule(rule_id)
        self.findings.append(Finding(rule_id, severity, str(self.query.path), line, col, message, fix))


def _rule(rule_id: str) -> tuple[str, str]:
    if rule_id in RULES:
        return RULES[rule_id].severity, RULES[rule_id].fix
    return CHECK_RULES[rule_id]


def check_query(query: Query, schema: SchemaInfo) -> list[Finding]:
    """Every static finding for one query: syntax, safety, names, parameters, expectations, lint."""
    report = _Reporter(query)
    _check_placeholders(query, report)
    _check_expectations(query, schema, report)
    for param in query.params:
        if param.draw == "sql":
            _check_draw_sql(param, schema, report)
    parsed = _parse(query.sql)
    if isinstance(parsed, tuple):
        if UNPARSED not in query.lint_allow:  # allowed: the server judges it (harness.safety)
            report.at_offset("parse_error", *parsed)
        return report.findings
    if not parsed.statements:
        report.at_line("no_statement", query.sql_start_line, 1, "no SQL statement, only comments or ';'")
    for index, statement in enumerate(parsed.statements):
        if index == 1:
            separators = [i for i, t in enumerate(parsed.tokens) if t.token_type == TokenType.SEMICOLON]
            start = parsed.tokens[separators[0] + 1].start if separators else 0
            report.at_offset(
                "multiple_statements",
                parsed.original(start),
                f"{len(parsed.statements)} statements in one query file",
            )
        for rule_id, offset, message in _statement_problems(statement, parsed.tokens, schema):
            report.at_offset(rule_id, parsed.original(offset), message)
    if len(parsed.statements) == 1 and not any(f.severity == "error" for f in report.findings):
        context = LintContext(parsed.statements[0], parsed.tokens, schema)
        for hit in run_lints(context):
            if hit.rule not in query.lint_allow:
                report.at_offset(hit.rule, parsed.original(hit.offset), hit.message)
    return report.findings


RUN_BLOCKERS = (
    "not_read_only",
    "multiple_statements",
    "no_statement",
    "unparsed",
    "undeclared_param",
    "bad_placeholder",
    "unused_param",
)


def run_blockers(query: Query) -> list[Finding]:
    """Why ``harness run`` must not measure this query, whatever the schema: it (or a sql draw) writes, holds
    several statements or none, cannot be parsed, or its placeholders and declared parameters do not match.

    SQL sqlglot cannot parse is refused unless the file allows it with ``[lint.allow] unparsed``; then the
    server judges it, one statement at a time and as a role that can only read (``harness.safety``).
    """
    report = _Reporter(query)
    _check_placeholders(query, report)
    allow_unparsed = UNPARSED in query.lint_allow
    for label, sql, line in [("", query.sql, None)] + [
        (f"draw sql of {p.name!r}: ", p.sql, p.line) for p in query.params if p.draw == "sql"
    ]:
        parsed = _parse(sql)

        def at(rule_id: str, offset: int, message: str, line: int | None = line, label: str = label) -> None:
            if line is None:
                report.at_offset(rule_id, offset, message)
            else:
                report.at_line(rule_id, line, 1, label + message)

        if isinstance(parsed, tuple):
            if not allow_unparsed:
                at("unparsed", parsed[0], f"sqlglot cannot parse it ({parsed[1]})")
            continue
        if not parsed.statements:
            at("no_statement", 0, "no SQL statement, only comments or ';'")
        if len(parsed.statements) > 1:
            at("multiple_statements", 0, "several statements in one query")
        for statement in parsed.statements:
            for rule_id, offset, message in _write_problems(statement, parsed.tokens):
                at(rule_id, parsed.original(offset), message)
    return [f for f in report.findings if f.rule_id in RUN_BLOCKERS]


def _statement_problems(
    statement: exp.Expression, tokens: list[Token], schema: SchemaInfo
) -> Iterator[tuple[str, int, str]]:
    """(rule, offset in parsed text, message) for safety and name resolution of one statement."""
    writes = list(_write_problems(statement, tokens))
    yield from writes
    if writes or not isinstance(statement, exp.Query):
        return
    unknown = list(_unknown_tables(statement, schema))
    yield from unknown
    if not unknown:
        yield from _column_problems(statement, schema)


def _first_offset(node: exp.Expression) -> int | None:
    starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
    return min(starts) if starts else None


def _write_problems(statement: exp.Expression, tokens: list[Token]) -> Iterator[tuple[str, int, str]]:
    start = _first_offset(statement) or 0
    if not isinstance(statement, exp.Query):
        kind = type(statement).__name__.upper()
        keyword = statement.name.upper() if isinstance(statement, exp.Command) else kind
        yield (
            "not_read_only",
            _statement_keyword(tokens, start),
            f"{keyword} statement: only SELECT/WITH may run",
        )
        return
    for node in statement.walk():
        if isinstance(node, _WRITES):
            offset = _statement_keyword(tokens, _first_offset(node) or start)
            yield "not_read_only", offset, f"{type(node).__name__.upper()} inside the query: it would write"
        elif isinstance(node, exp.Func) and is_writing_function(_function_name(node)):
            yield "not_read_only", _first_offset(node) or start, f"{_function_name(node)}() changes state"
        elif isinstance(node, exp.Select) and node.args.get("into") is not None:
            into = [t.start for t in tokens if t.token_type == TokenType.INTO]
            yield "not_read_only", into[0] if into else start, "SELECT … INTO creates a table"
    for i, token in enumerate(tokens[:-1]):
        if token.token_type == TokenType.FOR and tokens[i + 1].text.upper() in _LOCK_WORDS:
            yield "not_read_only", token.start, "row locks (FOR UPDATE/SHARE) take write locks"


def _statement_keyword(tokens: list[Token], limit: int) -> int:
    """The statement keyword (INSERT, DELETE, …) at or before ``limit``: where a write starts."""
    keywords = {
        TokenType.INSERT,
        TokenType.UPDATE,
        TokenType.DELETE,
        TokenType.MERGE,
        TokenType.CREATE,
        TokenType.DROP,
        TokenType.ALTER,
        TokenType.TRUNCATE,
        TokenType.COMMAND,
        TokenType.COPY,
    }
    found = [t.start for t in tokens if t.token_type in keywords and t.start <= limit]
    return found[-1] if found else limit


def _function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _cte_names(statement: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}


def _unknown_tables(statement: exp.Expression, schema: SchemaInfo) -> Iterator[tuple[str, int, str]]:
    ctes = _cte_names(statement)
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or (table.name.lower() in ctes and not table.db):
            continue
        if not schema.has_table(table.name, table.db):
            full = f"{table.db}.{table.name}" if table.db else table.name
            hint = _table_hint(full, schema)
            yield "unknown_table", _first_offset(table) or 0, f"unknown table {full!r}{hint}"


def _table_hint(written: str, schema: SchemaInfo) -> str:
    """ " (did you mean 'sales.orders'?)", matching the written name against qualified and bare names."""
    by_name = {name: name for name in schema.tables} | {
        name.rsplit(".", 1)[-1]: name for name in schema.tables if "." in name
    }
    close = difflib.get_close_matches(written.lower(), list(by_name), n=1)
    return f" (did you mean {by_name[close[0]]!r}?)" if close else ""


def _did_you_mean(word: str, choices: object) -> str:
    close = difflib.get_close_matches(word.lower(), list(choices), n=1)  # type: ignore[arg-type]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _column_problems(statement: exp.Expression, schema: SchemaInfo) -> list[tuple[str, int, str]]:
    context = LintContext(statement, [], schema)
    problems = []
    try:
        for scope in traverse_scope(statement):
            if not isinstance(scope.expression, exp.Select):
                continue
            aliases = {e.alias for e in scope.expression.expressions if e.alias}
            for column in scope.columns:
                problem = _column_problem(context, scope, column, aliases)
                offset = _first_offset(column)
                if problem is not None and offset is not None:
                    problems.append((problem[0], offset, problem[1]))
    except OptimizeError as exc:  # e.g. one alias given to two tables, which PostgreSQL refuses too
        return [("parse_error", _first_offset(statement) or 0, f"cannot resolve the query's names: {exc}")]
    return problems


def _column_problem(
    context: LintContext, scope: Scope, column: exp.Column, aliases: set[str]
) -> tuple[str, str] | None:
    name = column.name
    if isinstance(column.this, exp.Star):
        return None
    if column.table:
        source = _visible_source(scope, column.table)
        if source is None:
            return "unknown_column", f"missing FROM entry for {column.table!r} in {column.table}.{name}"
        known = context.output_columns(source)
        if _opaque(source) or name in known:
            return None
        return "unknown_column", f"column {column.table}.{name} does not exist{_did_you_mean(name, known)}"
    sources = list(scope.selected_sources.values())
    owners = [alias for alias, (_, source) in scope.selected_sources.items() if name in context.output_columns(source)]
    if len(owners) > 1 and not _using_column(scope.expression, name):
        return "ambiguous_column", f"column {name!r} is ambiguous: it exists in {', '.join(sorted(owners))}"
    if owners or name in aliases or any(_opaque(source) for _, source in sources):
        return None
    if _visible_in_outer_scope(context, scope, name):
        return None
    known = set().union(*(context.output_columns(s) for _, s in sources)) if sources else set()
    return "unknown_column", f"column {name!r} does not exist{_did_you_mean(name, known)}"


def _visible_source(scope: Scope | None, alias: str) -> object:
    while scope is not None:
        if alias in scope.selected_sources:
            return scope.selected_sources[alias][1]
        scope = scope.parent
    return None


def _visible_in_outer_scope(context: LintContext, scope: Scope, name: str) -> bool:
    outer = scope.parent
    while outer is not None:
        if any(name in context.output_columns(s) or _opaque(s) for _, s in outer.selected_sources.values()):
            return True
        outer = outer.parent
    return False


def _opaque(source: object) -> bool:
    """Sources whose columns we cannot list: functions without column aliases, SELECT * subqueries."""
    if isinstance(source, exp.Table):
        alias = source.args.get("alias")
        return not isinstance(source.this, exp.Identifier) and not (alias is not None and alias.columns)
    if isinstance(source, Scope):
        expression = source.expression
        return (
            not isinstance(expression, exp.Query)
            or any(
                isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
                for p in (expression.selects if isinstance(expression, exp.Query) else [])
            )
            or isinstance(expression, exp.Values)
        )
    return True


def _using_column(select: exp.Select, name: str) -> bool:
    return any(name in {u.name for u in join.args.get("using") or []} for join in select.args.get("joins") or [])


def _check_placeholders(query: Query, report: _Reporter) -> None:
    found, problems = scan_placeholders(query.sql)
    if query.params or found:
        for offset, message in problems:
            report.at_offset("bad_placeholder", offset, message)
    declared = set(query.param_names)
    for placeholder in found:
        if placeholder.name not in declared:
            report.at_offset(
                "undeclared_param",
                placeholder.start,
                f"placeholder %({placeholder.name})s is not declared under [params]",
            )
    used = {p.name for p in found}
    for param in query.params:
        if param.name not in used:
            report.at_line("unused_param", param.line, 1, f"parameter {param.name!r} is never used in the SQL")


def _check_expectations(query: Query, schema: SchemaInfo, report: _Reporter) -> None:
    """Expected indexes must exist: per strategy when strategy files were given, else in the schema itself
    (the DDL's own indexes offline, the server's live); expectations scoped to strategies need the former."""
    for expectation in query.expectations:
        where = (expectation.line, 1)
        if schema.strategy_indexes:
            _check_strategy_indexes(expectation, schema, report)
        elif not expectation.strategies:
            for index in expectation.indexes:
                if index not in schema.index_names:
                    hint = _did_you_mean(index, {i.name for i in schema.indexes.values()})
                    report.at_line("bad_expectation", *where, f"index {index!r} is not in {schema.source}{hint}")
        for table in expectation.min_rows:
            if schema.resolve_written(table) is None:
                report.at_line(
                    "bad_expectation",
                    *where,
                    f"min_rows names unknown table {table!r}{_did_you_mean(table, schema.tables)}",
                )


def _check_strategy_indexes(expectation: IndexExpectation, schema: SchemaInfo, report: _Reporter) -> None:
    where = (expectation.line, 1)
    for strategy in expectation.strategies:
        if strategy not in schema.strategy_indexes:
            report.at_line(
                "bad_expectation",
                *where,
                f"unknown strategy {strategy!r}{_did_you_mean(strategy, schema.strategy_indexes)}",
            )
    strategies = [s for s in expectation.strategies if s in schema.strategy_indexes] or (
        [] if expectation.strategies else list(schema.strategy_indexes)
    )
    for index in expectation.indexes:
        missing = [s for s in strategies if index not in schema.strategy_indexes[s]]
        if missing:
            report.at_line(
                "bad_expectation",
                *where,
                f"index {index!r} is not created by strategy {', '.join(missing)}"
                " (scope the expectation with strategies = [...])",
            )


def _check_draw_sql(param: ParamSpec, schema: SchemaInfo, report: _Reporter) -> None:
    """A sql draw runs against the database too: it must parse, read only, and name real tables/columns."""
    found, problems = scan_placeholders(param.sql)
    where = (param.line, 1)
    for placeholder in found:
        if placeholder.name != "anchor":
            report.at_line(
                "bad_placeholder",
                *where,
                f"draw sql of {param.name!r} may only use %(anchor)s, not %({placeholder.name})s",
            )
    for _, message in problems:
        report.at_line("bad_placeholder", *where, f"draw sql of {param.name!r}: {message}")
    parsed = _parse(param.sql)
    if isinstance(parsed, tuple):
        report.at_line("parse_error", *where, f"draw sql of {param.name!r}: {parsed[1]}")
        return
    if len(parsed.statements) > 1:
        report.at_line("multiple_statements", *where, f"draw sql of {param.name!r} has several statements")
    for statement in parsed.statements:
        for rule_id, _, message in _statement_problems(statement, parsed.tokens, schema):
            report.at_line(rule_id, *where, f"draw sql of {param.name!r}: {message}")


# --- the catalog, live mode, and the command ---------------------------------------------------------


def check_catalog(catalog: Catalog, schema: SchemaInfo, dsn: str | None = None) -> list[Finding]:
    """Findings for every query, sorted by file and position; with ``dsn``, PREPARE results too."""
    findings: list[Finding] = []
    clean: list[Query] = []
    for query in catalog.queries:
        found = check_query(query, schema)
        findings += found
        if not any(f.severity == "error" for f in found):
            clean.append(query)
    if dsn is not None:
        findings += prepare_queries(dsn, clean)
    return sorted(findings, key=lambda f: (f.path, f.line, f.col, f.rule_id))


def prepare_queries(dsn: str, queries: list[Query]) -> list[Finding]:
    """PREPARE each query (``$n`` parameters, typed as the runner will bind them) in a read-only transaction.

    Nothing is executed: PREPARE only parses, resolves names and types, and plans nothing yet.
    """
    findings: list[Finding] = []
    with connect(dsn, autocommit=True, application_name="harness check") as conn:
        for number, query in enumerate(queries):
            names = list(query.param_names)
            text, offsets, _ = _rewrite(query.sql, lambda name, names=names: f"${_position_of(names, name)}")
            types = ", ".join(_param_type(query, name) for name in names)
            prefix = f"PREPARE harness_check_{number}{f'({types})' if types else ''} AS "
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("SET TRANSACTION READ ONLY")
                    conn.execute(f"SET LOCAL statement_timeout = {PREPARE_TIMEOUT_MS}")
                    execute_one(conn.cursor(), prefix + text, None, prepare=False)  # one statement, never two
                    conn.execute(f"DEALLOCATE harness_check_{number}")
            except psycopg.errors.QueryCanceled:
                raise
            except psycopg.Error as exc:
                position = exc.diag.statement_position
                offset = int(position) - 1 - len(prefix) if position else -1
                line, col = query.position(offsets[offset]) if 0 <= offset < len(offsets) else (query.sql_start_line, 1)
                message = (exc.diag.message_primary or str(exc)).strip()
                severity, fix = CHECK_RULES["prepare_error"]
                findings.append(Finding("prepare_error", severity, str(query.path), line, col, message, fix))
    return findings


def _position_of(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name) + 1


def _param_type(query: Query, name: str) -> str:
    """The type psycopg will send for a drawn value, so PREPARE infers what the runner will bind."""
    spec = next((p for p in query.params if p.name == name), None)
    if spec is None:
        return "unknown"
    if spec.draw == "anchor":
        return "timestamptz"
    sample = spec.value if spec.draw == "value" else spec.values[0] if spec.draw == "choice" else None
    if spec.draw == "int" or (isinstance(sample, int) and not isinstance(sample, bool)):
        return "bigint"
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, float):
        return "double precision"
    return "unknown"


def run_check(
    queries_dir: Path, schema_sql: Path, strategies_dir: Path | None, dsn: str | None, fmt: str, strict: bool
) -> tuple[str, int]:
    """The whole ``harness check`` command: (rendered output, exit code 0 clean / 1 findings / 2 bad input).

    A malformed query header is reported like any finding (rule ``config_error``) and exits 2; a schema
    statement that could not be read is a ``schema_unread`` warning at its line. A missing directory or
    unreadable schema file raises InputError; an unreachable database DatabaseError. Without
    ``strategies_dir`` only the schema's own indexes count for expectations.
    """
    if fmt not in FORMATTERS:
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATTERS)}")
    queries: list[Query] = []
    findings: list[Finding] = []
    for path in query_files(queries_dir):
        try:
            queries.append(load_query(path))
        except ConfigError as exc:
            severity, fix = CHECK_RULES["config_error"]
            findings.append(Finding("config_error", severity, exc.path, exc.line or 1, exc.col or 1, exc.message, fix))
    if dsn is not None:
        with connect(dsn) as conn:
            schema = load_schema_live(conn)
    else:
        schema = load_schema_ddl(schema_sql, sorted(strategies_dir.glob("*.sql")) if strategies_dir else [])
        severity, fix = CHECK_RULES["schema_unread"]
        findings += [
            Finding("schema_unread", severity, u.path, u.line, 1, f"{u.kind} not read: {u.reason}", fix)
            for u in schema.unread
        ]
    findings = sorted(
        findings + check_catalog(Catalog(queries_dir, tuple(queries)), schema, dsn),
        key=lambda f: (f.path, f.line, f.col, f.rule_id),
    )
    if any(f.rule_id == "config_error" for f in findings):
        code = EXIT_BAD_INPUT
    elif any(f.severity == "error" or strict for f in findings):
        code = EXIT_FAILED
    else:
        code = EXIT_OK
    summary = summarize(
        findings,
        len(queries) + sum(f.rule_id == "config_error" for f in findings),
        "live" if dsn is not None else "ddl",
        code,
    )
    return FORMATTERS[fmt](findings, summary), code


def refuse_unrunnable(catalog: Catalog) -> None:
    """ConfigError (exit 2) at the first query that writes, holds several statements or none, that sqlglot
    cannot parse (without ``[lint.allow] unparsed``), or whose placeholders do not match its parameters."""
    for query in catalog.queries:
        blockers = run_blockers(query)
        if blockers:
            first = blockers[0]
            raise ConfigError(first.path, f"{first.message}; {first.fix}", first.line, first.col)
