"""`harness compare --base-ref REF` / `--base-queries DIR`: two catalog versions interleaved on one real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from conftest import REPO, run_harness

from harness.compare import compare_catalogs, compare_runs
from harness.compare.interleave import balanced
from harness.errors import ConfigError, InputError
from harness.results import load_run
from harness.seed import TABLES
from harness.strategies import existing_indexes, load_strategy
from harness.strategies import strategies_dir as default_strategies_dir

# Latency dominated by pg_sleep, as in test_compare.py: a scheduler hiccup of a few ms cannot move a p95.
STEADY = "SELECT pg_sleep(0.015), count(*) FROM users"
FAST = "SELECT pg_sleep(0.010)"
SLOW = "SELECT pg_sleep(0.020)"
FEW = ("--iterations", "20", "--warmup", "1", "--rounds", "4")
SMALL = {"iterations": 4, "warmup": 0, "rounds": 2}


def write_catalog(directory: Path, queries: dict[str, str], params: dict[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in queries.items():
        extra = f"[params]\n{params[name]}\n" if params and name in params else ""
        header = f'/* harness\ndescription = "{name}"\nbudget_ms = 200\n{extra}*/\n'
        (directory / f"{name}.sql").write_text(header + sql + "\n")
    return directory


def ab(dsn: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_harness("compare", "--tier", "test", "--dsn", dsn, *FEW, *args, cwd=cwd)


def test_each_side_goes_first_in_exactly_half_the_rounds_in_a_seeded_order() -> None:
    def orders(seed: int, *keys: int) -> list[tuple[str, ...]]:
        return [tuple(balanced(("base", "cand"), r, 10, seed, *keys)) for r in range(10)]

    assert orders(42) == orders(42)
    assert orders(42).count(("base", "cand")) == orders(42).count(("cand", "base")) == 5
    assert orders(42) != orders(7) or orders(42, 1) != orders(42, 2)  # which rounds depends on the seed


def test_a_planted_slowdown_fails_naming_the_query_and_an_identical_copy_passes(tier_dsn: str, tmp_path: Path) -> None:
    cand = write_catalog(tmp_path / "cand", {"steady": STEADY, "planted": SLOW})
    base = write_catalog(tmp_path / "base", {"steady": STEADY, "planted": FAST})
    # --all: `steady` is unchanged, measured anyway to show both sides' work counted apart
    slower = ab(tier_dsn, "--queries", str(cand), "--base-queries", str(base), "--all", "--reports-dir", str(tmp_path))
    assert slower.returncode == 1, slower.stderr
    assert "REGRESSION: planted" in slower.stdout and "REGRESSION: steady" not in slower.stdout
    assert "design: up to 4 rounds, n = 20 timed runs per query and side" in slower.stdout
    assert "2 of 2 queries paired by draw; test: work first" in slower.stdout
    assert "Wilcoxon" in slower.stdout and "family-wise α = 0.01" in slower.stdout
    (report,) = tmp_path.glob("compare-*")
    data = json.loads((report / "compare.json").read_text())
    assert data["kind"] == "catalogs" and data["exit_code"] == 1 and data["design"]["rounds"] == 4
    # both sides are saved as runs; re-compared as the sides of one interleaved job they give the same verdict
    saved = load_run(report / "base" / "run.json"), load_run(report / "cand" / "run.json")
    assert [q.name for q in compare_runs(*saved, interleaved=True).regressions] == ["planted"]
    # as separate runs, a time-only change must exceed half the budget (200 ms): +10 ms is reported, not failed
    assert compare_runs(*saved).exit_code == 0
    assert all(len(q.samples_ms) == 20 for q in load_run(report / "cand" / "run.json").queries.values())
    # `steady` has the same text (so the same queryid) on both sides: each side's work counts its own calls
    for side in ("base", "cand"):
        work = load_run(report / side / "run.json").queries["steady"].work
        assert work is not None and work.source == "pg_stat_statements" and work.calls == 20, (side, work)

    same = ab(
        tier_dsn, "--queries", str(cand), "--base-queries", str(cand), "--all", "--reports-dir", str(tmp_path / "r2")
    )
    assert same.returncode == 0, same.stdout + same.stderr
    assert "REGRESSION" not in same.stdout and "design: 2 of 2 queries paired by draw" in same.stdout


def test_only_what_a_change_can_affect_is_measured(tier_dsn: str, tmp_path: Path) -> None:
    """An identical catalog (its strategy named) finishes without touching the database; a comment-only edit is
    unchanged; an index changed on a table a query reads makes that query (and only it) measured."""
    base = write_catalog(tmp_path / "base", {"steady": STEADY, "planted": FAST})
    same = run_harness("compare", "--tier", "test", "--dsn", "host=127.0.0.1 port=1 dbname=nowhere",
                       "--strategy", "baseline", "--queries", str(base), "--base-queries", str(base))  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr  # a DSN pointing nowhere: it never connected
    assert "no query can have changed: nothing measured" in same.stdout
    assert (
        "unchanged: not measured: steady: same SQL (comments and whitespace aside), draws, prepare mode and "
        "indexes on users" in same.stdout
    )
    commented = write_catalog(tmp_path / "commented", {"steady": "-- a note\n" + STEADY.replace(" ", "\n  "),
                                                       "planted": FAST + " /* why */"})  # fmt: skip
    result = compare_catalogs(tier_dsn, base_queries_dir=base, queries_dir=commented, tier="test", **SMALL)
    assert result.queries == () and [name for name, _ in result.unchanged] == ["planted", "steady"]
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    for strategy in default_strategies_dir().glob("*.sql"):
        (strategies / strategy.name).write_text(strategy.read_text())
    baseline = strategies / "baseline.sql"
    baseline.write_text(baseline.read_text() + "\nCREATE INDEX users_extra_idx ON users (signup_at, id);\n")
    result = compare_catalogs(tier_dsn, base_queries_dir=base, queries_dir=base, strategies_dir=strategies,
                              base_strategies_dir=default_strategies_dir(), tier="test", strategy="baseline",
                              **SMALL)  # fmt: skip
    assert [q.name for q in result.queries] == ["steady"]
    assert [name for name, _ in result.unchanged] == ["planted"]  # it reads no table


def test_queries_on_one_side_are_listed_not_measured_and_different_params_are_unpaired(
    tier_dsn: str, tmp_path: Path
) -> None:
    draw = {"drawn": 'k = { draw = "int", min = 1, max = 1000 }'}
    base = write_catalog(tmp_path / "base", {"steady": STEADY, "gone": FAST, "drawn": "SELECT %(k)s::int"}, draw)
    wider = {"drawn": 'k = { draw = "int", min = 1, max = 1000000 }'}
    cand = write_catalog(tmp_path / "cand", {"steady": STEADY, "new": FAST, "drawn": "SELECT %(k)s::int"}, wider)
    result = compare_catalogs(tier_dsn, base_queries_dir=base, queries_dir=cand, tier="test",
                              iterations=4, warmup=0, rounds=2, measure_all=True)  # fmt: skip
    assert [q.name for q in result.queries] == ["drawn", "steady"]
    assert result.only_in_base == ("gone",) and result.only_in_cand == ("new",)
    assert result.design is not None
    assert result.design.paired == ("steady",) and result.design.unpaired == ("drawn",)
    from harness.report.compare import render_compare_text

    text = render_compare_text(result)
    assert "removed: only in base (not compared): gone" in text and "added: only in candidate" in text
    assert "unpaired, different parameters: drawn" in text


def test_base_ref_reads_the_committed_catalog_and_strategies(tier_dsn: str, tmp_path: Path) -> None:
    """A repository whose HEAD has the fast query and all indexes; the working tree slows the query down and
    drops an index from the strategy. The base side is measured with HEAD's files, the candidate with the
    working tree's, and the candidate's indexes are in place afterwards."""
    repo = tmp_path / "repo"
    write_catalog(repo / "queries", {"steady": STEADY, "planted": FAST})
    shutil.copytree(REPO / "scenarios", repo / "scenarios")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    write_catalog(repo / "queries", {"planted": SLOW})
    baseline = repo / "scenarios" / "strategies" / "baseline.sql"
    kept = [line for line in baseline.read_text().splitlines() if "bl_user_occurred_idx" not in line]
    baseline.write_text("\n".join(kept) + "\n")

    done = ab(tier_dsn, "--base-ref", "HEAD", "--reports-dir", str(tmp_path / "r"), cwd=repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSION: planted" in done.stdout and "REGRESSION: steady" not in done.stdout
    assert "design: base git ref HEAD (commit " in done.stdout
    assert "strategy baseline differs: -bl_user_occurred_idx" in done.stdout
    (report,) = (tmp_path / "r").iterdir()
    base_run = json.loads((report / "base" / "run.json").read_text())
    assert base_run["queries"][0]["path"].startswith("HEAD:queries/")
    with psycopg.connect(tier_dsn) as conn:
        assert set(existing_indexes(conn, TABLES)) == set(load_strategy("baseline", baseline.parent).index_names)
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("harness-base-*")), "extracted ref left behind"


def test_bad_input_is_exit_2_with_one_line(tier_dsn: str, tmp_path: Path) -> None:
    cand = write_catalog(tmp_path / "cand", {"steady": STEADY})
    unknown = ab(tier_dsn, "--base-ref", "no-such-branch", "--queries", str(REPO / "queries"))
    assert unknown.returncode == 2 and "--base-ref 'no-such-branch': unknown git ref" in unknown.stderr
    assert "Traceback" not in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1

    broken = write_catalog(tmp_path / "broken", {"steady": STEADY})
    (broken / "steady.sql").write_text('/* harness\nbudget_ms = "fast"\n*/\nSELECT 1\n')
    bad = ab(tier_dsn, "--queries", str(cand), "--base-queries", str(broken))
    assert bad.returncode == 2 and f"{broken / 'steady.sql'}:2" in bad.stderr, bad.stderr
    with pytest.raises(ConfigError):
        compare_catalogs(tier_dsn, base_queries_dir=broken, queries_dir=cand, tier="test")

    for args in (
        ("--base-queries", str(cand), "--strategies", "none,baseline"),
        ("--base-queries", str(cand), "--base-ref", "HEAD"),
        ("--base-strategies", str(cand), str(cand), str(cand)),
    ):
        wrong = ab(tier_dsn, "--queries", str(cand), *args)
        assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, (args, wrong.stderr)
    missing = ab(tier_dsn, "--queries", str(cand), "--base-queries", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    disjoint = write_catalog(tmp_path / "other", {"unrelated": FAST})
    with pytest.raises(InputError, match="no query is in both catalogs"):
        compare_catalogs(tier_dsn, base_queries_dir=disjoint, queries_dir=cand, tier="test")


def test_a_base_ref_whose_catalog_does_not_parse_names_ref_file_and_line(tier_dsn: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_catalog(repo / "queries", {"steady": STEADY})
    (repo / "queries" / "steady.sql").write_text("/* harness\nbudget_ms = -1\n*/\nSELECT 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "broken base"], check=True)
    write_catalog(repo / "queries", {"steady": STEADY})
    done = ab(tier_dsn, "--base-ref", "HEAD", cwd=repo)
    assert done.returncode == 2 and "HEAD:queries/steady.sql:2" in done.stderr, done.stderr


def test_the_example_workflow_gates_pull_requests_with_options_that_exist() -> None:
    """The workflow's `harness compare` line uses only options the command has (a renamed one fails here)."""
    import re

    from harness.cli import cli

    workflow = (REPO / "examples" / "github-actions-perf-gate.yml").read_text()
    line = re.search(r"harness compare (--base-ref .*?)\n\s+- name", workflow, re.S)
    assert line, "the example workflow must run harness compare --base-ref on pull requests"
    used = set(re.findall(r"(--[a-z-]+)", line.group(1)))
    known = {opt for param in cli.commands["compare"].params for opt in getattr(param, "opts", [])}
    assert used <= known, used - known
    assert "fetch-depth: 0" in workflow  # --base-ref needs the base branch in the clone
    assert "harness compare --base-ref" in (REPO / "README.md").read_text()
