"""grow.html: one self-contained page, a log-log figure per query (measured p95 solid with its CI, the fit of
the last plan regime extrapolated dashed with its band, the budget line, plan flips and the target marked)."""

from __future__ import annotations

import math
from html import escape

from matplotlib.figure import Figure

from harness.growth import MAX_ROWS
from harness.growth_analysis import FAILING, METHOD, GrowResult, QueryGrowth, TierPoint
from harness.report.grow import forecast_text, target_text
from harness.report.page import html_page, img
from harness.report.plots import BUDGET_COLOR, DPI, P95_COLOR, figure_png, format_ms, style_axes

FLIP_COLOR = "#6a1b9a"
TARGET_COLOR = "#455a64"
EXTRAPOLATION_SPAN = 1e3  # without a target, the dashed line runs this many times past the largest tier

_CSS = """
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:0 0 6px}
table{border-collapse:collapse;margin:6px 0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
section.query{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:12px 16px;margin:16px 0}
.failure{color:#b71c1c}
img{max-width:100%;height:auto;display:block;margin:6px 0}
"""


def render_grow_html(result: GrowResult) -> str:
    target = target_text(result)
    head = (
        f"<h1>harness grow {escape(result.grow_id)}: {escape(result.status.upper())}</h1>"
        f"<p class='small'>target: {escape(target)}; {escape(METHOD)}</p>"
    )
    if not result.complete:
        head += f"<p class='failure'>INCOMPLETE: {escape(result.incomplete_reason or 'still running')}</p>"
    return html_page(f"harness grow {result.grow_id}", _CSS, [head, *(_section(q) for q in result.queries)])


def _section(q: QueryGrowth) -> str:
    reasons = "".join(f"<li class='{'failure' if f in FAILING else ''}'>{escape(t)}</li>" for f, t in q.reasons)
    rows = "".join(_point_row(rows, p) for rows, p in q.points)
    figure = img(growth_png(q), f"{q.name}: p95 against {q.table} rows") if _plottable(q) else ""
    return (
        f"<section class='query'><h2>{escape(q.name)}</h2>"
        f"<p class='small'>size axis: {escape(q.table or 'none')}; budget {q.budget_ms:g} ms; forecast "
        f"(extrapolated): {escape(forecast_text(q.forecast))}</p>{figure}"
        "<table><tr><th>tier</th><th>rows</th><th>p50 ms [95% CI]</th><th>p95 ms [95% CI]</th><th>buffers/call</th>"
        f"<th>temp/call</th><th>plan</th></tr>{rows}</table><ul>{reasons}</ul></section>"
    )


def _point_row(rows: float, p: TierPoint) -> str:
    work = [f"{v:,.1f}" if v is not None else "–" for v in (p.shared_blks_per_call, p.temp_blks_per_call)]
    return (
        f"<tr><td>{escape(p.tier)}</td><td class='num'>{rows:,.0f}</td><td class='num'>{_ms(p.p50, p.p50_ci)}</td>"
        f"<td class='num'>{_ms(p.p95, p.p95_ci)}</td><td class='num'>{work[0]}</td><td class='num'>{work[1]}</td>"
        f"<td><code>{escape(p.plan)}</code></td></tr>"
    )


def _ms(value: float | None, ci: tuple[float | None, float | None]) -> str:
    """ "12.3 [11.9, 13.0]" in ms, "unbounded" for a side too few samples cannot bound."""
    if value is None:
        return "–"
    low, high = (format_ms(v) if v is not None else "unbounded" for v in ci)
    return f"{format_ms(value)} [{low}, {high}]"


def _plottable(q: QueryGrowth) -> bool:
    return any(p.p95 is not None for _, p in q.points)


def growth_png(q: QueryGrowth) -> bytes:
    """p95 against rows, log-log: measured points solid (whiskers: the p95 CI), the fit of the last plan regime
    extrapolated dashed with its band, the budget line, plan flips and the target as vertical lines."""
    fig = Figure(figsize=(6.5, 3.2), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    measured = [(rows, p) for rows, p in q.points if p.p95 is not None]
    for regime in q.regimes:
        xs = [rows for rows, p in measured if p.tier in regime.tiers]
        ys = [p.p95 or 0.0 for rows, p in measured if p.tier in regime.tiers]
        ax.plot(xs, ys, marker="o", color=P95_COLOR, linewidth=1.6, label="measured p95" if regime is q.regimes[0]
                else None)  # fmt: skip
    for rows, p in measured:
        low, high = p.p95_ci
        if low is not None and high is not None and p.p95 is not None:
            ax.errorbar(rows, p.p95, yerr=[[p.p95 - low], [high - p.p95]], fmt="none", ecolor=P95_COLOR, capsize=2)
        ax.annotate(p.tier, (rows, p.p95 or 0.0), xytext=(3, 4), textcoords="offset points", fontsize=7)
    by_tier = {p.tier: rows for rows, p in measured}
    for i, flip in enumerate(f for f in q.flips if f.before_tier in by_tier and f.tier in by_tier):
        x = math.sqrt(by_tier[flip.before_tier] * by_tier[flip.tier])  # between the two tiers, on a log axis
        ax.axvline(x, color=FLIP_COLOR, linestyle=":", linewidth=1.2, label=None if i else "plan flip")
    fit = q.current.forecast_model if q.current else None
    right = max(by_tier.values())
    if fit is not None:
        ends = [right * EXTRAPOLATION_SPAN]
        if q.target_rows:
            ends = [q.target_rows * 1.5]
        if q.forecast and q.forecast.rows:
            ends.append(min(q.forecast.rows * 1.5, MAX_ROWS))
        stop = max(ends)
        inside = _log_space(fit.min_rows, fit.max_rows)
        beyond = _log_space(fit.max_rows, stop)
        ax.plot(inside, [fit.predict(x) for x in inside], color="#37474f", linewidth=1, label=f"fit {fit.describe()}")
        ax.plot(beyond, [fit.predict(x) for x in beyond], color="#37474f", linewidth=1.2, linestyle="--",
                label="extrapolated")  # fmt: skip
        bands = [fit.band(x) for x in beyond]
        ax.fill_between(beyond, [b[0] for b in bands], [b[1] for b in bands], color="#90a4ae", alpha=0.25,
                        linewidth=0, label="95% band (extrapolated)")  # fmt: skip
    ax.axhline(q.budget_ms, color=BUDGET_COLOR, linewidth=1.4, label=f"budget {format_ms(q.budget_ms)} ms")
    if q.target_rows:
        ax.axvline(q.target_rows, color=TARGET_COLOR, linestyle="-.", linewidth=1, label="target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"rows of {q.table}")
    ax.set_ylabel("p95 (ms)")
    ax.set_title(q.name, fontsize=10, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=7, frameon=False)
    style_axes(ax)
    return figure_png(fig)


def _log_space(start: float, stop: float, count: int = 50) -> list[float]:
    return [math.exp(math.log(start) + (math.log(stop) - math.log(start)) * i / (count - 1)) for i in range(count)]
