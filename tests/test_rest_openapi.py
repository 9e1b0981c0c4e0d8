"""The OpenAPI document: every REST and tus operation with its schemas, headers, error answers
and bearer security; the interactive docs page.

Every test runs against a live server on each database x store back end, but those marked
`any_backend`, which run on one (see conftest).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.rest import (
    API,
    COMPLETE,
)

# -- OpenAPI -------------------------------------------------------------------------------

REST_OPERATIONS: list[tuple[str, str, str, str | None, set[int]]] = [
    # method, path, success status, success schema, documented error statuses
    ("post", f"{API}/videos/upload/init", "201", "UploadInitOut", {400, 403, 404, 413, 415}),
    ("get", f"{API}/videos/upload/{{upload_id}}/status", "200", "UploadStatus", {403, 404}),
    ("post", f"{API}/videos/upload/complete", "200", "VideoOut", {403, 404, 409}),
    ("delete", f"{API}/videos/upload/{{upload_id}}", "204", None, {403, 404}),
    ("post", f"{API}/sessions", "201", "SessionOut", set()),
    ("get", f"{API}/sessions/{{session_id}}", "200", "SessionOut", {403, 404}),
    ("get", f"{API}/sessions/{{session_id}}/videos", "200", "VideoOut", {403, 404}),
    ("get", f"{API}/videos/{{video_id}}", "200", "VideoOut", {403, 404}),
    ("get", f"{API}/videos/{{video_id}}/content", "200", None, {403, 404, 416}),
]


def schema_refs(schema: Any) -> set[str]:
    """Every component a schema fragment refers to, however deeply nested."""
    if isinstance(schema, dict):
        found = {str(schema["$ref"]).rsplit("/", 1)[-1]} if "$ref" in schema else set()
        for value in schema.values():
            found |= schema_refs(value)
        return found
    if isinstance(schema, list):
        return set().union(*(schema_refs(item) for item in schema))
    return set()


@pytest.mark.any_backend
def test_openapi_documents_every_rest_endpoint_with_schemas_and_error_responses(
    client: httpx.Client,
) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    schemas = document["components"]["schemas"]
    assert {"code", "message"} <= set(schemas["ErrorDetail"]["required"])
    assert schema_refs(schemas["ErrorResponse"]) == {"ErrorDetail"}
    assert {"session_id", "filename", "file_size", "duration_seconds"} <= set(
        schemas["UploadInit"]["required"]
    )
    assert {"upload_id", "upload_url", "expires_at", "chunk_size"} <= set(
        schemas["UploadInitOut"]["properties"]
    )
    assert set(schemas["UploadComplete"]["required"]) == {"upload_id"}

    for method, path, success, success_schema, errors in REST_OPERATIONS:
        operation = document["paths"][path][method]
        responses = operation["responses"]
        assert success in responses, (method, path)
        if success_schema is not None:
            assert success_schema in schema_refs(responses[success]), (method, path)
        for status in {401, 422} | errors:
            assert str(status) in responses, (method, path, status)
            assert schema_refs(responses[str(status)]) == {"ErrorResponse"}, (method, path, status)

    init_op = document["paths"][f"{API}/videos/upload/init"]["post"]
    assert schema_refs(init_op["requestBody"]) == {"UploadInit"}
    complete_op = document["paths"][COMPLETE]["post"]
    assert schema_refs(complete_op["requestBody"]) == {"UploadComplete"}
    content = document["paths"][f"{API}/videos/{{video_id}}/content"]["get"]["responses"]
    assert "206" in content


TUS_OPERATIONS = [
    # method, path, success, request headers documented, statuses beyond 401 and 412
    (
        "post",
        "/api/v1/videos/tus",
        "201",
        {"Upload-Length", "Upload-Metadata"},
        {400, 413, 460, 507},
    ),
    ("post", "/api/v1/videos/tus/{upload_id}", "201", {"Upload-Length"}, {404, 409, 460}),
    ("head", "/api/v1/videos/tus/{upload_id}", "200", set(), {403, 404, 410}),
    ("patch", "/api/v1/videos/tus/{upload_id}", "204", {"Upload-Offset"}, {409, 415, 460, 507}),
    ("delete", "/api/v1/videos/tus/{upload_id}", "204", set(), {403, 404}),
]


@pytest.mark.any_backend
def test_openapi_documents_the_tus_endpoints_headers_and_answers(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for method, path, success, headers, errors in TUS_OPERATIONS:
        operation = document["paths"][path][method]
        responses = operation["responses"]
        assert success in responses, (method, path)
        for status in {401, 412} | errors:
            assert "text/plain" in responses[str(status)]["content"], (method, path, status)
        assert "422" not in responses, (method, path)  # FastAPI's JSON 422 is never sent here
        documented = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
        assert documented["Tus-Resumable"]["required"] is True, (method, path)
        assert headers <= set(documented), (method, path)
    patch = document["paths"]["/api/v1/videos/tus/{upload_id}"]["patch"]
    assert list(patch["requestBody"]["content"]) == ["application/offset+octet-stream"]


@pytest.mark.any_backend
def test_openapi_requires_the_bearer_token_on_every_api_operation(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    unprotected = [
        (method, path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/") and operation.get("security") != [{"bearerAuth": []}]
    ]
    assert unprotected == []


@pytest.mark.any_backend
def test_docs_page_is_served(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
