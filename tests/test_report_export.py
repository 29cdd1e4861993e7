"""The one report layer: every writer goes through ``export``, which replaces each file whole or not at all."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from harness.report import Exporter, export, write_atomically
from harness.report import compare as compare_report
from harness.report import load as load_report
from harness.report import run as run_report


def test_a_failing_render_leaves_the_previous_files_whole_and_no_temporary_file(tmp_path: Path) -> None:
    export("first", tmp_path, [Exporter.file("a.txt", str.upper), Exporter.file("b.bin", str.encode)])
    assert (tmp_path / "a.txt").read_text() == "FIRST" and (tmp_path / "b.bin").read_bytes() == b"first"

    def broken(result: str) -> str:
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        export("second", tmp_path, [Exporter.file("a.txt", str.upper), Exporter.file("b.bin", broken)])
    assert (tmp_path / "a.txt").read_text() == "SECOND" and (tmp_path / "b.bin").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_an_exporter_may_write_nothing_or_several_files(tmp_path: Path) -> None:
    nothing = Exporter.file("figure.png", lambda result: None)
    page = Exporter(lambda result: {"fig.png": b"\x89PNG", "page.html": f"<p>{result}</p>"})
    export("x", tmp_path / "out", [nothing, page])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fig.png", "page.html"]


def test_a_write_that_fails_removes_its_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(OSError):
        write_atomically(tmp_path / "report.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize("module", [run_report, compare_report, load_report])
def test_every_report_writer_goes_through_export(module: object) -> None:
    source = inspect.getsource(module)  # type: ignore[arg-type]
    assert "export(" in source and "write_text(" not in source and "write_bytes(" not in source
