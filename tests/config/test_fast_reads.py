"""Hot reads: the zero-hop path (async pool, lean handler) answers byte for byte as the ORM path does."""

from datetime import timedelta

import httpx
import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings as django_settings
from django.core import signing
from django.utils import timezone

from accounts.models import User
from config import adb, cache
from config.handler import LeanASGIHandler
from tests.conftest import tokens_for
from tests.factories import UserFactory
from videos.models import GroundTruthBox, Project, Video

pytestmark = pytest.mark.skipif(
    not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="the fast path exists on PostgreSQL only (SQLite takes the ORM path)",
)


@pytest.fixture(autouse=True)
def _fixed_signatures(monkeypatch):
    """Signed media URLs embed the current second; freeze it so two requests can be compared byte for byte."""
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: "fixed")


@pytest.fixture
def world(transactional_db, settings):
    settings.RATE_LIMIT_ENABLED = False
    owner, other = UserFactory(), UserFactory()
    staff = UserFactory(is_staff=True)
    project = Project.objects.create(owner=owner, name="cams")
    foreign = Project.objects.create(owner=other, name="theirs")
    now = timezone.now()
    videos = [
        Video.objects.create(
            project=project,
            original_name=f"clip_{i}%.mp4",
            file=f"videos/{i}.mp4",
            size_bytes=1000 + i,
            content_type="video/mp4",
            sha256=f"{i:064d}",
            status="completed" if i % 3 else "queued",
            ground_truth_generated=bool(i % 2),
            thumbnail=f"thumbs/{i}.jpg" if i % 2 else "",
            duration_s=1.5 * i,
            width=640,
            created_at=now - timedelta(seconds=i // 2),  # pairs share a timestamp: the id breaks ties
        )
        for i in range(7)
    ]
    Video.objects.create(
        project=foreign, original_name="x.mp4", file="videos/x.mp4", size_bytes=1, content_type="video/mp4"
    )
    boxes = GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video=videos[1], frame=i // 3, timestamp_ms=40 * (i // 3), label="motion", x=i, y=2, w=3, h=4)
        for i in range(25)
    )
    joined = timezone.now() - timedelta(days=3)
    for i, plan in enumerate(["free", "pro", "enterprise", "pro", "pro"]):
        UserFactory(username=f"zed_{i}", plan=plan, is_active=i != 3, date_joined=joined)
    inactive_staff = UserFactory(is_staff=True, is_active=True)
    tokens = {name: tokens_for(u)["access"] for name, u in [("owner", owner), ("other", other), ("staff", staff)]}
    tokens["inactive_staff"] = tokens_for(inactive_staff)["access"]
    inactive_staff.is_active = False
    inactive_staff.save()
    boxes_in_order = [b.pk for b in sorted(boxes, key=lambda b: (b.frame, b.pk))]
    return {"project": project, "foreign": foreign, "videos": videos, "tokens": tokens, "boxes": boxes_in_order}


@pytest.fixture
def handler(settings):
    """The production stack: the lean handler and the whole (hop-free) MIDDLEWARE."""
    return LeanASGIHandler()


def _forget_cached_answers() -> None:
    """Cached endpoints (dashboard, search) must be computed by each path, not served from the other's entry."""
    cache.bump(cache.GLOBAL, *(cache.owner_scope(u.pk) for u in User.objects.all()))


async def _get(handler, url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=handler), base_url="http://testserver") as c:
        return await c.get(url, headers=headers)


async def both(handler, settings, url: str, token: str | None) -> tuple[httpx.Response, list[str]]:
    """The fast path's answer (and its statements), after checking the ORM path gives the very same bytes."""
    settings.FAST_READS = True
    try:
        with adb.capture() as statements:
            fast = await _get(handler, url, token)
    finally:
        await adb.close_pool()
    settings.FAST_READS = False
    await sync_to_async(_forget_cached_answers)()
    orm = await _get(handler, url, token)
    assert (fast.status_code, fast.content) == (orm.status_code, orm.content), url
    return fast, statements


async def walk(handler, settings, url: str, token: str) -> list[dict]:
    """Follow `next` links to the end, then one `previous` link back, comparing both paths on each page."""
    pages = []
    while url:
        response, statements = await both(handler, settings, url, token)
        assert response.status_code == 200, response.content
        assert len(statements) == 1  # one statement per page, access check included
        pages.append(response.json())
        url = pages[-1]["next"]
    if len(pages) > 1:
        back, _ = await both(handler, settings, pages[-1]["previous"], token)
        assert back.json()["results"] == pages[-2]["results"]
    return pages


async def test_video_pages_match_the_orm_path(world, handler, settings):
    pid, token = world["project"].pk, world["tokens"]["owner"]
    for query in ("", "&status=completed", "&ground_truth_generated=true", "&status=queued&ground_truth_generated=0"):
        pages = await walk(handler, settings, f"/api/v1/projects/{pid}/videos?page_size=2{query}", token)
        assert pages[0]["results"]
    pages = await walk(handler, settings, f"/api/v1/projects/{pid}/videos?page_size=3", world["tokens"]["staff"])
    assert [v["id"] for p in pages for v in p["results"]] == [
        v.pk for v in sorted(world["videos"], key=lambda v: (v.created_at, v.pk), reverse=True)
    ]


async def test_video_list_access_and_empty_pages_match(world, handler, settings):
    pid, fid, tokens = world["project"].pk, world["foreign"].pk, world["tokens"]
    for url, token, status in [
        (f"/api/v1/projects/{fid}/videos", tokens["owner"], 404),  # foreign
        (f"/api/v1/projects/{pid}/videos", tokens["other"], 404),
        (f"/api/v1/projects/{pid}/videos?status=failed", tokens["owner"], 200),  # empty page
        ("/api/v1/projects/999999/videos", tokens["staff"], 404),
        (f"/api/v1/projects/{pid}/videos?cursor=bad", tokens["owner"], 400),
        (f"/api/v1/projects/{pid}/videos", None, 401),
    ]:
        response, _ = await both(handler, settings, url, token)
        assert response.status_code == status, (url, response.content)


async def test_video_detail_matches_including_foreign_and_staff(world, handler, settings):
    tokens = world["tokens"]
    for video in world["videos"][:3]:
        for who in ("owner", "staff"):
            response, statements = await both(handler, settings, f"/api/v1/videos/{video.pk}", tokens[who])
            assert response.status_code == 200 and len(statements) == 1
            assert response.headers["ETag"].startswith('W/"v')
    response, _ = await both(handler, settings, f"/api/v1/videos/{world['videos'][0].pk}", tokens["other"])
    assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_ground_truth_pages_match(world, handler, settings):
    video = world["videos"][1]
    pages = await walk(
        handler, settings, f"/api/v1/videos/{video.pk}/ground-truth?page_size=10", world["tokens"]["owner"]
    )
    assert [len(p["results"]) for p in pages] == [10, 10, 5]
    assert [b["id"] for p in pages for b in p["results"]] == world["boxes"]
    for url, who in [(f"/api/v1/videos/{video.pk}/ground-truth", "other"), ("/api/v1/videos/0/ground-truth", "staff")]:
        response, _ = await both(handler, settings, url, world["tokens"][who])
        assert response.status_code == 404


async def test_user_list_matches_drf_for_filters_orderings_and_refusals(world, handler, settings):
    tokens = world["tokens"]
    for query in (
        "page_size=2",
        "plan=pro&page_size=1",
        "is_active=false",
        "is_active=true&plan=pro&ordering=username&page_size=1",
        "search=ZED_&ordering=-email&page_size=2",
        "search=d_1",
        "ordering=id&page_size=3",
    ):
        pages = await walk(handler, settings, f"/api/v1/users?{query}", tokens["staff"])
        assert pages[0]["results"], query
    for query, who, status in [
        ("", "owner", 403),
        ("", "inactive_staff", 401),
        ("", None, 401),
        ("ordering=password", "staff", 400),
        ("plan=gold", "staff", 400),
        ("search=nobody-matches", "staff", 200),
    ]:
        response, _ = await both(handler, settings, f"/api/v1/users?{query}", tokens.get(who or ""))
        assert response.status_code == status, (query, who, response.content)


async def test_dashboard_and_project_stats_match_the_orm_path(world, handler, settings):
    pid, fid, tokens = world["project"].pk, world["foreign"].pk, world["tokens"]
    for url, who, status in [
        ("/api/v1/dashboard/stats?fresh=1", "owner", 200),
        ("/api/v1/dashboard/stats", "owner", 200),
        ("/api/v1/dashboard/stats?fresh=1", "staff", 200),
        (f"/api/v1/projects/{pid}/stats?fresh=1", "owner", 200),
        (f"/api/v1/projects/{pid}/stats", "staff", 200),
        (f"/api/v1/projects/{fid}/stats?fresh=1", "owner", 404),
    ]:
        response, statements = await both(handler, settings, url, tokens[who])
        assert response.status_code == status, (url, response.content)
        assert len(statements) == 1, url  # the access check is part of the one statement
    owner = (await both(handler, settings, "/api/v1/dashboard/stats?fresh=1", tokens["owner"]))[0].json()
    assert (owner["project_count"], owner["video_count"], owner["ground_truth_count"]) == (1, 7, 25)


async def test_search_pages_match_the_orm_path(world, handler, settings):
    tokens = world["tokens"]
    for query, who in [
        ("search=CLIP_&page_size=2", "owner"),  # `_` and `%` in names are matched literally
        ("search=%25&status=completed&page_size=3", "owner"),
        ("page_size=4", "staff"),
        ("search=x.mp4", "staff"),
    ]:
        pages = await walk(handler, settings, f"/api/v1/videos?{query}", tokens[who])
        assert pages[0]["results"], query
    response, _ = await both(handler, settings, "/api/v1/videos?search=clip", tokens["other"])
    assert response.json()["results"] == []  # another user's search never shows foreign videos


@pytest.fixture
def hops(monkeypatch):
    """Every sync_to_async call, by the function it runs."""
    seen: list[object] = []
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        seen.append(self.func)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    return seen


async def test_hot_reads_take_no_thread_hop(world, handler, settings, hops):
    pid, video, tokens = world["project"].pk, world["videos"][1], world["tokens"]
    owner_scope = cache.owner_scope(world["project"].owner_id)
    # (url, token, scope to invalidate before the measured request or None, SQL statements it runs)
    urls = [
        (f"/api/v1/projects/{pid}/videos?status=completed", tokens["owner"], None, 1),
        (f"/api/v1/videos/{video.pk}", tokens["owner"], None, 1),
        (f"/api/v1/videos/{video.pk}/ground-truth", tokens["owner"], owner_scope, 1),  # miss: one statement
        (f"/api/v1/videos/{video.pk}/ground-truth", tokens["owner"], None, 0),  # hit: Redis only
        ("/api/v1/users?plan=pro&is_active=true&search=zed&ordering=username", tokens["staff"], None, 1),
        ("/api/v1/dashboard/stats?fresh=1", tokens["owner"], None, 1),
        (f"/api/v1/projects/{pid}/stats?fresh=1", tokens["owner"], None, 1),
        ("/api/v1/dashboard/stats", tokens["owner"], owner_scope, 1),  # cache miss: Redis, then one statement
        ("/api/v1/dashboard/stats", tokens["owner"], None, 0),  # cache hit: Redis only
        ("/api/v1/videos?search=clip&status=completed", tokens["owner"], owner_scope, 1),
        ("/api/v1/videos?search=clip&status=completed", tokens["owner"], None, 0),
    ]
    try:
        for url, token, invalidate, expected in urls:
            await _get(handler, url, token)  # the first request of a shape may compile it in a thread
            if invalidate:
                cache.bump(invalidate)
            hops.clear()
            with adb.capture() as statements:
                response = await _get(handler, url, token)
            assert response.status_code == 200
            assert hops == [], (url, hops)
            assert len(statements) == expected, (url, statements)
    finally:
        await adb.close_pool()


async def test_orm_path_still_closes_its_connections_in_its_thread(world, handler, settings, hops):
    settings.FAST_READS = False
    response = await _get(handler, f"/api/v1/videos/{world['videos'][0].pk}", world["tokens"]["owner"])
    assert response.status_code == 200
    # The ORM read hopped; the request's thread then ran request_finished (connection cleanup) via response.close.
    assert getattr(hops[-1], "__name__", "") == "close"


async def test_an_unknown_sync_receiver_keeps_the_stock_hops(world, handler, settings, hops):
    from django.core.signals import request_finished

    calls = []

    def receiver(**kwargs):
        calls.append(kwargs["sender"])

    request_finished.connect(receiver)
    try:
        response = await _get(handler, f"/api/v1/videos/{world['videos'][0].pk}", world["tokens"]["owner"])
    finally:
        request_finished.disconnect(receiver)
        await adb.close_pool()
    assert response.status_code == 200
    assert calls == [LeanASGIHandler]
    assert getattr(hops[-1], "__name__", "") == "close"
