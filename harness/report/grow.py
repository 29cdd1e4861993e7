"""The report folder of a `harness grow`: grow.json (everything, versioned), grow.md, the terminal summary,
and the exporters of the first two (grow.html is ``harness.report.grow_html``'s).

Each tier's own run reports sit in tiers/<tier>/ beside them, raw samples included.
"""

from __future__ import annotations

import json

from harness.growth import MAX_ROWS, Forecast, PowerFit
from harness.growth_analysis import FAILING, METHOD, GrowResult, QueryGrowth
from harness.report.export import Exporter
from harness.report.markdown import markdown_heading, md_cell
from harness.report.plots import format_ms


def render_grow_json(result: GrowResult) -> str:
    return json.dumps(result.as_dict(), indent=1, default=str) + "\n"


def render_grow_markdown(result: GrowResult) -> str:
    lines = markdown_heading("grow", result.grow_id, result.status, result.complete, result.incomplete_reason)
    tiers = ", ".join(
        f"{r.environment.tier} ({sum(r.environment.row_counts.values()):,} rows)" for r in result.runs if r.environment
    )
    target = target_text(result)
    lines += [f"Tiers measured: {tiers or 'none'}. Target: {target}.", "", f"Method: {METHOD}", ""]
    lines += [
        "| query | size axis | p95 by tier (ms) | p95 exponent [95% CI] | buffers exponent [95% CI] | "
        "forecast model | budget ms | forecast crossing, rows (extrapolated) [95% CI] | p95 at target "
        "(extrapolated) | flags |",
        "|---|---|---|---|---|---|---:|---|---|---|",
    ]
    lines += [_row(q) for q in result.queries]
    failures = [text for q in result.queries for text in q.failures]
    if failures:
        lines += ["", "**Failures**", ""] + [f"- {md_cell(text)}" for text in failures]
    notes = [text for q in result.queries for flag, text in q.reasons if flag not in FAILING]
    if notes:
        lines += ["", "**Notes**", ""] + [f"- {md_cell(text)}" for text in notes]
    return "\n".join(lines) + "\n"


def _row(q: QueryGrowth) -> str:
    by_tier = ", ".join(f"{p.tier} {format_ms(p.p95)}" if p.p95 is not None else f"{p.tier} –" for _, p in q.points)
    current = q.current
    p95 = exponent_text(current.p95 if current else None)
    buffers = exponent_text(current.shared_buffers if current else None)
    at_target = "–"
    if q.p95_at_target:
        value, low, high = q.p95_at_target
        at_target = f"{format_ms(value)} [{format_ms(low)}, {format_ms(high)}]"
    flags = ", ".join(str(f) for f in q.flags) or "–"
    return (
        f"| `{q.name}` | {md_cell(q.table or '–')} | {md_cell(by_tier)} | {p95} | {buffers} | {model_text(q)} | "
        f"{q.budget_ms:g} | "
        f"{forecast_text(q.forecast)} | {at_target} | {md_cell(flags)} |"
    )


def exponent_text(fit: PowerFit | None) -> str:
    if fit is None:
        return "–"
    return f"{fit.exponent:.2f} [{fit.exponent_low:.2f}, {fit.exponent_high:.2f}]"


def target_text(result: GrowResult) -> str:
    return result.target.describe() if result.target else "none (no gate: pass --target-rows or --target-tier)"


def model_text(q: QueryGrowth) -> str:
    model = q.current.forecast_model if q.current else None
    return model.describe() if model else "–"


def forecast_text(forecast: Forecast | None) -> str:
    if forecast is None:
        return "no fit"
    if forecast.rows is None:
        return f"no crossing ({forecast.state})"
    return f"{rows_text(forecast.rows)} rows [{rows_text(forecast.rows_low)}, {rows_text(forecast.rows_high)}]"


def rows_text(rows: float | None) -> str:
    if rows is None or rows >= MAX_ROWS:
        return "unbounded"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rows >= size:
            return f"{rows / size:.3g}{suffix}"
    return f"{rows:.0f}"


def render_grow_text(result: GrowResult) -> str:
    """The terminal summary: one block per query, numbers first, the extrapolation said as such."""
    lines = [f"grow {result.grow_id} ({result.status}); target: {target_text(result)}"]
    for q in result.queries:
        by_tier = ", ".join(f"{p.tier} {format_ms(p.p95)}" for _, p in q.points if p.p95 is not None)
        current = q.current
        lines.append(f"{q.name}: p95 ms by tier {by_tier or '–'} (rows of {q.table or '–'})")
        p95, buffers = (current.p95, current.shared_buffers) if current else (None, None)
        lines.append(f"  exponent p95 {exponent_text(p95)}, buffers {exponent_text(buffers)}; budget {q.budget_ms:g} "
                     f"ms, forecast by {model_text(q)} (extrapolated): {forecast_text(q.forecast)}")  # fmt: skip
        lines += [f"  {flag}: {text}" for flag, text in q.reasons if flag not in FAILING]
    return "\n".join(lines)


GROW_EXPORTERS: tuple[Exporter[GrowResult], ...] = (
    Exporter.file("grow.json", render_grow_json),
    Exporter.file("grow.md", render_grow_markdown),
)
