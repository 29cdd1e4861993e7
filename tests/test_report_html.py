"""report.html and its figures, rendered from synthetic runs (no database needed: the input is data)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from harness.db import redact
from harness.environment import Environment
from harness.measure import IndexUsability, Measurement
from harness.plans import plan_facts
from harness.report.html import render_html
from harness.report.plots import format_ms, latency_distribution_png, p95_overview_png
from harness.results import QueryResult, RunResult
from harness.stats import PERCENTILE_METHOD, summarize
from harness.verdicts import Check, QueryVerdict

PLANS = Path(__file__).parent / "fixtures" / "plans"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PASSWORD = "s3cret-pw"
DSN = f"postgresql://alice:{PASSWORD}@db.example:5432/analytics"
EVIL_NAME = 'slow<script>alert("x")</script>&q'


def environment(database: str = redact(DSN)) -> Environment:
    return Environment(
        postgres_version="18.1",
        postgres_major=18,
        settings={"work_mem": "16MB", "jit": "off", "server_version_num": "180001"},
        tier="test",
        seed=42,
        strategy="baseline",
        data_checksum="abc123",
        row_counts={"users": 20, "behavior_logs": 480},
        anchor_date="2024-06-30",
        harness_version="0.1.0",
        git_commit="deadbeef",
        host={"hostname": "ci-runner", "machine": "x86_64", "cpus": 2},
        database=database,
    )


def measured(name: str, samples: list[float], budget: float, plan: str | None, checks: list[Check],
             warnings: tuple[str, ...] = (), error: str | None = None) -> QueryResult:  # fmt: skip
    m = Measurement(query=name, prepare="auto", timeout_ms=int(budget * 4), samples_ms=samples, error=error)
    if plan:
        m.explain_json = json.loads((PLANS / f"{plan}.json").read_text())
        m.plan = plan_facts(m.explain_json)
    m.params_example = {"user_id": 7, "since": dt.datetime(2024, 6, 1, tzinfo=dt.UTC)} if samples else {}
    summary = summarize(samples) if samples else None
    status = "fail" if any(c.status == "fail" for c in checks) else "warn" if warnings else "pass"
    verdict = QueryVerdict(name, status, tuple(checks), warnings)  # type: ignore[arg-type]
    return QueryResult(name, f"about {name} & <friends>", budget, f"queries/{name}.sql", m, summary, verdict)


def fast_query() -> QueryResult:
    samples = list(np.random.default_rng(1).lognormal(0.0, 0.3, 40))
    return measured("daily_active_users", samples, 500, "index_scan",
                    [Check("p95_budget", "pass", "p95 1.30 ms <= budget 500 ms"),
                     Check("index:events_pkey", "pass", "plan uses events_pkey")])  # fmt: skip


def slow_query() -> QueryResult:
    samples = list(np.random.default_rng(2).normal(700.0, 40.0, 30))
    return measured(EVIL_NAME, samples, 500, "seq_scan",
                    [Check("p95_budget", "fail", "p95 760 ms > budget 500 ms")],
                    warnings=("seq scan on large table: Seq Scan on events (200000 rows)",))  # fmt: skip


def errored_query() -> QueryResult:
    error = f"OperationalError: could not connect to {redact(DSN)}"
    return measured("broken_query", [], 250, None, [Check("execution", "fail", error)], error=error)


def run_result(queries: list[QueryResult], complete: bool = True, reason: str | None = None,
               env: Environment | None = None) -> RunResult:  # fmt: skip
    return RunResult(
        run_id="20240630T120000Z",
        started_at="2024-06-30T12:00:00+00:00",
        environment=env if env is not None else environment(),
        options={"iterations": 30, "warmup": 5, "prepare": "per query (default auto)"},
        queries=queries,
        complete=complete,
        incomplete_reason=reason,
        finished_at="2024-06-30T12:00:09+00:00",
    )


def images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    return struct.unpack(">II", png[16:24])


def sections(page: str) -> dict[str, str]:
    """Each query section's HTML, keyed by its id."""
    return dict(re.findall(r'<section class="query" id="([^"]+)">(.*?)</section>', page, re.S))


@pytest.fixture(scope="module")
def mixed_page() -> str:
    return render_html(run_result([fast_query(), slow_query(), errored_query()]))


def test_header_names_status_environment_and_method(mixed_page: str) -> None:
    assert "<title>harness run 20240630T120000Z: FAIL</title>" in mixed_page
    assert '<h1>harness run <span class="badge fail">fail</span></h1>' in mixed_page
    assert "test / 42 / baseline" in mixed_page
    assert "<dd>18.1</dd>" in mixed_page
    assert "jit=off, work_mem=16MB" in mixed_page
    assert "30 timed + 5 warm-up per query" in mixed_page
    assert PERCENTILE_METHOD in mixed_page
    assert "3 queries: 1 pass, 2 fail" in mixed_page
    assert "INCOMPLETE" not in mixed_page


def test_summary_table_row_per_query_with_values(mixed_page: str) -> None:
    fast = fast_query().summary
    assert fast is not None
    table = mixed_page.split("<h2>Summary</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>.*?</tr>", table)
    assert len(rows) == 3
    assert f">{fast.n}<" in rows[0]
    assert f"{format_ms(fast.p95)} {fast.p95_ci_text(format_ms)}" in rows[0]
    assert '<span class="badge pass">pass</span>' in rows[0] and "events_pkey" in rows[0]
    assert '<span class="badge fail">fail</span>' in rows[1]
    assert '<span class="failure">p95 760 ms &gt; budget 500 ms</span><br>seq scan on large table' in rows[1]
    assert "—" in rows[2] and '<span class="badge fail">fail</span>' in rows[2]
    assert '<span class="failure">OperationalError: could not connect' in rows[2]
    ids = set(sections(mixed_page))
    assert set(re.findall(r'href="#([^"]+)"', table)) == ids and len(ids) == 3


def test_text_from_the_run_is_escaped(mixed_page: str) -> None:
    assert "<script" not in mixed_page
    assert "slow&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;q" in mixed_page
    assert "about daily_active_users &amp; &lt;friends&gt;" in mixed_page


def test_images_are_inline_pngs_and_nothing_is_fetched(mixed_page: str) -> None:
    pngs = images(mixed_page)
    assert len(pngs) == 3  # overview + one distribution per query with samples
    for png in pngs:
        assert png.startswith(PNG_SIGNATURE)
    for url in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', mixed_page):
        assert url.startswith(("data:image/png;base64,", "#")), url
    assert "http://" not in mixed_page and "https://" not in mixed_page
    assert "<link" not in mixed_page and "<script" not in mixed_page


def test_password_never_appears(mixed_page: str) -> None:
    assert PASSWORD not in mixed_page
    assert "alice:***@db.example" in mixed_page  # the redacted DSN, in the header and in the error


def test_query_sections_show_checks_plan_and_figure(mixed_page: str) -> None:
    fast, slow, _ = sections(mixed_page).values()
    assert "<b>PASS</b> index:events_pkey: plan uses events_pkey" in fast
    plan = fast_query().measurement.plan
    assert plan is not None and plan.planning_ms is not None and plan.execution_ms is not None
    assert f"{format_ms(plan.planning_ms)} / {format_ms(plan.execution_ms)} ms" in fast
    assert f"{plan.shared_hit_blocks:,} hit / {plan.shared_read_blocks:,} read" in fast
    assert f"<pre>{plan.tree}</pre>" in fast
    assert "user_id=7, since=2024-06-01T00:00:00+00:00" in fast
    assert len(images(fast)) == 1

    assert "<b>FAIL</b> p95_budget: p95 760 ms &gt; budget 500 ms" in slow
    assert "seq scan on large table: Seq Scan on events (200000 rows)" in slow
    assert "Aggregate (rows 1 est 1" in slow and len(images(slow)) == 1


def test_errored_query_has_error_and_no_figure(mixed_page: str) -> None:
    broken = sections(mixed_page)["q-broken_query"]
    assert '<div class="error">error: OperationalError: could not connect to' in broken
    assert "no plan captured" in broken
    assert images(broken) == []


def test_incomplete_run_says_why() -> None:
    page = render_html(run_result([fast_query()], complete=False, reason="interrupted (SIGINT)"))
    assert '<div class="banner">INCOMPLETE: interrupted (SIGINT)</div>' in page
    assert '<span class="badge incomplete">incomplete</span>' in page
    assert "<title>harness run 20240630T120000Z: INCOMPLETE</title>" in page


def test_run_that_stopped_before_measuring_renders() -> None:
    result = run_result([], complete=False, reason="database failure: connection refused")
    result.environment = None
    page = render_html(result)
    assert "INCOMPLETE: database failure: connection refused" in page
    assert "not recorded" in page and "no queries measured" in page
    assert images(page) == [] and "<table>" not in page


def test_only_errored_queries_render_without_figures() -> None:
    page = render_html(run_result([errored_query()]))
    assert images(page) == []
    assert "p95 vs budget" not in page


def test_usability_is_reported_on_small_tiers() -> None:
    query = fast_query()
    query.measurement.usability = [IndexUsability("bl_user_idx", False, ("users_pkey",))]
    page = render_html(run_result([query]))
    assert "bl_user_idx: NOT usable with seq scans disabled (plan uses users_pkey)" in page


def test_distribution_png_is_small() -> None:
    png = latency_distribution_png([1.0, 1.2, 1.1, 90.0], 80.0, 500.0, "q")
    assert png_size(png) == (600, 250)
    assert png_size(latency_distribution_png([3.0], 3.0, 2.0, "single sample")) == (600, 250)


def test_overview_grows_with_queries_and_handles_missing_samples() -> None:
    def overview(count: int) -> bytes:
        names = [f"q{i}" for i in range(count)]
        p95s: list[float | None] = [float(i + 1) for i in range(count - 1)] + [None]
        lows = [None if p is None else p * 0.9 for p in p95s]
        highs = [None if p is None else p * 1.1 for p in p95s]
        return p95_overview_png(names, p95s, lows, highs, [500.0] * count, ["pass"] * (count - 1) + ["fail"])

    small_w, small_h = png_size(overview(3))
    big_w, big_h = png_size(overview(30))
    assert small_w == big_w == 600
    assert big_h > small_h and big_h <= 1000


def test_overview_rejects_ragged_input() -> None:
    with pytest.raises(ValueError, match="one entry per query"):
        p95_overview_png(["a", "b"], [1.0], [0.9], [1.1], [5.0], ["pass"])


@pytest.mark.parametrize(
    ("value", "text"), [(0.1234, "0.123"), (1.234, "1.23"), (12.34, "12.3"), (1234.5, "1,234"), (500, "500")]
)
def test_format_ms(value: float, text: str) -> None:
    assert format_ms(value) == text
