"""`harness grow`: the fits and forecasts on synthetic data (fixed seeds), and the command end to end."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TEST_HOME, run_harness, wait_for

import harness
from harness.errors import InputError
from harness.grow import GrowOptions, parse_target_rows, validate
from harness.growth import ClassFit, Crossing, Growth, Point, PowerFit, fit_forecast_model, fit_power, split_regimes
from harness.growth_analysis import Flag

ROWS = np.array([1e2, 1e3, 1e4, 1e5, 1e6])


def _points(exponent: float, noise: float, rng: np.random.Generator, coefficient: float = 0.01) -> list[Point]:
    values = coefficient * ROWS**exponent * np.exp(rng.normal(0.0, noise, ROWS.size))
    return [Point(float(r), float(v), noise) for r, v in zip(ROWS, values, strict=True)]


# -- fits ------------------------------------------------------------------------------------------


def test_the_exponent_interval_covers_the_true_exponent_at_the_stated_rate() -> None:
    rng = np.random.default_rng(20)
    trials = 400
    covered = 0
    for _ in range(trials):
        fit = fit_power(_points(1.3, 0.15, rng))
        assert fit is not None
        covered += fit.exponent_low <= 1.3 <= fit.exponent_high
    assert 0.93 <= covered / trials <= 0.995  # nominal 95%, conservative when the scatter is re-estimated


def test_the_interval_widens_when_points_scatter_more_than_their_errors_say() -> None:
    rng = np.random.default_rng(7)
    trials, covered = 300, 0
    for _ in range(trials):
        values = 0.01 * ROWS * np.exp(rng.normal(0.0, 0.3, ROWS.size))  # errors claim 5%, truth is 30%
        fit = fit_power([Point(float(r), float(v), 0.05) for r, v in zip(ROWS, values, strict=True)])
        assert fit is not None
        covered += fit.exponent_low <= 1.0 <= fit.exponent_high
    assert covered / trials >= 0.9


def test_linear_and_quadratic_growth_are_recovered_and_told_apart() -> None:
    rng = np.random.default_rng(3)
    linear = fit_power(_points(1.0, 0.05, rng))
    quadratic = fit_power(_points(2.0, 0.05, rng))
    assert linear is not None and quadratic is not None
    assert linear.exponent_low <= 1.0 <= linear.exponent_high and linear.growth is Growth.LINEAR
    assert quadratic.exponent_low <= 2.0 <= quadratic.exponent_high
    assert quadratic.growth is Growth.FASTER_THAN_LINEAR
    flat = fit_power(_points(0.2, 0.05, rng))
    assert flat is not None and flat.growth is Growth.SLOWER_THAN_LINEAR


def test_two_sizes_give_an_interval_from_measurement_noise_and_one_size_gives_no_fit() -> None:
    two = fit_power([Point(100, 1.0, 0.1), Point(1000, 10.0, 0.1)])
    assert two is not None and two.exponent == pytest.approx(1.0)
    expected_half = 1.959964 * math.sqrt(2 * 0.1**2) / math.log(10)
    assert two.exponent_high - two.exponent == pytest.approx(expected_half, rel=1e-4)
    assert fit_power([Point(100, 1.0, 0.1)]) is None
    assert fit_power([Point(100, 1.0, 0.1), Point(100, 2.0, 0.1)]) is None


def test_a_plan_flip_splits_the_fit_into_regimes() -> None:
    rng = np.random.default_rng(5)
    points = _points(1.0, 0.02, rng)
    # the plan flips after the second size: the large sizes grow quadratically from where the small ones end
    flipped = points[:2] + [Point(p.rows, points[1].value * (p.rows / points[1].rows) ** 2, 0.02) for p in points[2:]]
    regimes = split_regimes(flipped, ["index", "index", "seq", "seq", "seq"])
    assert [r.plan for r in regimes] == ["index", "seq"] and [len(r.points) for r in regimes] == [2, 3]
    last = fit_power(regimes[-1].points)
    first = fit_power(regimes[0].points)
    across = fit_power(flipped)
    assert last is not None and first is not None and across is not None
    assert last.exponent_low <= 2.0 <= last.exponent_high
    assert first.exponent_low <= 1.0 <= first.exponent_high
    # fitting across the flip would blur the two growth rates, and its points would not fit a line
    assert abs(across.exponent - 2.0) > 0.15 and across.dispersion > 100 * last.dispersion
    assert split_regimes(points, ["a", "b", "a", "a", "a"])[2].points == tuple(points[2:])


def test_the_forecast_interval_contains_the_true_crossing_at_the_stated_rate() -> None:
    rng = np.random.default_rng(11)
    budget, trials, covered = 1e4, 400, 0
    truth = (budget / 0.01) ** (1 / 1.2)  # 0.01 * rows^1.2 = budget
    for _ in range(trials):
        fit = fit_power(_points(1.2, 0.1, rng))
        assert fit is not None
        forecast = fit.forecast(budget)
        assert forecast.state is Crossing.CROSSES and forecast.rows is not None
        assert forecast.rows_low is not None and forecast.rows_low <= forecast.rows
        covered += forecast.rows_low <= truth <= (forecast.rows_high or math.inf)
    assert 0.93 <= covered / trials <= 0.995


def test_a_flat_or_already_exceeded_cost_is_said_so() -> None:
    shrinking = fit_power([Point(100, 5.0, 0.01), Point(1000, 4.0, 0.01), Point(10_000, 3.0, 0.01)])
    assert shrinking is not None
    forecast = shrinking.forecast(10.0)
    assert forecast.state is Crossing.NOT_GROWING and forecast.rows is None and not forecast.below(1e12)
    over = shrinking.forecast(1.0)
    assert over.state is Crossing.ALREADY_OVER and over.below(1e3)


def test_a_fixed_cost_plus_linear_growth_is_forecast_by_its_class_not_by_the_flattened_power_law() -> None:
    rng = np.random.default_rng(13)
    budget, trials, covered, chosen_linear = 50.0, 200, 0, 0
    truth = (budget - 2.0) / 1e-4  # 2 ms per execution + 0.1 ms per 1,000 rows reaches 50 ms at 480k rows
    for _ in range(trials):
        values = (2.0 + 1e-4 * ROWS[:4]) * np.exp(rng.normal(0.0, 0.05, 4))  # measured up to 100k rows only
        points = [Point(float(r), float(v), 0.05) for r, v in zip(ROWS[:4], values, strict=True)]
        model = fit_forecast_model(points)
        assert model is not None
        chosen_linear += isinstance(model.chosen, ClassFit) and model.chosen.exponent == 1.0
        forecast = model.forecast(budget)
        covered += (forecast.rows_low or 0.0) <= truth <= (forecast.rows_high or math.inf)
    assert chosen_linear / trials >= 0.9 and covered / trials >= 0.95
    power = fit_power(points)
    assert power is not None and power.forecast(budget).rows > 3 * truth  # what a power law alone would say


def test_two_sizes_leave_only_the_power_law_to_forecast_with() -> None:
    model = fit_forecast_model([Point(100, 1.0, 0.1), Point(1000, 10.0, 0.1)])
    assert model is not None and isinstance(model.chosen, PowerFit) and len(model.plausible) == 1


# -- input -----------------------------------------------------------------------------------------


def test_target_rows_are_parsed_with_units() -> None:
    assert parse_target_rows("behavior_logs=10M") == ("behavior_logs", 1e7)
    assert parse_target_rows("users=10_000") == ("users", 1e4)
    assert parse_target_rows("users=2.5e6") == ("users", 2.5e6)
    for bad in ("behavior_logs", "=10", "users=ten", "users=0"):
        with pytest.raises(InputError):
            parse_target_rows(bad)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (GrowOptions(tiers=("test",)), "at least two different tiers"),
        (GrowOptions(tiers=("test", "nope")), "unknown tier 'nope'"),
        (GrowOptions(tiers=("test", "dev"), target_tier="test"), "not larger than the largest measured tier"),
        (GrowOptions(tiers=("test", "dev"), target_rows=("users", 50)), "not above the largest measured"),
        (GrowOptions(tiers=("test", "dev"), target_rows=("users", 1e6), target_tier="stress"), "give one of them"),
    ],
)
def test_bad_requests_are_refused_before_any_server_starts(options: GrowOptions, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate(options)


def test_the_cli_refuses_one_tier_with_exit_2() -> None:
    done = run_harness("grow", "--tiers", "dev", "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "at least two different tiers" in done.stderr


# -- end to end ------------------------------------------------------------------------------------

GROWING = """/* harness
description = "sleeps 30 us per behavior log (a seq scan: no index holds payload): grows linearly"
budget_ms = 300
*/
SELECT pg_sleep(count(payload) * 0.00003), count(payload) FROM behavior_logs
"""
SMALL = """/* harness
description = "counts users"
budget_ms = 500
*/
SELECT count(*) FROM users
"""


def _tier_ten_times_test(tmp_path: Path) -> Path:
    """The test tier with ten times its behaviour logs: a step the sleep grows by (12 -> 120 ms) far more than
    a busy machine's spikes move a p95."""
    text = (REPO / "scenarios" / "tiers" / "test.toml").read_text()
    text = text.replace('name = "test"', 'name = "test10"').replace("behavior_logs = 400", "behavior_logs = 4000")
    path = tmp_path / "test10.toml"
    path.write_text(text.replace("behavior_logs = [0, 500]", "behavior_logs = [3000, 5000]"))
    return path


def test_grow_forecasts_a_crossing_below_the_target_and_exits_1_naming_it(tmp_path: Path, fresh_dsn: str) -> None:
    catalog = tmp_path / "queries"
    catalog.mkdir()
    (catalog / "growing.sql").write_text(GROWING)
    (catalog / "small.sql").write_text(SMALL)
    tiers = f"test,{_tier_ten_times_test(tmp_path)}"
    args = ("--queries", str(catalog), "--iterations", "20", "--warmup", "2", "--reports-dir", str(tmp_path / "r"))
    done = run_harness(
        "grow", "--tiers", tiers, "--target-rows", "behavior_logs=1M", "--run-id", "g", "--dsn", fresh_dsn, *args
    )
    assert done.returncode == 1, done.stdout + done.stderr
    fail = [line for line in done.stdout.splitlines() if line.startswith("FAIL:")]
    assert len(fail) == 1 and "growing" in fail[0] and "budget 300 ms" in fail[0] and "extrapolated" in fail[0]
    report = tmp_path / "r" / "g"
    assert {"grow.json", "grow.md", "grow.html", "tiers"} <= {p.name for p in report.iterdir()}
    assert {"test", "test10"} == {p.name for p in (report / "tiers").iterdir()}
    grown = json.loads((report / "grow.json").read_text())
    assert grown["complete"] and grown["status"] == "fail" and grown["kind"] == "grow"
    queries = {q["name"]: q for q in grown["queries"]}
    growing = queries["growing"]
    assert growing["table"] == "behavior_logs" and [p["tier"] for p in growing["points"]] == ["test", "test10"]
    assert "crosses before target" in growing["flags"] and "extrapolated" in growing["forecast"]["kind"]
    crossing = growing["forecast"]["rows"]
    assert 4000 < crossing < 1_000_000 and growing["forecast"]["rows_low"] <= crossing
    assert growing["regimes"][-1]["p95_ms"]["exponent"] > 0.3  # the sleep grows with the rows
    assert not any(f in queries["small"]["flags"] for f in ("crosses before target", "over budget"))
    assert "| `growing` |" in (report / "grow.md").read_text()
    assert "data:image/png;base64," in (report / "grow.html").read_text()


def test_a_plan_flip_between_real_tiers_splits_the_regimes_and_names_the_change(fresh_dsn: str) -> None:
    # course_funnel reads user_progress by a seq scan at the test tier and through its course index at dev
    result = harness.grow(tiers="test,dev", only=["course_funnel"], iterations=5, warmup=1, dsn=fresh_dsn)
    (growth,) = result.queries
    assert result.complete and [tier for (tier,) in (r.tiers for r in growth.regimes)] == ["test", "dev"]
    (flip,) = growth.flips
    assert (flip.before_tier, flip.tier) == ("test", "dev") and flip.changes
    assert any("Seq Scan on user_progress" in change for change in flip.changes), flip.changes
    assert {Flag.PLAN_FLIP, Flag.NO_FORECAST} <= set(growth.flags) and growth.forecast is None


def test_sigint_mid_grow_exits_130_and_keeps_the_tiers_measured(tmp_path: Path, fresh_dsn: str) -> None:
    catalog = tmp_path / "queries"
    catalog.mkdir()
    for i in range(2):  # 2 x 20 x 50 ms at each tier: time enough to be interrupted in the second
        (catalog / f"q{i}.sql").write_text(SMALL.replace("SELECT count(*)", "SELECT pg_sleep(0.05), count(*)"))
    reports = tmp_path / "r"
    command = [sys.executable, "-m", "harness", "grow", "--tiers", f"test,{_tier_ten_times_test(tmp_path)}",
               "--queries", str(catalog), "--iterations", "20", "--warmup", "1", "--reports-dir", str(reports),
               "--run-id", "g", "--dsn", fresh_dsn]  # fmt: skip
    env = {**os.environ, "HARNESS_HOME": str(TEST_HOME)}
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (reports / "g" / "grow.json").is_file(), timeout=120)  # the first tier is measured
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    grown = json.loads((reports / "g" / "grow.json").read_text())
    assert grown["complete"] is False and "interrupted" in grown["incomplete_reason"]
    assert [t["tier"] for t in grown["tiers"]] == ["test"] and (reports / "g" / "grow.html").is_file()
