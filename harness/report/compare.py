"""Reports of `harness compare`: compare.json, compare.md, compare.html with its PNG figures, terminal text.

Both kinds of comparison are rendered here: strategies side by side (``StrategyComparison``) and a
baseline run against a candidate (``RunComparison``). Every format is built from the same rows, so the
terminal, the Markdown and the HTML always say the same thing. Figures use matplotlib's ``Figure`` API
(Agg, no pyplot) like ``harness.report.plots``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from harness.compare import RunComparison, StrategyComparison
from harness.gate import format_p
from harness.report.export import Exporter, export
from harness.report.markdown import md_cell
from harness.report.page import html_page, img
from harness.report.plots import DPI, figure_png, format_ms, style_axes
from harness.stats import PERCENTILE_METHOD
from harness.whatif import ESTIMATE_NOTE, WhatIf
from harness.workload import now_iso

COMPARE_SCHEMA_VERSION = 1
LOG_SCALE_RATIO = 50.0
STRATEGY_COLORS = ("#607d8b", "#1565c0", "#2e7d32", "#ef8f00", "#6a1b9a", "#00838f", "#c62828")
VERDICT_COLORS = {"slower": "#c62828", "faster": "#2e7d32", "no significant difference": "#757575"}
METHOD_NOTE = (
    f"percentiles by {PERCENTILE_METHOD}; 95% CIs by percentile bootstrap; a verdict other than "
    "'no significant difference' needs the 95% CI of the p95 ratio to exclude 1 and a change of at least 5%; "
    "effect size is Cliff's delta"
)
RUNS_METHOD_NOTE = (
    f"percentiles by {PERCENTILE_METHOD}; p95 intervals from order statistics (distribution-free, 95%). "
    "Gate: work per call first (shared buffers, temp blocks); then a one-sided timing test (Wilcoxon "
    "signed-rank paired by draw, or Mann-Whitney U when the runs timed different draws), Holm-corrected "
    "across the queries; a timing failure also needs the typical per-draw ratio above --max-regression and "
    "the slowdown above the floor max(0.5 ms, 1% of the budget)"
)
Table = tuple[list[str], list[list[str]]]


def _method(comparison: StrategyComparison | RunComparison) -> str:
    return METHOD_NOTE if isinstance(comparison, StrategyComparison) else RUNS_METHOD_NOTE


# -- json --------------------------------------------------------------------------------------------


def render_compare_json(comparison: StrategyComparison | RunComparison) -> str:
    """Versioned JSON keeping every raw sample, so anyone can recompute each number."""
    head: dict[str, Any] = {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "kind": comparison.kind,
        "generated_at": now_iso(),
        "percentile_method": PERCENTILE_METHOD,
        "method": _method(comparison),
        "exit_code": comparison.exit_code,
    }
    body = _strategies_json(comparison) if isinstance(comparison, StrategyComparison) else _runs_json(comparison)
    return json.dumps({**head, **body}, indent=2, default=str) + "\n"


def _strategies_json(c: StrategyComparison) -> dict[str, Any]:
    queries = []
    for name in c.queries:
        per_strategy = {}
        for strategy in c.strategies:
            m = c.measurement(name, strategy)
            v = c.verdict(name, strategy)
            per_strategy[strategy] = {
                "summary": m.summary.as_dict() if m.summary else None,
                "samples_ms": [round(s, 4) for s in m.samples_ms],
                "indexes_used": list(m.indexes_used),
                "plan": m.plan.tree if m.plan else None,
                "error": m.error,
                "vs_reference": None
                if v is None
                else {"p50": v.p50.as_dict(), "p95": v.p95.as_dict(), "plan_changes": list(v.plan_changes)},
            }
        queries.append({"name": name, "strategies": per_strategy})
    return {
        "complete": c.complete,
        "incomplete_reason": c.incomplete_reason,
        "strategies": list(c.strategies),
        "reference": c.reference,
        "rounds": c.rounds,
        "iterations": c.iterations,
        "warmup": c.warmup,
        "original_strategy": c.original_strategy,
        "original_restored": c.original_restored,
        "started_at": c.started_at,
        "finished_at": c.finished_at,
        "environment": asdict(c.environment),
        "warnings": list(c.warnings),
        "costs": [{**asdict(cost), "index_count": cost.index_count} for cost in c.costs],
        "queries": queries,
    }


def _runs_json(c: RunComparison) -> dict[str, Any]:
    return {
        "base": {"path": c.base_path, "run_id": c.base_run_id, "strategy": c.base_strategy},
        "candidate": {"path": c.cand_path, "run_id": c.cand_run_id, "strategy": c.cand_strategy},
        "max_regression": c.max_regression,
        "gate": asdict(c.gate),
        "mismatches": [asdict(m) for m in c.mismatches],
        "warnings": list(c.warnings),
        "headlines": headlines(c),
        "queries": [
            {
                "name": q.name,
                "status": q.decision.status,
                "verdict": q.verdict,
                "regressed": q.regressed,
                "headline": q.headline(),
                "reasons": list(q.decision.reasons),
                "warnings": list(q.decision.warnings),
                "notes": list(q.decision.notes),
                "floor_ms": q.decision.floor_ms,
                "timing": asdict(q.decision.timing) if q.decision.timing else None,
                "work": _work_json(q),
                "base_summary": q.base_summary.as_dict() if q.base_summary else None,
                "cand_summary": q.cand_summary.as_dict() if q.cand_summary else None,
                "plan_changes": [str(change) for change in q.plan_changes],
                "base_indexes": list(q.base_indexes),
                "cand_indexes": list(q.cand_indexes),
            }
            for q in c.queries
        ],
        "only_in_base": list(c.only_in_base),
        "only_in_candidate": list(c.only_in_cand),
        "unchanged": [{"query": name, "why": why} for name, why in c.unchanged],
        "design": asdict(c.design) if c.design else None,
    }


def _work_json(q: Any) -> dict[str, Any]:
    w = q.decision.work
    return {
        "status": w.status,
        "sources": list(w.sources),
        "changes": [{**asdict(c), "text": str(c)} for c in w.changes],
        "regressions": [str(c) for c in w.regressions],
        "draws_with_other_plan": w.draws_with_other_plan,
        "draws_compared": w.draws_compared,
    }


def headlines(c: RunComparison) -> list[str]:
    """The sentences a reviewer reads first: regressions, then improvements, else that nothing changed."""
    lines = [f"REGRESSION: {q.headline()}" for q in c.regressions]
    lines += [f"warning: {q.name}: {w}" for q in c.queries if not q.regressed for w in q.decision.warnings]
    lines += [f"reported: {q.name}: {n}" for q in c.queries if not q.regressed for n in q.decision.notes]
    lines += [f"improvement: {q.headline()}" for q in c.improvements]
    if not lines:
        lines.append(f"no query got slower or faster beyond the thresholds ({len(c.queries)} compared)")
    return lines


# -- tables shared by text, markdown and html ----------------------------------------------------------


def _latency_table(c: StrategyComparison) -> Table:
    headers = ["query", "strategy", "p50 ms", "p95 ms [95% CI]", "n", f"p95 vs {c.reference} [95% CI]",
               "verdict", "Cliff's δ", "indexes used"]  # fmt: skip
    rows = []
    for name in c.queries:
        for strategy in c.strategies:
            m = c.measurement(name, strategy)
            s = m.summary
            v = c.verdict(name, strategy)
            p50 = format_ms(s.p50) if s else "–"
            p95 = f"{format_ms(s.p95)} {s.p95_ci_text(format_ms)}" if s else "–"
            if strategy == c.reference:
                ratio, verdict, effect = "reference", "", ""
            elif v is None:
                ratio, verdict, effect = "–", "not compared", ""
            else:
                ratio = f"{v.p95.ratio:.2f}x [{v.p95.ci_low:.2f}, {v.p95.ci_high:.2f}]"
                verdict = v.p95.verdict
                effect = f"{v.p95.cliffs_delta:+.2f} ({v.p95.effect_magnitude})"
            indexes = ", ".join(m.indexes_used) or "none"
            if m.error:
                indexes += f" — {m.error}"
            rows.append([name, strategy, p50, p95, str(s.n if s else 0), ratio, verdict, effect, indexes])
    return headers, rows


def _cost_table(c: StrategyComparison) -> Table:
    headers = ["strategy", "indexes", "total index size", "build time (median)", "write rows/s (median)"]
    rows = [
        [
            cost.strategy,
            str(cost.index_count) if cost.build_s is not None else "–",
            format_bytes(cost.index_bytes) if cost.index_bytes is not None else "–",
            f"{cost.build_s:.3f} s" if cost.build_s is not None else "–",
            f"{cost.write_rows_per_s:,.0f}" if cost.write_rows_per_s is not None else "–",
        ]
        for cost in c.costs
    ]
    return headers, rows


def _incomplete_banner(c: StrategyComparison) -> str | None:
    """The first thing a reader must see when the numbers below are partial."""
    if c.complete:
        return None
    reason = c.incomplete_reason or "still running"
    return f"INCOMPLETE: {reason} — partial results: a query or cost without measurements shows –"


def _runs_table(c: RunComparison) -> Table:
    headers = ["query", "p50 ms", "p95 ms [95% CI]", "shared buffers / call", "timing test", "verdict", "plan"]
    rows = []
    for q in c.queries:
        d = q.decision
        t = d.timing
        test = "–"
        if t is not None:  # the one-sided test in the ratio's direction: a faster query shows p of "faster"
            p = t.p_faster_holm if t.ratio < 1.0 else t.p_slower_holm
            test = f"ratio {t.ratio:.2f}, Holm p={format_p(p)} ({'paired' if t.paired else 'unpaired'})"
        status = {"fail": "FAIL", "warn": "warn", "pass": "pass"}[d.status]
        rows.append([
            q.name,
            _arrow(q.base_summary.p50 if q.base_summary else None, q.cand_summary.p50 if q.cand_summary else None),
            _p95_cell(q),
            _buffers_cell(q),
            test,
            f"{status}: {_timing_cell(d)}",
            "; ".join(map(str, q.plan_changes)) or "same plan",
        ])  # fmt: skip
    return headers, rows


def _timing_cell(d: Any) -> str:
    """The timing verdict; a significant speed-up that does not clear the thresholds is not claimed."""
    if d.timing_verdict == "faster" and not d.improved:
        return "faster, within the thresholds (not claimed)"
    return str(d.timing_verdict)


def _arrow(base: float | None, cand: float | None) -> str:
    return f"{'–' if base is None else format_ms(base)} → {'–' if cand is None else format_ms(cand)}"


def _p95_cell(q: Any) -> str:
    b, c = q.base_summary, q.cand_summary
    side = [f"{format_ms(s.p95)} {s.p95_ci_text(format_ms)}" if s else "–" for s in (b, c)]
    return " → ".join(side)


def _buffers_cell(q: Any) -> str:
    w = q.decision.work
    if w.status == "unknown":
        return "not recorded"
    change = next((ch for ch in w.changes if ch.metric == "shared_blks"), None)
    return str(change).removeprefix("shared buffers per call ") if change else "unchanged"


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


# -- terminal ----------------------------------------------------------------------------------------


def render_compare_text(comparison: StrategyComparison | RunComparison) -> str:
    """Plain aligned tables for a terminal (stdout); warnings first, prefixed, for a reader scanning down."""
    banner = _incomplete_banner(comparison) if isinstance(comparison, StrategyComparison) else None
    lines = ([banner] if banner else []) + [f"warning: {w}" for w in comparison.warnings]
    if isinstance(comparison, StrategyComparison):
        lines += [_strategies_title(comparison), ""]
        lines += _text_table(*_latency_table(comparison))
        lines += ["", *_text_table(*_cost_table(comparison)), "", _restored_note(comparison)]
    else:
        lines += [_runs_title(comparison), *design_lines(comparison), ""]
        lines += _text_table(*_runs_table(comparison))
        lines += ["", *headlines(comparison), *_only_in(comparison)]
    return "\n".join(lines) + "\n"


def _text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), "  ".join("-" * w for w in widths)] + [
        fmt.format(*row).rstrip() for row in rows
    ]


def _strategies_title(c: StrategyComparison) -> str:
    env = c.environment
    return (
        f"strategies {', '.join(c.strategies)} (reference: {c.reference}) on tier {env.tier} "
        f"(seed {env.seed}, {sum(env.row_counts.values()):,} rows), PostgreSQL {env.postgres_version}; "
        f"n = {c.iterations} timed runs per query and strategy over {c.rounds} interleaved rounds, "
        f"{c.warmup} warm-up runs per round"
    )


def _restored_note(c: StrategyComparison) -> str:
    before = f"the indexes of the strategy in place before, {c.original_strategy!r},"
    if c.original_restored:
        return f"{before} were restored"
    if c.finished_at is None:
        return f"{before} are restored when the comparison ends"
    return f"{before} could NOT be restored; put them back with `harness run --strategy {c.original_strategy}`"


def _runs_title(c: RunComparison) -> str:
    gate = "FAIL" if c.exit_code else "PASS"
    return (
        f"{gate}: candidate {c.cand_run_id} ({c.cand_strategy}) vs base {c.base_run_id} ({c.base_strategy}), "
        f"gate: work per call +{c.gate.max_work_regression:.0%}, or significantly slower (family-wise "
        f"alpha {c.gate.alpha:g}) by more than {c.max_regression:.0%} and the floor"
    )


def _only_in(c: RunComparison) -> list[str]:
    removed, added = ("removed: ", "added: ") if c.design else ("", "")
    lines = []
    if c.only_in_base:
        lines.append(f"{removed}only in base (not compared): {', '.join(c.only_in_base)}")
    if c.only_in_cand:
        lines.append(f"{added}only in candidate (not compared): {', '.join(c.only_in_cand)}")
    lines += [f"unchanged: not measured: {name}: {why}" for name, why in c.unchanged]
    return lines


def design_lines(c: RunComparison) -> list[str]:
    """How an A/B comparison was measured: what against what, rounds, n per side, pairing, the test."""
    d = c.design
    if d is None:
        return []
    paired = f"{len(d.paired)} of {len(d.paired) + len(d.unpaired)} queries paired by draw"
    if d.unpaired:
        paired += f" (unpaired, different parameters: {', '.join(d.unpaired)})"
    alpha = f"family-wise α = {d.family_alpha:g} over the catalog" if d.family_alpha is not None else (
        "no family-wise control")  # fmt: skip
    lines = [
        f"design: base {d.base} vs candidate {d.candidate}, interleaved on one server with the same data and draws",
        f"design: up to {d.rounds} rounds, n = {d.iterations} timed runs per query and side, {d.warmup} warm-up "
        f"runs per round; order {d.order}",
        f"design: indexes: {d.indexes}",
        f"design: {paired}; test: {d.test}; {alpha}; wall time {d.wall_s:.1f} s",
    ]
    if d.stopped:
        lines.append("design: measured fewer rounds: " + "; ".join(f"{name} ({why})" for name, why in d.stopped))
    return lines


def render_what_if_text(results: Sequence[WhatIf]) -> str:
    """What-if results for a terminal, opening with the reminder that they are planner estimates."""
    headers = ["query", "est. cost before", "est. cost after", "ratio", "indexes after", "plan changes"]
    rows = [
        [
            w.query,
            f"{w.cost_before:,.1f}",
            f"{w.cost_after:,.1f}",
            f"{w.cost_ratio:.2f}x",
            ", ".join(w.indexes_after) or "none",
            "; ".join(w.plan_changes) or "same plan",
        ]
        for w in results
    ]
    return "\n".join([f"ESTIMATES ONLY: {ESTIMATE_NOTE}.", "", *_text_table(headers, rows)]) + "\n"


# -- markdown ----------------------------------------------------------------------------------------


def render_compare_markdown(comparison: StrategyComparison | RunComparison) -> str:
    lines = []
    if isinstance(comparison, StrategyComparison):
        lines += [f"## harness compare — strategies {', '.join(comparison.strategies)}", ""]
        banner = _incomplete_banner(comparison)
        lines += [f"> **{banner}**", ""] if banner else []
        lines += [f"> ⚠️ {w}" for w in comparison.warnings] + ([""] if comparison.warnings else [])
        lines += [_strategies_title(comparison) + ".", "", *_md_table(*_latency_table(comparison)), ""]
        lines += ["### Cost per strategy", "", *_md_table(*_cost_table(comparison)), ""]
        lines += [f"Write cost: {_write_note(comparison)}. {_restored_note(comparison)}.", ""]
    else:
        lines += [f"## harness compare — {_runs_title(comparison)}", ""]
        lines += [f"> ⚠️ {w}" for w in comparison.warnings] + ([""] if comparison.warnings else [])
        lines += [f"- {h}" for h in headlines(comparison)] + [""]
        lines += [*_md_table(*_runs_table(comparison)), ""]
        lines += [f"- {line}" for line in _only_in(comparison)]
        lines += ["", *(f"- {line.removeprefix('design: ')}" for line in design_lines(comparison))]
    lines += [f"<sub>{_method(comparison)}.</sub>"]
    return "\n".join(lines).rstrip() + "\n"


def _write_note(c: StrategyComparison) -> str:
    cost = c.costs[0]
    return (
        f"{cost.write_rows:,} rows copied into {cost.write_table} with shifted keys and timestamps, "
        "in a transaction rolled back; median of the trials"
    )


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows
    ]


# -- figures -----------------------------------------------------------------------------------------


def compare_figures(comparison: StrategyComparison | RunComparison) -> dict[str, bytes]:
    """PNG files by name: p95 bars and costs for strategies, a ratio chart for two runs."""
    if isinstance(comparison, StrategyComparison):
        figures = {}
        if any(m.summary for m in comparison.measurements):
            figures["compare_p95.png"] = strategy_p95_png(comparison)
        if any(cost.build_s is not None for cost in comparison.costs):
            figures["compare_costs.png"] = strategy_costs_png(comparison)
        return figures
    if not any(q.decision.timing for q in comparison.queries):
        return {}
    return {"compare_ratios.png": run_ratios_png(comparison)}


def strategy_p95_png(c: StrategyComparison) -> bytes:
    """Grouped bars: for each query, one bar per strategy at its p95, the whisker its 95% CI."""
    n_q, n_s = len(c.queries), len(c.strategies)
    fig = Figure(figsize=(max(6.0, 1.0 + 0.28 * n_q * n_s + 0.3 * n_q), 3.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / n_s
    values = [
        v
        for m in c.measurements
        if m.summary
        for v in (m.summary.p95, m.summary.p95_ci_low, m.summary.p95_ci_high)
        if v is not None and v > 0
    ]
    log = bool(values) and max(values) / min(values) > LOG_SCALE_RATIO
    for j, strategy in enumerate(c.strategies):
        xs, heights, lows, highs = [], [], [], []
        for i, name in enumerate(c.queries):
            s = c.measurement(name, strategy).summary
            if s is None:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            heights.append(s.p95)
            lows.append(max(s.p95 - s.p95_ci_low, 0.0) if s.p95_ci_low is not None else 0.0)
            highs.append(max(s.p95_ci_high - s.p95, 0.0) if s.p95_ci_high is not None else 0.0)
        color = STRATEGY_COLORS[j % len(STRATEGY_COLORS)]
        ax.bar(xs, heights, width=width * 0.92, color=color, label=strategy, alpha=0.9)
        ax.errorbar(xs, heights, yerr=[lows, highs], fmt="none", ecolor="#212121", elinewidth=1, capsize=2)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    tilt = n_q > 4
    ax.set_xticks(np.arange(n_q), labels=list(c.queries), fontsize=8, rotation=20 if tilt else 0,
                  ha="right" if tilt else "center")  # fmt: skip
    ax.set_ylabel("p95 latency (ms), whisker = 95% CI (where n bounds it)", fontsize=8)
    ax.set_title("p95 per query and strategy", fontsize=10, loc="left")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False, ncol=min(n_s, 4))
    style_axes(ax)
    return figure_png(fig)


def strategy_costs_png(c: StrategyComparison) -> bytes:
    """Three panels per strategy: total index size, index build time, insert throughput (– not measured)."""
    fig = Figure(figsize=(9, 2.8), dpi=DPI, layout="constrained")
    names = list(c.strategies)
    colors = [STRATEGY_COLORS[i % len(STRATEGY_COLORS)] for i in range(len(names))]
    sizes, builds, writes = ([getattr(cost, f) for cost in c.costs]
                             for f in ("index_bytes", "build_s", "write_rows_per_s"))  # fmt: skip
    panels = [
        ("total index size (MB)", [v / 2**20 if v is not None else 0.0 for v in sizes],
         [format_bytes(v) if v is not None else "–" for v in sizes]),
        ("index build time (s, median)", [v if v is not None else 0.0 for v in builds],
         [f"{v:.3g} s" if v is not None else "–" for v in builds]),
        ("write throughput (rows/s, median)", [v if v is not None else 0.0 for v in writes],
         [f"{v:,.0f}" if v is not None else "–" for v in writes]),
    ]  # fmt: skip
    for k, (title, values, labels) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        bars = ax.bar(names, values, color=colors, alpha=0.9)
        ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylim(0, max(max(values), 1e-9) * 1.2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.3g}" if v < 1000 else f"{v:,.0f}"))
        ax.grid(True, axis="y", alpha=0.3)
        style_axes(ax)
    return figure_png(fig)


def run_ratios_png(c: RunComparison) -> bytes:
    """One row per query: the typical per-draw ratio candidate / base, the 1.0 line and the regression limit."""
    compared = [q for q in c.queries if q.decision.timing is not None]
    fig = Figure(figsize=(6, 0.9 + 0.32 * len(compared)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for row, q in enumerate(compared):
        t = q.decision.timing
        assert t is not None
        color = VERDICT_COLORS.get(q.verdict, "#757575")
        ax.plot(t.ratio, row, "o", color=color, markersize=5)
    ax.axvline(1.0, color="#212121", linewidth=1)
    ax.axvline(1.0 + c.max_regression, color="#c62828", linestyle="--", linewidth=1,
               label=f"regression limit (+{c.max_regression:.0%})")  # fmt: skip
    ratios = [q.decision.timing.ratio for q in compared if q.decision.timing and q.decision.timing.ratio > 0]
    if ratios and max(ratios) / min(ratios) > 8:
        ax.set_xscale("log")
    ax.set_yticks(range(len(compared)), labels=[q.name for q in compared], fontsize=8)
    ax.set_ylim(len(compared) - 0.5, -0.5)
    ax.set_xlabel("typical per-draw ratio candidate / base (red: failed the gate)", fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    style_axes(ax)
    return figure_png(fig)


# -- html --------------------------------------------------------------------------------------------

_CSS = """
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:21px;margin:8px 0}h2{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
.warn{background:#fff3e0;border-left:6px solid #ef8f00;padding:6px 10px;margin:6px 0}
.fail{background:#ffebee;border-left:6px solid #c62828;padding:6px 10px;margin:6px 0;font-weight:600}
.ok{background:#e8f5e9;border-left:6px solid #2e7d32;padding:6px 10px;margin:6px 0}
.slower{color:#b71c1c;font-weight:600}.faster{color:#1b5e20;font-weight:600}
img{max-width:100%;height:auto;display:block;margin:8px 0}
"""


def render_compare_html(comparison: StrategyComparison | RunComparison, figures: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, base64 figures, no scripts; all text escaped."""
    if isinstance(comparison, StrategyComparison):
        title = f"harness compare: strategies {', '.join(comparison.strategies)}"
        banner = _incomplete_banner(comparison)
        top = [f"<div class='fail'>{escape(banner)}</div>"] if banner else []
        body = [f"<p>{escape(_strategies_title(comparison))}</p>"]
        body += [img(figures[n], n) for n in ("compare_p95.png",) if n in figures]
        body += ["<h2>Latency per query and strategy</h2>", _html_table(*_latency_table(comparison))]
        body += ["<h2>Cost per strategy</h2>"] + [img(figures[n], n) for n in ("compare_costs.png",) if n in figures]
        body += [_html_table(*_cost_table(comparison))]
        body += [f"<p class='small'>Write cost: {escape(_write_note(comparison))}. "
                 f"{escape(_restored_note(comparison))}.</p>"]  # fmt: skip
    else:
        title = f"harness compare: {comparison.cand_run_id} vs {comparison.base_run_id}"
        top = []
        klass = "fail" if comparison.exit_code else "ok"
        body = [f"<div class='{klass}'>{escape(_runs_title(comparison))}</div>"]
        body += ["<ul>" + "".join(f"<li>{escape(h)}</li>" for h in headlines(comparison)) + "</ul>"]
        body += [img(png, name) for name, png in figures.items()]
        body += [_html_table(*_runs_table(comparison))]
        body += [f"<p class='small'>{escape(line)}</p>" for line in _only_in(comparison)]
        body += [f"<p class='small'>{escape(line)}</p>" for line in design_lines(comparison)]
    warnings = [f"<div class='warn'>{escape(w)}</div>" for w in comparison.warnings]
    return html_page(title, _CSS, [
        f"<h1>{escape(title)}</h1>",
        *top,
        *warnings,
        *body,
        f"<p class='small'>{escape(_method(comparison))}.</p>",
    ])  # fmt: skip


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td{_verdict_class(v)}>{escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_class(value: str) -> str:
    for verdict in ("slower", "faster"):
        if value.startswith(verdict):
            return f" class='{verdict}'"
    return ""


# -- the files ---------------------------------------------------------------------------------------


def _figures_and_page(comparison: StrategyComparison | RunComparison) -> dict[str, str | bytes]:
    """The PNG figures and compare.html, which embeds them: rendered once for both."""
    figures = compare_figures(comparison)
    return {**figures, "compare.html": render_compare_html(comparison, figures)}


COMPARE_EXPORTERS: tuple[Exporter[StrategyComparison | RunComparison], ...] = (
    Exporter.file("compare.json", render_compare_json),
    Exporter.file("compare.md", render_compare_markdown),
)
HTML_EXPORTER: Exporter[StrategyComparison | RunComparison] = Exporter(_figures_and_page)


def write_compare_reports(
    comparison: StrategyComparison | RunComparison, directory: Path, *, html: bool = True
) -> Path:
    """Write compare.json, compare.md and (unless ``html`` is False) the PNG figures and compare.html."""
    return export(comparison, directory, COMPARE_EXPORTERS + ((HTML_EXPORTER,) if html else ()))
