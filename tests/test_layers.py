"""The package's layers: imports point down the pipeline, never up.

Slack request → capture rules → queue/journal → writer → storage; reports, the Slack commands and the CLI read
storage. Each test reads the imports of a folder's modules with ``ast`` (function-level and ``TYPE_CHECKING`` imports
included: an arrow is an arrow, even a lazy one).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import slack_tasklog

PACKAGE = Path(slack_tasklog.__file__).parent
# Everything above storage and reports; "" is the package's own __init__, which imports from every part.
ABOVE_STORAGE = {"", "capture", "writer", "reports", "slack", "cli", "integrations", "tasklog", "default", "testing"}


def parts_of(module: str) -> str:
    """The part of the package a module belongs to: ``slack_tasklog.storage.summary`` -> ``storage``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ""


def imports(path: Path, *, top_level_only: bool = False) -> Iterator[str]:
    """The package modules (and names) ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "slack_tasklog")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package
                base = ".".join(here[: len(here) - node.level] + ((node.module,) if node.module else ()))
            else:
                base = node.module or ""
            if base.split(".")[0] != "slack_tasklog":
                continue
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def modules_of(folder: str) -> list[Path]:
    found = sorted((PACKAGE / folder).rglob("*.py")) if (PACKAGE / folder).is_dir() else [PACKAGE / f"{folder}.py"]
    assert found, folder
    return found


def arrows(folder: str, forbidden: set[str]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in modules_of(folder)
        for module in imports(path)
        if parts_of(module) in forbidden
        # "from slack_tasklog import storage": the part named, not the package's __init__.
        and not (module == "slack_tasklog" and folder != "")
    ]


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("storage", ABOVE_STORAGE),
        ("reports", ABOVE_STORAGE - {"reports"}),
        ("writer", ABOVE_STORAGE - {"writer"} | {"storage"}),
    ],
)
def test_imports_point_down(folder: str, forbidden: set[str]) -> None:
    assert arrows(folder, forbidden) == []


def test_the_event_records_import_nothing_from_the_package_but_its_logger() -> None:
    assert {module for module in imports(PACKAGE / "events.py") if parts_of(module) != "logs"} == set()


def test_the_stored_values_import_nothing_from_the_package() -> None:
    assert set(imports(PACKAGE / "values.py")) == set()


def test_storage_and_reports_import_each_other_in_no_circle() -> None:
    """Module-level imports only: the order the modules load in."""
    paths = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for folder in ("storage", "reports")
        for path in modules_of(folder)
    }
    graph = {
        name: {module for module in imports(path, top_level_only=True) if module in paths and module != name}
        for name, path in paths.items()
    }

    def visit(name: str, path: tuple[str, ...]) -> None:
        for module in graph[name]:
            assert module not in path, " -> ".join((*path, module))
            visit(module, (*path, module))

    for name in graph:
        visit(name, (name,))
