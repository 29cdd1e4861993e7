"""The lint rules' vocabulary: a rule's identity, a hit, what a rule may look at, and the registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import Token, TokenType

if TYPE_CHECKING:
    from harness.schema import SchemaInfo


@dataclass(frozen=True)
class Rule:
    """A lint rule's identity: the id used in findings and [lint.allow], and what to do about it."""

    id: str
    severity: str  # "error" | "warning"
    summary: str
    fix: str


@dataclass(frozen=True)
class Hit:
    """One occurrence of a rule, at a character offset of the parsed text."""

    rule: str
    offset: int
    message: str


@dataclass(frozen=True)
class LintContext:
    """What a rule may look at: the parsed statement, its tokens and the schema."""

    tree: exp.Expression
    tokens: list[Token]
    schema: SchemaInfo

    def scopes(self) -> list[Scope]:
        return traverse_scope(self.tree)

    def start(self, node: exp.Expression) -> int | None:
        """Offset of the first positioned token inside ``node`` (sqlglot keeps positions on leaves)."""
        starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
        return min(starts) if starts else None

    def keyword_before(self, limit: int | None, *types: TokenType) -> int | None:
        """Offset of the last keyword of ``types`` before ``limit`` (where a clause's keyword sits)."""
        if limit is None:
            return None
        found = [t.start for t in self.tokens if t.token_type in types and t.start < limit]
        return found[-1] if found else None

    def table_of(self, scope: Scope, column: exp.Column) -> str | None:
        """The real table a column reads from, when it resolves to exactly one schema table."""
        source = self.source_of(scope, column)
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            return source.name
        return None

    def source_of(self, scope: Scope, column: exp.Column) -> exp.Table | Scope | None:
        """The FROM/JOIN source a column belongs to (by qualifier, or the only source having that name)."""
        if column.table:
            selected = scope.selected_sources.get(column.table)
            return selected[1] if selected else None
        sources = [source for _, source in scope.selected_sources.values()]
        candidates = [src for src in sources if column.name in self.output_columns(src)]
        return candidates[0] if len(candidates) == 1 else None

    def output_columns(self, source: object) -> set[str]:
        if isinstance(source, Scope):
            return set(source.expression.named_selects) if isinstance(source.expression, exp.Query) else set()
        if isinstance(source, exp.Table):
            alias = source.args.get("alias")
            if alias is not None and alias.columns:
                return {c.name for c in alias.columns}
            if isinstance(source.this, exp.Identifier):
                return set(self.schema.columns(source.name, source.db))
        return set()


LintFunction = Callable[[LintContext], Iterator[Hit]]
_REGISTRY: list[tuple[Rule, LintFunction]] = []


def rule(id: str, severity: str, summary: str, fix: str) -> Callable[[LintFunction], LintFunction]:
    """Register a lint function under ``id`` (used by harness.lint.rules)."""

    def register(function: LintFunction) -> LintFunction:
        _REGISTRY.append((Rule(id, severity, summary, fix), function))
        return function

    return register
