"""The sqlglot adapter: a query's SQL as sqlglot reads it, with every position mapped back into the file.

psycopg's placeholders are rewritten before parsing (``%(name)s`` → ``:name``, ``%%`` → ``%``), Unicode escapes
are decoded (``harness.check.escapes``), and the offset map turns sqlglot's positions back into the file's.
sqlglot only reads the SQL; what runs is the file's text.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.tokens import Token

from harness.catalog import PLACEHOLDER
from harness.check.escapes import BadEscape, decode_escapes


@dataclass(frozen=True)
class Parsed:
    """A query's SQL as sqlglot reads it: placeholders as ``:name``, ``%%`` as ``%``, offsets mapped back."""

    text: str
    offsets: list[int]  # offsets[i] = offset in Query.sql of text[i]
    tokens: list[Token]
    statements: list[exp.Expression]

    def original(self, offset: int) -> int:
        return self.offsets[min(offset, len(self.offsets) - 1)]


def rewrite(sql: str, placeholder: Callable[[str], str]) -> tuple[str, list[int], list[tuple[str, int]]]:
    """``sql`` with each ``%(name)s`` replaced and ``%%`` → ``%`` (what the server receives from psycopg).

    Returns the text, the offset map back into ``sql`` and (name, offset in text) of each placeholder.
    """
    pieces: list[str] = []
    offsets: list[int] = []
    placeholders: list[tuple[str, int]] = []
    position = 0
    for match in PLACEHOLDER.finditer(sql):
        if match["name"] is None and not match["pos"] and not match["pct"]:
            continue  # a lone '%' reaches the server as it is
        pieces.append(sql[position : match.start()])
        offsets.extend(range(position, match.start()))
        if match["pct"]:
            replacement = "%"
        else:
            name = match["name"] if match["name"] and match["name"].isidentifier() else "_placeholder"
            placeholders.append((name, len(offsets)))
            replacement = placeholder(name)
        pieces.append(replacement)
        offsets.extend([match.start()] * len(replacement))
        position = match.end()
    pieces.append(sql[position:])
    offsets.extend(range(position, len(sql) + 1))
    return "".join(pieces), offsets, placeholders


NAMEDATALEN = 63  # PostgreSQL truncates longer identifiers to this many bytes


def parse(sql: str) -> Parsed | BadEscape | tuple[int, str]:
    """The parsed statements, an escape that cannot be decoded (offset in sql), or (offset in sql, message) of
    the syntax error."""
    readable = _server_text(sql)
    if isinstance(readable, BadEscape):
        return readable
    text, offsets, placeholders = readable
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
    return Parsed(text, offsets, tokens, statements)


def fold(name: str, quoted: bool) -> str:
    """An identifier as PostgreSQL stores it: unquoted folded to lower case, quoted kept, at most 63 bytes."""
    return (name if quoted else name.lower()).encode()[:NAMEDATALEN].decode(errors="ignore")


def _server_text(sql: str) -> tuple[str, list[int], list[tuple[str, int]]] | BadEscape:
    """What sqlglot reads: placeholders rewritten as the server receives them, Unicode escapes decoded; with
    the offset map into ``sql`` and the placeholders' (name, offset in the text)."""
    text, offsets, placeholders = rewrite(sql, lambda name: ":" + name)
    decoded = decode_escapes(text)
    if isinstance(decoded, BadEscape):
        return BadEscape(offsets[decoded.offset], decoded.message)
    text, source = decoded
    return (
        text,
        [offsets[i] for i in source],
        [(name, bisect_left(source, offset)) for name, offset in placeholders],
    )


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


def first_offset(node: exp.Expression) -> int | None:
    """Where ``node`` starts in the parsed text (the earliest position sqlglot kept in it), if known."""
    starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
    return min(starts) if starts else None
