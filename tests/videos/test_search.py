"""GET /videos?search=&status=: the caller's videos across projects, case-insensitive, cursor pages, throttled."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import UserFactory
from videos.models import Project, Video

pytestmark = pytest.mark.django_db
T0 = timezone.now() - timedelta(days=1)


def _videos(owner, names: list[str], *, project_name: str = "p", status: str = "queued", start: int = 0) -> list[int]:
    project, _ = Project.objects.get_or_create(owner=owner, name=project_name)
    return [
        Video.objects.create(
            project=project,
            original_name=name,
            file=f"videos/{name}",
            size_bytes=1,
            content_type="video/mp4",
            sha256="0" * 64,
            status=status,
            created_at=T0 + timedelta(seconds=start + i),
        ).pk
        for i, name in enumerate(names)
    ]


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [v["id"] for v in response.json()["results"]]


def test_search_matches_the_callers_names_across_projects_case_insensitively(user_api, user):
    a = _videos(user, ["Street-Cam.mp4", "garden.mov"], project_name="one")
    b = _videos(user, ["STREETLIGHT.webm"], project_name="two", start=10)
    _videos(UserFactory(), ["street-foreign.mp4"], project_name="one")
    assert _ids(user_api.get("/api/v1/videos", {"search": "street"})) == [b[0], a[0]]
    assert _ids(user_api.get("/api/v1/videos", {"search": "  CAM "})) == [a[0]]
    assert _ids(user_api.get("/api/v1/videos", {"search": "nothing"})) == []
    assert _ids(user_api.get("/api/v1/videos")) == [b[0], a[1], a[0]]


def test_staff_search_all_videos(staff_api, user):
    mine = _videos(user, ["street.mp4"])
    other = _videos(UserFactory(), ["Street2.mp4"], start=5)
    assert _ids(staff_api.get("/api/v1/videos", {"search": "street"})) == [other[0], mine[0]]


def test_like_wildcards_in_the_text_match_literally(user_api, user):
    ids = _videos(user, ["100%_done.mp4", "100x.mp4", "a_b.mp4", "ab.mp4"])
    assert _ids(user_api.get("/api/v1/videos", {"search": "100%"})) == [ids[0]]
    assert _ids(user_api.get("/api/v1/videos", {"search": "a_b"})) == [ids[2]]


def test_status_filter_combines_with_search(user_api, user):
    done = _videos(user, ["cam-a.mp4", "cam-b.mp4"], status="completed")
    _videos(user, ["cam-c.mp4"], status="failed", start=10)
    assert _ids(user_api.get("/api/v1/videos", {"search": "cam", "status": "completed"})) == [done[1], done[0]]
    assert len(_ids(user_api.get("/api/v1/videos", {"status": "failed"}))) == 1
    refused = user_api.get("/api/v1/videos", {"status": "done"})
    assert refused.status_code == 422
    assert refused.json()["error"] == "validation_error"


def test_cursor_pages_walk_every_match_once_newest_first(user_api, user):
    project = Project.objects.create(owner=user, name="p")
    tied = T0 + timedelta(hours=1)  # Equal timestamps: the id breaks the tie, nothing repeats or goes missing.
    ids = [
        Video.objects.create(
            project=project,
            original_name=f"cam{i}.mp4",
            file="v",
            size_bytes=1,
            content_type="video/mp4",
            sha256="0",
            created_at=tied if i % 2 else T0 + timedelta(seconds=i),
        ).pk
        for i in range(7)
    ]
    seen, url = [], "/api/v1/videos?search=cam&page_size=2"
    while url:
        response = user_api.get(url)
        seen += _ids(response)
        url = response.json()["next"]
        if len(seen) == 2:  # Inserted between pages, older than all: listed once, last.
            _videos(user, ["cam-new.mp4"], start=-100)
    expected = sorted(ids, key=lambda pk: (Video.objects.get(pk=pk).created_at, pk), reverse=True)
    assert seen == [*expected, Video.objects.get(original_name="cam-new.mp4").pk]


def test_a_page_costs_the_same_queries_whatever_its_size(user_api, user):
    _videos(user, [f"cam{i}.mp4" for i in range(30)])
    counts = []
    for size in (1, 30):
        with CaptureQueriesContext(connection) as queries:
            assert len(_ids(user_api.get("/api/v1/videos", {"search": "cam", "page_size": size}))) == size
        counts.append(len(queries))
    assert counts == [1, 1]  # The page only: the bearer's identity comes from the token claims.


def test_search_has_its_own_rate_limit_scope(user_api, user, settings):
    settings.RATE_LIMITS = "search=2/m,general=100/m"
    _videos(user, ["cam.mp4"])
    for _ in range(2):
        assert user_api.get("/api/v1/videos", {"search": "cam"}).status_code == 200
    refused = user_api.get("/api/v1/videos", {"search": "cam"})
    assert refused.status_code == 429
    assert refused.json()["details"]["scope"] == "search"
    assert refused["RateLimit-Limit"] == "2"
    listing = user_api.get("/api/v1/videos")  # No search text: the general scope.
    assert listing.status_code == 200
    assert listing["RateLimit-Limit"] == "100"


def test_search_needs_a_token(api):
    assert api.get("/api/v1/videos", {"search": "x"}).status_code == 401
