"""`harness run` end to end: the gate passes on the reference catalog and fails for each documented reason."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest
from conftest import REPO, run_harness

from harness.server import EmbeddedServer

SLEEPY = """/* harness
description = "sleeps {ms} ms"
budget_ms = {budget}
*/
SELECT pg_sleep({seconds}), count(*) FROM users
"""

EXPECTS_INDEX = """/* harness
description = "recent events of one user"
budget_ms = 500

[params]
user_id = { value = 3 }

[[expect]]
indexes = ["bl_user_occurred_idx"]
min_rows = { behavior_logs = 100000 }
*/
SELECT occurred_at, event_type FROM behavior_logs WHERE user_id = %(user_id)s
ORDER BY occurred_at DESC LIMIT 20
"""


def _catalog(tmp_path: Path, **queries: str) -> Path:
    directory = tmp_path / "queries"
    directory.mkdir()
    for name, text in queries.items():
        (directory / f"{name}.sql").write_text(text)
    return directory


def _reports(tmp_path: Path) -> Path:
    runs = sorted((tmp_path / "reports").iterdir())
    assert runs, "no report directory written"
    return runs[-1]


def test_reference_catalog_passes_on_test_tier_and_writes_every_report(tmp_path, fresh_dsn):
    done = run_harness("run", "--tier", "test", "--dsn", fresh_dsn, "--reports-dir", str(tmp_path / "reports"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    report = _reports(tmp_path)
    assert {"run.json", "summary.md", "junit.xml", "report.html"} <= {p.name for p in report.iterdir()}
    run = json.loads((report / "run.json").read_text())
    assert run["schema_version"] == 2 and run["complete"] is True and run["status"] in ("pass", "warn")
    env = run["environment"]
    assert env["tier"] == "test" and env["seed"] == 42 and env["postgres_major"] >= 15
    assert env["data_checksum"] and env["settings"]["jit"] == "off"
    names = {q["name"] for q in run["queries"]}
    assert {"daily_active_users", "cohort_retention", "course_funnel", "points_leaderboard"} <= names
    for query in run["queries"]:
        # at least --iterations; then on until the p95 interval is tight, or 100 (the default cap)
        assert len(query["samples_ms"]) == query["summary"]["n"] and 72 <= query["summary"]["n"] <= 100
        assert query["summary"]["p95_ci_high"] is not None, query["name"]  # bounded by default
        assert query["plan"]["tree"], query["name"]
        assert query["prepare"] == "auto"
    suite = ET.parse(report / "junit.xml").getroot()
    assert int(suite.get("failures")) == 0 and int(suite.get("tests")) >= len(names)
    assert "| query |" in (report / "summary.md").read_text()


def test_query_over_budget_fails_the_gate_naming_it(tmp_path, fresh_dsn):
    catalog = _catalog(
        tmp_path,
        slow=SLEEPY.format(ms=30, budget=5, seconds=0.03),
        quick=SLEEPY.format(ms=0, budget=500, seconds=0),
    )
    done = run_harness(
        "run",
        "--dsn",
        fresh_dsn,
        "--queries",
        str(catalog),
        "--iterations",
        "20",
        "--warmup",
        "1",
        "--reports-dir",
        str(tmp_path / "reports"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL: slow" in done.stdout and "quick" not in done.stdout.split("FAIL:")[1]
    run = json.loads((_reports(tmp_path) / "run.json").read_text())
    verdicts = {q["name"]: q["verdict"] for q in run["queries"]}
    assert verdicts["slow"]["status"] == "fail" and verdicts["quick"]["status"] != "fail"
    reason = next(c["reason"] for c in verdicts["slow"]["checks"] if c["name"] == "p95_budget")
    assert "> budget 5 ms" in reason
    failures = ET.parse(_reports(tmp_path) / "junit.xml").getroot().findall(".//failure")
    assert any("budget 5 ms" in (f.get("message") or "") for f in failures)


def test_missing_expected_index_fails_naming_the_index(tmp_path, fresh_dsn):
    catalog = _catalog(tmp_path, recent_events=EXPECTS_INDEX)
    ok = run_harness("run", "--dsn", fresh_dsn, "--queries", str(catalog), "--reports-dir", str(tmp_path / "reports"))
    assert ok.returncode == 0, ok.stdout + ok.stderr  # baseline has the index: usable on the small tier
    dropped = run_harness(
        "run",
        "--dsn",
        fresh_dsn,
        "--queries",
        str(catalog),
        "--strategy",
        "none",
        "--reports-dir",
        str(tmp_path / "reports"),
    )
    assert dropped.returncode == 1, dropped.stdout + dropped.stderr
    assert "bl_user_occurred_idx" in dropped.stdout


def test_timeout_fails_that_query_and_the_run_continues(tmp_path, fresh_dsn):
    catalog = _catalog(
        tmp_path,
        a_runaway=SLEEPY.format(ms=5000, budget=1, seconds=5),
        b_fine=SLEEPY.format(ms=0, budget=500, seconds=0),
    )
    started = time.monotonic()
    done = run_harness("run", "--dsn", fresh_dsn, "--queries", str(catalog), "--reports-dir", str(tmp_path / "reports"))
    assert time.monotonic() - started < 60
    assert done.returncode == 1
    run = json.loads((_reports(tmp_path) / "run.json").read_text())
    by_name = {q["name"]: q for q in run["queries"]}
    assert by_name["a_runaway"]["timed_out"] and "timed out after 2000 ms" in by_name["a_runaway"]["error"]
    assert by_name["b_fine"]["verdict"]["status"] != "fail"


def test_unknown_query_name_is_bad_input(fresh_dsn):
    done = run_harness("run", "--dsn", fresh_dsn, "--only", "daily_active_userz")
    assert done.returncode == 2
    assert "daily_active_users" in done.stderr  # the suggestion
    assert "Traceback" not in done.stderr


def _own_cluster(tmp_path: Path) -> tuple[dict[str, str], EmbeddedServer]:
    home = tmp_path / "home" / ".harness"
    return {"HARNESS_HOME": str(home)}, EmbeddedServer(home)


def _postgres_running(data_dir: Path) -> bool:
    out = subprocess.run(["pgrep", "-f", f"postgres.*{data_dir}"], capture_output=True, text=True, check=False)
    return bool(out.stdout.strip())


def _start_run(env: dict[str, str], catalog: Path, reports: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--queries",
            str(catalog),
            "--reports-dir",
            str(reports),
            "--iterations",
            "40",
            "--warmup",
            "0",
        ],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_first_query(reports: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_json in reports.glob("*/run.json"):
            if json.loads(run_json.read_text() or "{}").get("queries"):
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the run never finished its first query")


def _sleepy_catalog(tmp_path: Path) -> Path:
    return _catalog(tmp_path, **{f"q{i}": SLEEPY.format(ms=50, budget=500, seconds=0.05) for i in range(4)})


@pytest.mark.slow
def test_sigint_mid_run_exits_130_with_partial_report_and_no_server_left(tmp_path):
    env, server = _own_cluster(tmp_path)
    reports = tmp_path / "reports"
    proc = _start_run(env, _sleepy_catalog(tmp_path), reports)
    try:
        _wait_for_first_query(reports, proc)
        assert _postgres_running(server.data_dir)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        run = json.loads(next(reports.glob("*/run.json")).read_text())
        assert run["complete"] is False and "interrupted" in run["incomplete_reason"]
        assert 1 <= len(run["queries"]) < 4
        assert not _postgres_running(server.data_dir), "the embedded server was left running"
    finally:
        proc.kill()
        server.destroy()


@pytest.mark.slow
def test_server_stopped_mid_run_exits_3_with_partial_report(tmp_path):
    env, server = _own_cluster(tmp_path)
    reports = tmp_path / "reports"
    proc = _start_run(env, _sleepy_catalog(tmp_path), reports)
    try:
        _wait_for_first_query(reports, proc)
        pid = server.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the server really dies under the run
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 3, stderr
        assert "Traceback" not in stderr and "Error:" in stderr
        run = json.loads(next(reports.glob("*/run.json")).read_text())
        assert run["complete"] is False and "database failure" in run["incomplete_reason"]
        assert run["queries"], "the measured queries were not kept"
        junit = next(reports.glob("*/junit.xml")).read_text()
        assert "<error" in junit
    finally:
        proc.kill()
        server.destroy()


def test_run_reuses_seeded_data_and_switches_strategy(tmp_path, fresh_dsn):
    catalog = _catalog(tmp_path, quick=SLEEPY.format(ms=0, budget=500, seconds=0))
    args = ["run", "--dsn", fresh_dsn, "--queries", str(catalog), "--reports-dir", str(tmp_path / "reports")]
    assert run_harness(*args).returncode == 0
    with psycopg.connect(fresh_dsn) as conn:
        seeded_at = conn.execute("SELECT document->>'seeded_at' FROM harness_manifest").fetchone()[0]
    assert run_harness(*args, "--strategy", "tuned").returncode == 0
    with psycopg.connect(fresh_dsn) as conn:
        doc = conn.execute("SELECT document FROM harness_manifest").fetchone()[0]
    assert doc["seeded_at"] == seeded_at, "an already seeded tier was seeded again"
    assert doc["strategy"] == "tuned"


def test_data_from_an_older_generator_is_seeded_again(tmp_path, fresh_dsn):
    catalog = _catalog(tmp_path, quick=SLEEPY.format(ms=0, budget=500, seconds=0))
    args = ["run", "--dsn", fresh_dsn, "--queries", str(catalog), "--reports-dir", str(tmp_path / "reports")]
    assert run_harness(*args).returncode == 0
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE harness_manifest SET document = "
            "jsonb_set(document, '{generator_versions,harness-generator}', '\"1\"')"
        )
    done = run_harness(*args)
    assert done.returncode == 0, done.stderr
    assert "seeding tier test" in done.stderr
    with psycopg.connect(fresh_dsn) as conn:
        versions = conn.execute("SELECT document->'generator_versions' FROM harness_manifest").fetchone()[0]
    assert versions["harness-generator"] != "1"
