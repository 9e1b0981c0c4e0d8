"""What operators see: Prometheus metrics that follow the upload traffic (one truth across
worker processes), JSON log lines with the request's id and user and no secrets, and a
request id echoed to the client."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import User, make_settings
from tests.support.live import LiveServer, start_server
from tests.support.nodes import Node, free_port
from tests.support.tus import TUS_PATH, auth, create_upload, patch_headers

NODE_SECRET = "observability-node-secret-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and labels (the parser's own reading)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_as_uploads_happen(
    client: httpx.Client, server: LiveServer, user: User, session_id: str
) -> None:
    before = client.get("/metrics").text
    url = create_upload(client, user.headers, session_id, 3000)
    for offset in range(0, 3000, 1000):
        sent = client.patch(url, headers=patch_headers(user.headers, offset), content=b"m" * 1000)
        assert sent.status_code == 204
    assert client.head(url, headers=user.headers).status_code == 200
    after = client.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("video_upload_http_requests_total", method="PATCH", status="204") == 3
    assert moved("video_upload_http_requests_total", method="HEAD", status="200") == 1
    assert moved("video_upload_bytes_received_total") == 3000
    assert moved("video_upload_uploads_created_total") == 1
    assert moved("video_upload_uploads_finished_total") == 1
    if server.settings.storage_backend == "s3":
        assert moved("video_upload_s3_request_duration_seconds_count", operation="UploadPart") >= 1


def test_metrics_ask_for_the_metrics_token_when_one_is_set(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    token = secrets.token_hex(16)
    settings = make_settings(request, tmp_path, "sqlite-local", metrics_token=token)
    server = start_server("metrics-token", settings)
    try:
        assert httpx.get(f"{server.base_url}/metrics").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.get(f"{server.base_url}/metrics", headers=wrong).status_code == 401
        right = {"Authorization": f"Bearer {token}"}
        answered = httpx.get(f"{server.base_url}/metrics", headers=right)
        assert answered.status_code == 200
        assert "video_upload_http_requests_total" in answered.text
    finally:
        server.stop()


def node_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'node.db'}",
        "LOCAL_STORAGE_PATH": str(tmp_path / "uploads"),
        "DATA_DIR": str(tmp_path / "data"),
        "JWT_SECRET": NODE_SECRET,
        **extra,
    }


def node_token(user: str) -> str:
    import time

    return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, NODE_SECRET, "HS256")


def new_upload(base_url: str, headers: dict[str, str], length: int) -> httpx.URL:
    session = httpx.post(f"{base_url}/api/v1/sessions", json={"name": "s"}, headers=headers)
    created = httpx.post(
        base_url + TUS_PATH,
        headers={
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": "session_id " + _b64(session.json()["id"]),
        },
    )
    assert created.status_code == 201, created.text
    return httpx.URL(base_url).join(created.headers["Location"])


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def test_two_workers_report_one_truth(tmp_path: Path) -> None:
    # two worker processes start (each importing the app) before the first answer
    node = Node(env=node_env(tmp_path), workdir=tmp_path).start("--workers", "2", timeout=180)
    try:
        headers = auth(node_token("alice"))
        uploads = 6
        for _ in range(uploads):
            url = new_upload(node.base_url, headers, 10)
            sent = httpx.patch(url, headers=patch_headers(headers, 0), content=b"w" * 10)
            assert sent.status_code == 204
        # new connections, so either worker may answer each scrape: every answer adds up both
        scrapes = [httpx.get(f"{node.base_url}/metrics").text for _ in range(6)]
    finally:
        node.stop()
    for scrape in scrapes:
        assert value(scrape, "video_upload_uploads_created_total") == uploads
        assert value(scrape, "video_upload_bytes_received_total") == 10 * uploads
        assert (
            value(scrape, "video_upload_http_requests_total", method="PATCH", status="204")
            == uploads
        )


def test_json_logs_carry_the_request_id_and_user_and_never_the_token(tmp_path: Path) -> None:
    node = Node(env=node_env(tmp_path, LOG_FORMAT="json"), workdir=tmp_path).start()
    token = node_token("alice")
    try:
        headers = {**auth(token), "X-Request-ID": "phone-42.retry-3"}
        listed = httpx.get(f"{node.base_url}/api/v1/sessions", headers=headers)
        assert listed.headers["X-Request-ID"] == "phone-42.retry-3"
        hostile_id = "a b<script>" + "x" * 200
        hostile = httpx.get(f"{node.base_url}/healthz", headers={"X-Request-ID": hostile_id})
        assert hostile.headers["X-Request-ID"] != hostile_id  # replaced by one of its own
        answered = httpx.get(f"{node.base_url}/healthz")
        assert len(answered.headers["X-Request-ID"]) >= 8
    finally:
        node.stop()
    log = node.log()
    assert token not in log
    assert NODE_SECRET not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "phone-42.retry-3"]
    assert access, log
    assert access[-1]["user_id"] == "alice", access
    assert access[-1]["message"].startswith("GET /api/v1/sessions 200")
    assert isinstance(access[-1]["duration_ms"], float)
    started = [line for line in lines if "serving with database" in line["message"]]
    assert started[0]["database"] == "sqlite"
    assert started[0]["storage"] == "local"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_on_a_port_of_their_own_add_up_every_worker_and_leave_the_api_port(
    tmp_path: Path, workers: str
) -> None:
    metrics_port = free_port()
    env = node_env(tmp_path, METRICS_PORT=str(metrics_port))
    node = Node(env=env, workdir=tmp_path).start("--workers", workers, timeout=180)
    try:
        headers = auth(node_token("alice"))
        for _ in range(3):
            url = new_upload(node.base_url, headers, 10)
            assert httpx.patch(url, headers=patch_headers(headers, 0), content=b"m" * 10).is_success
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        on_the_api_port = httpx.get(f"{node.base_url}/metrics")
    finally:
        node.stop()
    assert scrape.status_code == 200
    assert value(scrape.text, "video_upload_uploads_created_total") == 3
    assert value(scrape.text, "video_upload_bytes_received_total") == 30
    assert on_the_api_port.status_code == 404
