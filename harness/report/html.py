"""report.html: one self-contained page per run (inline CSS, base64 PNG figures, no scripts, no links out).

Layout: what was measured and where (status, environment, method), the p95-vs-budget overview, a summary
table, then one section per query with its checks, figure and plan. Every piece of text from the run is
escaped; figures come from ``harness.report.plots``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from html import escape

from harness.environment import Environment
from harness.report.page import html_page, img
from harness.report.plots import format_ms, latency_distribution_png, p95_overview_png
from harness.results import QueryResult, RunResult
from harness.stats import CONFIDENCE, PERCENTILE_METHOD

_CSS = """
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0}
h2{font-size:17px;margin:0 0 6px}
h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:700;font-size:12px;color:#fff;
 text-transform:uppercase;letter-spacing:.03em}
.pass{background:#2e7d32}.warn{background:#ef8f00}.fail{background:#c62828}.incomplete{background:#6a1b9a}
.banner{background:#f3e5f5;border-left:6px solid #6a1b9a;padding:8px 12px;margin:10px 0;font-weight:600}
.error{background:#ffebee;border-left:6px solid #c62828;padding:6px 10px;margin:6px 0}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
.meta dt{color:#616161}.meta dd{margin:0}
section.query{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:12px 16px;margin:16px 0}
ul{margin:4px 0;padding-left:20px}
li.check-fail,.failure{color:#b71c1c}li.check-warn{color:#8d5a00}
pre{background:#f5f5f5;padding:8px;overflow-x:auto;font-size:12px;line-height:1.35}
img{max-width:100%;height:auto;display:block;margin:6px 0}
code{font-size:12px}
"""


def render_html(result: RunResult) -> str:
    """The whole page as one string; safe to write while a run is still going (shows what is measured)."""
    anchors = _anchors(q.name for q in result.queries)
    parts = [
        _header(result),
        _overview(result),
        _summary_table(result, anchors),
        *(_query_section(q, anchor) for q, anchor in zip(result.queries, anchors, strict=True)),
    ]
    return html_page(f"harness run {result.run_id}: {result.status.upper()}", _CSS, parts)


# -- header ----------------------------------------------------------------------------------------


def _header(result: RunResult) -> str:
    env = result.environment
    options = result.options
    rows: list[tuple[str, str]] = [
        ("run id", result.run_id),
        ("started / finished", f"{result.started_at} / {result.finished_at or 'not finished'}"),
    ]
    if env is not None:
        rows += [
            ("tier / seed / strategy", f"{env.tier} / {env.seed} / {env.strategy}"),
            ("PostgreSQL", env.postgres_version),
            ("database", env.database),
            ("settings", _settings(env)),
            ("rows", ", ".join(f"{t} {n:,}" for t, n in sorted(env.row_counts.items())) or "unknown"),
            ("data checksum / anchor", f"{env.data_checksum or 'none'} / {env.anchor_date}"),
            ("harness", f"{env.harness_version}, commit {env.git_commit or 'unknown'}"),
            ("host", _host(env)),
        ]
    else:
        rows.append(("environment", "not recorded (the run stopped before connecting)"))
    rows += [
        (
            "iterations",
            f"{options.get('iterations', '?')} timed + {options.get('warmup', '?')} warm-up per query",
        ),
        ("prepared statements", str(options.get("prepare", "?"))),
        ("percentiles", f"{PERCENTILE_METHOD}; p95 CI: {CONFIDENCE:.0%} percentile bootstrap"),
        ("timing", "perf_counter around execute + fetch-all (EXPLAIN ANALYZE times are never gated on)"),
    ]
    banner = ""
    if not result.complete:
        reason = result.incomplete_reason or "the run has not finished"
        banner = f'<div class="banner">INCOMPLETE: {escape(reason)}</div>'
    counts = _status_counts(result.queries)
    return (
        f"<h1>harness run {_badge(result.status)}</h1>\n{banner}"
        f"<p>{escape(counts)}</p>\n"
        f'<dl class="meta">{"".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)}</dl>'
    )


def _settings(env: Environment) -> str:
    shown = {k: v for k, v in env.settings.items() if k != "server_version_num"}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "unknown"


def _host(env: Environment) -> str:
    host = env.host
    keys = ("hostname", "machine", "cpus", "system", "python")
    return ", ".join(f"{k} {host[k]}" for k in keys if host.get(k) is not None)


def _status_counts(queries: list[QueryResult]) -> str:
    if not queries:
        return "no queries measured"
    counts = {s: sum(q.verdict.status == s for q in queries) for s in ("pass", "warn", "fail")}
    return f"{len(queries)} queries: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)


# -- overview and summary --------------------------------------------------------------------------


def _overview(result: RunResult) -> str:
    if not any(q.summary for q in result.queries):
        return ""
    png = p95_overview_png(
        [q.name for q in result.queries],
        [q.summary.p95 if q.summary else None for q in result.queries],
        [q.summary.p95_ci_low if q.summary else None for q in result.queries],
        [q.summary.p95_ci_high if q.summary else None for q in result.queries],
        [q.budget_ms for q in result.queries],
        [q.verdict.status for q in result.queries],
    )
    return "<h2>p95 vs budget</h2>\n" + img(png, "p95 latency per query with 95% CI and budget")


def _summary_table(result: RunResult, anchors: list[str]) -> str:
    if not result.queries:
        return ""
    head = (
        "<tr><th>query</th><th>n</th><th>p50 ms</th><th>p95 ms [95% CI]</th><th>budget ms</th>"
        "<th>verdict</th><th>indexes used</th><th>failures / warnings</th></tr>"
    )
    rows = []
    for q, anchor in zip(result.queries, anchors, strict=True):
        s = q.summary
        plan = q.measurement.plan
        indexes = ", ".join(plan.indexes_used) if plan else ""
        p95 = f"{format_ms(s.p95)} {s.p95_ci_text(format_ms)}" if s else "—"
        rows.append(
            f'<tr><td><a href="#{anchor}">{escape(q.name)}</a></td>'
            f'<td class="num">{s.n if s else 0}</td>'
            f'<td class="num">{format_ms(s.p50) if s else "—"}</td>'
            f'<td class="num">{p95}</td>'
            f'<td class="num">{format_ms(q.budget_ms)}</td>'
            f"<td>{_badge(q.verdict.status)}</td>"
            f"<td>{escape(indexes or ('none' if plan else '—'))}</td>"
            f'<td class="small">{_reasons(q)}</td></tr>'
        )
    return f"<h2>Summary</h2>\n<table>{head}{''.join(rows)}</table>"


# -- one query -------------------------------------------------------------------------------------


def _query_section(q: QueryResult, anchor: str) -> str:
    m = q.measurement
    parts = [
        f'<section class="query" id="{anchor}">',
        f"<h2>{escape(q.name)} {_badge(q.verdict.status)}</h2>",
        f"<p>{escape(q.description)}</p>" if q.description else "",
        f'<p class="small">{escape(q.path)} · budget {format_ms(q.budget_ms)} ms · '
        f"statement_timeout {m.timeout_ms} ms · prepare {escape(m.prepare)}"
        f"{f' · {m.rows_returned} rows returned' if m.rows_returned is not None else ''}</p>",
    ]
    if m.error:
        parts.append(f'<div class="error">error: {escape(m.error)}</div>')
    if q.verdict.checks:
        items = "".join(
            f'<li class="check-{c.status}"><b>{escape(c.status.upper())}</b> {escape(c.name)}: {escape(c.reason)}</li>'
            for c in q.verdict.checks
        )
        parts.append(f"<h3>Checks</h3><ul>{items}</ul>")
    if q.verdict.warnings:
        items = "".join(f'<li class="check-warn">{escape(w)}</li>' for w in q.verdict.warnings)
        parts.append(f"<h3>Warnings</h3><ul>{items}</ul>")
    if q.summary and m.samples_ms:
        s = q.summary
        parts.append(
            "<h3>Latency</h3>"
            f"<p>n={s.n} · min {format_ms(s.min)} · p50 {format_ms(s.p50)} · "
            f"<b>p95 {format_ms(s.p95)}</b> {s.p95_ci_text(format_ms)} · "
            f"p99 {format_ms(s.p99)} · max {format_ms(s.max)} · mean {format_ms(s.mean)} ± "
            f"{format_ms(s.stddev)} ms</p>"
        )
        if m.work is not None:
            shapes = len(set(m.draw_plans))
            parts.append(f"<h3>Work</h3><p>{escape(m.work.describe())}; {shapes} plan shape"
                         f"{'s' if shapes != 1 else ''} over {len(m.draw_plans)} draws</p>")  # fmt: skip
        png = latency_distribution_png(m.samples_ms, s.p95, q.budget_ms, f"{q.name} (n={s.n})")
        parts.append(img(png, f"latency ECDF of {q.name}"))
    if m.params_example:
        params = ", ".join(f"{k}={_param_text(v)}" for k, v in m.params_example.items())
        parts.append(f'<p class="small">EXPLAIN parameters: <code>{escape(params)}</code></p>')
    parts.append(_plan(q))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _plan(q: QueryResult) -> str:
    m = q.measurement
    usability = "".join(
        f"<li>{escape(u.index)}: {'usable' if u.usable else 'NOT usable'} with seq scans disabled"
        f"{' (plan uses ' + escape(', '.join(u.plan_indexes)) + ')' if u.plan_indexes else ''}</li>"
        for u in m.usability
    )
    usable_html = f"<p>Index usability (small tier):</p><ul>{usability}</ul>" if usability else ""
    plan = m.plan
    if plan is None:
        return f"<h3>Plan</h3><p>no plan captured</p>{usable_html}"
    rows = [
        ("planning / execution", f"{_ms_or_dash(plan.planning_ms)} / {_ms_or_dash(plan.execution_ms)} ms"),
        ("buffers", f"{plan.shared_hit_blocks:,} hit / {plan.shared_read_blocks:,} read"),
        ("indexes used", ", ".join(plan.indexes_used) or "none"),
        ("seq scans", ", ".join(plan.seq_scans) or "none"),
    ]
    meta = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    heading = '<h3>Plan</h3><p class="small">one EXPLAIN ANALYZE; instrumentation inflates its times</p>'
    return f'{heading}<dl class="meta">{meta}</dl>{usable_html}<pre>{escape(plan.tree)}</pre>'


# -- helpers ---------------------------------------------------------------------------------------


def _badge(status: str) -> str:
    css = status if status in ("pass", "warn", "fail", "incomplete") else "incomplete"
    return f'<span class="badge {css}">{escape(status)}</span>'


def _reasons(q: QueryResult) -> str:
    """Why a query failed (in red) and what to look at, for the summary table."""
    failures = [f'<span class="failure">{escape(c.reason)}</span>' for c in q.verdict.failures]
    return "<br>".join(failures + [escape(w) for w in q.verdict.warnings])


def _param_text(value: object) -> str:
    if isinstance(value, dt.date):  # datetime too: its repr is unreadable
        return value.isoformat()
    return repr(value)


def _ms_or_dash(value: float | None) -> str:
    return "—" if value is None else format_ms(value)


def _anchors(names: Iterable[str]) -> list[str]:
    """Unique, attribute-safe ids ("q-daily_active_users"), whatever characters the names hold."""
    anchors: list[str] = []
    for name in names:
        base = "q-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name) or "query")
        anchor, i = base, 2
        while anchor in anchors:
            anchor, i = f"{base}-{i}", i + 1
        anchors.append(anchor)
    return anchors
