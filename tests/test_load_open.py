"""Open-loop load, HDR histograms, thresholds and the capacity sweep: unit tests on synthetic data, then a few
runs as a user types them (pg_sleep queries, so capacity is known: users / sleep)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import REPO, TEST_HOME, run_harness, wait_for

from harness.cli import main
from harness.errors import InputError
from harness.load.arrivals import Arrival, Schedule, parse_rate
from harness.load.histograms import decode, merged, percentile_ms, summary
from harness.load.pacer import Pacer
from harness.load.recorder import ProcessRecord, Recorder, combined
from harness.load.results import LoadOptions
from harness.load.sweep import SweepResult, SweepStep, find_knee, parse_sweep
from harness.load.thresholds import parse_threshold

# -- the arrival schedule -----------------------------------------------------------------------------


def test_constant_arrivals_are_evenly_spaced_and_staggered_across_processes() -> None:
    rng = np.random.default_rng(1)
    one = Schedule(100.0, Arrival.CONSTANT, rng)
    assert [one.next() for _ in range(4)] == [0, 10_000_000, 20_000_000, 30_000_000]
    a, b = Schedule(50.0, Arrival.CONSTANT, rng, phase=0.0), Schedule(50.0, Arrival.CONSTANT, rng, phase=0.5)
    together = sorted([a.next() for _ in range(50)] + [b.next() for _ in range(50)])
    assert set(np.diff(together)) == {10_000_000}  # two processes at 50/s make one even 100/s


def test_poisson_arrivals_have_the_rate_and_the_poisson_property() -> None:
    schedule = Schedule(200.0, Arrival.POISSON, np.random.default_rng(42))
    starts = np.array([schedule.next() for _ in range(40_000)]) / 1e9
    gaps = np.diff(starts)
    assert len(starts) / starts[-1] == pytest.approx(200.0, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)  # exponential gaps: CV = 1
    per_second = np.bincount(starts.astype(int))[:-1]
    assert per_second.var() / per_second.mean() == pytest.approx(1.0, abs=0.35)  # Poisson counts: var = mean
    again = Schedule(200.0, Arrival.POISSON, np.random.default_rng(42))
    assert [again.next() for _ in range(5)] == list((starts[:5] * 1e9).round().astype(int))  # seeded


def test_the_pacer_waits_for_each_start_and_counts_the_ones_never_sent() -> None:
    now = [0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += round(seconds * 1e9)

    pacer = Pacer(Schedule(10.0, Arrival.CONSTANT, np.random.default_rng(0)), sleep, clock=lambda: now[0])
    assert pacer.claim() == 0 and slept == []
    assert pacer.claim() == 100_000_000 and slept == [0.1]
    now[0] += 450_000_000  # every connection busy for 0.45 s: the next starts have passed
    assert pacer.claim() == 200_000_000 and len(slept) == 1  # sent at once, 350 ms late
    assert pacer.unsent() == 3  # 300, 400 and 500 ms were due by 550 ms and never taken


# -- histograms -----------------------------------------------------------------------------------------


def test_histograms_merge_exactly_across_processes() -> None:
    rng = np.random.default_rng(7)
    values_ns = (rng.lognormal(np.log(5e6), 0.8, 30_000)).astype(int)
    processes = []
    for part in np.array_split(values_ns, 2):
        recorder = Recorder()
        for v in part:
            recorder.success("q", 1_700_000_000.0, 0, int(v))
        processes.append(ProcessRecord.from_document(json.loads(json.dumps(recorder.process.as_document()))))
    one = Recorder()
    for v in values_ns:
        one.success("q", 1_700_000_000.0, 0, int(v))
    both = combined(processes)["q"].response
    assert both.get_total_count() == len(values_ns)
    assert [percentile_ms(both, q) for q in (50, 95, 99, 99.9)] == [
        percentile_ms(one.process.queries["q"].response, q) for q in (50, 95, 99, 99.9)
    ]
    raw = np.sort(values_ns / 1e6)
    for q in (50, 95, 99.9):
        exact = raw[math.ceil(round(q / 100 * raw.size, 6)) - 1]  # nearest rank over every recorded value
        assert percentile_ms(both, q) == pytest.approx(exact, rel=1e-3)
    s = summary(both)
    assert s is not None and s.p95_ci_low is not None and s.p95_ci_high is not None
    assert s.p95_ci_low <= s.p95 <= s.p95_ci_high
    assert decode("").get_total_count() == 0 and merged([]).get_total_count() == 0


def test_response_time_is_lag_plus_service_and_late_requests_are_counted() -> None:
    recorder = Recorder()
    recorder.success("q", 1_700_000_000.0, lag_ns=30_000_000, service_ns=5_000_000)
    recorder.success("q", 1_700_000_000.5, lag_ns=0, service_ns=5_000_000)
    q = recorder.process.queries["q"]
    assert percentile_ms(q.response, 100) == pytest.approx(35.0, rel=1e-3)
    assert percentile_ms(q.service, 100) == pytest.approx(5.0, rel=1e-3)
    assert q.late == 1 and q.requests == 2


# -- thresholds ------------------------------------------------------------------------------------------


def test_thresholds_parse_as_k6_writes_them() -> None:
    t = parse_threshold("daily_active_users:p(99)<=400")
    assert (t.query, t.metric, t.inclusive, t.limit_ms) == ("daily_active_users", "p99", True, 400.0)
    assert parse_threshold("p99.9<50").metric == "p99.9"
    assert parse_threshold(" avg < 3ms ").metric == "avg"
    bare, total = parse_threshold("p95<250"), parse_threshold("total:p95<250")
    assert bare.applies_to("q") and not bare.applies_to("total")
    assert total.applies_to("total") and not total.applies_to("q")
    for text in ("p95>250", "p100<3", "p95<0", "p95<", "rate<3", "q:p95"):
        with pytest.raises(InputError, match="--threshold"):
            parse_threshold(text)


def test_a_threshold_names_what_it_saw() -> None:
    recorder = Recorder()
    for us in range(10, 1001, 10):  # 0.01 … 1 ms: below 2048 µs every µs is its own bucket
        recorder.success("q", 1_700_000_000.0, 0, us * 1000)
    response = recorder.process.queries["q"].response
    assert parse_threshold("p95<0.96").breach(response) is None
    assert parse_threshold("p95<0.95").breach(response) == "threshold p95<0.95 breached: p95 0.95 ms"
    assert parse_threshold("p95<=0.95").breach(response) is None
    assert parse_threshold("max<1").breach(response) == "threshold max<1 breached: max 1.00 ms"


# -- the sweep's knee ------------------------------------------------------------------------------------


def test_the_knee_is_the_last_step_before_saturation() -> None:
    rates = [10, 20, 40, 80, 160]
    assert find_knee(rates, [10, 20, 39, 41, 40], [50, 51, 60, 900, 2500]) == 2  # throughput stops growing
    assert find_knee(rates, [10, 20, 40, 80, 160], [5, 5, 5, 5, 5]) is None  # linear all the way
    assert find_knee([1, 2, 4], [100, 200, 390], [2.0, 2.1, 9.0]) == 1  # throughput kept up, latency did not
    assert find_knee([1, 2, 4], [100, 200, 400], [0.2, 0.3, 0.5]) is None  # sub-millisecond noise is no knee


def test_the_headline_is_the_highest_throughput_within_budget() -> None:
    def step(value: float, rps: float, p95: float, within: bool) -> SweepStep:
        return SweepStep(value, f"s{value:g}", rps, p95, p95, {"q": p95}, within, 0, 0, "pass" if within else "fail")

    result = SweepResult("sw", "now", parse_sweep("users=1,2,4,8"), LoadOptions(), Path("."))
    result.steps = [step(1, 20, 50, True), step(2, 40, 60, True), step(4, 70, 190, True), step(8, 72, 900, False)]
    assert result.headline is not None and result.headline.value == 4  # within budget, past the knee
    assert result.knee is not None and result.knee.value == 2  # 4 users: p95 190 > 2 x 50
    assert result.status == "incomplete"  # still running
    result.complete = True
    assert result.status == "pass"
    result.steps = [step(1, 20, 900, False), step(2, 21, 1900, False)]
    assert result.headline is None and result.status == "fail"


def test_bad_sweeps_and_rates_are_refused() -> None:
    assert parse_sweep("users=1,2,4").values == (1.0, 2.0, 4.0)
    assert parse_sweep("rate=50, 100,200").axis == "rate"
    for text in ("users", "users=4", "users=4,2", "users=1.5,3", "speed=1,2", "rate=a,b", "rate=0,5"):
        with pytest.raises(InputError, match="--sweep"):
            parse_sweep(text)
    for text in ("0", "-3", "fast", "nan", "inf"):
        with pytest.raises(InputError, match="--rate"):
            parse_rate(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "fast"], "Error: --rate must be a number of requests per second"),
        (["--rate", "-5"], "Error: --rate must be a positive number"),
        (["--sweep", "users=4,2"], "Error: --sweep 'users=4,2': the steps must be positive and increasing"),
        (["--threshold", "p95>250"], "Error: --threshold 'p95>250' is not a threshold"),
        (["--threshold", "sleep:p95<250"], "no query 'sleep' in this run (did you mean 'sleepy'?)"),
        (["--latency-limit", "100"], "Error: --latency-limit drops requests"),
        (["--abort-on-fail"], "Error: --abort-on-fail stops on a threshold breach"),
        (["--rate", "10", "--sweep", "rate=1,2"], "Error: --sweep rate=… sets the rate of each step"),
    ],
)
def test_bad_load_options_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    queries = catalog(tmp_path / "queries")
    code = main(["load", "--queries", str(queries), "--dsn", "host=127.0.0.1 port=1 dbname=x", *args])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err


# -- runs -----------------------------------------------------------------------------------------------

SLEEPY = """/* harness
description = "sleeps 50 ms"
budget_ms = 200
*/
SELECT pg_sleep(0.05)
"""


def catalog(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sleepy.sql").write_text(SLEEPY)
    return directory


def load_cli(dsn: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    queries = catalog(tmp_path / "queries")
    reports = tmp_path / "reports"
    done = run_harness(
        "load", "--queries", str(queries), "--dsn", dsn, "--no-seed", "--reports-dir", str(reports), *args
    )
    return done, reports


def test_open_loop_below_capacity(fresh_dsn: str, tmp_path: Path) -> None:
    done, reports = load_cli(fresh_dsn, tmp_path, "--rate", "50", "--duration", "2s", "--run-id", "r", "--samples")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "open loop: target 50 req/s (poisson)" in done.stdout and "PASS: 1 queries under 50 req/s" in done.stdout
    document = json.loads((reports / "r" / "load.json").read_text())
    open_loop, (sleepy,) = document["open_loop"], document["queries"]
    assert open_loop["target_rps"] == 50 and open_loop["dropped"] == 0
    assert open_loop["sent"] == sleepy["requests"] > 0
    assert decode(sleepy["histograms"]["response"]).get_total_count() == sleepy["requests"]
    assert set(sleepy["percentiles_ms"]) == {"p50", "p90", "p95", "p99", "p99.9"}
    assert sleepy["summary"]["p95"] >= sleepy["service"]["p95"] >= 50  # response = lag + service
    assert document["histogram"]["unit"] == "us" and len(document["processes"]) == 1
    assert "Response time runs from each request's intended start" in (reports / "r" / "load.md").read_text()
    (process,) = [json.loads(p.read_text()) for p in (reports / "r" / "timings").glob("process-*.json")]
    raw = process["queries"]["sleepy"]["samples"]  # --samples: (intended start, response ms, service ms) each
    assert len(raw) == sleepy["requests"] and all(response >= service for _, response, service in raw)


def test_overload_grows_response_time_not_service_time(fresh_dsn: str, tmp_path: Path) -> None:
    # 2 connections x 1 / 50 ms = 40 req/s of capacity, offered 120 req/s: the queue grows all run long
    done, reports = load_cli(
        fresh_dsn, tmp_path, "--rate", "120", "--users", "2", "--duration", "3s", "--run-id", "over"
    )
    assert done.returncode == 1, done.stdout + done.stderr  # p95 over the 200 ms budget: response time gates
    document = json.loads((reports / "over" / "load.json").read_text())
    (sleepy,) = document["queries"]
    assert sleepy["service"]["p95"] < 200 < sleepy["summary"]["p95"]
    assert sleepy["summary"]["p95"] > 4 * sleepy["service"]["p95"]
    assert sleepy["lag"]["p95"] > 100 and sleepy["late"] > 0
    assert document["open_loop"]["achieved_rps"] < 0.6 * 120
    assert document["open_loop"]["unsent"] > 0  # still queued when the run stopped
    assert "p95" in done.stdout and "(service p95" in done.stdout


def test_a_latency_limit_drops_what_waited_too_long(fresh_dsn: str, tmp_path: Path) -> None:
    done, _ = load_cli(
        fresh_dsn, tmp_path, "--rate", "120", "--users", "2", "--duration", "2s", "--latency-limit", "100",
        "--run-id", "drop",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    (sleepy,) = json.loads((tmp_path / "reports" / "drop" / "load.json").read_text())["queries"]
    assert sleepy["dropped"] > 0 and sleepy["lag"]["max"] <= 100 + 1  # nothing sent later than the limit
    assert any("no connection free within the 100 ms latency limit" in e for e in sleepy["errors"])


def test_a_threshold_breach_fails_naming_the_query_and_can_abort(fresh_dsn: str, tmp_path: Path) -> None:
    done, _ = load_cli(fresh_dsn, tmp_path, "--duration", "2s", "--users", "2", "--threshold", "sleepy:p95<10")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "threshold sleepy:p95<10 breached: p95 " in done.stdout and "FAIL: sleepy" in done.stdout
    done, reports = load_cli(
        fresh_dsn, tmp_path, "--duration", "60s", "--users", "10", "--threshold", "p(99)<10", "--abort-on-fail",
        "--run-id", "abort",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((reports / "abort" / "load.json").read_text())
    assert document["aborted"].startswith("sleepy: threshold p(99)<10 breached")
    assert document["complete"] is False and "FAIL: aborted: sleepy" in done.stdout


def test_a_rate_sweep_finds_the_planted_knee(fresh_dsn: str, tmp_path: Path) -> None:
    # capacity 4 / 50 ms = 80 req/s: 10 and 20 (evenly spaced: no queue) go through, 200 cannot
    done, reports = load_cli(
        fresh_dsn, tmp_path, "--sweep", "rate=10,20,200", "--users", "4", "--arrival", "constant",
        "--duration", "2s", "--run-id", "sw",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((reports / "sw" / "sweep.json").read_text())
    assert [s["value"] for s in document["steps"]] == [10, 20, 200]
    assert document["knee"] == 20 and document["headline"]["value"] == 20
    assert "knee: rate=20" in done.stdout and "capacity: " in done.stdout
    for name in ("sweep.md", "sweep.png", "step-01-rate-10/load.json", "step-03-rate-200/load.md"):
        assert (reports / "sw" / name).is_file(), name


def stop(process: subprocess.Popen[str]) -> None:
    """End a harness a failed test left running as Ctrl-C would, so it stops its Locust too; kill if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_sigint_mid_sweep_keeps_finished_steps_and_leaves_no_process(fresh_dsn: str, tmp_path: Path) -> None:
    queries, reports = catalog(tmp_path / "queries"), tmp_path / "reports"
    command = [sys.executable, "-m", "harness", "load", "--queries", str(queries), "--dsn", fresh_dsn,
               "--no-seed", "--reports-dir", str(reports), "--run-id", "cut", "--sweep", "users=1,2,4",
               "--duration", "2s"]  # fmt: skip
    sweep_json = reports / "cut" / "sweep.json"
    harness = subprocess.Popen(
        command, cwd=REPO, env={**os.environ, "HARNESS_HOME": str(TEST_HOME)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(lambda: sweep_json.is_file() and json.loads(sweep_json.read_text())["steps"], timeout=120)
        wait_for(lambda: (reports / "cut" / "step-02-users-2" / "locust.log").is_file(), timeout=60)
        harness.send_signal(signal.SIGINT)
        _, stderr = harness.communicate(timeout=60)
    finally:
        stop(harness)
    assert harness.returncode == 130, stderr
    document = json.loads(sweep_json.read_text())
    assert document["complete"] is False and document["incomplete_reason"] == "interrupted (SIGINT)"
    assert [s["value"] for s in document["steps"]][:1] == [1]
    left = [p for p in psutil.process_iter(["cmdline"]) if str(reports) in " ".join(p.info["cmdline"] or [])]
    assert left == [], [(p.pid, p.info["cmdline"]) for p in left]


def test_a_master_merges_its_remote_workers_timings_exactly(fresh_dsn: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    queries, reports = catalog(tmp_path / "queries"), tmp_path / "reports"
    common = ["--queries", str(queries), "--dsn", fresh_dsn, "--no-seed", "--reports-dir", str(reports)]
    env = {**os.environ, "HARNESS_HOME": str(TEST_HOME)}
    master = subprocess.Popen(
        [sys.executable, "-m", "harness", "load", "--master", "--master-port", port, "--expect-workers", "1",
         "--users", "2", "--duration", "2s", "--run-id", "m", *common],
        cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        worker = run_harness("load", "--worker", "--master-port", port, "--run-id", "w", *common, timeout=120)
        master_out, master_err = master.communicate(timeout=120)
    finally:
        stop(master)
    assert master.returncode == 0, master_out + master_err
    on_master = json.loads((reports / "m" / "load.json").read_text())["queries"][0]
    on_worker = json.loads((reports / "w" / "load.json").read_text())["queries"][0]
    assert on_worker["requests"] > 0, worker.stdout + worker.stderr
    assert on_master["requests"] == on_worker["requests"]
    assert on_master["histograms"]["response"] == on_worker["histograms"]["response"]


def test_the_web_ui_runs_the_same_catalog_and_ctrl_c_writes_the_report(fresh_dsn: str, tmp_path: Path) -> None:
    import socket
    import urllib.parse
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    queries, reports = catalog(tmp_path / "queries"), tmp_path / "reports"
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness", "load", "--web", "--web-port", str(port), "--users", "2", "--queries",
         str(queries), "--dsn", fresh_dsn, "--no-seed", "--reports-dir", str(reports), "--run-id", "web"],
        cwd=REPO, env={**os.environ, "HARNESS_HOME": str(TEST_HOME)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_for(answers, timeout=120, interval=0.2)
        form = urllib.parse.urlencode({"user_count": 2, "spawn_rate": 2}).encode()
        urllib.request.urlopen(f"{url}/swarm", data=form, timeout=10)
        wait_for(lambda: list((reports / "web" / "timings").glob("live-*.json")), timeout=60, interval=0.2)
        urllib.request.urlopen(f"{url}/stop", data=b"", timeout=10)
        wait_for(lambda: list((reports / "web" / "timings").glob("process-*.json")), timeout=60, interval=0.2)
        harness.send_signal(signal.SIGINT)
        stdout, stderr = harness.communicate(timeout=60)
    finally:
        stop(harness)
    assert harness.returncode == 0, stdout + stderr
    assert f"Locust's web UI at {url}" in stderr
    document = json.loads((reports / "web" / "load.json").read_text())
    assert document["complete"] is True and document["queries"][0]["requests"] > 0
