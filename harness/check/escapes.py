"""PostgreSQL's escaped spellings, decoded before sqlglot reads the SQL, so a rule sees the name the server resolves.

``U&"set\\005Fconfig"(…)`` is a call of ``set_config`` to PostgreSQL, but ``U & "set\\005Fconfig"(…)`` to sqlglot,
and a denylist can only match what it is shown. The scanner walks the text as PostgreSQL's lexer does (``--`` and
nested ``/* */`` comments, standard, ``E''`` and dollar-quoted strings, quoted identifiers) and rewrites each
``U&"…"`` / ``U&'…'``, with its optional ``UESCAPE 'c'``, as a plain quoted identifier or standard string.
For each character of the result it keeps the offset of the character it came from. An escape the server would
refuse is refused here too (``BadEscape``): what cannot be decoded cannot be checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
_LINE_COMMENT = re.compile(r"--[^\n\r]*")  # PostgreSQL ends a -- comment at \n or \r
_SPACE = " \t\n\r\f\v"  # PostgreSQL's whitespace (a no-break space is not)
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_UESCAPE = re.compile(r"uescape(?![\w$])", re.I)


@dataclass(frozen=True)
class BadEscape:
    """An escape PostgreSQL would refuse, at an offset of the scanned text."""

    offset: int
    message: str


def decode_escapes(text: str) -> tuple[str, list[int]] | BadEscape:
    """``text`` with every Unicode-escaped identifier and string decoded, and ``source`` where ``source[i]`` is
    the offset in ``text`` of the result's character i (one more entry, ``len(text)``, closes the map)."""
    out: list[str] = []
    source: list[int] = []
    i, n = 0, len(text)
    digits: bool | None = None  # inside an identifier or number: whether it is all digits so far; else None
    while i < n:
        end = _verbatim_end(text, i, starts_token=digits is None or digits)
        if end > i:
            out.append(text[i:end])
            source.extend(range(i, end))
            if end == i + 1 and _identifier_char(text[i]):
                digits = (digits is None or digits) and text[i] in _DIGITS
            else:
                digits = None  # after a comment, a quoted piece or an operator, a new token starts
            i = end
            continue
        decoded = _unicode_literal(text, i)
        if isinstance(decoded, BadEscape):
            return decoded
        chars, positions, i = decoded
        out.extend(chars)
        source.extend(positions)
        digits = None
    source.append(n)
    return "".join(out), source


def _verbatim_end(text: str, i: int, starts_token: bool) -> int:
    """Where the piece at ``i`` that passes unchanged ends: a comment, a quoted piece, or one character;
    ``i`` itself when a ``U&`` literal starts there. A prefix (``U&``, ``E``, ``$``) counts only where a token
    starts: ``xU&"…"`` is ``xU & "…"``, and after a number PostgreSQL starts a new token."""
    c = text[i]
    if text.startswith("--", i):
        return _LINE_COMMENT.match(text, i).end()  # type: ignore[union-attr]
    if text.startswith("/*", i):
        return _comment_end(text, i)
    if c in "uU" and text[i + 1 : i + 2] == "&" and text[i + 2 : i + 3] in ("'", '"') and starts_token:
        return i
    if c in "eE" and text[i + 1 : i + 2] == "'" and starts_token:
        return _quoted_end(text, i + 1, "'", backslash=True)
    if c in "'\"":
        return _quoted_end(text, i, c, backslash=False)
    if c == "$" and starts_token:
        tag = _DOLLAR_TAG.match(text, i)
        if tag:
            close = text.find(tag.group(), tag.end())
            return len(text) if close < 0 else close + len(tag.group())
    return i + 1


def _identifier_char(c: str) -> bool:
    """What PostgreSQL's lexer continues an identifier with: ASCII letters and digits, _, $ and any non-ASCII."""
    return not c.isascii() or c.isalnum() or c in "_$"


def _comment_end(text: str, i: int) -> int:
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


def _quoted_end(text: str, i: int, quote: str, backslash: bool) -> int:
    """The end of the quoted piece opening at ``i`` (the end of ``text`` when it is never closed)."""
    close = _closing_quote(text, i, quote, backslash)
    return len(text) if close < 0 else close + 1


def _closing_quote(text: str, i: int, quote: str, backslash: bool) -> int:
    """The offset of the quote closing the piece opened at ``i``, or -1: a doubled quote stays inside, and in
    E'' a backslash escapes the next character."""
    j = i + 1
    while j < len(text):
        if backslash and text[j] == "\\":
            j += 2
        elif text[j] == quote:
            if text[j + 1 : j + 2] != quote:
                return j
            j += 2
        else:
            j += 1
    return -1


def _unicode_literal(text: str, i: int) -> tuple[list[str], list[int], int] | BadEscape:
    """The ``U&`` literal at ``i`` as a plain one: (characters, their source offsets, where scanning goes on)."""
    quote = text[i + 2]
    close = _closing_quote(text, i + 2, quote, backslash=False)
    if close < 0:
        return [text[i]], [i], i + 1  # unterminated: left for sqlglot to report
    body: list[tuple[str, int]] = []
    j = i + 3
    while j < close:
        body.append((quote if text[j] == quote else text[j], j))
        j += 2 if text[j] == quote else 1  # a doubled quote is one character of the literal
    escape, resume = _uescape(text, close + 1)
    if isinstance(escape, BadEscape):
        return escape
    decoded = _unescape(body, escape)
    if isinstance(decoded, BadEscape):
        return decoded
    chars, positions = [quote], [i]
    for char, position in decoded:
        chars += [char, char] if char == quote else [char]
        positions += [position, position] if char == quote else [position]
    return [*chars, quote], [*positions, close], resume


def _uescape(text: str, end: int) -> tuple[str | BadEscape, int]:
    """The escape character (``\\`` unless a ``UESCAPE 'c'`` follows the literal) and where scanning goes on."""
    j = _skip_space(text, end)
    keyword = _UESCAPE.match(text, j)
    if keyword is None:
        return "\\", end
    k = _skip_space(text, keyword.end())
    literal = text[k : k + 3]
    if len(literal) != 3 or literal[0] != "'" or literal[2] != "'" or literal[1] == "'":
        return BadEscape(j, "UESCAPE is not followed by one character in quotes"), end
    char = literal[1]
    if char in _HEX or char in "+'\"" or char in _SPACE:
        return BadEscape(k, f"invalid Unicode escape character '{char}'"), end
    return char, k + 3


def _skip_space(text: str, i: int) -> int:
    while i < len(text):
        if text[i] in _SPACE:
            i += 1
        elif text.startswith("--", i):
            i = _LINE_COMMENT.match(text, i).end()  # type: ignore[union-attr]
        elif text.startswith("/*", i):
            i = _comment_end(text, i)
        else:
            break
    return i


def _unescape(body: list[tuple[str, int]], escape: str) -> list[tuple[str, int]] | BadEscape:
    """PostgreSQL's ``\\XXXX``, ``\\+XXXXXX`` (surrogate pairs joined) and ``\\\\`` in a literal's characters."""
    decoded: list[tuple[str, int]] = []
    k = 0
    while k < len(body):
        char, position = body[k]
        if char != escape:
            decoded.append((char, position))
            k += 1
            continue
        if k + 1 < len(body) and body[k + 1][0] == escape:
            decoded.append((escape, position))
            k += 2
            continue
        plus = k + 1 < len(body) and body[k + 1][0] == "+"
        written = "".join(c for c, _ in body[k : k + (8 if plus else 5)])
        point, k = _code_point(body, k, escape)
        if point is None or not 0 < point <= 0x10FFFF:
            return BadEscape(position, f"invalid Unicode escape '{written}'")
        if 0xD800 <= point <= 0xDBFF:
            low, after = _code_point(body, k, escape)
            if low is None or not 0xDC00 <= low <= 0xDFFF:
                return BadEscape(position, f"invalid Unicode surrogate pair '{written}': a high surrogate alone")
            point, k = 0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00), after
        elif 0xDC00 <= point <= 0xDFFF:
            return BadEscape(position, f"invalid Unicode surrogate pair '{written}': a low surrogate alone")
        decoded.append((chr(point), position))
    return decoded


def _code_point(body: list[tuple[str, int]], k: int, escape: str) -> tuple[int | None, int]:
    """The code point of the escape at ``body[k]`` and the index after it, or (None, k) when there is none."""
    if k >= len(body) or body[k][0] != escape:
        return None, k
    plus = k + 1 < len(body) and body[k + 1][0] == "+"
    start = k + 2 if plus else k + 1
    digits = "".join(c for c, _ in body[start : start + (6 if plus else 4)])
    if len(digits) != (6 if plus else 4) or any(c not in _HEX for c in digits):
        return None, k
    return int(digits, 16), start + len(digits)
