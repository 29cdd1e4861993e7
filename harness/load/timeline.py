"""Throughput and latency over time: the per-bin response histograms of every process, as series to plot."""

from __future__ import annotations

from dataclasses import dataclass

from harness.load.histograms import percentile_ms
from harness.load.recorder import QueryRecord

TOTAL = "total"


@dataclass(frozen=True)
class Series:
    """One query's (or the total's) requests per time bin: completed, failed, and response-time percentiles."""

    name: str
    requests: list[int]
    failures: list[int]
    p50_ms: list[float | None]
    p95_ms: list[float | None]


@dataclass(frozen=True)
class Timeline:
    """Throughput and latency over time, in bins of ``bin_s`` seconds from ``t0`` (epoch seconds)."""

    t0: float
    bin_s: float
    series: list[Series]  # "total" first, then one per query

    @property
    def bins(self) -> int:
        return len(self.series[0].requests) if self.series else 0


def timeline(records: dict[str, QueryRecord], bin_s: int) -> Timeline | None:
    """Bin every request by its intended start (the last bin may be partial: the run stopped inside it)."""
    starts = {s for q in records.values() for s in (*q.bins, *q.failed_bins)}
    if not starts:
        return None
    t0, count = min(starts), (max(starts) - min(starts)) // bin_s + 1
    total = QueryRecord()
    for q in records.values():
        total.add(q)
    series = []
    for name, q in [(TOTAL, total), *sorted(records.items())]:
        requests, failures, p50, p95 = [], [], [], []
        for b in range(count):
            start = t0 + b * bin_s
            histogram = q.bins.get(start)
            n = histogram.get_total_count() if histogram is not None else 0
            requests.append(n)
            failures.append(q.failed_bins.get(start, 0))
            p50.append(round(percentile_ms(histogram, 50), 3) if histogram is not None and n else None)
            p95.append(round(percentile_ms(histogram, 95), 3) if histogram is not None and n else None)
        series.append(Series(name, requests, failures, p50, p95))
    return Timeline(float(t0), float(bin_s), series)
