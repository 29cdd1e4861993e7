"""The lint rules, one function each; the decorator gives the id, severity, summary and fix.

Every rule's docstring has the anti-pattern and the better form, as in sqlfluff's rule modules.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp
from sqlglot.optimizer.scope import Scope
from sqlglot.tokens import TokenType

from harness.lint.base import Hit, LintContext, rule

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In, exp.Like, exp.ILike)
_WRAPPERS = (exp.Func, exp.Cast, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.DPipe, exp.AtTimeZone)


def _shallow(node: exp.Expression | None) -> Iterator[exp.Expression]:
    """Walk ``node`` without entering subqueries (they are scopes of their own)."""
    if node is None:
        return
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in current.iter_expressions():
            if not isinstance(child, exp.Query | exp.Subquery):
                stack.append(child)


def _conditions(select: exp.Select) -> list[exp.Expression]:
    where = select.args.get("where")
    found = [where.this] if where is not None else []
    found += [join.args["on"] for join in select.args.get("joins") or [] if join.args.get("on") is not None]
    return found


def _select_scopes(context: LintContext) -> Iterator[Scope]:
    for scope in context.scopes():
        if isinstance(scope.expression, exp.Select):
            yield scope


@rule(
    "select_star",
    "warning",
    "SELECT * returns columns nobody asked for and changes when the schema does",
    "list the columns the report needs",
)
def select_star(context: LintContext) -> Iterator[Hit]:
    """``SELECT *`` / ``SELECT t.*`` in a result (``EXISTS (SELECT * …)`` is fine).

    Anti-pattern: ``SELECT * FROM users``. Best practice: ``SELECT id, persona FROM users``.
    """
    for select in context.tree.find_all(exp.Select):
        if isinstance(select.parent, exp.Exists) or (
            isinstance(select.parent, exp.Subquery) and isinstance(select.parent.parent, exp.Exists)
        ):
            continue
        for projection in select.expressions:
            star = projection if isinstance(projection, exp.Star) else None
            if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                star = projection
            offset = context.start(star) if star is not None else None
            if offset is not None:
                yield Hit("select_star", offset, "SELECT * in a query result")


@rule(
    "non_sargable",
    "warning",
    "a function, cast or arithmetic on an indexed column hides it from its index",
    "compare the bare column to a computed range, e.g. ts >= %(day)s AND ts < %(day)s + interval '1 day'",
)
def non_sargable(context: LintContext) -> Iterator[Hit]:
    """An expression wrapped around an indexed column in WHERE or JOIN … ON.

    Anti-pattern: ``WHERE date_trunc('day', occurred_at) = %(day)s``.
    Best practice: ``WHERE occurred_at >= %(day)s AND occurred_at < %(day)s + interval '1 day'``.
    An expression index on exactly that expression makes it fine.
    """
    for scope in _select_scopes(context):
        for condition in _conditions(scope.expression):
            for predicate in _shallow(condition):
                if not isinstance(predicate, _COMPARISONS):
                    continue
                for operand in (predicate.this, predicate.args.get("expression")):
                    hit = _wrapped_indexed_column(context, scope, operand)
                    if hit is not None:
                        yield hit


def _wrapped_indexed_column(context: LintContext, scope: Scope, operand: object) -> Hit | None:
    if not isinstance(operand, _WRAPPERS) or operand.find(exp.Query) is not None:
        return None
    for column in _shallow(operand):
        if not isinstance(column, exp.Column):
            continue
        table = context.table_of(scope, column)
        if table is None or column.name not in context.schema.indexed_columns(table):
            continue
        if context.schema.has_expression_index(table, operand):
            return None
        offset = context.start(operand)
        if offset is None:
            return None
        what = "cast" if isinstance(operand, exp.Cast) else "expression"
        return Hit(
            "non_sargable",
            offset,
            f"{what} on indexed column {table}.{column.name} prevents an index range scan",
        )
    return None


@rule(
    "leading_wildcard_like",
    "warning",
    "LIKE '%…' cannot use a b-tree index: every row is scanned",
    "anchor the pattern ('abc%'), or add a pg_trgm GIN index for substring search",
)
def leading_wildcard_like(context: LintContext) -> Iterator[Hit]:
    """A LIKE/ILIKE pattern that starts with a wildcard.

    Anti-pattern: ``WHERE email LIKE '%@example.com'``. Best practice: an anchored pattern or a trigram index.
    """
    for like in context.tree.find_all(exp.Like, exp.ILike):
        pattern = like.expression
        while isinstance(pattern, exp.DPipe | exp.Concat):
            pattern = pattern.this if isinstance(pattern, exp.DPipe) else pattern.expressions[0]
        if isinstance(pattern, exp.Literal) and pattern.is_string and pattern.this[:1] in ("%", "_"):
            offset = context.start(pattern)
            if offset is not None:
                yield Hit("leading_wildcard_like", offset, f"LIKE pattern '{pattern.this}' starts with a wildcard")


@rule(
    "not_in_subquery",
    "warning",
    "NOT IN (subquery) returns no rows at all when the subquery yields a NULL",
    "write NOT EXISTS (SELECT 1 FROM … WHERE …) instead",
)
def not_in_subquery(context: LintContext) -> Iterator[Hit]:
    """``x NOT IN (SELECT …)``: wrong with NULLs and planned as a hashed subplan at best.

    Anti-pattern: ``WHERE id NOT IN (SELECT user_id FROM enrollments)``.
    Best practice: ``WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.user_id = u.id)``.
    """
    for negation in context.tree.find_all(exp.Not):
        inner = negation.this
        if isinstance(inner, exp.In) and inner.args.get("query") is not None:
            offset = context.keyword_before(context.start(inner.args["query"]), TokenType.NOT)
            if offset is not None:
                yield Hit("not_in_subquery", offset, "NOT IN with a subquery")


@rule(
    "offset_pagination",
    "warning",
    "OFFSET n reads and throws away n rows: pages get slower the deeper they go",
    "paginate by key: WHERE (sort_key, id) > (%(last_key)s, %(last_id)s) ORDER BY sort_key, id LIMIT n",
)
def offset_pagination(context: LintContext) -> Iterator[Hit]:
    """``OFFSET`` with anything but 0.

    Anti-pattern: ``ORDER BY id LIMIT 50 OFFSET %(page_start)s``. Best practice: keyset pagination.
    """
    for offset_clause in context.tree.find_all(exp.Offset):
        amount = offset_clause.expression
        if isinstance(amount, exp.Literal) and amount.this == "0":
            continue
        offset = context.keyword_before(context.start(amount), TokenType.OFFSET)
        if offset is not None:
            yield Hit("offset_pagination", offset, "OFFSET pagination")


@rule(
    "order_without_limit",
    "warning",
    "ORDER BY without LIMIT sorts a result as large as a large table",
    "add LIMIT, aggregate first, or drop the ORDER BY if the consumer does not need it",
)
def order_without_limit(context: LintContext) -> Iterator[Hit]:
    """A row-level (not aggregated) SELECT over a large table, ordered but not limited.

    Anti-pattern: ``SELECT user_id, occurred_at FROM behavior_logs ORDER BY occurred_at``.
    Best practice: ``… ORDER BY occurred_at DESC LIMIT 100``. Which tables are large: see SchemaInfo.
    """
    for scope in _select_scopes(context):
        select = scope.expression
        order = select.args.get("order")
        if order is None or select.args.get("limit") or select.args.get("fetch") or _aggregated(select):
            continue
        large = sorted(
            source.name
            for _, source in scope.selected_sources.values()
            if isinstance(source, exp.Table)
            and isinstance(source.this, exp.Identifier)
            and context.schema.is_large(source.name)
        )
        offset = context.keyword_before(context.start(order), TokenType.ORDER_BY)
        if large and offset is not None:
            yield Hit("order_without_limit", offset, f"ORDER BY without LIMIT over large table {large[0]}")


def _aggregated(select: exp.Select) -> bool:
    if select.args.get("group") or select.args.get("distinct"):
        return True
    for projection in select.expressions:
        for node in _shallow(projection):
            if isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window):
                return True
    return False


@rule(
    "join_without_condition",
    "error",
    "a join with no condition multiplies the rows of both sides",
    "add ON a.key = b.key (or a WHERE predicate), or write CROSS JOIN if every combination is intended",
)
def join_without_condition(context: LintContext) -> Iterator[Hit]:
    """A comma join (or JOIN without ON/USING) with no predicate linking it to the other sources.

    Anti-pattern: ``FROM users u, enrollments e WHERE u.persona = 'saver'``.
    Best practice: ``FROM users u JOIN enrollments e ON e.user_id = u.id``. An explicit CROSS JOIN is trusted.
    """
    for scope in _select_scopes(context):
        for join in scope.expression.args.get("joins") or []:
            if join.args.get("on") is not None or join.args.get("using") or join.kind == "CROSS":
                continue
            if join.method == "NATURAL" or not _is_relation(join.this):
                continue
            alias = join.this.alias_or_name
            if not _linked_in_where(context, scope, alias):
                offset = context.start(join.this)
                if offset is not None:
                    yield Hit("join_without_condition", offset, f"no join condition for {alias!r}")


def _is_relation(node: exp.Expression) -> bool:
    return isinstance(node, exp.Subquery) or (isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier))


def _linked_in_where(context: LintContext, scope: Scope, alias: str) -> bool:
    where = scope.expression.args.get("where")
    for predicate in _shallow(where.this if where is not None else None):
        if isinstance(predicate, _COMPARISONS):
            sources = {_source_name(context, scope, c) for c in _shallow(predicate) if isinstance(c, exp.Column)}
            if alias in sources and len(sources - {None}) > 1:
                return True
    return False


def _source_name(context: LintContext, scope: Scope, column: exp.Column) -> str | None:
    source = context.source_of(scope, column)
    for name, (_, candidate) in scope.selected_sources.items():
        if candidate is source:
            return name
    return None


@rule(
    "distinct_fanout",
    "warning",
    "DISTINCT removes duplicates that a join only used for filtering created",
    "filter with WHERE EXISTS (SELECT 1 FROM … ) instead of joining, and drop the DISTINCT",
)
def distinct_fanout(context: LintContext) -> Iterator[Hit]:
    """SELECT DISTINCT over a join where a joined table contributes no output column.

    Anti-pattern: ``SELECT DISTINCT u.id FROM users u JOIN enrollments e ON e.user_id = u.id``.
    Best practice:
    ``SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM enrollments e WHERE e.user_id = u.id)``.
    """
    for scope in _select_scopes(context):
        select = scope.expression
        distinct = select.args.get("distinct")
        if distinct is None or distinct.args.get("on") is not None or not select.args.get("joins"):
            continue
        if any(
            isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
            for p in select.expressions
        ):
            continue
        used = {
            _source_name(context, scope, c)
            for p in select.expressions
            for c in _shallow(p)
            if isinstance(c, exp.Column)
        }
        idle = [
            name
            for name, (_, source) in scope.selected_sources.items()
            if name not in used and isinstance(source, exp.Table | Scope) and _joined(select, name)
        ]
        offset = context.keyword_before(context.start(select.expressions[0]), TokenType.DISTINCT)
        if idle and offset is not None:
            yield Hit(
                "distinct_fanout",
                offset,
                f"SELECT DISTINCT over a join with {idle[0]!r}, which adds no output column",
            )


def _joined(select: exp.Select, name: str) -> bool:
    return any(join.this.alias_or_name == name for join in select.args.get("joins") or [])
