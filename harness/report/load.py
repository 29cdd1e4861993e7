"""The report folder of a load run: load.json (everything, versioned), load.md (one table), load.png.

Locust's own CSV/HTML (``locust_*.csv``, ``locust.html``) sit beside them as Locust's view; their
latencies are rounded to ~2 significant digits, ours are exact (``perf_counter_ns``). The raw per-request
timings stay in ``samples/`` so anyone can recompute every number.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.load.results import LoadQueryResult, LoadResult
from harness.load.samples import TOTAL, Timeline
from harness.report.export import Exporter, export
from harness.report.markdown import STATUS_MARK, markdown_heading
from harness.report.plots import DPI, figure_png
from harness.stats import PERCENTILE_METHOD

LOAD_SCHEMA_VERSION = 1
MAX_QUERY_LINES = 10  # more queries than this: the figure shows the total only


def render_load_json(result: LoadResult) -> str:
    """load.json: versioned, every figure the Markdown shows and the timeline behind load.png."""
    return json.dumps(load_document(result), indent=1, default=str) + "\n"


def load_document(result: LoadResult) -> dict[str, Any]:
    options = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(result.options).items()}
    return {
        "schema_version": LOAD_SCHEMA_VERSION,
        "kind": "load",
        "run_id": result.run_id,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "complete": result.complete,
        "incomplete_reason": result.incomplete_reason,
        "warnings": list(result.warnings),
        "status": result.status,
        "failed": result.failed,
        "percentile_method": PERCENTILE_METHOD,
        "timing": "perf_counter_ns around execute + fetch of every row, per request, in every Locust process",
        "options": options,
        "environment": dataclasses.asdict(result.environment) if result.environment else None,
        "duration_s": result.duration_s,
        "locust_exit_code": result.locust_exit_code,
        "total": result.total.as_dict() if result.total else None,
        "queries": [q.as_dict() for q in result.queries],
        "timeline": _timeline_dict(result.timeline),
        "files": {
            "samples": "samples/samples-<pid>-<n>.json (t: start epoch s, ms: latency; per query)",
            "locust": [
                "locust_stats.csv",
                "locust_stats_history.csv",
                "locust_failures.csv",
                "locust_exceptions.csv",
                "locust.html",
                "locust.log",
            ],
        },
    }


def render_load_markdown(result: LoadResult) -> str:
    o = result.options
    lines = markdown_heading("load", result.run_id, result.status, result.complete, result.incomplete_reason)
    env = result.environment
    where = (
        (f"tier **{env.tier}** (seed {env.seed}), strategy **{env.strategy}**, PostgreSQL {env.postgres_version}; ")
        if env
        else ""
    )
    lines += [
        f"{where}{o.users} users, {result.duration_s:.1f} s of requests"
        f"{f', {o.processes} Locust processes' if o.processes > 1 else ''}; closed loop (no think time). "
        f"Exact latencies (perf_counter_ns, execute + fetch), percentiles by {PERCENTILE_METHOD}; "
        f"max failure rate {o.max_failure_rate:.1%}.",
        "",
        "| query | weight | req/s | requests | failures | p50 ms | p95 ms [95% CI] | p99 ms | budget ms | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(q) for q in result.queries]
    if result.total is not None:
        lines.append(_row(result.total, bold=True))
    notes = [(q.name, reason) for q in result.queries for reason in q.reasons]
    if notes:
        lines += ["", "**Failures and warnings**", ""]
        lines += [f"- `{name}`: {reason.replace('|', '/')}" for name, reason in notes]
    errors = [(q.name, message, count) for q in result.queries for message, count in q.errors.items()]
    if errors:
        lines += ["", "**Errors**", ""]
        lines += [f"- `{name}` ×{count}: {message.replace('|', '/')}" for name, message, count in errors]
    if result.timeline is not None and result.timeline.bins:
        lines += ["", "![throughput and latency over time](load.png)"]
    lines += ["", "Locust's own view (latencies rounded): `locust_stats.csv`, `locust.html`."]
    return "\n".join(lines) + "\n"


def _row(q: LoadQueryResult, bold: bool = False) -> str:
    s = q.summary
    name = f"**{q.name}**" if bold else f"`{q.name}`"
    cells = [
        name,
        str(q.weight),
        f"{q.throughput_rps:.1f}",
        str(q.requests),
        f"{q.failures} ({q.failure_rate:.1%})" if q.failures else "0",
        f"{s.p50:.2f}" if s else "–",
        f"{s.p95:.2f} {s.p95_ci_text()}" if s else "–",
        f"{s.p99:.2f}" if s else "–",
        f"{q.budget_ms:g}" if q.budget_ms is not None else "–",
        STATUS_MARK[q.status],
    ]
    return "| " + " | ".join(cells) + " |"


def _timeline_dict(timeline: Timeline | None) -> dict[str, Any] | None:
    if timeline is None:
        return None
    return {
        "t0": timeline.t0,
        "bin_s": timeline.bin_s,
        "series": [dataclasses.asdict(s) for s in timeline.series],
    }


def timeline_png(timeline: Timeline, title: str) -> bytes:
    """Two panels sharing time: throughput (requests/s) above, p95 latency (ms) below; total + each query."""
    fig = Figure(figsize=(8, 5), dpi=DPI, layout="constrained")
    throughput, latency = fig.subplots(2, 1, sharex=True)
    seconds = [(i + 0.5) * timeline.bin_s for i in range(timeline.bins)]
    shown = timeline.series if len(timeline.series) <= MAX_QUERY_LINES + 1 else timeline.series[:1]
    for series in shown:
        total = series.name == TOTAL
        style = {"color": "black", "linewidth": 2.0} if total else {"linewidth": 1.0, "alpha": 0.85}
        throughput.plot(seconds, [r / timeline.bin_s for r in series.requests], label=series.name, **style)
        p95 = [float("nan") if v is None else v for v in series.p95_ms]
        latency.plot(seconds, p95, label=series.name, **style)
    throughput.set_ylabel("requests / s")
    throughput.set_title(f"harness load {title}: throughput and p95 latency per {timeline.bin_s:g} s")
    throughput.legend(fontsize=7, loc="lower right", ncols=2)
    throughput.grid(alpha=0.3)
    latency.set_ylabel("p95 latency (ms)")
    latency.set_xlabel("seconds since the first request")
    latency.grid(alpha=0.3)
    return figure_png(fig)


# -- the files ---------------------------------------------------------------------------------------


def _timeline_figure(result: LoadResult) -> bytes | None:
    if result.timeline is None or not result.timeline.bins:
        return None
    return timeline_png(result.timeline, result.run_id)


LOAD_EXPORTERS: tuple[Exporter[LoadResult], ...] = (
    Exporter.file("load.json", render_load_json),
    Exporter.file("load.md", render_load_markdown),
    Exporter.file("load.png", _timeline_figure),
)


def write_load_reports(result: LoadResult, directory: Path) -> Path:
    """Write load.json, load.md and load.png (when there is a timeline) into ``directory``, atomically each."""
    return export(result, directory, LOAD_EXPORTERS)
