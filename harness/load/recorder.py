"""Our own per-request timings (``perf_counter_ns``), per query and per Locust process, merged exactly.

Locust rounds its response times to ~2 significant digits, so every load process records each request
itself, as HDR histograms (``harness.load.histograms``): *response time* (from the request's intended start
under ``--rate``; from the send in a closed loop, where the two coincide), *service time* (from the send)
and *schedule lag* (send − intended start), plus a response histogram per timeline bin, failures by
message and the open-loop counters. Raw samples are kept only when asked (``--samples``).

A process writes its document as ``process-<pid>-<n>.json`` when a test stops and ``live-<pid>.json``
about every second while it runs (no bins, no samples: what the live display and early aborts read).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.errors import InputError
from harness.load.histograms import decode, encode, new_histogram, record_ns

LATE_MS = 10.0  # a request sent more than this after its intended start is late
BIN_DIGITS = 2  # the timeline's per-bin histograms are a picture: 1% buckets are plenty


def _bin_histogram() -> HdrHistogram:
    return HdrHistogram(1, 3_600_000_000, BIN_DIGITS)


@dataclass
class QueryRecord:
    """One query's requests in one process (or merged): histograms, failures, drops, bins, raw samples."""

    response: HdrHistogram = field(default_factory=new_histogram)
    service: HdrHistogram = field(default_factory=new_histogram)
    lag: HdrHistogram = field(default_factory=new_histogram)
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    dropped: int = 0  # never sent: later than --latency-limit when a connection became free
    late: int = 0  # sent more than LATE_MS after the intended start
    bins: dict[int, HdrHistogram] = field(default_factory=dict)  # bin start (epoch s) → response times
    failed_bins: Counter[int] = field(default_factory=Counter)
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (intended epoch s, response, service ms)
    first: float | None = None  # the earliest intended start (epoch s) of a request
    last: float | None = None  # the latest end (epoch s) of a request

    @property
    def requests(self) -> int:
        """Requests completed without error."""
        return self.response.get_total_count()

    def add(self, other: QueryRecord) -> None:
        """Add ``other``'s counts to this one (exact: histogram buckets add)."""
        self.response.add(other.response)
        self.service.add(other.service)
        self.lag.add(other.lag)
        self.failures += other.failures
        self.errors.update(other.errors)
        self.dropped += other.dropped
        self.late += other.late
        for start, histogram in other.bins.items():
            self.bins.setdefault(start, _bin_histogram()).add(histogram)
        self.failed_bins.update(other.failed_bins)
        self.samples.extend(other.samples)
        self.span(other.first, other.last)

    def span(self, start: float | None, end: float | None) -> None:
        """Widen the span of requests to cover ``start`` … ``end`` (epoch s)."""
        if start is not None:
            self.first = start if self.first is None else min(self.first, start)
        if end is not None:
            self.last = end if self.last is None else max(self.last, end)

    def as_document(self, full: bool) -> dict[str, Any]:
        document: dict[str, Any] = {
            "response": encode(self.response),
            "service": encode(self.service),
            "lag": encode(self.lag),
            "failures": self.failures,
            "errors": dict(self.errors),
            "dropped": self.dropped,
            "late": self.late,
            "first": self.first,
            "last": self.last,
        }
        if full:
            document["bins"] = {str(start): encode(h) for start, h in sorted(self.bins.items())}
            document["failed_bins"] = {str(start): n for start, n in sorted(self.failed_bins.items())}
            document["samples"] = [[round(t, 6), round(r, 4), round(s, 4)] for t, r, s in self.samples]
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> QueryRecord:
        record = cls(
            decode(document["response"]),
            decode(document["service"]),
            decode(document["lag"]),
            int(document["failures"]),
            Counter(document["errors"]),
            int(document["dropped"]),
            int(document["late"]),
            first=document["first"],
            last=document["last"],
        )
        for start, text in document.get("bins", {}).items():
            record.bins[int(start)] = _bin_histogram()
            record.bins[int(start)].decode_and_add(text.encode("ascii"))
        record.failed_bins.update({int(s): int(n) for s, n in document.get("failed_bins", {}).items()})
        record.samples = [(float(t), float(r), float(s)) for t, r, s in document.get("samples", [])]
        return record


@dataclass
class ProcessRecord:
    """What one Locust process saw: per query, plus its share of an open-loop schedule."""

    pid: int
    host: str
    rate_per_s: float | None = None  # this process's share of --rate; None in a closed loop
    intended: int = 0  # intended starts handed out so far (open loop)
    unsent: int = 0  # intended starts that fell before the stop but were never sent
    queries: dict[str, QueryRecord] = field(default_factory=dict)

    def as_document(self, full: bool = True) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "host": self.host,
            "rate_per_s": self.rate_per_s,
            "intended": self.intended,
            "unsent": self.unsent,
            "queries": {name: q.as_document(full) for name, q in sorted(self.queries.items())},
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ProcessRecord:
        return cls(
            int(document["pid"]),
            str(document["host"]),
            document["rate_per_s"],
            int(document["intended"]),
            int(document["unsent"]),
            {name: QueryRecord.from_document(q) for name, q in document["queries"].items()},
        )


class Recorder:
    """The timings of one process; one document per test (a web UI session may run several)."""

    def __init__(self, bin_s: int = 1, keep_samples: bool = False) -> None:
        self.bin_s = max(1, bin_s)
        self.keep_samples = keep_samples
        self.process = ProcessRecord(os.getpid(), socket.gethostname())
        self._written = 0

    def _query(self, name: str) -> QueryRecord:
        return self.process.queries.setdefault(name, QueryRecord())

    def success(self, name: str, intended_epoch: float, lag_ns: int, service_ns: int) -> None:
        """A completed request: its response time is lag + service (the transaction's BEGIN is in neither)."""
        q = self._query(name)
        response_ns = max(lag_ns, 0) + service_ns
        q.span(intended_epoch, intended_epoch + response_ns / 1e9)
        record_ns(q.response, response_ns)
        record_ns(q.service, service_ns)
        record_ns(q.lag, max(lag_ns, 0))
        if lag_ns > LATE_MS * 1e6:
            q.late += 1
        start = int(intended_epoch // self.bin_s * self.bin_s)
        record_ns(q.bins.setdefault(start, _bin_histogram()), response_ns)
        if self.keep_samples:
            q.samples.append((intended_epoch, response_ns / 1e6, service_ns / 1e6))

    def failure(self, name: str, intended_epoch: float, message: str) -> None:
        q = self._query(name)
        q.span(intended_epoch, time.time())
        q.failures += 1
        q.errors[message] += 1
        q.failed_bins[int(intended_epoch // self.bin_s * self.bin_s)] += 1

    def drop(self, name: str) -> None:
        self._query(name).dropped += 1

    def reset(self) -> None:
        self.process = ProcessRecord(os.getpid(), socket.gethostname())

    def write_live(self, directory: Path) -> None:
        write_json(directory / f"live-{self.process.pid}.json", self.process.as_document(full=False))

    def write(self, directory: Path) -> Path | None:
        """Write this test's document (nothing when no request was recorded) and start afresh."""
        if not self.process.queries:
            return None
        self._written += 1
        path = directory / f"process-{self.process.pid}-{self._written}.json"
        write_json(path, self.process.as_document())
        (directory / f"live-{self.process.pid}.json").unlink(missing_ok=True)
        self.reset()
        return path


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document))
    tmp.replace(path)


def read_processes(directory: Path, pattern: str = "process-*.json") -> list[ProcessRecord]:
    """Every process document of ``directory`` (``live-*.json`` for the running ones)."""
    found = []
    for path in sorted(directory.glob(pattern)):
        try:
            found.append(ProcessRecord.from_document(json.loads(path.read_text())))
        except FileNotFoundError:  # a live file removed as its process finished
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: unreadable timings file ({exc})") from None
    return found


def combined(processes: Iterable[ProcessRecord]) -> dict[str, QueryRecord]:
    """Per query, every process's record added up."""
    merged: dict[str, QueryRecord] = {}
    for process in processes:
        for name, q in process.queries.items():
            merged.setdefault(name, QueryRecord()).add(q)
    return merged
