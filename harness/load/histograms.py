"""Exact, mergeable latency histograms (HDR): what every Locust process records and the runner adds up.

A histogram of µs values at 3 significant digits holds any run's latencies in a few KB, and two histograms
add bucket by bucket, so the histogram merged over processes (or worker machines) is the one a single
process would have recorded: its percentiles are exact to the bucket width (0.1% of the value). Percentiles
are nearest-rank (``PERCENTILE_METHOD``), read as the highest value equivalent to the sample at that rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.stats import CONFIDENCE, Summary

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: any longer request has long hit its statement_timeout
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
PERCENTILE_METHOD = (
    "nearest rank on an HDR histogram (µs, 3 significant digits): the highest value equivalent to the "
    "ceil(q·n)-th smallest request"
)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_ns(histogram: HdrHistogram, nanoseconds: int) -> None:
    """Record one latency (clamped into the trackable range: 0 ns counts as 1 µs)."""
    histogram.record_value(min(max(round(nanoseconds / 1000), LOWEST_US), HIGHEST_US))


def encode(histogram: HdrHistogram) -> str:
    """The compressed, base64 form HdrHistogram libraries of every language read."""
    return histogram.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    histogram = new_histogram()
    if text:
        histogram.decode_and_add(text.encode("ascii"))
    return histogram


def merged(parts: Iterable[HdrHistogram]) -> HdrHistogram:
    """One histogram holding every count of ``parts`` (exact: the buckets add)."""
    total = new_histogram()
    for part in parts:
        total.add(part)
    return total


def value_at_rank_ms(histogram: HdrHistogram, rank: int) -> float:
    """The ``rank``-th smallest recorded value (1-based), in ms, as the highest value of its bucket."""
    cumulative = np.cumsum(np.ctypeslib.as_array(histogram.counts)[: histogram.counts_len])
    index = min(int(np.searchsorted(cumulative, rank)), histogram.counts_len - 1)
    return histogram.get_highest_equivalent_value(histogram.get_value_from_index(index)) / 1000.0


def percentile_ms(histogram: HdrHistogram, q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q ≤ 100) in ms; the histogram must not be empty."""
    n = histogram.get_total_count()
    return value_at_rank_ms(histogram, max(1, math.ceil(q / 100.0 * n - 1e-9)))


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    """``{"p50": …, "p90": …, "p95": …, "p99": …, "p99.9": …}`` in ms."""
    return {f"p{q:g}": round(percentile_ms(histogram, q), 3) for q in PERCENTILES}


def summary(histogram: HdrHistogram) -> Summary | None:
    """The ``harness.stats.Summary`` of a histogram (None when empty), with the same distribution-free p95
    interval as ``harness run`` (order statistics, read from the histogram's ranks)."""
    from scipy import stats as scipy_stats

    n = histogram.get_total_count()
    if n == 0:
        return None
    tail = (1.0 - CONFIDENCE) / 2.0
    binom = scipy_stats.binom(n, 0.95)
    low_rank = int(binom.ppf(tail))
    if binom.cdf(low_rank) > tail:
        low_rank -= 1
    high_rank = int(binom.ppf(1.0 - tail)) + 1
    return Summary(
        n=n,
        min=histogram.get_lowest_equivalent_value(histogram.get_min_value()) / 1000.0,
        p50=percentile_ms(histogram, 50),
        p95=percentile_ms(histogram, 95),
        p99=percentile_ms(histogram, 99),
        max=histogram.get_highest_equivalent_value(histogram.get_max_value()) / 1000.0,
        mean=histogram.get_mean_value() / 1000.0,
        stddev=histogram.get_stddev() / 1000.0,
        p95_ci_low=value_at_rank_ms(histogram, low_rank + 1) if low_rank >= 0 else None,
        p95_ci_high=value_at_rank_ms(histogram, high_rank) if high_rank <= n else None,
    )
