"""Latency statistics: percentile summaries with a bootstrap CI for p95, and significance of a change.

All times are milliseconds. Percentiles use one method everywhere (``PERCENTILE_METHOD``) so a reader can
recompute any number from the raw samples kept in ``run.json``. Confidence intervals come from the
percentile bootstrap: it makes no assumption about the shape of latency distributions (skewed, heavy
tailed, often multi-modal), and it is seeded, so the same samples always give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

PERCENTILE_METHOD = "linear interpolation (Hyndman-Fan type 7)"
_NUMPY_METHOD = "linear"  # numpy's name for Hyndman-Fan type 7 (its default, stated explicitly)
CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
# Bootstrap resamples are drawn in blocks of at most this many values, so memory stays bounded (~32 MB
# of float64 + indices) however many samples a run has.
_BLOCK_VALUES = 2_000_000

Metric = Literal["p50", "p95"]
Verdict = Literal["faster", "slower", "no significant difference"]
NO_DIFFERENCE: Verdict = "no significant difference"
_METRIC_Q: dict[str, float] = {"p50": 50.0, "p95": 95.0}


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of one query's timed executions, in milliseconds."""

    n: int
    min: float
    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    stddev: float
    p95_ci_low: float
    p95_ci_high: float
    unit: str = "ms"

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def summarize(samples_ms: Sequence[float], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES) -> Summary:
    """Summarise timings; ``stddev`` is the sample standard deviation (n-1), 0 for a single sample.

    For fewer than two samples there is nothing to resample, so the p95 CI collapses to the point value.
    The bootstrap CI of a tail percentile is too narrow on few samples (a resample never exceeds the
    largest value seen): measured on lognormal latencies it covers the true p95 ~77% of the time at
    n=30, ~84% at n=100 and ~94% at n=300. Reports should show n next to the interval.
    """
    x = _as_array(samples_ms)
    p50, p95, p99 = np.percentile(x, [50.0, 95.0, 99.0], method=_NUMPY_METHOD)
    if x.size < 2:
        low = high = float(p95)
    else:
        boot = _bootstrap_percentile(x, 95.0, np.random.default_rng(seed), resamples)
        low, high = _interval(boot)
    return Summary(
        n=int(x.size),
        min=float(x.min()),
        p50=float(p50),
        p95=float(p95),
        p99=float(p99),
        max=float(x.max()),
        mean=float(x.mean()),
        stddev=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        p95_ci_low=low,
        p95_ci_high=high,
    )


@dataclass(frozen=True)
class Comparison:
    """Candidate vs baseline on one statistic: ``ratio`` = candidate / baseline, with its bootstrap CI.

    ``change_pct`` is the relative change of the statistic ((ratio - 1) x 100, positive = slower).
    ``cliffs_delta`` is an effect size over whole distributions: P(cand > base) - P(cand < base) for a
    random pair of executions, from -1 (every candidate run faster) to +1 (every candidate run slower);
    ``effect_magnitude`` names it with Romano et al.'s thresholds (0.147 / 0.33 / 0.474).
    """

    metric: Metric
    baseline: float
    candidate: float
    ratio: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    change_pct: float
    cliffs_delta: float
    n_baseline: int
    n_candidate: int
    min_effect: float

    @property
    def significant(self) -> bool:
        return self.verdict != NO_DIFFERENCE

    @property
    def effect_magnitude(self) -> str:
        size = abs(self.cliffs_delta)
        if size < 0.147:
            return "negligible"
        if size < 0.33:
            return "small"
        if size < 0.474:
            return "medium"
        return "large"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "effect_magnitude": self.effect_magnitude}


def compare_samples(
    base: Sequence[float],
    cand: Sequence[float],
    *,
    metric: Metric = "p95",
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    min_effect: float = 0.05,
) -> Comparison:
    """Is the candidate faster or slower than the baseline on ``metric``?

    Each side is resampled independently (the runs are independent measurements) and the CI is the
    percentile interval of the resampled ratios. A verdict other than "no significant difference"
    needs both:

    - statistical significance: the 95% CI of the ratio excludes 1.0, and
    - practical significance: ``|ratio - 1| >= min_effect`` (default 5%). With many samples a CI gets
      narrow enough to "prove" a 1% shift that comes from CPU frequency, cache state or a neighbour on
      the CI machine rather than from the change under test; calling that a win or a loss would make
      the gate flaky and train people to ignore it. Below the floor a change is reported, not judged.
    """
    if metric not in _METRIC_Q:
        raise ValueError(f"metric must be one of {sorted(_METRIC_Q)}, not {metric!r}")
    if min_effect < 0:
        raise ValueError("min_effect must be >= 0")
    b, c = _as_array(base), _as_array(cand)
    q = _METRIC_Q[metric]
    b_stat = float(np.percentile(b, q, method=_NUMPY_METHOD))
    c_stat = float(np.percentile(c, q, method=_NUMPY_METHOD))
    ratio = _ratio(c_stat, b_stat)
    rng = np.random.default_rng(seed)
    if b.size < 2 or c.size < 2:
        low = high = ratio
    else:
        b_boot = _bootstrap_percentile(b, q, rng, resamples)
        c_boot = _bootstrap_percentile(c, q, rng, resamples)
        low, high = _interval(_ratio_array(c_boot, b_boot))
    verdict: Verdict = NO_DIFFERENCE
    if (low > 1.0 or high < 1.0) and abs(ratio - 1.0) >= min_effect:
        verdict = "slower" if ratio > 1.0 else "faster"
    return Comparison(
        metric=metric,
        baseline=b_stat,
        candidate=c_stat,
        ratio=ratio,
        ci_low=low,
        ci_high=high,
        verdict=verdict,
        change_pct=(ratio - 1.0) * 100.0,
        cliffs_delta=_cliffs_delta(b, c),
        n_baseline=int(b.size),
        n_candidate=int(c.size),
        min_effect=min_effect,
    )


def regressed(comparison: Comparison, max_regression: float) -> bool:
    """True when the candidate is significantly slower (verdict "slower": the 95% CI of the ratio lies
    above 1 and the change clears ``min_effect``) *and* its estimated slowdown, the point ratio, exceeds
    1 + ``max_regression`` (a fraction: 0.10 for 10%).

    Why the point ratio and not the CI's lower bound: with no real change, a false alarm already needs
    the CI to exclude 1 (a 2.5% one-sided error), whatever the threshold. Requiring the lower bound to
    clear the threshold as well would mostly buy missed regressions — a real 2x slowdown measured with
    30 noisy samples can have a CI like [1.05, 3.0] and would pass the gate. A slowdown close to the
    threshold may go either way from run to run; the report shows the CI so a reader sees why.
    """
    if max_regression < 0:
        raise ValueError("max_regression must be >= 0 (a fraction, e.g. 0.10 for 10%)")
    return comparison.verdict == "slower" and comparison.ratio > 1.0 + max_regression


def cliffs_delta(base: Sequence[float], cand: Sequence[float]) -> float:
    """P(cand > base) - P(cand < base) over all pairs of one baseline and one candidate sample."""
    return _cliffs_delta(_as_array(base), _as_array(cand))


def _cliffs_delta(base: npt.NDArray[np.float64], cand: npt.NDArray[np.float64]) -> float:
    """O(n log n) via a sorted baseline instead of comparing all n x m pairs."""
    b, c = np.sort(base), cand
    below = np.searchsorted(b, c, side="left")  # baseline values strictly below each candidate value
    not_above = np.searchsorted(b, c, side="right")  # ... below or equal
    greater = below.sum()
    less = (b.size - not_above).sum()
    return float((greater - less) / (b.size * c.size))


def _as_array(samples: Sequence[float]) -> npt.NDArray[np.float64]:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("need a non-empty, one-dimensional sequence of samples")
    if not np.isfinite(x).all():
        raise ValueError("samples must be finite numbers")
    return x


def _bootstrap_percentile(
    x: npt.NDArray[np.float64], q: float, rng: np.random.Generator, resamples: int
) -> npt.NDArray[np.float64]:
    """The q-th percentile of ``resamples`` bootstrap resamples of ``x`` (vectorised, in blocks)."""
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    rows_per_block = max(1, _BLOCK_VALUES // x.size)
    out = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows_per_block):
        rows = min(rows_per_block, resamples - start)
        idx = rng.integers(0, x.size, size=(rows, x.size))
        out[start : start + rows] = np.percentile(x[idx], q, axis=1, method=_NUMPY_METHOD)
    return out


def _interval(boot: npt.NDArray[np.float64]) -> tuple[float, float]:
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], method=_NUMPY_METHOD)
    return float(low), float(high)


def _ratio(cand: float, base: float) -> float:
    if base == 0.0:
        return 1.0 if cand == 0.0 else float("inf")
    return cand / base


def _ratio_array(cand: npt.NDArray[np.float64], base: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = cand / base
    return np.where((base == 0.0) & (cand == 0.0), 1.0, ratio)
