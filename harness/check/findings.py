"""What ``harness check`` reports: a finding at file:line:col, the correctness rules' severities and fixes."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.catalog import Query
from harness.lint import RULES
from harness.safety import UNPARSED

# Correctness rules: id → (severity, fix). Lint rules add theirs from harness.lint.RULES.
CHECK_RULES: dict[str, tuple[str, str]] = {
    "config_error": ("error", "fix the metadata header as the message says (README: 'Query files')"),
    "parse_error": ("error", "fix the SQL syntax at this position"),
    "unparsed": (
        "error",
        f'the harness runs only SQL it understands: rewrite it, or add [lint.allow] {UNPARSED} = "why it is safe"',
    ),
    "bad_escape": (
        "error",
        "write the character itself or a valid escape: \\XXXX or \\+XXXXXX (hex digits), \\\\ for the escape "
        "character itself; UESCAPE 'c' takes one character that is not a hex digit, +, quote or space",
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


@dataclass
class Reporter:
    """Collects findings for one query file, turning text offsets into file positions."""

    query: Query
    findings: list[Finding] = field(default_factory=list)

    def at_offset(self, rule_id: str, offset: int, message: str) -> None:
        self.at_line(rule_id, *self.query.position(offset), message)

    def at_line(self, rule_id: str, line: int, col: int, message: str) -> None:
        self.findings.append(finding(rule_id, str(self.query.path), line, col, message))


def finding(rule_id: str, path: str, line: int, col: int, message: str) -> Finding:
    """A finding of rule ``rule_id`` (a correctness rule or a lint rule), with that rule's severity and fix."""
    severity, fix = (RULES[rule_id].severity, RULES[rule_id].fix) if rule_id in RULES else CHECK_RULES[rule_id]
    return Finding(rule_id, severity, path, line, col, message, fix)
