"""Cache-Control per endpoint class (one table) and ETag/304 on every detail read."""

import pytest
from django.test import RequestFactory

from config.caching import IMMUTABLE, NO_STORE, READ, REVALIDATE, etag_matches, policy_for
from videos.storage import sign_media

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("GET", "/api/v1/videos/7/file", 200, IMMUTABLE),
        ("GET", "/api/v1/videos/7/file", 206, IMMUTABLE),
        ("GET", "/api/v1/videos/7/thumbnail?sig=abc", 200, IMMUTABLE),
        ("GET", "/api/v1/videos/7/thumbnail", 200, REVALIDATE),
        ("GET", "/api/v1/videos/7/status?wait=5", 200, NO_STORE),
        ("GET", "/api/v1/videos/7", 200, READ),
        ("HEAD", "/api/v1/videos/7", 200, READ),
        ("GET", "/api/v1/projects", 200, READ),
        ("GET", "/api/v1/users/3", 200, READ),
        ("GET", "/api/v1/videos/7", 304, READ),
        ("GET", "/api/v1/videos/7", 404, NO_STORE),
        ("GET", "/api/v1/projects", 429, NO_STORE),
        ("POST", "/api/v1/projects", 201, NO_STORE),
        ("PATCH", "/api/v1/projects/3", 200, NO_STORE),
        ("GET", "/health", 200, NO_STORE),
        ("GET", "/health/live", 200, NO_STORE),
        ("GET", "/metrics", 200, NO_STORE),
        ("GET", "/admin/", 200, None),
        ("GET", "/static/x.css", 200, None),
    ],
)
def test_policy_table(method, path, status, expected):
    assert policy_for(RequestFactory().generic(method, path), status) == expected


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        ('"a"', '"a"', True),
        ('W/"a"', '"a"', True),
        ('"a"', 'W/"a"', True),
        ('"b", W/"a"', '"a"', True),
        ("*", '"a"', True),
        ('"b"', '"a"', False),
        ("garbage", '"a"', False),
    ],
)
def test_if_none_match_uses_weak_comparison(header, etag, expected):
    assert etag_matches(header, etag) is expected


def _revalidates(client, url: str) -> None:
    """200 with an ETag and the read policy; the same ETag back → 304, empty, same caching headers."""
    first = client.get(url)
    assert first.status_code == 200, first.content
    assert first["Cache-Control"] == READ
    assert "Authorization" in first["Vary"]
    etag = first["ETag"]
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == READ
    assert "Content-Type" not in again
    assert again["RateLimit-Limit"] == first["RateLimit-Limit"]


def test_every_detail_read_answers_304(user_api, user, project, video, session):
    for url in (
        f"/api/v1/projects/{project.pk}",
        f"/api/v1/videos/{video.pk}",
        f"/api/v1/test-sessions/{session.pk}",
        f"/api/v1/users/{user.pk}",
        "/api/v1/auth/me",
    ):
        _revalidates(user_api, url)


def test_list_reads_answer_304_too(user_api, project, video, session):
    for url in (
        "/api/v1/projects",
        f"/api/v1/projects/{project.pk}/videos",
        f"/api/v1/videos/{video.pk}/ground-truth",
        f"/api/v1/videos/{video.pk}/test-sessions",
    ):
        _revalidates(user_api, url)


def test_changed_resource_gets_a_new_etag(user_api, project):
    url = f"/api/v1/projects/{project.pk}"
    etag = user_api.get(url)["ETag"]
    assert user_api.patch(url, {"name": "Renamed"}, format="json")["Cache-Control"] == NO_STORE
    changed = user_api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["name"] == "Renamed"
    assert changed["ETag"] != etag


def test_compressed_read_revalidates_with_its_weak_etag(user_api, video):
    url = f"/api/v1/videos/{video.pk}/ground-truth"
    first = user_api.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert first["Content-Encoding"] == "gzip"
    assert first["ETag"].startswith('W/"')
    again = user_api.get(url, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert "Accept-Encoding" in again["Vary"]


def test_errors_and_writes_are_not_stored(user_api, api):
    assert user_api.get("/api/v1/projects/999999")["Cache-Control"] == NO_STORE
    assert api.get("/api/v1/projects")["Cache-Control"] == NO_STORE
    created = user_api.post("/api/v1/projects", {"name": "New"}, format="json")
    assert created.status_code == 201
    assert created["Cache-Control"] == NO_STORE
    assert "ETag" not in created


def test_file_keeps_its_content_hash_etag_and_range_responses_are_not_rewritten(user_api, video):
    url = f"/api/v1/videos/{video.pk}/file"
    whole = user_api.get(url)
    assert whole["ETag"] == f'"{video.sha256}"'
    assert whole["Cache-Control"] == IMMUTABLE
    part = user_api.get(url, HTTP_RANGE="bytes=0-9", HTTP_ACCEPT_ENCODING="gzip")
    assert part.status_code == 206
    assert part["ETag"] == f'"{video.sha256}"'
    assert part["Content-Range"] == f"bytes 0-9/{video.size_bytes}"
    assert "Content-Encoding" not in part
    assert user_api.get(url, HTTP_IF_NONE_MATCH=f'"{video.sha256}"').status_code == 304


def test_thumbnail_is_immutable_only_through_a_signed_url(api, user_api, video):
    signed = api.get(f"/api/v1/videos/{video.pk}/thumbnail?sig={sign_media(video.pk, 'thumbnail')}")
    assert signed.status_code == 200
    assert signed["Cache-Control"] == IMMUTABLE
    assert "Content-Encoding" not in user_api.get(f"/api/v1/videos/{video.pk}/thumbnail", HTTP_ACCEPT_ENCODING="gzip")
    assert user_api.get(f"/api/v1/videos/{video.pk}/thumbnail")["Cache-Control"] == REVALIDATE


def test_health_and_live_state_are_never_stored(api, user_api, video):
    assert api.get("/health/live")["Cache-Control"] == NO_STORE
    status = user_api.get(f"/api/v1/videos/{video.pk}/status")
    assert status.status_code == 200
    assert status["Cache-Control"] == NO_STORE
    assert "ETag" not in status
