"""The report folder of a load run: load.json (everything, versioned), load.md (one table), load.png.

Locust's own CSV/HTML (``locust_*.csv``, ``locust.html``) sit beside them as Locust's view; their
latencies are rounded to ~2 significant digits, ours are exact (``perf_counter_ns``, HDR histograms at
µs resolution). load.json carries every histogram (merged per query, and per process), so anyone can
recompute every percentile; ``timings/`` keeps each process's document (raw samples too with --samples).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.load.histograms import HIGHEST_US, LOWEST_US, PERCENTILE_METHOD, SIGNIFICANT_DIGITS
from harness.load.recorder import LATE_MS
from harness.load.results import LoadQueryResult, LoadResult
from harness.load.timeline import TOTAL, Timeline
from harness.report.export import Exporter, export
from harness.report.markdown import STATUS_MARK, markdown_heading
from harness.report.plots import DPI, figure_png

LOAD_SCHEMA_VERSION = 2  # 2: HDR histograms, response vs service time, open loop, thresholds
MAX_QUERY_LINES = 10  # more queries than this: the figure shows the total only


def render_load_json(result: LoadResult) -> str:
    """load.json: versioned, every figure the Markdown shows and the timeline behind load.png."""
    return json.dumps(load_document(result), indent=1, default=str) + "\n"


def load_document(result: LoadResult) -> dict[str, Any]:
    options = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(result.options).items()}
    options["thresholds"] = [t.text for t in result.options.thresholds]
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
        "aborted": result.aborted,
        "percentile_method": PERCENTILE_METHOD,
        "timing": (
            "perf_counter_ns around execute + fetch of every row, per request, in every Locust process; "
            "response time from the intended start (open loop) or the send (closed loop), service time from "
            f"the send, schedule lag = send - intended start; late: lag > {LATE_MS:g} ms"
        ),
        "histogram": {
            "format": "HdrHistogram V2 compressed, base64",
            "unit": "us",
            "lowest": LOWEST_US,
            "highest": HIGHEST_US,
            "significant_digits": SIGNIFICANT_DIGITS,
        },
        "options": options,
        "environment": dataclasses.asdict(result.environment) if result.environment else None,
        "duration_s": result.duration_s,
        "locust_exit_code": result.locust_exit_code,
        "open_loop": result.open_loop.as_dict() if result.open_loop else None,
        "total": result.total.as_dict() if result.total else None,
        "queries": [q.as_dict() for q in result.queries],
        "processes": [dataclasses.asdict(p) for p in result.processes],
        "timeline": _timeline_dict(result.timeline),
        "files": {
            "timings": "timings/process-<pid>-<n>.json (per query: HDR histograms; samples with --samples)",
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
    processes = f", {o.processes} Locust processes" if o.processes > 1 else ""
    loop = (
        f"open loop: {o.rate:g} req/s ({o.arrival} arrivals) on {o.users} connections"
        if o.rate is not None
        else f"{o.users} users, closed loop (no think time)"
    )
    lines += [
        f"{where}{loop}, {result.duration_s:.1f} s of requests{processes}. "
        f"Exact latencies (perf_counter_ns, execute + fetch), percentiles by {PERCENTILE_METHOD}; "
        f"max failure rate {o.max_failure_rate:.1%}."
        + (" Response time runs from each request's intended start, service time from its send." if o.rate else ""),
    ]
    if result.aborted:
        lines += ["", f"**Aborted early**: {result.aborted}."]
    if result.open_loop is not None:
        ol = result.open_loop
        lines += [
            "",
            f"Schedule: target {ol.target_rps:g} req/s, achieved {ol.achieved_rps:.1f} req/s; "
            f"{ol.intended} intended starts, {ol.sent} sent, {ol.late} late (lag > {LATE_MS:g} ms), "
            f"{ol.dropped} dropped (over --latency-limit), {ol.unsent} unsent at the stop.",
        ]
    lines += [
        "",
        "| query | weight | req/s | requests | failures | p50 ms | p95 ms [95% CI] | p99 ms | p99.9 ms "
        "| service p95 ms | lag p95 ms | budget ms | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(q) for q in result.queries]
    if result.total is not None:
        lines.append(_row(result.total, bold=True))
    if o.thresholds:
        lines += ["", "Thresholds: " + ", ".join(f"`{t.text}`" for t in o.thresholds) + "."]
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
        f"{q.failures + q.dropped} ({q.failure_rate:.1%})" if q.failures or q.dropped else "0",
        f"{s.p50:.2f}" if s else "–",
        f"{s.p95:.2f} {s.p95_ci_text()}" if s else "–",
        f"{s.p99:.2f}" if s else "–",
        f"{q.percentiles_ms['p99.9']:.2f}" if q.percentiles_ms else "–",
        f"{q.service.p95:.2f}" if q.service else "–",
        f"{q.lag.p95:.2f}" if q.lag else "–",
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
    latency.set_ylabel("p95 response time (ms)")
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
