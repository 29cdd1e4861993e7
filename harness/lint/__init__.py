"""Lint rules: SQL that runs but performs badly or means something else than it seems.

Each rule is a small function over a parsed query (``harness.lint.rules``) registered here with an id, a
severity and a one-line fix. Rules report character offsets into the parsed text; ``harness.check.rules`` turns
them into file:line:col findings and drops the ones a query silences in ``[lint.allow]``.
"""

from __future__ import annotations

from harness.lint import rules as _rules  # noqa: F401  (registers the rules)
from harness.lint.base import _REGISTRY, Hit, LintContext, LintFunction, Rule, rule

__all__ = ["RULES", "RULE_IDS", "Hit", "LintContext", "LintFunction", "Rule", "rule", "run_lints"]


def run_lints(context: LintContext) -> list[Hit]:
    """Every hit of every rule on one statement."""
    return [hit for _, function in _REGISTRY for hit in function(context)]


RULES: dict[str, Rule] = {r.id: r for r, _ in _REGISTRY}
RULE_IDS: tuple[str, ...] = tuple(RULES)
