"""What a load run is asked (``LoadOptions``) and what it produced (``LoadResult``, per query and in total).

The runner fills these in; ``harness.report.load`` writes them (load.json, load.md, load.png).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.environment import Environment
from harness.load.samples import Timeline
from harness.stats import Summary

Role = Literal["local", "master", "worker"]


@dataclass(frozen=True)
class LoadOptions:
    users: int = 10
    spawn_rate: float | None = None  # users started per second; None: all of them within the first second
    duration_s: int = 60
    processes: int = 1  # Locust processes on this machine (>1: --processes K, a master and K workers)
    role: Role = "local"  # "master" / "worker": one side of a run spread over several machines
    master_host: str = "127.0.0.1"  # for --worker
    master_port: int = 5557
    expect_workers: int = 1  # for --master
    tier: str = "test"
    seed: int = 42
    strategy: str | None = None
    queries_dir: Path | None = None
    only: tuple[str, ...] = ()
    param_pool: int = 0  # >0: draw among the first K parameter sets of each query (what a pgbench replay uses)
    p95_budget_ms: float | None = None  # None: each query's budget_ms
    max_failure_rate: float = 0.01
    seed_if_needed: bool = True
    force: bool = False
    reports_dir: Path | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class LoadQueryResult:
    """One query under load: our exact timings, its failures, and the gate's verdict."""

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

    @property
    def failure_rate(self) -> float:
        total = self.requests + self.failures
        return self.failures / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary.as_dict() if self.summary else None
        data["failure_rate"] = self.failure_rate
        return data


@dataclass
class LoadResult:
    run_id: str
    started_at: str
    options: LoadOptions
    directory: Path
    environment: Environment | None = None
    queries: list[LoadQueryResult] = field(default_factory=list)
    total: LoadQueryResult | None = None
    duration_s: float = 0.0  # first request start to last request start
    timeline: Timeline | None = None
    locust_exit_code: int | None = None
    complete: bool = False
    incomplete_reason: str | None = None
    finished_at: str | None = None
    warnings: list[str] = field(default_factory=list)  # about the run as a whole (e.g. a role that can write)

    @property
    def failed(self) -> list[str]:
        """Names of the queries that failed the gate (what exit 1 names)."""
        return [q.name for q in self.queries if q.status == "fail"]

    @property
    def status(self) -> str:
        if self.failed:
            return "fail"
        if not self.complete:
            return "incomplete"
        return "warn" if any(q.status == "warn" for q in self.queries) else "pass"
