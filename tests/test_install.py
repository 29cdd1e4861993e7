"""Installed as a package, not from this checkout: the reference workload ships inside it.

The wheel is built and installed into a fresh venv, and every command runs from an empty folder, so nothing
of the checkout (its queries/, scenarios/ or the editable install) can stand in for what the wheel holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import REPO, TEST_HOME

from harness.server import EmbeddedServer

Harness = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the wheel of this checkout, not editable; its ``bin/`` folder.

    Fast (6 to 9 s here, printed with -s; the whole module takes about 30 s, mostly the run): the wheel is
    built from a copy of the sources (``pip wheel --no-deps``; only setuptools is fetched, into pip's
    isolated build env), the venv is made without pip, and this environment's pip installs the wheel into
    it (``pip --python``, no index). The dependencies are not installed again: a ``.pth`` file puts this
    environment's site-packages after the venv's own. The editable harness of this environment stays out:
    Python runs the ``.pth`` files of site directories only, so the editable install's hook in that
    site-packages is never run, and the first test checks that ``harness`` comes from the fresh venv."""
    root = tmp_path_factory.mktemp("install")
    started = time.perf_counter()
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "harness", source / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(root / "wheel"), str(source)], check=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    (wheel,) = (root / "wheel").glob("harness-*.whl")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True)
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(target) / "harness-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    print(f"fresh venv with the wheel in {time.perf_counter() - started:.1f} s")
    yield venv / "bin"


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@pytest.fixture
def harness_in(installed: Path, empty: Path, pg_server: EmbeddedServer) -> Harness:
    """Run the installed ``harness`` from an empty folder, on the test session's embedded cluster."""
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_DSN", "DATABASE_URL", "PYTHONPATH")}
    env["HARNESS_HOME"] = str(TEST_HOME)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed / "harness"), *args], capture_output=True, text=True, cwd=empty, env=env, timeout=300
        )

    return run


def test_the_installed_package_is_the_wheel_and_holds_the_reference_workload(installed: Path, empty: Path) -> None:
    code = "import harness, harness.config as c; print(harness.__file__); print(c.reference_dir())"
    done = subprocess.run(  # from an empty folder: `python -c` puts the current folder first on sys.path
        [str(installed / "python"), "-c", code], capture_output=True, text=True, check=True, cwd=empty
    )
    module, reference = (Path(line) for line in done.stdout.splitlines())
    assert module.is_relative_to(installed.parent) and reference.is_relative_to(installed.parent)
    assert len(list((reference / "queries").glob("*.sql"))) == 9
    assert {p.stem for p in (reference / "scenarios" / "tiers").glob("*.toml")} >= {"test", "benchmark"}
    assert (reference / "scenarios" / "schema.sql").is_file()


def test_run_tier_test_from_an_empty_folder(harness_in: Harness) -> None:
    done = harness_in("run", "--tier", "test")
    assert done.returncode == 0, done.stderr
    assert "PASS: 9 queries" in done.stdout


def test_init_then_check_from_an_empty_folder(harness_in: Harness) -> None:
    init = harness_in("init")
    assert init.returncode == 0, init.stderr
    checked = harness_in("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 queries checked" in checked.stdout


def test_an_unknown_tier_and_an_empty_catalog_say_where_they_looked(
    harness_in: Harness, installed: Path, empty: Path
) -> None:
    done = harness_in("run", "--tier", "nightly")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"Error: unknown tier 'nightly': looked in, in order: ./scenarios/tiers ({empty}")
    assert f"the packaged reference ({installed.parent}" in line and "benchmark, demo, dev, stress, test" in line
    assert "Traceback" not in done.stderr

    (empty / "queries").mkdir()
    checked = harness_in("check")
    assert checked.returncode == 2
    assert checked.stderr.startswith(f"Error: no *.sql in ./queries ({empty / 'queries'}): looked in, in order: ")
    assert f"the packaged reference ({installed.parent}" in checked.stderr and "fix: add *.sql to" in checked.stderr

    (empty / "harness.toml").write_text('queries = "sql"\n')
    checked = harness_in("check")
    assert checked.returncode == 2
    assert checked.stderr.startswith(f"Error: no *.sql in {empty / 'harness.toml'}:1 queries ({empty / 'sql'})")
