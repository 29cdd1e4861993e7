"""The one way a report reaches the disk: exporters render a result into files, ``export`` writes them.

An ``Exporter`` is one report format (hyperfine's ``Exporter`` trait, ``src/export/mod.rs``): a function from
a result to the files it makes, by name. Most make one file; an HTML page also makes the PNG figures it
embeds, rendered once for both. ``export`` writes every file atomically (a temporary file in the same folder,
then ``os.replace``), so a reader, a crash or a Ctrl-C mid-write sees the previous version or the new one,
never half a file: reports are rewritten while a run, a comparison or a load is still going.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

Content = str | bytes
R = TypeVar("R")


@dataclass(frozen=True)
class Exporter(Generic[R]):
    """One report format: the files (name → content) it renders from a result; none when it has nothing to show."""

    render: Callable[[R], Mapping[str, Content]]

    @classmethod
    def file(cls, filename: str, render: Callable[[R], Content | None]) -> Exporter[R]:
        """An exporter of one file; ``render`` returning None writes nothing (a figure without data)."""

        def files(result: R) -> Mapping[str, Content]:
            content = render(result)
            return {} if content is None else {filename: content}

        return cls(files)


def export(result: R, directory: Path, exporters: Iterable[Exporter[R]]) -> Path:
    """Render ``result`` with each exporter and write its files into ``directory`` (created), atomically each."""
    directory.mkdir(parents=True, exist_ok=True)
    for exporter in exporters:
        for name, content in exporter.render(result).items():
            write_atomically(directory / name, content)
    return directory


def write_atomically(path: Path, content: Content) -> Path:
    """Write ``content`` to ``path`` through a temporary file beside it (same file system, so the rename is
    atomic); the temporary file is removed if writing fails."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path
