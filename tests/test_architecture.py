"""The package's layout is its architecture: imports go only downwards between the role
subpackages, no module grows past 300 lines, and ARCHITECTURE.md names exactly the tree.

The walk reads every import of every module under ``src/atlasbatch`` (at the top, inside
functions and under ``TYPE_CHECKING``: a type import is still a dependency).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "atlasbatch"

#: Layers of the package, top first. A module may import its own group, any group of a
#: lower layer, and nothing beside or above it. Groups sharing a layer are siblings.
LAYERS: list[set[str]] = [
    {"facade"},  # atlasbatch, atlasbatch.cli, atlasbatch.__main__
    {"_api", "_cli"},  # the two front ends: asyncio/sync library, command line
    {"_runs"},  # a run directory's life: open, resume, refresh, controls, clean up, finish
    {"_engine"},  # one run's workers: submit, poll, download, delete
    {"_outputs"},  # the files a run leaves
    {"_http", "_targets", "_ledger", "_science"},  # the leaves of the run
    {"base"},  # _exceptions, _models, _config, _storage, _unwrap, _durations
]
#: The emulator's layers, below ``atlasbatch.testing`` (which imports nothing else).
TESTING_LAYERS: list[set[str]] = [
    {"facade"},  # testing/__init__, _server, _cli, _cli_options, pytest_plugin
    {"_web"},  # the DRF request cycle, routes, the ASGI fault layer
    {"_state"},  # users, tasks, runner, throttles, stats: no Starlette
    {"_sky", "_serializer"},  # synthetic data; the DRF serializer clone
    {"base"},  # _config, _fault_settings, _rates, _scope
]
_TESTING_FACADE = {"_server", "_cli", "_cli_options", "pytest_plugin", "__init__"}
_MAX_LINES = 300


def _modules(package: Path = PACKAGE) -> Iterator[tuple[str, Path]]:
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(name: str, path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, id(node) in top) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if node.module is None or not node.level:
                yield from ((f"{base}.{a.name}", id(node) in top) for a in node.names)
            yield base, id(node) in top


def _group(module: str) -> tuple[str, str] | None:
    """(tree, group) of an atlasbatch module: tree is "atlasbatch" or "testing"."""
    parts = module.split(".")
    if parts[0] != "atlasbatch":
        return None
    if len(parts) > 1 and parts[1] == "testing":
        sub = parts[2] if len(parts) > 2 else "__init__"
        if sub in _TESTING_FACADE:
            return "testing", "facade"
        is_group = any(sub in layer for layer in TESTING_LAYERS)
        return "testing", sub if is_group else "base"
    sub = parts[1] if len(parts) > 1 else "__init__"
    if sub in {"__init__", "__main__", "cli", "__version__"} or not sub.startswith("_"):
        return "atlasbatch", "facade"
    return "atlasbatch", sub if any(sub in layer for layer in LAYERS) else "base"


def _rank(tree: str, group: str) -> int:
    layers = LAYERS if tree == "atlasbatch" else TESTING_LAYERS
    return next(i for i, layer in enumerate(layers) if group in layer)


def _violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for name, path in _modules(package):
        importer = _group(name)
        assert importer is not None
        for module, at_top in _imports(name, path):
            target = _group(module)
            if target is None or target == importer:
                continue
            where = f"{path.relative_to(package.parent)}: imports {module}"
            if importer[0] != target[0]:
                # Only the CLI may reach the emulator, and only when a command runs.
                lazy_cli = importer[0] == "atlasbatch" and importer[1] in {"facade", "_cli"}
                if target[0] == "testing" and lazy_cli and not at_top:
                    continue
                found.append(f"{where} (between the package and its emulator)")
            elif _rank(*target) <= _rank(*importer):
                found.append(f"{where} ({importer[1]} may not import {target[1]})")
    return found


def test_imports_only_go_downwards() -> None:
    assert _violations() == []


def test_the_checker_finds_imports_against_the_layers(tmp_path: Path) -> None:
    """The walk is not vacuous: in a small tree it flags an upward, a sideways and an
    eager emulator import, and accepts a downward one."""
    files = {
        "__init__.py": "",
        "_models.py": "",
        "_engine/__init__.py": "",
        "_engine/pipeline.py": "from atlasbatch._http.client import X\nimport atlasbatch._models\n",
        "_http/__init__.py": "",
        "_http/client.py": "def f():\n    from atlasbatch._engine.pipeline import P\n",
        "_targets/__init__.py": "",
        "_targets/read.py": "from atlasbatch._ledger.ledger import Ledger\n",
        "_cli/__init__.py": "",
        "_cli/demo.py": "from atlasbatch.testing import Emulator\n",
    }
    for name, text in files.items():
        path = tmp_path / "atlasbatch" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    found = _violations(tmp_path / "atlasbatch")
    flagged = {f.split(":")[0].removeprefix("atlasbatch/") for f in found}
    assert flagged == {"_http/client.py", "_targets/read.py", "_cli/demo.py"}, found


@pytest.mark.parametrize(("name", "path"), [pytest.param(*m, id=m[0]) for m in _modules()])
def test_module_is_small(name: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= _MAX_LINES, f"{name}: {lines} lines > {_MAX_LINES}: split it by concept"


def test_architecture_md_names_the_tree() -> None:
    """Every module and subpackage is named in ARCHITECTURE.md, and every path it names exists."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    paths = re.findall(r"`((?:testing/)?_?[a-z_]+(?:/[a-z_]+)*(?:\.py|/))`", text)
    # Package paths only: a private name, the emulator's, or the CLI (not tests/, not a
    # run directory's folders), and no __init__.py (every folder has one).
    named = {p for p in paths if p.startswith(("_", "testing/", "cli.py"))}
    named -= {"__init__.py", "testing/__init__.py"}
    tree = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name != "__init__.py":
            tree.add(rel.as_posix())
        if len(rel.parts) > 1:
            tree.add(rel.parent.as_posix() + "/")
    assert sorted(tree - named) == [], "in the tree, not in ARCHITECTURE.md"
    assert sorted(named - tree) == [], "in ARCHITECTURE.md, not in the tree"
