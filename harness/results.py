"""The result of a `harness run`: environment fingerprint, per-query measurements and verdicts.

This is what run.json serialises (``SCHEMA_VERSION``), what the other report formats render, and what
`harness compare BASE CAND` reads back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from harness.environment import Environment
from harness.errors import InputError
from harness.measure import IndexUsability, Measurement
from harness.plans import PlanFacts
from harness.stats import PERCENTILE_METHOD, Summary
from harness.verdicts import QueryVerdict
from harness.work import Work

T = TypeVar("T")

SCHEMA_VERSION = 2  # 2: per-query work metrics, per-draw plan shapes, draws digest; cache state
# Added within version 2, optional on reading: verdict.warning_codes (harness.verdicts.WarningKind codes).
READABLE_SCHEMA_VERSIONS = (1, 2)  # version 1 runs compare on timings only (no work metrics)


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
            "slices": list(m.slices),
            "plan_shapes": m.plan_shapes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryResult:
        """A query's result as ``as_dict`` wrote it (``params_example`` comes back as JSON values)."""
        measurement = Measurement(
            query=data["name"],
            prepare=data.get("prepare") or "",
            timeout_ms=data.get("timeout_ms") or 0,
            samples_ms=list(data.get("samples_ms") or []),
            params_example=dict(data.get("params_example") or {}),
            rows_returned=data.get("rows_returned"),
            plan=PlanFacts.from_dict(data["plan"]) if data.get("plan") else None,
            explain_json=data.get("explain"),
            usability=[_usability(u) for u in data.get("usability") or []],
            error=data.get("error"),
            timed_out=bool(data.get("timed_out")),
            retried=int(data.get("retried") or 0),
            work=Work.from_dict(data["work"]) if data.get("work") else None,
            draws_digest=data.get("draws_digest") or "",
            draw_plans=list(data.get("draw_plans") or []),
            slices=[int(n) for n in data.get("slices") or []],
            plan_shapes=dict(data.get("plan_shapes") or {}),
        )
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            budget_ms=float(data["budget_ms"]),
            path=data.get("path", ""),
            measurement=measurement,
            summary=_known(Summary, data["summary"]) if data.get("summary") else None,
            verdict=QueryVerdict.from_dict(data["verdict"], data["name"]),
        )


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
    warnings: list[str] = field(default_factory=list)  # about the run as a whole (e.g. a role that can write)
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
            "warnings": list(self.warnings),
            "status": self.status,
            "percentile_method": PERCENTILE_METHOD,
            "options": self.options,
            "environment": asdict(self.environment) if self.environment else None,
            "cache": self.cache,
            "queries": [q.as_dict() for q in self.queries],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """A run as ``as_dict`` wrote it (any run.json of this ``SCHEMA_VERSION``; fields added later default)."""
        return cls(
            run_id=data["run_id"],
            started_at=data.get("started_at", ""),
            environment=Environment.from_dict(data["environment"]) if data.get("environment") else None,
            options=dict(data.get("options") or {}),
            queries=[QueryResult.from_dict(q) for q in data.get("queries") or []],
            complete=bool(data.get("complete")),
            incomplete_reason=data.get("incomplete_reason"),
            finished_at=data.get("finished_at"),
            warnings=list(data.get("warnings") or []),
            cache=data.get("cache"),
        )


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
    slices: tuple[int, ...] = ()


@dataclass(frozen=True)
class SavedRun:
    path: Path
    run_id: str
    complete: bool
    environment: Environment | None
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
    try:
        run = RunResult.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{file}: not a complete run.json ({type(exc).__name__}: {exc}); re-run harness run") from None
    queries = {
        q.name: SavedQuery(
            name=q.name,
            budget_ms=q.budget_ms,
            samples_ms=q.measurement.samples_ms,
            summary=q.summary,
            plan=q.measurement.plan,
            status=q.verdict.status,
            error=q.measurement.error,
            work=q.measurement.work,
            draws_digest=q.measurement.draws_digest,
            draw_plans=tuple(q.measurement.draw_plans),
            slices=tuple(q.measurement.slices),
        )
        for q in run.queries
    }
    return SavedRun(file, run.run_id, run.complete, run.environment, queries)


def _usability(data: dict[str, Any]) -> IndexUsability:
    return _known(IndexUsability, {**data, "plan_indexes": tuple(data.get("plan_indexes") or ())})


def _known(cls: type[T], data: dict[str, Any]) -> T:
    """``cls`` built from the keys of ``data`` it knows: a later writer's extra fields are ignored."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
