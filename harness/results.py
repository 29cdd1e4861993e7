"""The result of a `harness run`: environment fingerprint, per-query measurements and verdicts.

This is what run.json serialises (``SCHEMA_VERSION``), what the other report formats render, and what
`harness compare BASE CAND` reads back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.measure import Measurement
from harness.plans import PlanFacts
from harness.stats import PERCENTILE_METHOD, Summary
from harness.verdicts import QueryVerdict
from harness.work import Work

SCHEMA_VERSION = 2  # 2: per-query work metrics, per-draw plan shapes, draws digest; cache state
READABLE_SCHEMA_VERSIONS = (1, 2)  # version 1 runs compare on timings only (no work metrics)
FINGERPRINT_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "random_page_cost",
    "jit",
    "max_parallel_workers_per_gather",
    "plan_cache_mode",
    "default_statistics_target",
    "enable_seqscan",
    "server_version_num",
)


@dataclass(frozen=True)
class Environment:
    """What must match for two runs to be comparable, plus where and when the run happened."""

    postgres_version: str
    postgres_major: int
    settings: dict[str, str]
    tier: str
    seed: int
    strategy: str
    data_checksum: str
    row_counts: dict[str, int]
    anchor_date: str
    harness_version: str
    git_commit: str | None
    host: dict[str, Any]
    database: str  # redacted DSN or "embedded"


@dataclass
class QueryResult:
    name: str
    description: str
    budget_ms: float
    path: str
    measurement: Measurement
    summary: Summary | None
    verdict: QueryVerdict

    def as_dict(self) -> dict[str, Any]:
        m = self.measurement
        return {
            "name": self.name,
            "description": self.description,
            "budget_ms": self.budget_ms,
            "path": self.path,
            "verdict": self.verdict.as_dict(),
            "summary": self.summary.as_dict() if self.summary else None,
            "samples_ms": [round(s, 4) for s in m.samples_ms],
            "prepare": m.prepare,
            "timeout_ms": m.timeout_ms,
            "params_example": {k: _jsonable(v) for k, v in m.params_example.items()},
            "rows_returned": m.rows_returned,
            "plan": m.plan.as_dict() if m.plan else None,
            "explain": m.explain_json,
            "usability": [asdict(u) for u in m.usability],
            "error": m.error,
            "timed_out": m.timed_out,
            "retried": m.retried,
            "work": m.work.as_dict() if m.work else None,
            "draws_digest": m.draws_digest,
            "draw_plans": list(m.draw_plans),
            "plan_shapes": m.plan_shapes,
        }


@dataclass
class RunResult:
    run_id: str
    started_at: str
    environment: Environment | None
    options: dict[str, Any]
    queries: list[QueryResult] = field(default_factory=list)
    complete: bool = False
    incomplete_reason: str | None = None
    finished_at: str | None = None
    cache: dict[str, Any] | None = None  # the stated cache state measurements started from (harness.cache)

    @property
    def status(self) -> str:
        if any(q.verdict.status == "fail" for q in self.queries):
            return "fail"
        if not self.complete:
            return "incomplete"
        return "warn" if any(q.verdict.status == "warn" for q in self.queries) else "pass"

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "complete": self.complete,
            "incomplete_reason": self.incomplete_reason,
            "status": self.status,
            "percentile_method": PERCENTILE_METHOD,
            "options": self.options,
            "environment": asdict(self.environment) if self.environment else None,
            "cache": self.cache,
            "queries": [q.as_dict() for q in self.queries],
        }


@dataclass(frozen=True)
class SavedQuery:
    """A query's result as read back from run.json (what baseline-vs-candidate comparisons need)."""

    name: str
    budget_ms: float
    samples_ms: list[float]
    summary: Summary | None
    plan: PlanFacts | None
    status: str
    error: str | None
    work: Work | None = None  # None in a schema-1 run
    draws_digest: str = ""
    draw_plans: tuple[str, ...] = ()


@dataclass(frozen=True)
class SavedRun:
    path: Path
    run_id: str
    complete: bool
    environment: dict[str, Any]
    queries: dict[str, SavedQuery]


def load_run(path: Path) -> SavedRun:
    """Read a run.json (or the directory holding one) written by any harness of this schema version."""
    file = path / "run.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise InputError(f"{file}: no such run file; pass a reports/<run-id>/run.json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: not a run.json ({exc})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_SCHEMA_VERSIONS:
        raise InputError(
            f"{file}: unsupported run.json schema_version {version!r}; this harness reads versions "
            f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}"
        )
    queries = {}
    for q in data.get("queries", []):
        queries[q["name"]] = SavedQuery(
            name=q["name"],
            budget_ms=q["budget_ms"],
            samples_ms=list(q.get("samples_ms") or []),
            summary=Summary(**q["summary"]) if q.get("summary") else None,
            plan=PlanFacts.from_dict(q["plan"]) if q.get("plan") else None,
            status=q["verdict"]["status"],
            error=q.get("error"),
            work=Work.from_dict(q["work"]) if q.get("work") else None,
            draws_digest=q.get("draws_digest") or "",
            draw_plans=tuple(q.get("draw_plans") or ()),
        )
    return SavedRun(file, data["run_id"], bool(data.get("complete")), data.get("environment") or {}, queries)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
