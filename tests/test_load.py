"""Load runs: Locust users on psycopg really run concurrently, failures are named, the gate and guard hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import DatabaseError, InputError
from harness.load.histograms import decode, merged, percentile_ms
from harness.load.results import LoadOptions, LoadResult
from harness.load.runner import LOCUSTFILE, parse_duration, run_load, validate

SLEEPY = """/* harness
description = "sleeps 50 ms"
budget_ms = 200
weight = 3
*/
SELECT pg_sleep(0.05)
"""
DIVIDES_BY_ZERO = """/* harness
weight = 1
*/
SELECT 1 / 0
"""


def catalog(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.sql").write_text(text)
    return directory


def load(dsn: str, tmp_path: Path, queries: Path, **options: object) -> LoadResult:
    defaults: dict[str, object] = {
        "users": 10,
        "duration_s": 2,
        "seed_if_needed": False,
        "queries_dir": queries,
        "reports_dir": tmp_path / "reports",
    }
    return run_load(dsn, LoadOptions(**{**defaults, **options}))  # type: ignore[arg-type]


def test_users_run_concurrently(fresh_dsn: str, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "queries", sleepy=SLEEPY)
    result = load(fresh_dsn, tmp_path, queries, duration_s=4)
    (sleepy,) = result.queries
    # 10 users x 1/0.05 s = 200/s when concurrent; a blocking event loop would give 1/0.05 = 20/s.
    assert sleepy.throughput_rps > 100, sleepy
    assert sleepy.failures == 0 and sleepy.summary is not None
    assert 50 <= sleepy.summary.p50 < 100
    assert result.status == "pass" and result.failed == []
    for name in ("load.json", "load.md", "load.png", "locust_stats.csv", "locust.html"):
        assert (result.directory / name).is_file(), name
    document = json.loads((result.directory / "load.json").read_text())
    assert document["queries"][0]["requests"] == sleepy.requests
    assert document["queries"][0]["summary"]["p95"] == pytest.approx(sleepy.summary.p95)
    assert sum(document["timeline"]["series"][0]["requests"]) == sleepy.requests


def test_failures_are_counted_and_named_and_budgets_gate(fresh_dsn: str, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "queries", sleepy=SLEEPY, divides_by_zero=DIVIDES_BY_ZERO)
    result = load(fresh_dsn, tmp_path, queries, p95_budget_ms=10.0)
    by_name = {q.name: q for q in result.queries}
    broken, sleepy = by_name["divides_by_zero"], by_name["sleepy"]
    assert broken.requests == 0 and broken.failures > 0
    assert broken.errors == {"DivisionByZero: division by zero": broken.failures}
    assert any("failure rate 100.0% > 1.0%" in r and "DivisionByZero" in r for r in broken.reasons)
    assert any(r.startswith("p95 ") and "> budget 10 ms under load" in r for r in sleepy.reasons)
    assert result.failed == ["divides_by_zero", "sleepy"]
    markdown = (result.directory / "load.md").read_text()
    assert "`divides_by_zero` ×" in markdown and "❌ FAIL" in markdown


def test_two_processes_on_loopback_merge_exactly(fresh_dsn: str, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "queries", sleepy=SLEEPY)
    result = load(fresh_dsn, tmp_path, queries, processes=2, users=4)
    files = list((result.directory / "timings").glob("process-*.json"))
    assert len(files) == 2  # one per worker process, merged by the runner
    parts = [decode(json.loads(f.read_text())["queries"]["sleepy"]["response"]) for f in files]
    assert all(p.get_total_count() > 0 for p in parts)
    (sleepy,) = result.queries
    assert sleepy.requests == sum(p.get_total_count() for p in parts)
    assert sleepy.throughput_rps > 40  # 4 users x 20/s when concurrent
    document = json.loads((result.directory / "load.json").read_text())
    shares = [decode(p["histograms"]["sleepy"]) for p in document["processes"]]
    assert sorted(h.get_total_count() for h in shares) == sorted(p.get_total_count() for p in parts)
    # the merged p95 is the p95 of every value both processes recorded, to the histogram's precision
    everything = merged(shares)
    assert decode(document["queries"][0]["histograms"]["response"]).get_total_count() == sleepy.requests
    assert sleepy.summary is not None and sleepy.summary.p95 == percentile_ms(everything, 95)


def test_psycopg_imported_before_gevent_is_refused(fresh_dsn: str, tmp_path: Path) -> None:
    queries = catalog(tmp_path / "queries", sleepy=SLEEPY)
    script = (
        "import sys, psycopg\n"
        f"sys.argv = ['locust', '-f', {str(LOCUSTFILE)!r}, '--headless', '-u', '1', '-t', '1s']\n"
        "from locust.main import main\nmain()\n"
    )
    env = {**os.environ, "HARNESS_DSN": fresh_dsn, "HARNESS_QUERIES": str(queries)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 3, done.stderr
    assert "refusing to run: psycopg was imported before gevent patched 'select'" in done.stderr


@pytest.mark.parametrize(("psycopg_first", "blocks"), [(True, True), (False, False)])
def test_the_concurrency_check_tells_blocking_from_cooperating(
    fresh_dsn: str, psycopg_first: bool, blocks: bool
) -> None:
    script = (
        "import sys\n"
        + ("import psycopg\n" if psycopg_first else "")
        + "from gevent import monkey; monkey.patch_all()\n"
        "from harness.load.green import concurrency_problem\n"
        "problem = concurrency_problem(sys.argv[1])\nprint(problem or 'ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, fresh_dsn], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("blocks the event loop" in done.stdout) is blocks, done.stdout


def test_bad_input_and_unreachable_databases(tmp_path: Path) -> None:
    assert [parse_duration(t) for t in ("90", "90s", "5m", "1h30m")] == [90, 90, 300, 5400]
    for text in ("", "0s", "ten", "5 minutes"):
        with pytest.raises(InputError, match="duration"):
            parse_duration(text)
    queries = catalog(tmp_path / "queries", sleepy=SLEEPY)
    with pytest.raises(InputError, match="--users"):
        validate(LoadOptions(users=0, queries_dir=queries))
    with pytest.raises(InputError, match="did you mean 'sleepy'"):
        validate(LoadOptions(only=("sleep",), queries_dir=queries))
    with pytest.raises(DatabaseError, match="cannot connect"):
        run_load("host=127.0.0.1 port=1 dbname=x user=x", LoadOptions(queries_dir=queries, reports_dir=tmp_path))
