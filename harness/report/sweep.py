"""The report folder of a capacity sweep: sweep.json (versioned), sweep.md (the curve, knee, headline), sweep.png.

Each step's own load report sits in its ``step-NN-…/`` folder beside them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.load.histograms import PERCENTILE_METHOD
from harness.load.sweep import (
    KNEE_EFFICIENCY,
    KNEE_FLOOR_MS,
    KNEE_LATENCY_FACTOR,
    SweepResult,
    SweepStep,
)
from harness.report.export import Exporter, export
from harness.report.markdown import STATUS_MARK, markdown_heading
from harness.report.plots import DPI, figure_png

SWEEP_SCHEMA_VERSION = 1


def sweep_document(result: SweepResult) -> dict[str, Any]:
    knee, headline = result.knee, result.headline
    return {
        "schema_version": SWEEP_SCHEMA_VERSION,
        "kind": "sweep",
        "run_id": result.run_id,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "complete": result.complete,
        "incomplete_reason": result.incomplete_reason,
        "status": result.status,
        "stopped": result.stopped,
        "sweep": {"axis": str(result.spec.axis), "values": list(result.spec.values)},
        "percentile_method": PERCENTILE_METHOD,
        "knee_rule": _knee_rule(),
        "environment": dataclasses.asdict(result.environment) if result.environment else None,
        "steps": [dataclasses.asdict(s) for s in result.steps],
        "knee": knee.value if knee else None,
        "headline": _headline_dict(headline),
    }


def _headline_dict(step: SweepStep | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {"value": step.value, "throughput_rps": step.throughput_rps, "p95_ms": step.p95_ms}


def _knee_rule() -> str:
    return (
        f"the last step before one that turned < {KNEE_EFFICIENCY:.0%} of its added load into throughput, or "
        f"whose p95 exceeded {KNEE_LATENCY_FACTOR:g}x the first step's (and by > {KNEE_FLOOR_MS:g} ms)"
    )


def headline_text(result: SweepResult) -> str:
    """One sentence: the highest throughput within budget, or that no step stayed within it."""
    step = result.headline
    if step is None:
        return "no step kept every query's p95 within its budget"
    p95 = f", p95 {step.p95_ms:.2f} ms" if step.p95_ms is not None else ""
    return (
        f"{step.throughput_rps:.1f} req/s with every query's p95 within budget ({result.spec.axis}={step.value:g}{p95})"
    )


def knee_text(result: SweepResult) -> str:
    knee = result.knee
    if knee is None:
        return "no knee up to the last step" if len(result.steps) >= 2 else "too few steps for a knee"
    return f"{result.spec.axis}={knee.value:g} ({knee.throughput_rps:.1f} req/s): the next step saturated"


def render_sweep_markdown(result: SweepResult) -> str:
    queries = sorted({name for s in result.steps for name in s.query_p95_ms})
    lines = markdown_heading("load sweep", result.run_id, result.status, result.complete, result.incomplete_reason)
    lines += [
        f"Sweep `{result.spec.text}`, {result.options.duration_s} s per step, one warm database. "
        f"Response times (from the intended start under a rate), percentiles by {PERCENTILE_METHOD}.",
        "",
        f"**Capacity**: {headline_text(result)}.",
        "",
        f"**Knee**: {knee_text(result)}. Rule: {_knee_rule()}.",
        *(["", f"**Stopped early** (--abort-on-fail) at {result.stopped}."] if result.stopped else []),
        "",
        f"| {result.spec.axis} | req/s | p95 ms | service p95 ms | failures | dropped | "
        + " | ".join(f"`{q}` p95" for q in queries)
        + " | within budget | verdict |",
        "|---:|---:|---:|---:|---:|---:|" + "---:|" * len(queries) + "---|---|",
    ]
    for step in result.steps:
        cells = [
            f"{step.value:g}",
            f"{step.throughput_rps:.1f}",
            _ms(step.p95_ms),
            _ms(step.service_p95_ms),
            str(step.failures),
            str(step.dropped),
            *(_ms(step.query_p95_ms.get(q)) for q in queries),
            "yes" if step.within_budget else "no",
            STATUS_MARK.get(step.status, step.status),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if result.steps:
        lines += ["", "![throughput against p95 response time](sweep.png)"]
    lines += ["", "Each step's report: `step-NN-…/load.md`."]
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def sweep_png(result: SweepResult) -> bytes | None:
    """Throughput (x) against p95 response time (y), one point per step, the knee circled."""
    points = [s for s in result.steps if s.p95_ms is not None]
    if not points:
        return None
    fig = Figure(figsize=(7, 4.5), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.plot([s.throughput_rps for s in points], [s.p95_ms for s in points], "o-", color="black", label="all queries")
    for s in points:
        ax.annotate(f"{result.spec.axis}={s.value:g}", (s.throughput_rps, s.p95_ms), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")  # fmt: skip
    knee = result.knee
    if knee is not None and knee.p95_ms is not None:
        ax.plot([knee.throughput_rps], [knee.p95_ms], "o", markersize=14, fillstyle="none", color="red", label="knee")
    ax.set_xlabel("throughput (requests / s)")
    ax.set_ylabel("p95 response time (ms)")
    ax.set_title(f"harness load sweep {result.run_id}: {result.spec.text}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


SWEEP_EXPORTERS: tuple[Exporter[SweepResult], ...] = (
    Exporter.file("sweep.json", lambda r: json.dumps(sweep_document(r), indent=1, default=str) + "\n"),
    Exporter.file("sweep.md", render_sweep_markdown),
    Exporter.file("sweep.png", sweep_png),
)


def write_sweep_reports(result: SweepResult, directory: Path) -> Path:
    """Write sweep.json, sweep.md and sweep.png (once a step has a p95) into ``directory``, atomically each."""
    return export(result, directory, SWEEP_EXPORTERS)
