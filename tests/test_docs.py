"""Every command the CLI offers is documented in the README (sqlite-utils' habit)."""

from __future__ import annotations

import click
from conftest import REPO

from harness.cli import cli


def _command_lines(group: click.Group, prefix: str) -> list[str]:
    lines = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            lines += _command_lines(command, f"{prefix} {name}")
        else:
            lines.append(f"{prefix} {name}")
    return lines


def test_every_command_is_in_the_readme() -> None:
    readme = REPO.joinpath("README.md").read_text()
    db_line = "harness db start | stop | status | url | destroy"  # the README lists them on one line
    missing = [
        line
        for line in _command_lines(cli, "harness")
        if line not in readme and not (line.startswith("harness db ") and db_line in readme)
    ]
    assert not missing, f"commands missing from README.md: {missing}"


def test_readme_starts_with_the_two_setup_commands() -> None:
    readme = REPO.joinpath("README.md").read_text()
    assert ".venv/bin/harness run --tier test" in readme
    assert ".venv/bin/python -m pytest" in readme
    ci = REPO.joinpath(".ci", "run").read_text()
    assert ".venv/bin/python -m pytest" in ci, "CI must run the README's test command"
