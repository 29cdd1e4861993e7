"""The pytest-benchmark plugin: a gated benchmark per catalog query, inert unless asked, importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import TEST_HOME, run_harness

from harness.benchmark_import import write_imported_run
from harness.catalog import load_catalog
from harness.paths import queries_dir
from harness.results import load_run

SLOW = """/* harness
budget_ms = 5
*/
SELECT pg_sleep(0.02)
"""


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a subprocess, loading the plugins explicitly (entry point installed or not)."""
    env = {**os.environ, "HARNESS_HOME": str(TEST_HOME), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "pytest_benchmark.plugin",
        "-p",
        "harness.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300, check=False)


def test_reference_queries_pass_and_import_for_compare(fresh_dsn: str, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    done = pytest_run(tmp_path, "--harness-tier", "test", "--harness-dsn", fresh_dsn, "--benchmark-json", str(output))
    names = load_catalog(queries_dir()).names
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(names)} passed" in done.stdout
    benchmarks = json.loads(output.read_text())["benchmarks"]
    info = {b["extra_info"]["query"]: b["extra_info"] for b in benchmarks}
    assert sorted(info) == sorted(names)
    for extra in info.values():
        assert extra["tier"] == "test" and extra["seed"] == 42 and len(extra["samples_ms"]) == 30
        assert extra["p95_ms"] > 0 and isinstance(extra["indexes_used"], list)
    run = load_run(write_imported_run(output, tmp_path / "imported"))
    assert sorted(run.queries) == sorted(names) and run.complete
    assert run.environment is not None and run.environment.tier == "test"
    some = next(iter(run.queries.values()))
    assert some.summary is not None and some.summary.n == 30 and some.status == "pass"
    # Measured as `harness run` measures: work per call (what compare gates first) and the draws' digest.
    assert all(q.work is not None and q.work.calls == 30 for q in run.queries.values())
    assert all(q.draws_digest for q in run.queries.values())
    # The same import from the command line, then compared with itself: no false alarm.
    imported = run_harness("import-benchmark", str(output), "--out", str(tmp_path / "cli-import"))
    assert imported.returncode == 0, imported.stderr
    compared = run_harness("compare", str(tmp_path / "imported"), str(tmp_path / "cli-import" / "run.json"),
                           "--reports-dir", str(tmp_path / "reports"))  # fmt: skip
    assert compared.returncode == 0, compared.stdout + compared.stderr


def test_a_planted_slow_query_fails_its_test(fresh_dsn: str, tmp_path: Path) -> None:
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "slow.sql").write_text(SLOW)
    (queries / "quick.sql").write_text("SELECT 1\n")
    done = pytest_run(
        tmp_path,
        "--harness-tier",
        "test",
        "--harness-dsn",
        fresh_dsn,
        "--harness-queries",
        str(queries),
        "--harness-rounds",
        "20",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    assert "FAILED harness-queries::test_query[slow]" in done.stdout.replace("../", "")
    assert "slow: p95 " in done.stdout and "> budget 5 ms" in done.stdout


def test_inert_without_its_option(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text("def test_app():\n    assert True\n")
    done = pytest_run(tmp_path, "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout and "harness-queries" not in done.stdout


def test_a_bad_catalog_is_a_usage_error(tmp_path: Path) -> None:
    done = pytest_run(tmp_path, "--harness-tier", "test", "--harness-queries", str(tmp_path / "missing"))
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    assert "query directory" in done.stderr and "does not exist" in done.stderr


def test_benchmark_disable_runs_each_query_once_as_a_plain_test(fresh_dsn: str, tmp_path: Path) -> None:
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "slow.sql").write_text(SLOW)
    done = pytest_run(tmp_path, "--harness-tier", "test", "--harness-dsn", fresh_dsn, "--harness-queries",
                      str(queries), "--benchmark-disable")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr  # not timed, so not judged against its budget
    assert "1 passed" in done.stdout
