"""Our own per-request timings (``perf_counter_ns``), kept per query and merged across Locust processes.

Locust rounds its response times to ~2 significant digits, so every load process also records each
request exactly and writes ``samples-<pid>-<n>.json`` to the run's samples folder when a test stops; the
runner merges the files of all processes. Times: ``t`` is the wall-clock start (epoch seconds), ``ms``
the latency of execute + fetch of every row.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InputError


@dataclass
class QuerySamples:
    """One query's requests: successes (start time, latency) and failures (start time, message)."""

    t: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    failed_t: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def extend(self, other: QuerySamples) -> None:
        self.t.extend(other.t)
        self.ms.extend(other.ms)
        self.failed_t.extend(other.failed_t)
        self.errors.update(other.errors)

    @property
    def failures(self) -> int:
        return len(self.failed_t)


class SampleLog:
    """The timings of one process, written as one file per test (a web UI session may run several)."""

    def __init__(self) -> None:
        self.queries: dict[str, QuerySamples] = {}
        self._written = 0

    def success(self, name: str, started: float, elapsed_ms: float) -> None:
        entry = self.queries.setdefault(name, QuerySamples())
        entry.t.append(started)
        entry.ms.append(elapsed_ms)

    def failure(self, name: str, started: float, message: str) -> None:
        entry = self.queries.setdefault(name, QuerySamples())
        entry.failed_t.append(started)
        entry.errors[message] += 1

    def reset(self) -> None:
        self.queries = {}

    def write(self, directory: Path) -> Path | None:
        """Write this test's samples (nothing when there are none) and start afresh."""
        if not self.queries:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        self._written += 1
        path = directory / f"samples-{os.getpid()}-{self._written}.json"
        document = {
            name: {
                "t": q.t,
                "ms": [round(ms, 4) for ms in q.ms],
                "failed_t": q.failed_t,
                "errors": dict(q.errors),
            }
            for name, q in self.queries.items()
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document))
        tmp.replace(path)
        self.reset()
        return path


def read_samples(directory: Path) -> dict[str, QuerySamples]:
    """Merge every process's samples file of ``directory``, per query."""
    merged: dict[str, QuerySamples] = {}
    for path in sorted(directory.glob("samples-*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: unreadable samples file ({exc})") from None
        for name, q in document.items():
            part = QuerySamples(list(q["t"]), list(q["ms"]), list(q["failed_t"]), Counter(q["errors"]))
            merged.setdefault(name, QuerySamples()).extend(part)
    return merged


@dataclass(frozen=True)
class Series:
    """One query's (or the total's) requests per time bin: completed, failed, and latency percentiles."""

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


TOTAL = "total"


def timeline(samples: dict[str, QuerySamples], t0: float, bin_s: float = 1.0) -> Timeline:
    """Bin every request by its start time (the last bin may be partial: the run stopped inside it)."""
    import numpy as np  # only the runner bins timelines: the Locust processes that log samples never load it

    starts = [t for q in samples.values() for t in (*q.t, *q.failed_t)]
    if not starts:
        return Timeline(t0, bin_s, [])
    count = int((max(starts) - t0) // bin_s) + 1
    parts = {TOTAL: QuerySamples()}
    for name, q in sorted(samples.items()):
        parts[TOTAL].extend(q)
        parts[name] = q
    series = []
    for name, q in parts.items():
        index = np.floor((np.asarray(q.t, dtype=float) - t0) / bin_s).astype(int)
        failed = np.floor((np.asarray(q.failed_t, dtype=float) - t0) / bin_s).astype(int)
        ms = np.asarray(q.ms, dtype=float)
        requests, failures, p50, p95 = [], [], [], []
        for b in range(count):
            in_bin = ms[index == b]
            requests.append(int(in_bin.size))
            failures.append(int((failed == b).sum()))
            low, high = np.percentile(in_bin, [50, 95]) if in_bin.size else (None, None)
            p50.append(None if low is None else round(float(low), 4))
            p95.append(None if high is None else round(float(high), 4))
        series.append(Series(name, requests, failures, p50, p95))
    return Timeline(t0, bin_s, series)
