"""run.json: the complete, versioned record of a run, raw samples included, so anyone can recompute."""

from __future__ import annotations

import json

from harness.results import RunResult


def render_json(result: RunResult) -> str:
    return json.dumps(result.as_dict(), indent=1, default=str) + "\n"
