"""The service reaches third-party libraries through their public names only: nothing of theirs
whose name starts with an underscore, neither imported nor read as an attribute."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "video_upload"
MODULES = sorted(SOURCE.rglob("*.py"))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def foreign_private_uses(tree: ast.AST) -> list[str]:
    """`from lib import _x`, `import lib._x`, and `lib_name._x` for names bound by importing a
    library (not this package)."""
    found: list[str] = []
    foreign: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "video_upload":
                continue
            if any(_is_private(part) for part in node.module.split(".")):
                found.append(f"from {node.module} import ...")
            for alias in node.names:
                if _is_private(alias.name):
                    found.append(f"from {node.module} import {alias.name}")
                foreign.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "video_upload":
                    continue
                if any(_is_private(part) for part in alias.name.split(".")):
                    found.append(f"import {alias.name}")
                foreign.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in foreign
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_the_check_finds_a_private_name_of_a_library() -> None:
    sample = "import asyncio\nfrom sqlalchemy.util import _collections\nasyncio._get_running_loop()"
    assert foreign_private_uses(ast.parse(sample)) == [
        "from sqlalchemy.util import _collections",
        "asyncio._get_running_loop",
    ]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(SOURCE)))
def test_no_module_uses_a_private_name_of_a_library(path: Path) -> None:
    assert foreign_private_uses(ast.parse(path.read_text(), str(path))) == []
