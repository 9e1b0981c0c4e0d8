"""Every module imports on the installed dependencies, and the app assembles without starting.

`make test-lowest` runs this layer on the lowest versions pyproject.toml allows, so these are
what catch a lower bound that is not true (a name a dependency gained later, a private API
it dropped) before any service is involved.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

import video_upload
from video_upload.config import Settings
from video_upload.http.app import create_app

PACKAGE = Path(video_upload.__file__).parent
# Alembic's env.py runs migrations when imported.
NOT_IMPORTABLE_ALONE = {"video_upload.persistence.migrations.env"}


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("video_upload", *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return [name for name in names if name not in NOT_IMPORTABLE_ALONE]


def test_the_package_has_its_layers() -> None:
    layers = {name.split(".")[1] for name in module_names() if name.count(".") >= 2}

    assert {"domain", "storage", "media", "persistence", "lifecycle", "http", "client"} <= layers


@pytest.mark.parametrize("name", module_names())
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_the_app_assembles_and_documents_its_operations_without_starting(tmp_path: Path) -> None:
    values: dict[str, Any] = {"_env_file": None, "data_dir": tmp_path, "jwt_secret": "k" * 32}
    settings = Settings(**values)

    document = create_app(settings).openapi()

    paths = document["paths"]
    assert "post" in paths["/api/v1/videos/tus"]
    assert {"head", "patch", "delete"} <= set(paths["/api/v1/videos/tus/{upload_id}"])
    assert "post" in paths["/api/v1/videos/upload/init"]
    assert "get" in paths["/api/v1/videos/{video_id}/content"]
    assert not list(tmp_path.iterdir())  # nothing is opened before the app starts
