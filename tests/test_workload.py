"""The workload layer: a tier is known by its name and file hash, stale data is re-seeded saying why, run ids,
draws and reasons mean one thing everywhere; run.json reads back typed; the bugs of issue 12 stay fixed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import REPO, run_harness

import harness
from harness.errors import DatabaseError, InputError, Interrupted
from harness.load.results import LoadOptions
from harness.load.runner import LoadSnapshot, snapshot, validate
from harness.measure import MeasureOptions
from harness.report.json_report import render_json
from harness.results import SCHEMA_VERSION, RunResult, load_run
from harness.run import RunOptions, run
from harness.seed import Manifest
from harness.seed.loader import generator_versions
from harness.workload import Workload, check_run_id, incomplete_reason, run_id

TIER = REPO / "scenarios" / "tiers" / "test.toml"
QUICK = """/* harness
description = "one row"
budget_ms = 500
*/
SELECT count(*) FROM users
"""


def catalog(tmp_path: Path) -> Path:
    directory = tmp_path / "queries"
    directory.mkdir(exist_ok=True)
    (directory / "quick.sql").write_text(QUICK)
    return directory


def manifest_of(workload: Workload, **changes: object) -> Manifest:
    manifest = Manifest(
        tier=workload.tier_name,
        seed=workload.seed,
        strategy="baseline",
        anchor_date="2026-06-30",
        tables=[],
        row_counts={},
        checksum="",
        indexes=[],
        durations_s={},
        harness_version="",
        generator_versions=generator_versions(),
        seeded_at="",
        tier_file_sha256=workload.tier_sha256,
    )
    return dataclasses.replace(manifest, **changes)  # type: ignore[arg-type]


# -- identity and staleness (no database) ---------------------------------------------------------------


def test_a_tier_is_the_same_whether_named_or_given_by_path(tmp_path: Path) -> None:
    by_name = Workload.resolve(tier="test", queries_dir=catalog(tmp_path))
    by_path = Workload.resolve(tier=str(TIER), queries_dir=catalog(tmp_path))
    assert (
        (by_name.tier_name, by_name.tier_sha256)
        == (by_path.tier_name, by_path.tier_sha256)
        == (
            "test",
            by_name.tier_sha256,
        )
    )
    assert len(by_name.tier_sha256) == 64
    assert by_path.stale(manifest_of(by_name)) is None


def test_stale_data_says_why(tmp_path: Path) -> None:
    workload = Workload.resolve(tier="test", queries_dir=catalog(tmp_path))
    assert workload.stale(None) == "the database holds no harness data"
    assert workload.stale(manifest_of(workload, tier="benchmark")) == "the database holds tier benchmark"
    assert workload.stale(manifest_of(workload, seed=7)) == "the database holds seed 7"
    old = manifest_of(workload, generator_versions={"harness-generator": "1"})
    assert workload.stale(old) == "the data was made by an older generator"
    edited = workload.stale(manifest_of(workload, tier_file_sha256="0" * 64))
    assert edited == f"the tier file {TIER} changed since the data was seeded"
    assert workload.stale(manifest_of(workload, tier_file_sha256="")) is None  # unknown: not called stale


def test_run_ids_are_validated_or_made_from_utc_time() -> None:
    assert check_run_id("nightly-2026.12_01") == "nightly-2026.12_01"
    for bad in ("../etc", "a/b", "", "-x", "x" * 101, "spaced id"):
        with pytest.raises(InputError, match="names a folder"):
            check_run_id(bad)
    made = run_id(prefix="load-")
    assert made.startswith("load-") and abs(
        dt.datetime.strptime(made, "load-%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)
    ) < dt.timedelta(seconds=5)


def test_load_run_id_is_validated_like_runs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="names a folder"):
        validate(LoadOptions(run_id="../../outside", queries_dir=catalog(tmp_path), seed_if_needed=False))
    validate(LoadOptions(run_id="load-ok", queries_dir=catalog(tmp_path), seed_if_needed=False))


def test_one_wording_for_why_a_run_stopped() -> None:
    assert incomplete_reason(KeyboardInterrupt()) == "interrupted (SIGINT)"
    assert incomplete_reason(Interrupted("terminated (SIGTERM)", exit_code=143)) == "interrupted: terminated (SIGTERM)"
    assert incomplete_reason(DatabaseError("server gone")) == "database failure: server gone"
    assert incomplete_reason(ValueError("x")) == "stopped: ValueError: x"


def test_load_snapshot_reads_locusts_aggregated_row(tmp_path: Path) -> None:
    assert snapshot(tmp_path, 1.0, 60.0) == LoadSnapshot(1.0, 60.0)  # before Locust writes its stats
    (tmp_path / "locust_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Requests/s,95%\n"
        "SQL,q,90,2,5,45.0,12\n"
        ",Aggregated,100,3,5,50.5,14\n"
    )
    snap = snapshot(tmp_path, 2.0, 60.0)
    assert (snap.requests, snap.failures, snap.requests_per_s, snap.p95_ms) == (100, 3, 50.5, 14.0)
    (tmp_path / "locust_stats.csv").write_text("Type,Name,Request Count\n,Aggregated,1")  # half written
    assert snapshot(tmp_path, 3.0, 60.0).requests == 0


# -- on a database --------------------------------------------------------------------------------------


def test_a_tier_given_by_path_is_not_reseeded_but_an_edited_tier_file_is(tmp_path: Path, fresh_dsn: str) -> None:
    tier_file = tmp_path / "test.toml"
    shutil.copy(TIER, tier_file)
    args = ["run", "--dsn", fresh_dsn, "--queries", str(catalog(tmp_path)), "--reports-dir", str(tmp_path / "r")]

    def seeded() -> dict:
        with psycopg.connect(fresh_dsn) as conn:
            return conn.execute("SELECT document FROM harness_manifest").fetchone()[0]  # type: ignore[index]

    first = run_harness(*args, "--tier", str(tier_file))
    assert first.returncode == 0, first.stderr
    assert "seeding tier test" in first.stderr
    before = seeded()
    again = run_harness(*args, "--tier", str(tier_file))
    by_name = run_harness(*args, "--tier", "test")  # the packaged file: same name, same bytes
    assert again.returncode == by_name.returncode == 0, again.stderr + by_name.stderr
    assert "seeding" not in again.stderr + by_name.stderr
    assert seeded()["seeded_at"] == before["seeded_at"], "the same tier was seeded again"
    assert before["row_counts"]["behavior_logs"] == 400

    tier_file.write_text(tier_file.read_text().replace("behavior_logs = 400", "behavior_logs = 450"))
    edited = run_harness(*args, "--tier", str(tier_file))
    assert edited.returncode == 0, edited.stderr
    assert f"the tier file {tier_file} changed since the data was seeded" in edited.stderr
    assert seeded()["row_counts"]["behavior_logs"] == 450
    report = json.loads(next((tmp_path / "r").glob("*/run.json")).read_text())
    assert report["schema_version"] == SCHEMA_VERSION


def test_unseeded_data_is_anchored_on_the_utc_date(fresh_dsn: str) -> None:
    # At any hour one of UTC+14 and UTC-12 is on another calendar day than UTC.
    code = (
        "from harness.environment import fingerprint; import sys; print(fingerprint(sys.argv[1], None, '').anchor_date)"
    )
    for zone in ("Etc/GMT-14", "Etc/GMT+12"):
        done = subprocess.run(
            [sys.executable, "-c", code, fresh_dsn],
            capture_output=True,
            text=True,
            env={**os.environ, "TZ": zone},
            check=True,
        )
        utc_today = dt.datetime.now(dt.UTC).date().isoformat()
        assert done.stdout.strip() == utc_today, (zone, done.stdout, done.stderr)


def test_run_from_python_writes_its_reports_and_they_read_back_typed(tmp_path: Path, fresh_dsn: str) -> None:
    options = RunOptions(
        queries_dir=catalog(tmp_path),
        measure=MeasureOptions(iterations=3, warmup=1),
        allow_few_samples=True,
        reports_dir=tmp_path / "reports",
        run_id="from-python",
    )
    result = run(fresh_dsn, options)
    folder = tmp_path / "reports" / "from-python"
    assert {"run.json", "summary.md", "junit.xml", "report.html"} <= {p.name for p in folder.iterdir()}
    data = json.loads((folder / "run.json").read_text())
    back = RunResult.from_dict(data)
    assert json.loads(render_json(back)) == data  # the whole format round-trips through the typed objects
    assert back.environment == result.environment and back.environment is not None
    assert back.queries[0].summary == result.queries[0].summary
    saved = load_run(folder)
    assert saved.environment == result.environment and saved.environment.tier == "test"
    with pytest.raises(InputError, match="names a folder"):
        run(fresh_dsn, dataclasses.replace(options, run_id="../escape"))


def test_from_dict_ignores_fields_a_newer_writer_adds(tmp_path: Path, fresh_dsn: str) -> None:
    result = harness.run(queries_dir=catalog(tmp_path), iterations=2, warmup=0, allow_few_samples=True, dsn=fresh_dsn)
    data = result.as_dict()
    data["environment"]["work_metrics"] = {"buffers": True}
    data["queries"][0]["energy"] = {"joules": 3}
    data["queries"][0]["summary"]["p90"] = 1.0
    back = RunResult.from_dict(data)
    assert back.environment == result.environment and back.queries[0].summary == result.queries[0].summary


def test_load_shows_progress_while_it_runs(tmp_path: Path, fresh_dsn: str) -> None:
    sleepy = tmp_path / "load"
    sleepy.mkdir()
    (sleepy / "sleepy.sql").write_text("/* harness\nbudget_ms = 200\nweight = 1\n*/\nSELECT pg_sleep(0.01)\n")
    done = run_harness(
        "load", "--dsn", fresh_dsn, "--queries", str(sleepy), "--no-seed", "--users", "2", "--duration", "10s",
        "--reports-dir", str(tmp_path / "reports"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("load ") and "req/s" in line]
    assert len(lines) >= 2, done.stderr  # a line every few seconds when stderr is not a terminal
    assert any(" 0 requests" not in line for line in lines), lines  # Locust's counts came through
    assert all("failures 0" in line for line in lines), lines
