"""Import a pytest-benchmark JSON (``--benchmark-json`` / ``--benchmark-autosave``) as a harness run.json.

Only benchmarks written by ``harness.pytest_plugin`` are imported: they carry the raw per-round timings,
the plan, the verdict and the environment fingerprint in ``extra_info``, so `harness compare` reads the
result exactly like a `harness run` (``harness.results.load_run``). Percentiles are recomputed from the
raw timings with ``harness.stats``, never taken from pytest-benchmark's own summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.environment import Environment
from harness.errors import InputError
from harness.measure import Measurement
from harness.plans import PlanFacts
from harness.report.export import write_atomically
from harness.report.json_report import render_json
from harness.results import QueryResult, RunResult
from harness.stats import summarize
from harness.verdicts import Check, QueryVerdict
from harness.work import Work


def import_benchmark(source: Path) -> RunResult:
    """The run of the harness benchmarks in a pytest-benchmark JSON file."""
    try:
        data = json.loads(source.read_text())
    except FileNotFoundError:
        raise InputError(f"{source}: no such file; pass the file written by --benchmark-json") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not a pytest-benchmark JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise InputError(f"{source}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    ours = [b for b in data["benchmarks"] if (b.get("extra_info") or {}).get("harness")]
    if not ours:
        raise InputError(
            f"{source}: no harness query benchmarks in it; produce it with "
            "`pytest --harness-tier TIER --benchmark-json FILE`"
        )
    environment = ours[0]["extra_info"].get("environment")
    queries = [_query(b, source) for b in ours]
    started = str(data.get("datetime") or "")
    return RunResult(
        run_id="pytest-benchmark-" + (started.replace(":", "").replace("-", "")[:15] or source.stem),
        started_at=started,
        finished_at=started,
        complete=True,
        environment=Environment.from_dict(environment) if environment else None,
        options={
            "source": "pytest-benchmark",
            "file": str(source),
            "pytest_benchmark_version": data.get("version"),
            "rounds": len(queries[0].measurement.samples_ms),
            "tier": ours[0]["extra_info"].get("tier"),
            "seed": ours[0]["extra_info"].get("seed"),
            "skipped_benchmarks": [b.get("fullname", b.get("name")) for b in data["benchmarks"] if b not in ours],
        },
        queries=queries,
    )


def write_imported_run(source: Path, destination: Path) -> Path:
    """Write the imported run.json to ``destination`` (a file, or a folder to hold run.json); its path."""
    target = destination / "run.json" if destination.is_dir() or not destination.suffix else destination
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(target, render_json(import_benchmark(source)))


def _query(benchmark: dict[str, Any], source: Path) -> QueryResult:
    info = benchmark["extra_info"]
    samples = [float(ms) for ms in info.get("samples_ms") or []]
    if not samples:
        raise InputError(
            f"{source}: benchmark {benchmark.get('name')!r} carries no samples_ms; "
            "re-run it with the harness pytest plugin"
        )
    name = info["query"]
    return QueryResult(
        name=name,
        description="",
        budget_ms=float(info["budget_ms"]),
        path="",
        measurement=Measurement(
            query=name,
            prepare="",
            timeout_ms=0,
            samples_ms=samples,
            plan=PlanFacts.from_dict(info["plan"]) if info.get("plan") else None,
            work=Work.from_dict(info["work"]) if info.get("work") else None,  # older plugins wrote none
            draws_digest=info.get("draws_digest", ""),
        ),
        summary=summarize(samples),
        verdict=QueryVerdict(
            query=name,
            status=info.get("verdict", "pass"),
            checks=tuple(Check(**c) for c in info.get("checks", [])),
            warnings=tuple(info.get("warnings", [])),
        ),
    )
