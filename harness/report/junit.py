"""junit.xml: one testsuite per run, one testcase per query and check; failures carry the reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.results import RunResult


def render_junit(result: RunResult) -> str:
    cases = [(q, check) for q in result.queries for check in q.verdict.checks]
    suite = ET.Element(
        "testsuite",
        name=f"harness run {result.run_id}",
        tests=str(len(cases) + (0 if result.complete else 1)),
        failures=str(sum(1 for _, c in cases if c.status == "fail")),
        errors="0" if result.complete else "1",
        timestamp=result.started_at,
    )
    for query, check in cases:
        seconds = (query.summary.p50 / 1000) if query.summary else 0.0
        case = ET.SubElement(
            suite, "testcase", classname=f"harness.{query.name}", name=check.name, time=f"{seconds:.6f}"
        )
        if check.status == "fail":
            ET.SubElement(case, "failure", message=check.reason, type=check.name).text = check.reason
        if query.verdict.warnings and check is query.verdict.checks[0]:
            ET.SubElement(case, "system-out").text = "\n".join(f"warning: {w}" for w in query.verdict.warnings)
    if not result.complete:
        case = ET.SubElement(suite, "testcase", classname="harness", name="run complete")
        ET.SubElement(case, "error", message=result.incomplete_reason or "incomplete").text = (
            result.incomplete_reason or "the run did not finish"
        )
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
