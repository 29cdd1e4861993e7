"""Correctness rules of ``harness check``: read-only, one statement, known tables and columns, parameters
that match their placeholders, expectations that name what the scenarios define.

Each rule reports (rule id, offset in the parsed text, message); ``Reporter`` turns that into file:line:col.
Style and performance rules are in ``harness.lint``; ``run_blockers`` is the subset ``harness run`` enforces.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import Token, TokenType

from harness.catalog import IndexExpectation, ParamSpec, Query, scan_placeholders
from harness.check.escapes import BadEscape
from harness.check.findings import Finding, Reporter
from harness.check.parse import Parsed, first_offset, fold, parse
from harness.errors import did_you_mean
from harness.lint import LintContext, run_lints
from harness.safety import UNPARSED, is_writing_function, runs_sql_text
from harness.schema import SchemaInfo

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


def check_query(query: Query, schema: SchemaInfo) -> list[Finding]:
    """Every static finding for one query: syntax, safety, names, parameters, expectations, lint."""
    report = Reporter(query)
    _check_placeholders(query, report)
    _check_expectations(query, schema, report)
    for param in query.params:
        if param.draw == "sql":
            _check_draw_sql(param, schema, report)
    parsed = parse(query.sql)
    if isinstance(parsed, BadEscape):  # never silenced: what cannot be decoded cannot be checked
        report.at_offset("bad_escape", parsed.offset, parsed.message)
        return report.findings
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
    "bad_escape",
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
    server judges it, one statement at a time and as a role that can only read (``harness.safety``). An
    escape that cannot be decoded is refused whatever the file allows.
    """
    report = Reporter(query)
    _check_placeholders(query, report)
    allow_unparsed = UNPARSED in query.lint_allow
    for label, sql, line in [("", query.sql, None)] + [
        (f"draw sql of {p.name!r}: ", p.sql, p.line) for p in query.params if p.draw == "sql"
    ]:
        parsed = parse(sql)

        def at(rule_id: str, offset: int, message: str, line: int | None = line, label: str = label) -> None:
            if line is None:
                report.at_offset(rule_id, offset, message)
            else:
                report.at_line(rule_id, line, 1, label + message)

        if isinstance(parsed, BadEscape):
            at("bad_escape", parsed.offset, parsed.message)
            continue
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


def _write_problems(statement: exp.Expression, tokens: list[Token]) -> Iterator[tuple[str, int, str]]:
    start = first_offset(statement) or 0
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
            offset = _statement_keyword(tokens, first_offset(node) or start)
            yield "not_read_only", offset, f"{type(node).__name__.upper()} inside the query: it would write"
        elif isinstance(node, exp.Func) and (denied := _denied_call(_function_name(node))):
            yield "not_read_only", first_offset(node) or start, denied
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
    """The name PostgreSQL resolves the call to (``fold``). A schema (``pg_catalog.set_config``: a Dot around
    the call) is not part of the node's name."""
    if not isinstance(node, exp.Anonymous):
        return node.sql_name().lower()
    written = node.this
    return fold(str(node.name), quoted=isinstance(written, exp.Identifier) and bool(written.quoted))


def _denied_call(name: str) -> str | None:
    """Why a call of ``name`` may not run (the denylist), or None."""
    if not is_writing_function(name):
        return None
    return f"{name}() {'executes SQL given as a string' if runs_sql_text(name) else 'changes state'}"


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
            yield "unknown_table", first_offset(table) or 0, f"unknown table {full!r}{hint}"


def _table_hint(written: str, schema: SchemaInfo) -> str:
    """ " (did you mean 'sales.orders'?)", matching the written name against qualified and bare names."""
    by_name = {name: name for name in schema.tables} | {
        name.rsplit(".", 1)[-1]: name for name in schema.tables if "." in name
    }
    return did_you_mean(written, by_name)


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
                offset = first_offset(column)
                if problem is not None and offset is not None:
                    problems.append((problem[0], offset, problem[1]))
    except OptimizeError as exc:  # e.g. one alias given to two tables, which PostgreSQL refuses too
        return [("parse_error", first_offset(statement) or 0, f"cannot resolve the query's names: {exc}")]
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
        return "unknown_column", f"column {column.table}.{name} does not exist{did_you_mean(name, known)}"
    sources = list(scope.selected_sources.values())
    owners = [alias for alias, (_, source) in scope.selected_sources.items() if name in context.output_columns(source)]
    if len(owners) > 1 and not _using_column(scope.expression, name):
        return "ambiguous_column", f"column {name!r} is ambiguous: it exists in {', '.join(sorted(owners))}"
    if owners or name in aliases or any(_opaque(source) for _, source in sources):
        return None
    if _visible_in_outer_scope(context, scope, name):
        return None
    known = set().union(*(context.output_columns(s) for _, s in sources)) if sources else set()
    return "unknown_column", f"column {name!r} does not exist{did_you_mean(name, known)}"


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


def _check_placeholders(query: Query, report: Reporter) -> None:
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


def _check_expectations(query: Query, schema: SchemaInfo, report: Reporter) -> None:
    """Expected indexes must exist: per strategy when strategy files were given, else in the schema itself
    (the DDL's own indexes offline, the server's live); expectations scoped to strategies need the former."""
    for expectation in query.expectations:
        where = (expectation.line, 1)
        if schema.strategy_indexes:
            _check_strategy_indexes(expectation, schema, report)
        elif not expectation.strategies:
            for index in expectation.indexes:
                if index not in schema.index_names:
                    hint = did_you_mean(index, _servable_indexes(query, schema))
                    report.at_line("bad_expectation", *where, f"index {index!r} is not in {schema.source}{hint}")
        for table in expectation.min_rows:
            if schema.resolve_written(table) is None:
                report.at_line(
                    "bad_expectation",
                    *where,
                    f"min_rows names unknown table {table!r}{did_you_mean(table, schema.tables)}",
                )


def _servable_indexes(query: Query, schema: SchemaInfo) -> set[str]:
    """The indexes an expectation of ``query`` could be met by, to suggest from: those on the tables it reads.
    A partition's own index counts only when the query reads that partition (read through the parent, a plan
    names an attached one under the parent's index); when the tables are unknown, every index but a partition's.
    """
    parsed = parse(query.sql)
    tables = {t for s in parsed.statements for t in _tables_read(s, schema)} if isinstance(parsed, Parsed) else set()
    if tables:
        return {i.name for i in schema.indexes.values() if i.table in tables}
    partitions = {key for key, relation in schema.relations.items() if relation.parent}
    return {i.name for i in schema.indexes.values() if i.table not in partitions}


def _tables_read(statement: exp.Expression, schema: SchemaInfo) -> Iterator[str]:
    for table in statement.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and (key := schema.resolve(table.name, table.db)):
            yield key


def _check_strategy_indexes(expectation: IndexExpectation, schema: SchemaInfo, report: Reporter) -> None:
    where = (expectation.line, 1)
    for strategy in expectation.strategies:
        if strategy not in schema.strategy_indexes:
            report.at_line(
                "bad_expectation",
                *where,
                f"unknown strategy {strategy!r}{did_you_mean(strategy, schema.strategy_indexes)}",
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


def _check_draw_sql(param: ParamSpec, schema: SchemaInfo, report: Reporter) -> None:
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
    parsed = parse(param.sql)
    if isinstance(parsed, BadEscape):
        report.at_line("bad_escape", *where, f"draw sql of {param.name!r}: {parsed.message}")
        return
    if isinstance(parsed, tuple):
        report.at_line("parse_error", *where, f"draw sql of {param.name!r}: {parsed[1]}")
        return
    if len(parsed.statements) > 1:
        report.at_line("multiple_statements", *where, f"draw sql of {param.name!r} has several statements")
    for statement in parsed.statements:
        for rule_id, _, message in _statement_problems(statement, parsed.tokens, schema):
            report.at_line(rule_id, *where, f"draw sql of {param.name!r}: {message}")
