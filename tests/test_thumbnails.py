"""The thumbnail endpoint: a completed video's JPEG to its owner only, 404 JSON for a video
without one, and the OpenAPI document's thumbnail and probed fields. (That completion stores the
thumbnail is in test_video_probe_acceptance.py.)

The servers here probe (the shared fixtures turn probing off for the transport suites, which
upload random bytes) and allow videos of at most 3 seconds, on every database x store pair
(tests/support/probing.py).
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import User, new_user
from tests.support.live import LiveServer
from tests.support.probing import (
    API,
    Sample,
    complete,
    upload,
)

# fixtures, imported by name for pytest to find them
from tests.support.probing import http as http
from tests.support.probing import owner as owner
from tests.support.probing import probing as probing
from tests.support.probing import samples as samples

# -- the thumbnail endpoint -----------------------------------------------------------------


def test_the_thumbnail_is_refused_to_another_user_without_data(
    probing: LiveServer, http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    sent = upload(http, owner, samples["mp4"].data, filename="take.mp4", declared=2.0)
    assert complete(http, owner[0], sent.upload_id).status_code == 200
    stranger = new_user(probing)
    response = http.get(f"{API}/videos/{sent.video_id}/thumbnail", headers=stranger.bearer)
    assert response.status_code in {403, 404}
    assert response.headers["content-type"].startswith("application/json")
    assert b"\xff\xd8" not in response.content[:2]


def test_a_video_without_a_thumbnail_answers_404_json(
    http: httpx.Client, owner: tuple[User, str], samples: dict[str, Sample]
) -> None:
    user = owner[0]
    unfinished = upload(http, owner, samples["mp4"].data, filename="take.mp4", declared=2.0)
    rejected = upload(http, owner, samples["text named .mp4"].data, filename="n.mp4", declared=2)
    assert complete(http, user, rejected.upload_id).status_code == 422
    for video_id in (unfinished.video_id, rejected.video_id):
        response = http.get(f"{API}/videos/{video_id}/thumbnail", headers=user.bearer)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "thumbnail_not_found"


@pytest.mark.any_backend("probing")
def test_openapi_documents_the_thumbnail_and_the_probed_fields(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    operation = document["paths"][f"{API}/videos/{{video_id}}/thumbnail"]["get"]
    assert "image/jpeg" in operation["responses"]["200"]["content"]
    fields = document["components"]["schemas"]["VideoOut"]["properties"]
    assert {"duration_seconds", "container", "video_codec", "audio_codec", "has_thumbnail"} <= set(
        fields
    )
