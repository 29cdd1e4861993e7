"""Statistics on synthetic samples whose true properties are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats import (
    MIN_SAMPLES_FOR_P95_UPPER,
    PERCENTILE_METHOD,
    Summary,
    cliffs_delta,
    compare_samples,
    p95_interval,
    summarize,
)

Z95 = 1.6448536269514722  # standard normal 95th percentile


def lognormal(seed: int, n: int, scale: float = 1.0, sigma: float = 0.5) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(0.0, sigma, n)


# -- summarize -------------------------------------------------------------------------------------


def test_percentiles_are_linear_interpolation_by_hand() -> None:
    # 1..10: type 7 puts the p-th percentile at 1 + (n-1)p/100 → p50 = 5.5, p95 = 9.55, p99 = 9.91.
    s = summarize([10, 3, 7, 1, 9, 2, 8, 6, 5, 4])
    assert (s.min, s.p50, s.p95, s.p99, s.max) == pytest.approx((1, 5.5, 9.55, 9.91, 10))
    assert s.mean == pytest.approx(5.5)
    assert s.stddev == pytest.approx(math.sqrt(110 / 12))  # sample stddev (n-1)
    assert s.n == 10
    assert "type 7" in PERCENTILE_METHOD


def test_percentiles_match_numpy_on_skewed_samples() -> None:
    x = lognormal(3, 257)
    s = summarize(x)
    assert s.p50 == pytest.approx(np.percentile(x, 50))
    assert s.p95 == pytest.approx(np.percentile(x, 95))
    assert s.p99 == pytest.approx(np.percentile(x, 99))
    assert s.p95_ci_low < s.p95 < s.p95_ci_high


def test_too_few_samples_cannot_bound_p95_and_say_so() -> None:
    s = summarize([4.2])
    assert s.p95 == 4.2 and s.p95_ci_low is None and s.p95_ci_high is None
    assert s.p95_ci_text() == "[unbounded, unbounded]"
    assert s.stddev == 0.0
    thirty = summarize(lognormal(1, 30))
    assert thirty.p95_ci_low is not None and thirty.p95_ci_high is None  # bounded from below only
    assert thirty.p95_ci_text().endswith(", unbounded]")
    assert MIN_SAMPLES_FOR_P95_UPPER == 72  # 0.95**72 < 2.5% <= 0.95**71
    assert summarize(lognormal(1, 71)).p95_ci_high is None
    assert summarize(lognormal(1, 72)).p95_ci_high is not None


def test_p95_interval_ranks_by_hand() -> None:
    # n = 100: P(Bin(100, .95) <= 90) = 0.0282 > 2.5% and P(<= 89) = 0.0115, so the lower bound is X_(90);
    # P(<= 98) = 0.963 and P(<= 99) = 0.994, so the upper bound is X_(100).
    assert p95_interval(np.arange(1.0, 101.0)) == (90.0, 100.0)


def test_rejects_no_samples_and_non_finite_values() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        summarize([])
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")])


def test_as_dict_names_every_field_and_the_unit() -> None:
    d = summarize([1.0, 2.0, 3.0]).as_dict()
    assert d["unit"] == "ms"
    assert Summary(**d) == summarize([1.0, 2.0, 3.0])


@pytest.mark.parametrize("n", [72, 100, 300])
def test_p95_interval_covers_the_true_p95_at_least_nominally(n: int) -> None:
    # Order statistics make coverage >= 95% for any continuous distribution; measured here on lognormal
    # latencies over 2,000 seeded trials (standard error ~0.5%, tolerance 1%).
    true_p95 = math.exp(0.5 * Z95)
    trials = 2000
    rng = np.random.default_rng(n)
    covered = 0
    for _ in range(trials):
        low, high = p95_interval(rng.lognormal(0.0, 0.5, n))
        assert low is not None and high is not None
        covered += low <= true_p95 <= high
    assert covered / trials >= 0.94


def test_p95_lower_bound_alone_holds_at_n_30() -> None:
    # At n = 30 only the lower bound exists; it must fall below the true p95 at least 97.5% of the time.
    true_p95 = math.exp(0.5 * Z95)
    rng = np.random.default_rng(30)
    below = sum(p95_interval(rng.lognormal(0.0, 0.5, 30))[0] <= true_p95 for _ in range(2000))  # type: ignore[operator]
    assert below / 2000 >= 0.965


# -- compare_samples -------------------------------------------------------------------------------


def test_identical_distributions_rarely_called_different() -> None:
    trials = 200
    calls = 0
    for trial in range(trials):
        rng = np.random.default_rng(5000 + trial)
        base, cand = rng.lognormal(0, 0.5, 100), rng.lognormal(0, 0.5, 100)
        c = compare_samples(base, cand, seed=trial, resamples=1000)
        calls += c.significant
    assert calls / trials <= 0.05


def test_a_2x_slowdown_is_always_detected() -> None:
    # n = 30 (the default iteration count) at a realistic spread for a warm query (σ = 0.25).
    for trial in range(100):
        base, cand = lognormal(2 * trial, 30, sigma=0.25), lognormal(2 * trial + 1, 30, sigma=0.25, scale=2.0)
        c = compare_samples(base, cand, seed=trial, resamples=1000)
        assert c.verdict == "slower", (trial, c)
    c = compare_samples(lognormal(1, 300, sigma=0.25), lognormal(2, 300, sigma=0.25, scale=2.0))
    assert c.ci_low < 2.0 < c.ci_high
    assert 1.7 < c.ratio < 2.3
    assert c.change_pct == pytest.approx((c.ratio - 1) * 100)
    assert c.cliffs_delta > 0.474 and c.effect_magnitude == "large"


def test_a_2x_speedup_is_faster_and_not_a_regression() -> None:
    c = compare_samples(lognormal(1, 100, scale=2.0), lognormal(2, 100))
    assert c.verdict == "faster"
    assert c.ci_high < 1.0
    assert c.cliffs_delta < -0.474


def test_a_tiny_but_certain_shift_is_below_the_practical_floor() -> None:
    # Low noise and many samples make a 2% shift statistically certain ...
    rng = np.random.default_rng(9)
    base = rng.normal(100.0, 1.0, 2000)
    cand = rng.normal(102.0, 1.0, 2000)
    strict = compare_samples(base, cand, min_effect=0.0)
    assert strict.verdict == "slower" and strict.ci_low > 1.0
    # ... but it is not called a loss with the default 5% floor.
    assert compare_samples(base, cand, min_effect=0.05).verdict == "no significant difference"
    assert compare_samples(base, cand).ratio == pytest.approx(1.02, abs=0.005)


def test_a_large_point_change_the_ci_cannot_tell_from_noise_is_no_difference() -> None:
    c = compare_samples(lognormal(1, 300, sigma=0.2), lognormal(2, 300, sigma=0.2, scale=1.3))
    assert c.verdict == "slower" and 1.2 < c.ratio < 1.4
    noisy = compare_samples(lognormal(0, 20, sigma=1.0), lognormal(100, 20, sigma=1.0, scale=1.3))
    assert noisy.ratio > 1.1 and noisy.ci_low < 1.0 and noisy.verdict == "no significant difference"


def test_comparison_is_deterministic_per_seed() -> None:
    base, cand = lognormal(1, 50), lognormal(2, 50, scale=1.1)
    assert compare_samples(base, cand, seed=3) == compare_samples(base, cand, seed=3)
    # Bootstrap bounds land on a discrete set of order statistics, so look at a few seeds.
    intervals = {(c.ci_low, c.ci_high) for c in (compare_samples(base, cand, seed=s) for s in range(5))}
    assert len(intervals) > 1


def test_compare_on_p50_uses_medians() -> None:
    c = compare_samples([1, 2, 3, 4, 100], [2, 4, 6, 8, 9], metric="p50")
    assert (c.baseline, c.candidate, c.ratio) == (3.0, 6.0, 2.0)
    with pytest.raises(ValueError, match="metric"):
        compare_samples([1.0], [1.0], metric="p90")  # type: ignore[arg-type]


def test_cliffs_delta_counts_pairs_and_ties() -> None:
    assert cliffs_delta([1, 2], [3, 4]) == 1.0
    assert cliffs_delta([3, 4], [1, 2]) == -1.0
    # pairs (1,1) tie, (1,2) >, (2,1) <, (2,2) tie → (1 - 1) / 4
    assert cliffs_delta([1, 2], [1, 2]) == 0.0
    assert cliffs_delta([1, 2, 3], [2]) == pytest.approx((1 - 1) / 3)
    assert cliffs_delta([1, 1, 1], [2]) == 1.0


def test_as_dict_includes_the_effect_magnitude() -> None:
    d = compare_samples(lognormal(1, 40), lognormal(2, 40)).as_dict()
    assert d["verdict"] == "no significant difference"
    assert d["effect_magnitude"] in {"negligible", "small"}
    assert d["metric"] == "p95"
