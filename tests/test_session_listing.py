"""Listing one's practice sessions, a page at a time, and only one's own."""

from __future__ import annotations

import httpx

from tests.conftest import User


def test_sessions_are_listed_oldest_first_a_page_at_a_time_and_only_the_owners(
    client: httpx.Client, user: User, other_user: User
) -> None:
    names = [f"take {index}" for index in range(5)]
    for name in names:
        assert client.post("/api/v1/sessions", json={"name": name}, headers=user.bearer).is_success
    client.post("/api/v1/sessions", json={"name": "not yours"}, headers=other_user.bearer)
    seen: list[str] = []
    url = "/api/v1/sessions?limit=2"
    pages = 0
    while url:
        page = client.get(url, headers=user.bearer)
        assert page.status_code == 200, page.text
        assert len(page.json()) <= 2
        seen += [session["name"] for session in page.json()]
        pages += 1
        link = page.headers.get("Link")
        url = link.split(">")[0].lstrip("<") if link else ""
    assert seen == names
    assert pages == 3
