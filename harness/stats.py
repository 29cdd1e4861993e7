"""Latency statistics: percentile summaries with a distribution-free p95 interval, and change between samples.

All times are milliseconds. Percentiles use one method everywhere (``PERCENTILE_METHOD``) so a reader can
recompute any number from the raw samples kept in ``run.json``.

The p95 interval of a summary is built from order statistics (``p95_interval``): the number of samples
below the true p95 is Binomial(n, 0.95), whatever the latency distribution, so two ranks chosen from that
binomial bound the p95 with at least the stated confidence. The price of making no assumption is that
small n cannot bound a tail: with fewer than ``MIN_SAMPLES_FOR_P95_UPPER`` samples even the largest one
is below the true p95 too often to serve as an upper bound, and the interval says "unbounded" instead of
printing a number.

``compare_samples`` (a seeded percentile-bootstrap CI of a ratio) describes strategy comparisons; the gate
of a baseline-vs-candidate comparison is in ``harness.gate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

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


def _min_samples_for_upper(q: float, confidence: float) -> int:
    """The smallest n whose largest sample bounds the q-quantile from above: q**n <= (1 - confidence) / 2."""
    return int(np.ceil(np.log((1.0 - confidence) / 2.0) / np.log(q)))


MIN_SAMPLES_FOR_P95_UPPER = _min_samples_for_upper(0.95, CONFIDENCE)  # 72 at 95% confidence


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
    p95_ci_low: float | None  # None: too few samples to bound p95 from below at CONFIDENCE
    p95_ci_high: float | None  # None: too few samples to bound p95 from above (n < MIN_SAMPLES_FOR_P95_UPPER)
    unit: str = "ms"

    def as_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)

    def p95_ci_text(self, fmt: Callable[[float], str] = lambda v: f"{v:.2f}") -> str:
        """ "[1.20, 3.40]", or "[1.20, unbounded]" where n cannot bound p95 from above."""
        low = "unbounded" if self.p95_ci_low is None else fmt(self.p95_ci_low)
        high = "unbounded" if self.p95_ci_high is None else fmt(self.p95_ci_high)
        return f"[{low}, {high}]"


def p95_interval(samples_ms: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """A distribution-free two-sided interval for the 95th percentile, from order statistics.

    The count of samples below the true p95 is Binomial(n, 0.95) for any continuous distribution; the
    bounds are the order statistics at the binomial's (1 - confidence) / 2 and (1 + confidence) / 2
    quantiles, so coverage is at least ``confidence``. A side that n cannot bound is None.
    """
    return quantile_interval(samples_ms, 0.95, confidence)


def quantile_interval(
    samples_ms: Sequence[float], q: float, confidence: float = CONFIDENCE
) -> tuple[float | None, float | None]:
    """:func:`p95_interval` for any quantile ``q`` in (0, 1)."""
    x = np.sort(_as_array(samples_ms))
    n, tail = x.size, (1.0 - confidence) / 2.0
    binom = scipy_stats.binom(n, q)
    # lower rank l (1-based): the largest with P(Bin <= l - 1) <= tail, i.e. P(X_(l) <= true q) >= 1 - tail
    k = int(binom.ppf(tail))
    if binom.cdf(k) > tail:
        k -= 1
    low = float(x[k]) if k >= 0 else None  # x[k] is X_(k+1) = X_(l)
    # upper rank u: the smallest with P(Bin <= u - 1) >= 1 - tail; it exists only when u <= n
    u = int(binom.ppf(1.0 - tail)) + 1
    high = float(x[u - 1]) if u <= n else None
    return low, high


def summarize(samples_ms: Sequence[float]) -> Summary:
    """Summarise timings; ``stddev`` is the sample standard deviation (n-1), 0 for a single sample."""
    x = _as_array(samples_ms)
    p50, p95, p99 = np.percentile(x, [50.0, 95.0, 99.0], method=_NUMPY_METHOD)
    low, high = p95_interval(x)
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


def percentile_log_se(
    samples_ms: Sequence[float], q: float = 95.0, seed: int = 0, resamples: int = DEFAULT_RESAMPLES
) -> float:
    """The standard error of ln(q-th percentile), from a seeded bootstrap: how much one tier's p95 can be
    trusted when a growth fit weighs it (``harness.growth``). 0 for a single sample."""
    x = _as_array(samples_ms)
    if x.size < 2 or x.min() <= 0:
        return 0.0
    boot = _bootstrap_percentile(x, q, np.random.default_rng(seed), resamples)
    return float(np.log(boot).std(ddof=1))


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
