"""What a load run is asked (``LoadOptions``) and what it produced (``LoadResult``, per query and in total).

The runner fills these in; ``harness.report.load`` writes them (load.json, load.md, load.png).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.environment import Environment
from harness.load.arrivals import Arrival
from harness.load.thresholds import Threshold
from harness.load.timeline import Timeline
from harness.stats import Summary

Role = Literal["local", "master", "worker"]


@dataclass(frozen=True)
class LoadOptions:
    users: int = 10  # closed loop: concurrent users; open loop: connections the arrivals queue for
    spawn_rate: float | None = None  # users started per second; None: all of them within the first second
    duration_s: int = 60
    rate: float | None = None  # requests/s across all users: an open loop; None: closed loop
    arrival: Arrival = Arrival.POISSON
    latency_limit_ms: float | None = None  # open loop: drop a request still unsent this long after its start
    processes: int = 1  # Locust processes on this machine (>1: --processes K, a master and K workers)
    role: Role = "local"  # "master" / "worker": one side of a run spread over several machines
    master_host: str = "127.0.0.1"  # for --worker
    master_port: int = 5557
    expect_workers: int = 1  # for --master
    web: bool = False  # Locust's web UI on 127.0.0.1 instead of a bounded headless run (--web)
    web_port: int = 8089
    tier: str = "test"
    seed: int = 42
    strategy: str | None = None
    queries_dir: Path | None = None
    only: tuple[str, ...] = ()
    param_pool: int = 0  # >0: draw among the first K parameter sets of each query (what a pgbench replay uses)
    p95_budget_ms: float | None = None  # None: each query's budget_ms
    max_failure_rate: float = 0.01
    thresholds: tuple[Threshold, ...] = ()
    abort_on_fail: bool = False  # stop as soon as a threshold is breached
    samples: bool = False  # keep every request's raw timings beside the histograms
    seed_if_needed: bool = True
    force: bool = False
    reports_dir: Path | None = None
    run_id: str | None = None

    @property
    def open_loop(self) -> bool:
        return self.rate is not None


@dataclass(frozen=True)
class LoadQueryResult:
    """One query under load: our exact timings, its failures, and the gate's verdict.

    ``summary`` is the response time (from the intended start under ``--rate``: what the gate judges);
    ``service`` runs from the send. In a closed loop they are the same measurement.
    """

    name: str
    weight: int
    budget_ms: float | None  # None: not gated on p95 (the total, without a global --p95-budget)
    requests: int  # completed without error
    failures: int
    throughput_rps: float
    summary: Summary | None
    errors: dict[str, int]
    status: Literal["pass", "fail", "warn"]
    reasons: tuple[str, ...]
    service: Summary | None = None
    lag: Summary | None = None
    percentiles_ms: dict[str, float] = field(default_factory=dict)  # response time p50 … p99.9
    dropped: int = 0
    late: int = 0
    histograms: dict[str, str] = field(default_factory=dict)  # response / service / lag, HDR base64

    @property
    def failure_rate(self) -> float:
        total = self.requests + self.failures + self.dropped
        return (self.failures + self.dropped) / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("summary", "service", "lag"):
            value = getattr(self, key)
            data[key] = value.as_dict() if value else None
        data["failure_rate"] = self.failure_rate
        return data


@dataclass(frozen=True)
class OpenLoop:
    """The schedule of an open-loop run against what happened to it."""

    target_rps: float
    arrival: Arrival
    intended: int  # starts handed out by the schedules
    sent: int  # requests sent (completed or failed)
    late: int  # sent more than LATE_MS after their intended start
    dropped: int  # never sent: later than the latency limit when a connection became free
    unsent: int  # due before the run stopped, still waiting
    duration_s: float

    @property
    def achieved_rps(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "achieved_rps": self.achieved_rps}


@dataclass(frozen=True)
class ProcessShare:
    """One Locust process's part of the run: its requests and its own response histogram per query."""

    pid: int
    host: str
    rate_per_s: float | None
    requests: int
    histograms: dict[str, str]  # query → HDR base64 of its response times


@dataclass
class LoadResult:
    run_id: str
    started_at: str
    options: LoadOptions
    directory: Path
    environment: Environment | None = None
    queries: list[LoadQueryResult] = field(default_factory=list)
    total: LoadQueryResult | None = None
    open_loop: OpenLoop | None = None
    processes: list[ProcessShare] = field(default_factory=list)
    duration_s: float = 0.0  # the first request's (intended) start to the last request's end
    timeline: Timeline | None = None
    locust_exit_code: int | None = None
    complete: bool = False
    incomplete_reason: str | None = None
    aborted: str | None = None  # the threshold breach that stopped the run early (--abort-on-fail)
    finished_at: str | None = None
    warnings: list[str] = field(default_factory=list)  # about the run as a whole (e.g. a role that can write)

    @property
    def failed(self) -> list[str]:
        """Names of the queries that failed the gate (what exit 1 names); "total" when only the mix did."""
        names = [q.name for q in self.queries if q.status == "fail"]
        return names or (["total"] if self.total is not None and self.total.status == "fail" else [])

    @property
    def status(self) -> str:
        if self.failed:
            return "fail"
        if not self.complete:
            return "incomplete"
        return "warn" if any(q.status == "warn" for q in self.queries) else "pass"
