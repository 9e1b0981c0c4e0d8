"""The README's reference tables say what the code does: every setting, command option and route.

People configure the service and drive the command line from these tables; an option the table
names but the parser refuses (or a setting it leaves out) sends them astray at the first step.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pydantic import SecretStr

from video_upload.cli import build_parser
from video_upload.config import Settings
from video_upload.http.app import create_app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    start = README.index(f"\n## {heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def _table_rows(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def _subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    """Every command a user types, by its words: `serve`, ..., `sessions create`. A command with
    actions of its own (`sessions`) stands for them, not for itself."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands: dict[str, argparse.ArgumentParser] = {}
            for name, child in action.choices.items():
                commands |= _subcommands(child, f"{prefix}{name} ") or {prefix + name: child}
            return commands
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def test_configuration_table_lists_every_setting_and_nothing_else() -> None:
    documented = {row[0].strip("`") for row in _table_rows(_section("Configuration"))}
    settings = {name.upper() for name in Settings.model_fields}
    assert documented == settings


def test_command_table_names_every_subcommand_with_the_options_it_accepts() -> None:
    commands = _subcommands(build_parser())
    assert commands, "video-upload has no subcommands"
    documented: dict[str, set[str]] = {}
    for row in _table_rows(_section("Command line")):
        usage = row[0].strip("`")
        words = usage.split()
        name = " ".join(words[1:3]) if " ".join(words[1:3]) in commands else words[1]
        documented[name] = set(re.findall(r"--[a-z][a-z-]*", usage))
    assert set(documented) == set(commands)
    for name, parser in commands.items():
        assert documented[name] == _options(parser), name


def _operations(cells: str) -> set[tuple[str, str]]:
    """`GET /a/{id}`, `OPTIONS /b[/{id}]` -> {("GET", "/a/{}"), ("OPTIONS", "/b"), ...}."""
    found = set()
    for method, path in re.findall(r"`([A-Z]+) (/[^`\s]*)`", cells):
        optional = re.fullmatch(r"(.*)\[(.*)\]", path)
        paths = [optional[1], optional[1] + optional[2]] if optional else [path]
        found |= {(method, re.sub(r"\{[^}]*\}", "{}", each)) for each in paths}
    return found


def test_api_table_lists_every_operation_of_the_openapi_document(tmp_path: Path) -> None:
    documented = set().union(*(_operations(row[0]) for row in _table_rows(_section("API summary"))))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        jwt_secret=SecretStr("s" * 32),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
    )
    served = {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, operations in create_app(settings).openapi()["paths"].items()
        for method in operations
    }
    # the protocol's OPTIONS and the documentation's own pages are not operations of the document
    undocumented_in_openapi = {op for op in documented if op[0] == "OPTIONS"} | {
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    }
    assert documented - undocumented_in_openapi == served
