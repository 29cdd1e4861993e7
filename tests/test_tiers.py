"""Tier files: the shipped tiers meet the issue's floors; a bad one is one error line naming file and key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import run_harness

from harness.config import available_tiers, load_tier
from harness.seed import seed, verify
from harness.server import free_port

VALID = """\
name = "mine"
anchor_date = 2026-06-30
history_days = 28
users = 12
courses = 3
behavior_logs = 150

[bounds]
users = [12, 12]
courses = [3, 3]
behavior_logs = [150, 150]
"""


def closed_port_dsn() -> str:
    """A DSN nothing listens on: a tier error must be reported before any connection is tried."""
    return f"host=127.0.0.1 port={free_port()} dbname=nothing connect_timeout=2"


def test_shipped_tiers_declare_the_issue_floors() -> None:
    assert {"test", "dev", "demo", "benchmark", "stress"} <= set(available_tiers())
    floors = {"benchmark": (10_000, 1_000_000), "stress": (100_000, 10_000_000)}
    for name, (users, logs) in floors.items():
        tier = load_tier(name)
        assert tier.users >= users and tier.behavior_logs >= logs
        assert tier.bounds["users"][0] >= users and tier.bounds["behavior_logs"][0] >= logs
    anchors = {load_tier(name).anchor_date for name in available_tiers()}
    assert anchors == {dt.date(2026, 6, 30)}  # a fixed anchor: "last 30 days" means the same rows forever


def test_a_user_tier_file_seeds_without_code_changes(tmp_path: Path, fresh_dsn: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(VALID)
    manifest = seed(fresh_dsn, load_tier(path), seed=5)
    assert manifest.tier == "mine"
    assert manifest.row_counts["users"] == 12 and manifest.row_counts["behavior_logs"] == 150
    assert verify(fresh_dsn).intact


def variant(old: str, new: str) -> bytes:
    return VALID.replace(old, new).encode()


# case: (file content, expected "file:line" after the path, words the message must contain)
BAD_FILES: dict[str, tuple[bytes, str, list[str]]] = {
    "malformed TOML": (b'users = 20\ncourses = \nname = "x"\n', ":2:", ["invalid TOML"]),
    "unknown key": (variant("users = 12", "userz = 12"), ":4:", ["userz", "did you mean 'users'"]),
    "wrong type": (variant("users = 12", 'users = "many"'), ":4:", ["users", "integer", "many"]),
    "bool is not an int": (variant("courses = 3", "courses = true"), ":5:", ["courses", "integer"]),
    "negative size": (variant("behavior_logs = 150", "behavior_logs = -5"), ":6:", ["behavior_logs", ">= 0"]),
    "zero users": (variant("users = 12", "users = 0"), ":4:", ["users", ">= 1"]),
    "bad bound, at its line": (variant("users = [12, 12]", "users = [30, 5]"), ":9:", ["bounds.users"]),
    "unknown bounds table": (
        variant("courses = [3, 3]", "coarses = [3, 3]"),
        ":10:",
        ["did you mean 'courses'"],
    ),
    "datetime anchor": (variant("2026-06-30", "2026-06-30T12:00:00"), ":2:", ["anchor_date"]),
    "missing key": (variant("courses = 3\n", ""), ": ", ["missing", "courses"]),
    "empty file": (b"  \n\n", ": ", ["empty tier file"]),
    "not UTF-8": (b'name = "caf\xe9"\nusers = 3\n', ": ", ["UTF-8"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_tier_file_is_one_line_naming_file_and_key(tmp_path: Path, case: str) -> None:
    content, where, words = BAD_FILES[case]
    path = tmp_path / "bad_tier.toml"
    path.write_bytes(content)
    done = run_harness("seed", "--tier", str(path), "--dsn", closed_port_dsn())
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Error: {path}{where}"), lines[0]
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_missing_tier_file_and_unknown_tier_name(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    done = run_harness("seed", "--tier", str(missing), "--dsn", closed_port_dsn())
    assert done.returncode == 2
    assert f"Error: {missing}: cannot read tier file" in done.stderr

    done = run_harness("seed", "--tier", "benchmrk", "--dsn", closed_port_dsn())
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "unknown tier 'benchmrk'" in lines[0] and "did you mean 'benchmark'" in lines[0]


def test_absurd_sizes_are_refused_before_anything_is_generated(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(variant("users = 12", "users = 100_000_000_000_000"))
    done = run_harness("seed", "--tier", str(path), "--dsn", closed_port_dsn())
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"Error: {path}:4: users must be <= 10_000_000")
