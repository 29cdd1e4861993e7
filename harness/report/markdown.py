"""summary.md: one table a reviewer reads in ten seconds; fits $GITHUB_STEP_SUMMARY or a PR comment."""

from __future__ import annotations

from harness.results import QueryResult, RunResult
from harness.stats import PERCENTILE_METHOD

STATUS_MARK = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ FAIL"}


def markdown_heading(kind: str, run_id: str, status: str, complete: bool, incomplete_reason: str | None) -> list[str]:
    """The first lines of every Markdown report: what ran, its status, and a banner when it did not finish."""
    lines = [f"## harness {kind} `{run_id}` — {status.upper()}", ""]
    if not complete:
        lines += [f"> **INCOMPLETE**: {incomplete_reason or 'still running'} — partial results below.", ""]
    return lines


def render_markdown(result: RunResult) -> str:
    env = result.environment
    lines = markdown_heading("run", result.run_id, result.status, result.complete, result.incomplete_reason)
    if env is not None:
        lines += [
            f"tier **{env.tier}** (seed {env.seed}, {sum(env.row_counts.values()):,} rows), strategy "
            f"**{env.strategy}**, PostgreSQL {env.postgres_version}, n = {result.options.get('iterations')} "
            f"timed runs per query after {result.options.get('warmup')} warm-up; p95 by {PERCENTILE_METHOD}, "
            "95% CI from order statistics (distribution-free; unbounded where n is too small).",
            "",
        ]
    if result.cache:
        lines += [f"Cache state: {result.cache.get('text', '')}.", ""]
    lines += [
        "| query | p50 ms | p95 ms [95% CI] | budget ms | verdict | work per call | indexes used | notes |",
        "|---|---:|---:|---:|---|---|---|---|",
    ]
    lines += [_row(q) for q in result.queries]
    failures = [(q.name, c.reason) for q in result.queries for c in q.verdict.failures]
    if failures:
        lines += ["", "**Failures**", ""]
        lines += [f"- `{name}`: {md_cell(reason)}" for name, reason in failures]
    return "\n".join(lines) + "\n"


def _row(q: QueryResult) -> str:
    s = q.summary
    p50 = f"{s.p50:.2f}" if s else "–"
    p95 = f"{s.p95:.2f} {s.p95_ci_text()}" if s else "–"
    plan = q.measurement.plan
    indexes = ", ".join(plan.indexes_used) if plan and plan.indexes_used else "none"
    notes = "; ".join([c.reason for c in q.verdict.failures if c.name != "p95_budget"] + list(q.verdict.warnings))
    return (
        f"| `{q.name}` | {p50} | {p95} | {q.budget_ms:g} | {STATUS_MARK[q.verdict.status]} | "
        f"{md_cell(_work(q))} | {md_cell(indexes)} | {md_cell(notes) or ''} |"
    )


def _work(q: QueryResult) -> str:
    """ "12 buffers (100% hit), 18 rows" — the work a comparison gates on; reads show a cold cache."""
    w = q.measurement.work
    if w is None:
        return "–"
    hit = f" ({w.hit_ratio:.0%} hit)" if w.hit_ratio is not None else ""
    temp = f", {w.temp_blks_per_call:,.0f} temp" if w.temp_blks else ""
    return f"{w.shared_blks_per_call:,.0f} buffers{hit}{temp}, {w.rows_per_call:,.0f} rows"


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return text.replace("|", "\\|").replace("\n", " ")
