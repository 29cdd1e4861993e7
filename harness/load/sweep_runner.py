"""Run a capacity sweep: every step a load run on one prepared, held (so warm) database; the reports
rewritten after each step, so an interrupted sweep keeps what it finished."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from harness import paths
from harness.load.results import LoadOptions
from harness.load.runner import LoadProgress, prepared, run_on, validate
from harness.load.sweep import Axis, SweepResult, SweepSpec, SweepStep
from harness.report.sweep import write_sweep_reports
from harness.roles import Access
from harness.workload import incomplete_reason, now_iso, run_id


def run_sweep(
    dsn: str,
    options: LoadOptions,
    spec: SweepSpec,
    progress: LoadProgress | None = None,
    database_label: str = "",
    access: Access | None = None,
    write: Callable[[SweepResult], None] | None = None,
) -> SweepResult:
    """Run every step of ``spec`` on one prepared database; sweep.json / sweep.md / sweep.png are rewritten
    after each step, so an interrupted sweep keeps its finished steps."""
    progress = progress or LoadProgress()
    catalog = validate(step_options(options, spec, 0, Path(".")))
    name = run_id(options.run_id, prefix="sweep-")
    result = SweepResult(name, now_iso(), spec, options, (options.reports_dir or paths.reports_dir()) / name)
    write = write or (lambda r: write_sweep_reports(r, r.directory))
    with prepared(dsn, options, progress, database_label, access) as ready:
        result.environment = ready.environment
        try:
            for i, value in enumerate(spec.values):
                progress.message(f"sweep step {i + 1}/{len(spec.values)}: {spec.axis}={value:g}")
                load = run_on(ready, step_options(options, spec, i, result.directory), catalog, progress)
                result.steps.append(SweepStep.of(value, load))
                write(result)
                if load.aborted:  # --abort-on-fail: the capacity is found, heavier steps would only breach more
                    result.stopped = f"{spec.axis}={value:g}: {load.aborted}"
                    progress.message(f"sweep stopped at {result.stopped}")
                    break
            result.complete = True
        except BaseException as exc:
            result.incomplete_reason = incomplete_reason(exc)
            raise
        finally:
            result.finished_at = now_iso()
            write(result)
    return result


def step_options(options: LoadOptions, spec: SweepSpec, index: int, directory: Path) -> LoadOptions:
    """The options of step ``index``: its users or rate, its folder inside the sweep's."""
    value = spec.values[index]
    changed: dict[str, object] = {"users": int(value)} if spec.axis is Axis.USERS else {"rate": value}
    step_id = f"step-{index + 1:02d}-{spec.axis}-{value:g}".replace(".", "_")
    return dataclasses.replace(options, reports_dir=directory, run_id=step_id, **changed)  # type: ignore[arg-type]
