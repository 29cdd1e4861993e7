"""The package's shape: no import cycles among harness modules, and a public API the CLI stands on.

The import graph is read from the source with ``ast``: one node per module, an edge for each module-level
import of another harness module (``if TYPE_CHECKING:`` blocks and imports inside functions excluded). A
module importing ``a.b.c`` from outside package ``a.b`` also depends on ``a/b/__init__.py``, which Python runs
first: that is how strategies → seed.manifest closed a cycle through seed/__init__ → seed.loader.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest

import harness
from harness.cli import cli

PACKAGE = Path(harness.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str, modules: dict[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements run when the module is imported: top level, and inside top-level if/try blocks
    other than ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                pending += node.body
            pending += node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return found


def all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, also those inside functions (where an import would hide a cycle)."""
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in
                   ast.unparse(node.test) for n in ast.walk(node)}  # fmt: skip
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in typing_only]


def import_graph(
    imports: Callable[[ast.Module], list[ast.Import | ast.ImportFrom]] = module_level_imports,
) -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        here = name if is_package(name, modules) else name.rpartition(".")[0]
        targets: list[str] = []
        for node in imports(tree):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
                continue
            base = node.module or ""
            if node.level:
                anchor = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                base = f"{anchor}.{base}" if base else anchor
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            targets += submodules if len(submodules) == len(node.names) else [base, *submodules]
        for target in targets:
            if target not in modules or target == name:
                continue
            graph[name].add(target)
            parts = target.split(".")
            for i in range(1, len(parts)):  # the packages Python initialises on the way
                package = ".".join(parts[:i])
                if package in modules and not (name == package or name.startswith(package + ".")):
                    graph[name].add(package)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_of_harness_has_no_cycle() -> None:
    graph = import_graph()
    assert "harness.workload" in graph["harness.run"]  # the graph is really read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_import_inside_a_function_hides_a_cycle() -> None:
    """The lazy imports (optional heavy modules, gevent's order, CLI start-up) close no cycle either."""
    graph = import_graph(all_imports)
    assert "harness.run" in graph["harness.cli"]  # the CLI imports its commands' modules lazily
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle through a function-local import: " + " → ".join(cycle or [])


def test_the_cycle_finder_sees_a_cycle_through_a_package_init() -> None:
    graph = {"p": {"p.loader"}, "p.loader": {"q"}, "q": {"p"}, "r": set()}
    assert find_cycle(graph) == ["p", "p.loader", "q", "p"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# -- the public API -------------------------------------------------------------------------------

# CLI command → the library function behind it (the keyword arguments it must accept).
LIBRARY_CALLS = {
    "init": "init",
    "seed": "seed",
    "check": "check",
    "run": "run",
    "compare": "compare",
    "load": "load",
    "grow": "grow",
}
# Options that only concern the terminal, not the library call (seed's --verbose prints its on_phase).
CLI_ONLY = {"help", "debug", "verbose"}
# Click destinations named apart from their keyword (``seed`` is also the command's module name there).
KEYWORD_OF = {"seed_value": "seed"}


def test_every_api_name_is_exported() -> None:
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    assert {"seed", "check", "run", "compare", "load", "Workload", "RunResult", "Environment"} <= set(harness.__all__)


@pytest.mark.parametrize("command", sorted(LIBRARY_CALLS))
def test_every_cli_option_is_a_keyword_argument_of_the_library_call(command: str) -> None:
    click_command = cli.commands[command]
    function = getattr(harness, LIBRARY_CALLS[command])
    parameters = inspect.signature(function).parameters
    keywords = {name for name, p in parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    options = {KEYWORD_OF.get(p.name, p.name) for p in click_command.params if p.name and p.name not in CLI_ONLY}
    assert isinstance(click_command, click.Command)
    assert options, command
    missing = sorted(options - keywords)
    assert not missing, f"harness {command}: options without a keyword in harness.{LIBRARY_CALLS[command]}: {missing}"


def test_importing_a_submodule_keeps_the_api_function() -> None:
    import importlib

    importlib.import_module("harness.run")
    importlib.import_module("harness.load.runner")
    from harness import load, run

    assert run.__module__ == "harness.api" and load.__module__ == "harness.api"
    assert harness.compare.__module__ == "harness.api"
    assert importlib.import_module("harness.run").RunOptions is harness.RunOptions


def test_import_harness_is_cheap_and_imports_no_driver() -> None:
    """The pytest plugin loads in every pytest session, and Locust must patch before psycopg is imported."""
    code = "import sys, harness, harness.pytest_plugin, harness.querylayer; print(sorted(m for m in sys.modules " \
           "if m.split('.')[0] in ('psycopg', 'sqlglot', 'matplotlib', 'scipy', 'faker')))"  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_readme_code_map_lists_exactly_the_modules() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("## Code map", 1)[1].split("\n## ", 1)[0]
    listed = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    actual = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")}
    assert listed == actual, f"missing from README: {sorted(actual - listed)}; gone: {sorted(listed - actual)}"
