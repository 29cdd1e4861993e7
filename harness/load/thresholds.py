"""Load thresholds written as k6 writes them: ``p95<250``, ``p(99)<=400``, ``daily_active_users:avg<50``.

A threshold bounds one latency figure, in ms, of the response time (from the intended start under
``--rate``). Without a query name it bounds every query; ``total:`` bounds the mix. Metrics: ``pN`` or
``p(N)`` for any percentile 0 < N < 100 (e.g. ``p99.9``), ``avg``, ``med``, ``min``, ``max``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from harness.errors import InputError, did_you_mean
from harness.load.histograms import percentile_ms

TOTAL = "total"
_SYNTAX = re.compile(
    r"^\s*(?:(?P<query>[A-Za-z_][\w.$-]*)\s*:)?\s*(?P<metric>p\(\s*[\d.]+\s*\)|p[\d.]+|avg|med|min|max)"
    r"\s*(?P<op><=|<)\s*(?P<limit>[\d.]+)\s*(?:ms)?\s*$"
)
_HELP = "write it as k6 does, e.g. 'p95<250' or 'daily_active_users:p(99)<400' (ms)"
_NAMED: dict[str, Callable[[HdrHistogram], float]] = {
    "avg": lambda h: h.get_mean_value() / 1000.0,
    "med": lambda h: percentile_ms(h, 50),
    "min": lambda h: h.get_lowest_equivalent_value(h.get_min_value()) / 1000.0,
    "max": lambda h: h.get_highest_equivalent_value(h.get_max_value()) / 1000.0,
}


@dataclass(frozen=True)
class Threshold:
    """One bound: ``query`` (None: every query; ``"total"``: the mix), a metric, ``<`` or ``<=``, a limit in ms."""

    text: str
    query: str | None
    metric: str  # "p95", "p99.9", "avg", "med", "min", "max"
    inclusive: bool
    limit_ms: float

    def applies_to(self, name: str) -> bool:
        return self.query == name or (self.query is None and name != TOTAL)

    def value_ms(self, histogram: HdrHistogram) -> float:
        if self.metric in _NAMED:
            return _NAMED[self.metric](histogram)
        return percentile_ms(histogram, float(self.metric[1:]))

    def breach(self, histogram: HdrHistogram) -> str | None:
        """ "threshold p95<250 breached: p95 312.40 ms" when the histogram crosses it, else None."""
        if histogram.get_total_count() == 0:
            return None
        value = self.value_ms(histogram)
        within = value <= self.limit_ms if self.inclusive else value < self.limit_ms
        return None if within else f"threshold {self.text} breached: {self.metric} {value:.2f} ms"


def parse_threshold(text: str) -> Threshold:
    """A Threshold from k6's syntax; InputError (exit 2) with the fix otherwise."""
    match = _SYNTAX.match(text)
    if match is None:
        raise InputError(f"--threshold {text!r} is not a threshold: {_HELP}")
    metric = re.sub(r"[\s()]", "", match["metric"])
    if metric.startswith("p"):
        try:
            q = float(metric[1:])
        except ValueError:
            raise InputError(f"--threshold {text!r}: {match['metric']!r} is not a percentile; {_HELP}") from None
        if not 0 < q < 100:
            raise InputError(f"--threshold {text!r}: the percentile must be between 0 and 100, not {q:g}")
        metric = f"p{q:g}"
    try:
        limit = float(match["limit"])
    except ValueError:
        raise InputError(f"--threshold {text!r}: {match['limit']!r} is not a number of ms") from None
    if not math.isfinite(limit) or limit <= 0:
        raise InputError(f"--threshold {text!r}: the limit must be a positive number of ms")
    return Threshold(" ".join(text.split()), match["query"], metric, match["op"] == "<=", limit)


def check_names(thresholds: Iterable[Threshold], queries: Iterable[str]) -> None:
    """InputError for a threshold naming a query the run does not have."""
    names = set(queries)
    for threshold in thresholds:
        if threshold.query is not None and threshold.query != TOTAL and threshold.query not in names:
            hint = did_you_mean(threshold.query, names)
            raise InputError(f"--threshold {threshold.text!r}: no query {threshold.query!r} in this run{hint}")
