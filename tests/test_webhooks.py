"""Webhooks from the transactional outbox: signed, never lost, in order per upload, each event
once by id, across a receiver outage, a node killed mid-way and two nodes dispatching at once."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import make_settings
from tests.support.live import LiveServer, start_server
from tests.support.nodes import Node
from tests.support.tus import TUS_PATH, auth, eventually_equal, metadata, patch_headers
from tests.support.webhook_receiver import Received, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"webhook-test-secret-of-32-bytes!").decode()
DATABASES = ["sqlite-local", "postgres-local"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver()
    yield hooks
    hooks.close()


def hooked_server(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backend: str,
    receiver: WebhookReceiver,
    **overrides: Any,
) -> LiveServer:
    settings = make_settings(
        request, tmp_path, backend, webhook_url=receiver.url, webhook_secret=SECRET, **overrides
    )
    return start_server(f"hooks-{backend}", settings)


def verified(delivery: Received) -> dict[str, Any]:
    """The event, once its signature checks out with the Standard Webhooks library."""
    event: dict[str, Any] = Webhook(SECRET).verify(delivery.body, delivery.headers)
    return event


def new_session(base_url: str, headers: dict[str, str]) -> str:
    created = httpx.post(f"{base_url}/api/v1/sessions", json={"name": "scales"}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def upload_video(base_url: str, token: str, data: bytes) -> str:
    """Create, send and complete an upload through tus and REST; its upload id."""
    headers = auth(token)
    session_id = new_session(base_url, headers)
    created = httpx.post(
        base_url + TUS_PATH,
        headers={
            **headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(session_id=session_id, filename="take.mp4"),
        },
    )
    assert created.status_code == 201, created.text
    url = httpx.URL(base_url).join(created.headers["Location"])
    sent = httpx.patch(url, headers=patch_headers(headers, 0), content=data)
    assert sent.status_code == 204, sent.text
    upload_id = url.path.rsplit("/", 1)[1]
    httpx.post(
        f"{base_url}/api/v1/videos/upload/complete",
        json={"upload_id": upload_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    return upload_id


def types_by_upload(deliveries: list[Received]) -> dict[str, list[str]]:
    by_upload: dict[str, list[str]] = {}
    for delivery in deliveries:
        event = verified(delivery)
        by_upload.setdefault(event["data"]["upload_id"], []).append(event["type"])
    return by_upload


@pytest.mark.parametrize("backend", DATABASES)
def test_created_and_completed_events_arrive_signed_with_the_video(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: WebhookReceiver, backend: str
) -> None:
    server = hooked_server(request, tmp_path, backend, receiver)
    try:
        upload_id = upload_video(server.base_url, server.token("alice"), b"x" * 1000)
        created, completed = (verified(delivery) for delivery in receiver.wait_for(2))
    finally:
        server.stop()
    assert created["type"] == "video.upload_created"
    assert completed["type"] == "video.completed"
    for event in (created, completed):
        assert set(event) == {"type", "timestamp", "data"}
        assert event["data"]["upload_id"] == upload_id
        assert event["data"]["user_id"] == "alice"
    assert completed["data"]["status"] == "completed"
    assert completed["data"]["upload_length"] == 1000


@pytest.mark.parametrize("backend", DATABASES)
def test_after_an_outage_events_arrive_in_order_per_upload_each_once(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: WebhookReceiver, backend: str
) -> None:
    receiver.refusing = True
    server = hooked_server(request, tmp_path, backend, receiver)
    try:
        token = server.token("alice")
        uploads = [upload_video(server.base_url, token, b"y" * 100) for _ in range(3)]
        receiver.wait_for_refusals(3)  # the receiver is down while the uploads go on
        receiver.refusing = False
        deliveries = receiver.wait_for(6)
    finally:
        server.stop()
    assert len({delivery.id for delivery in deliveries}) == len(deliveries) == 6
    by_upload = types_by_upload(deliveries)
    assert by_upload == {
        upload_id: ["video.upload_created", "video.completed"] for upload_id in uploads
    }


@pytest.mark.parametrize("backend", DATABASES)
def test_aborting_and_expiring_uploads_send_their_events(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: WebhookReceiver, backend: str
) -> None:
    server = hooked_server(request, tmp_path, backend, receiver)
    try:
        headers = auth(server.token("alice"))
        session_id = new_session(server.base_url, headers)
        urls = []
        for _ in range(2):
            created = httpx.post(
                server.base_url + TUS_PATH,
                headers={
                    **headers,
                    "Upload-Length": "10",
                    "Upload-Metadata": metadata(session_id=session_id),
                },
            )
            urls.append(httpx.URL(server.base_url).join(created.headers["Location"]))
        assert httpx.delete(urls[0], headers=headers).status_code == 204
        server.clock.advance(hours=server.settings.upload_expiration_hours + 1)
        from video_upload.lifecycle.cleanup import VideoService

        report = server.run(VideoService(server.services).cleanup())
        aborted, expired = (url.path.rsplit("/", 1)[1] for url in urls)
        # The PostgreSQL database is shared by the run: other tests' uploads may expire in this
        # cleanup too, and their events come here as well; only these two uploads' count.
        assert expired in report.expired_ids and aborted not in report.expired_ids
        expected = {
            aborted: ["video.upload_created", "video.aborted"],
            expired: ["video.upload_created", "video.expired"],
        }
        arrived = 4
        while True:
            by_upload: dict[str, list[str]] = {}
            for delivery in receiver.wait_for(arrived):
                event = verified(delivery)
                if event["data"]["upload_id"] in expected:
                    by_upload.setdefault(event["data"]["upload_id"], []).append(event["type"])
            if by_upload == expected or arrived >= 4 + report.expired:
                break
            arrived += 1
    finally:
        server.stop()
    assert by_upload == expected


@pytest.mark.parametrize("backend", DATABASES)
def test_cleanup_prunes_deliveries_delivered_longer_ago_than_the_retention(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: WebhookReceiver, backend: str
) -> None:
    server = hooked_server(request, tmp_path, backend, receiver, webhook_retention_days=2)
    from video_upload.lifecycle.cleanup import VideoService

    def statuses(upload_id: str) -> list[str]:
        async def read() -> list[str]:
            async with server.services.uploads.database() as db:
                listed = await db.outbox.listed(None, 10_000)
            return [delivery.status for delivery in listed if delivery.upload_id == upload_id]

        return server.run(read())

    try:
        upload_id = upload_video(server.base_url, server.token("alice"), b"z" * 100)
        receiver.wait_for(2)
        delivered = eventually_equal(lambda: statuses(upload_id), ["delivered", "delivered"])
        server.clock.advance(hours=47)
        server.run(VideoService(server.services).cleanup())
        still_there = statuses(upload_id)
        server.clock.advance(hours=2)
        pruned = server.run(VideoService(server.services).cleanup())
        gone = statuses(upload_id)
    finally:
        server.stop()
    assert delivered == ["delivered", "delivered"]
    assert still_there == ["delivered", "delivered"]
    # The PostgreSQL database is shared by the run: other tests' deliveries may go too.
    assert pruned.deliveries_pruned >= 2
    assert "pruned" in pruned.summary()
    assert gone == []


def test_a_video_the_probe_refuses_sends_a_rejected_event_with_the_reason(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    server = hooked_server(request, tmp_path, "sqlite-local", receiver, video_probe=True)
    try:
        upload_video(server.base_url, server.token("alice"), b"not a video at all" * 100)
        rejected = verified(receiver.wait_for(2)[1])
    finally:
        server.stop()
    assert rejected["type"] == "video.rejected"
    assert rejected["data"]["status"] == "rejected"
    assert rejected["data"]["rejection_code"] == "not_a_video"


def node_env(database_url: str, tmp_path: Path, receiver: WebhookReceiver) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "LOCAL_STORAGE_PATH": str(tmp_path / "uploads"),
        "DATA_DIR": str(tmp_path / "data"),
        "JWT_SECRET": "webhook-node-secret-0123456789abcdef",
        "WEBHOOK_URL": receiver.url,
        "WEBHOOK_SECRET": SECRET,
    }


def node_token(user: str) -> str:
    import time

    import jwt

    claims = {"sub": user, "exp": int(time.time()) + 600}
    return jwt.encode(claims, "webhook-node-secret-0123456789abcdef", algorithm="HS256")


def test_an_event_committed_before_the_node_is_killed_is_delivered_after_restart(
    tmp_path: Path, receiver: WebhookReceiver, postgres_url: str
) -> None:
    env = node_env(postgres_url, tmp_path, receiver)
    receiver.refusing = True  # so the events are still in the outbox when the node dies
    node = Node(env=env, workdir=tmp_path).start()
    try:
        upload_id = upload_video(node.base_url, node_token("alice"), b"z" * 100)
        receiver.wait_for_refusals(1)
    finally:
        node.kill()  # SIGKILL: no shutdown, nothing flushed by the process
    receiver.refusing = False
    restarted = Node(env=env, workdir=tmp_path).start()
    try:
        deliveries = receiver.wait_for(2)
    finally:
        restarted.stop()
    assert types_by_upload(deliveries) == {upload_id: ["video.upload_created", "video.completed"]}
    assert len({delivery.id for delivery in deliveries}) == 2


def test_two_nodes_dispatching_at_once_deliver_each_event_once(
    tmp_path: Path, receiver: WebhookReceiver, postgres_url: str
) -> None:
    env = node_env(postgres_url, tmp_path, receiver)
    receiver.refusing = True
    nodes = [Node(env=env, workdir=tmp_path).start() for _ in range(2)]
    try:
        token = node_token("alice")
        uploads = [upload_video(nodes[i % 2].base_url, token, b"w" * 50) for i in range(10)]
        receiver.wait_for_refusals(2)
        receiver.refusing = False
        deliveries = receiver.wait_for(20)
    finally:
        for node in nodes:
            node.stop()
    assert len({delivery.id for delivery in deliveries}) == len(deliveries) == 20
    assert set(types_by_upload(deliveries)) == set(uploads)


def test_failed_deliveries_are_listed_and_sent_again_on_request(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'hooks.db'}"
    env = {**node_env(database_url, tmp_path, receiver), "WEBHOOK_RETRY_HOURS": "0.0003"}
    receiver.refusing = True  # for longer than the retry window (about a second)
    node = Node(env=env, workdir=tmp_path).start()
    try:
        upload_video(node.base_url, node_token("alice"), b"v" * 10)

        def command(*args: str) -> str:
            environment = {**os.environ, **env}
            done = subprocess.run(
                [sys.executable, "-m", "video_upload", "webhooks", *args],
                env=environment,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        def failed_events() -> int:
            return command("list", "--status", "failed").count("video.")

        # tries with backoff 1 s, 2 s... until the window of about a second closes
        assert eventually_equal(failed_events, 2, timeout=30) == 2
        listed = command("list", "--status", "failed")
        assert listed.count("video.upload_created") == 1
        assert listed.count("video.completed") == 1
        receiver.refusing = False
        assert command("retry").strip() == "2 failed deliveries will be sent again"
        assert {verified(delivery)["type"] for delivery in receiver.wait_for(2)} == {
            "video.upload_created",
            "video.completed",
        }
    finally:
        node.stop()


def test_webhook_url_without_a_secret_is_refused_at_start(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from video_upload.config import Settings

    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        Settings(_env_file=None, data_dir=tmp_path, webhook_url="http://127.0.0.1:9/hooks")  # type: ignore[call-arg]
