"""Garbled tier, query and strategy files never crash the harness: each either loads into a valid object or
fails with a HarnessError whose message is one line naming the file (exit 2 through the CLI).

Mutations are seeded (truncation, byte flips, deleted/duplicated/swapped lines, values of the wrong type,
stray syntax), so a failure names the case that reproduces it.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, run_harness

from harness.catalog import load_query
from harness.check import check_query as check_query_against
from harness.check import run_blockers
from harness.config import parse_tier
from harness.ddl import load_schema_ddl
from harness.errors import ConfigError, HarnessError
from harness.server import free_port
from harness.strategies import load_strategy

TIER_FILES = sorted((REPO / "scenarios" / "tiers").glob("*.toml"))
QUERY_FILES = sorted((REPO / "queries").glob("*.sql"))
STRATEGY_FILES = sorted((REPO / "scenarios" / "strategies").glob("*.sql"))
CASES = 300

WRONG_VALUES = [
    '"text"', "-1", "0", "-0.5", "1.5", "true", "[]", '[1, "a"]', "[3, 1]", "{}", "{ x = 1 }", "2026-01-01",
    "2026-01-01T10:00:00", "10:00:00", "nan", "inf", "-inf", "1e400", '""', "'''\nmulti\n'''",
    "1e308", "1e26", "99999999", "100000000000000000000", "9999-12-31", "{ a = 1 }",
]  # fmt: skip
STRAY = [b"[", b"]", b"=", b'"', b"'", b"{", b"}", b"/*", b"*/", b"%", b"%(", b";", b"\x00", b"\xff", b"\n", b"[[x]]"]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def delete_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def duplicate_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return b"\n".join(lines)


def swap_lines(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def swap_type(data: bytes, rng: random.Random) -> bytes:
    """Give one `key = value` (or inline `key = value,`) a value of another type."""
    assignments = list(re.finditer(rb"(\b[A-Za-z_]+\s*=\s*)([^,}\n]+)", data))
    if not assignments:
        return flip_bytes(data, rng)
    match = rng.choice(assignments)
    return data[: match.start(2)] + rng.choice(WRONG_VALUES).encode() + data[match.end(2) :]


def misspell_key(data: bytes, rng: random.Random) -> bytes:
    keys = list(re.finditer(rb"^\s*([A-Za-z_]{3,})\s*=", data, re.MULTILINE))
    if not keys:
        return delete_line(data, rng)
    match = rng.choice(keys)
    key = match.group(1)
    i = rng.randrange(len(key))
    return data[: match.start(1)] + key[:i] + key[i + 1 :] + data[match.end(1) :]


def insert_stray(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice(STRAY) + data[at:]


MUTATIONS: list[Callable[[bytes, random.Random], bytes]] = [
    truncate, flip_bytes, delete_line, duplicate_line, swap_lines, swap_type, misspell_key, insert_stray,
]  # fmt: skip


def mutant(originals: list[Path], case: int) -> tuple[bytes, str]:
    """The garbled bytes of case ``case`` and how they were made (for the failure message)."""
    rng = random.Random(case)
    source = rng.choice(originals)
    data, steps = source.read_bytes(), []
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(MUTATIONS)
        data = mutation(data, rng)
        steps.append(mutation.__name__)
    return data, f"case {case}: {source.name} + {', '.join(steps)}"


def assert_one_line_naming(error: HarnessError, path: Path, how: str) -> None:
    message = str(error)
    assert message.strip() and "\n" not in message, f"{how}: {message!r}"
    if isinstance(error, ConfigError):
        assert error.path == str(path) and message.startswith(str(path)), f"{how}: {message!r}"


def load_or_refuse(load: Callable[[Path], object], path: Path, how: str) -> object | None:
    """The loaded object, or None after checking the refusal is a proper one-line HarnessError."""
    try:
        return load(path)
    except HarnessError as error:
        assert_one_line_naming(error, path, how)
        return None
    except Exception as error:  # the bug this test exists to find
        raise AssertionError(f"{how}: {type(error).__name__}: {error}\n{path.read_bytes()!r}") from error


def test_garbled_tier_files_load_valid_or_fail_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "tier.toml"
    loaded = 0
    for case in range(CASES):
        data, how = mutant(TIER_FILES, case)
        path.write_bytes(data)
        tier = load_or_refuse(parse_tier, path, how)
        if tier is None:
            continue
        loaded += 1
        assert tier.users >= 1 and tier.courses >= 1 and tier.behavior_logs >= 0, how  # type: ignore[attr-defined]
        assert tier.history_days >= 7 and math.isfinite(tier.enrollments_per_user), how  # type: ignore[attr-defined]
        assert all(low <= high for low, high in tier.bounds.values()), how  # type: ignore[attr-defined]
    assert 0 < loaded < CASES  # the mutations hit both sides: some survive, most are refused


@pytest.fixture(scope="module")
def schema():  # type: ignore[no-untyped-def]
    return load_schema_ddl(REPO / "scenarios" / "schema.sql", STRATEGY_FILES)


def test_garbled_query_files_load_valid_or_fail_cleanly_and_check_never_crashes(tmp_path: Path, schema) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "query.sql"
    loaded = 0
    for case in range(CASES):
        data, how = mutant(QUERY_FILES, case)
        path.write_bytes(data)
        query = load_or_refuse(load_query, path, how)
        if query is None:
            continue
        loaded += 1
        assert 0 < query.budget_ms < math.inf and query.weight >= 0, how  # type: ignore[attr-defined]
        try:  # a query that loads is then checked: findings, never an exception
            check_query_against(query, schema)  # type: ignore[arg-type]
            run_blockers(query)  # type: ignore[arg-type]
        except Exception as error:
            raise AssertionError(f"{how}: check crashed: {type(error).__name__}: {error}\n{data!r}") from error
    assert 0 < loaded < CASES


def test_garbled_strategy_files_load_or_fail_cleanly(tmp_path: Path) -> None:
    directory = tmp_path / "strategies"
    directory.mkdir(exist_ok=True)
    path = directory / "garbled.sql"
    for case in range(CASES // 3):
        data, how = mutant(STRATEGY_FILES, case)
        path.write_bytes(data)
        load_or_refuse(lambda p: load_strategy(p.stem, p.parent), path, how)


def refused_mutants(originals: list[Path], load: Callable[[Path], object], tmp: Path, count: int) -> list[Path]:
    """The first ``count`` garbled files (one per case) that the library refuses with a ConfigError."""
    found: list[Path] = []
    case = 0
    while len(found) < count:
        data, _ = mutant(originals, case)
        path = tmp / f"m{case}" / f"mutant{originals[0].suffix}"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        try:
            load(path)
        except ConfigError:
            found.append(path)
        case += 1
    return found


def closed_dsn() -> str:
    return f"host=127.0.0.1 port={free_port()} dbname=nothing connect_timeout=2"


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


def test_garbled_files_through_the_cli_are_exit_2_with_one_line(tmp_path: Path) -> None:
    for path in refused_mutants(TIER_FILES, parse_tier, tmp_path / "tiers", 3):
        assert str(path) in one_error_line(run_harness("seed", "--tier", str(path), "--dsn", closed_dsn()))
    for path in refused_mutants(QUERY_FILES, load_query, tmp_path / "queries", 3):
        args = ["--queries", str(path.parent), "--reports-dir", str(tmp_path / "reports")]
        assert str(path) in one_error_line(run_harness("run", "--dsn", closed_dsn(), *args))
        checked = run_harness("check", "--queries", str(path.parent))
        assert checked.returncode == 2 and "Traceback" not in checked.stdout + checked.stderr
        assert f"{path.name}:" in checked.stdout and "config_error" in checked.stdout
    assert not (tmp_path / "reports").exists()


def test_garbled_schema_ddl_is_read_or_refused_cleanly(tmp_path: Path) -> None:
    """pg_dump output and hand-written DDL, garbled: read (what cannot be parsed is listed) or refused in one
    line (an unreadable file), never a crash."""
    originals = [*sorted((REPO / "tests" / "fixtures" / "schemas").glob("*.sql")), REPO / "scenarios" / "schema.sql"]
    path = tmp_path / "schema.sql"
    for case in range(CASES // 3):
        data, how = mutant(originals, case)
        path.write_bytes(data)
        loaded = load_or_refuse(lambda p: load_schema_ddl(p, []), path, how)
        assert loaded is None or all(u.line >= 1 and u.kind for u in loaded.unread), how  # type: ignore[attr-defined]
