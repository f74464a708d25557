"""The hot lane answers its routes as the full stack does (status, headers, bytes), and steps aside otherwise."""

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from analytics import selectors
from config import adb, lane
from config.handler import LeanASGIHandler
from config.metrics import REQUEST_LATENCY
from tests.conftest import tokens_for
from tests.factories import UserFactory
from videos.models import Project

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = "/api/v1/dashboard/stats"
# Per-request values: the request id (generated) and the time taken.
VOLATILE = {"x-request-id", "x-process-time"}


@pytest.fixture(autouse=True)
async def _close_read_pool():
    """Each test runs on its own event loop: close the fast-read pool it opened (its connections are the loop's)."""
    yield
    await adb.close_pool()


@pytest.fixture
def world(settings):
    settings.RATE_LIMIT_ENABLED = False
    owner, staff = UserFactory(), UserFactory(is_staff=True)
    Project.objects.create(owner=owner, name="cams")
    return {"owner": tokens_for(owner)["access"], "staff": tokens_for(staff)["access"]}


@pytest.fixture
def handlers(monkeypatch):
    """(with the lane, without it): the same production handler, the second with an empty route table."""
    with_lane = LeanASGIHandler()
    without = LeanASGIHandler()
    without.lane.routes = {}
    monkeypatch.setattr(without.lane, "_route", lambda path, query: None)
    return with_lane, without


async def _get(handler, url: str, **headers: str) -> httpx.Response:
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=handler), base_url="http://testserver") as c:
        return await c.get(url, headers=headers)


def _comparable(response: httpx.Response, *skip: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    ignored = VOLATILE | set(skip)
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k not in ignored)
    return response.status_code, response.content, headers


async def _same(handlers, url: str, *skip: str, **headers: str) -> httpx.Response:
    """The lane's answer, after checking the full stack gives the same status, headers and bytes."""
    with_lane, without = handlers
    full = await _get(without, url, **headers)
    fast = await _get(with_lane, url, **headers)
    assert _comparable(fast, *skip) == _comparable(full, *skip)
    assert with_lane._resolved == {}, "the lane served it: no URL resolution"
    assert without._resolved != {}, "the full stack resolved it"
    return fast


@pytest.mark.parametrize("url", [DASHBOARD, DASHBOARD + "?fresh=1"])
@pytest.mark.parametrize("encoding", ["gzip", "br", "identity", ""])
@pytest.mark.parametrize("who", ["owner", "staff"])
async def test_lane_answers_like_the_full_stack(world, handlers, who, encoding, url):
    auth = f"Bearer {world[who]}"
    response = await _same(handlers, url, authorization=auth, accept_encoding=encoding)
    assert response.status_code == 200
    assert response.json()["project_count"] == (1 if who == "owner" else await sync_to_async(Project.objects.count)())
    assert response.headers["x-request-id"]
    assert {"etag", "cache-control", "vary", "x-frame-options", "x-content-type-options"} <= set(response.headers)


async def test_lane_answers_304_like_the_full_stack(world, handlers):
    auth = f"Bearer {world['owner']}"
    etag = (await _get(handlers[1], DASHBOARD, authorization=auth)).headers["etag"]
    response = await _same(handlers, DASHBOARD, authorization=auth, if_none_match=etag)
    assert response.status_code == 304
    assert response.content == b""


async def test_lane_echoes_a_safe_request_id(world, handlers):
    response = await _get(handlers[0], DASHBOARD, authorization=f"Bearer {world['owner']}", x_request_id="abc-123")
    assert response.headers["x-request-id"] == "abc-123"
    assert handlers[0]._resolved == {}


async def test_lane_counts_against_the_rate_limit_and_refuses_like_the_full_stack(world, handlers, settings):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMITS = "general=3/m"
    auth = f"Bearer {world['owner']}"
    first = await _same(handlers, DASHBOARD, "ratelimit-remaining", "ratelimit-reset", authorization=auth)
    assert first.status_code == 200
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("3", "1")
    last = await _get(handlers[0], DASHBOARD, authorization=auth)
    assert (last.status_code, last.headers["ratelimit-remaining"]) == (200, "0")  # the lane counts each hit
    refused = await _same(handlers, DASHBOARD, "ratelimit-reset", "retry-after", authorization=auth)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert refused.headers["cache-control"] == "no-store"


async def test_lane_shapes_errors_as_the_ninja_operation_does(world, handlers, monkeypatch):
    async def lost(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(selectors, "dashboard_stats_cached", lost)
    response = await _same(handlers, DASHBOARD, authorization=f"Bearer {world['owner']}")
    assert (response.status_code, response.json()["error"]) == (503, "service_unavailable")


async def test_lane_records_latency_under_the_route(world, handlers):
    labels = {"method": "GET", "route": DASHBOARD, "status": "200"}
    before = REQUEST_LATENCY.labels(**labels)._sum.get(), _count(labels)
    await _get(handlers[0], DASHBOARD, authorization=f"Bearer {world['owner']}")
    assert _count(labels) == before[1] + 1
    assert handlers[0]._resolved == {}


def _count(labels: dict[str, str]) -> float:
    samples = [s for metric in REQUEST_LATENCY.collect() for s in metric.samples]
    return next(s.value for s in samples if s.name.endswith("_count") and s.labels == labels)


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (DASHBOARD + "?fresh=true", {}),  # another spelling of a parameter: Ninja parses it
        (DASHBOARD + "?fresh=1&x=2", {}),  # a query string not in the table
        (DASHBOARD, {"cookie": "csrftoken=bad"}),  # CSRF and sessions read cookies
        (DASHBOARD, {"authorization": "Bearer not-a-token"}),  # the stack's 401
        (DASHBOARD, {"authorization": ""}),
    ],
)
async def test_lane_steps_aside_for_what_it_does_not_repeat(world, handlers, url, headers):
    with_lane, without = handlers
    headers = {"authorization": f"Bearer {world['owner']}", **headers}
    full = await _get(without, url, **headers)
    fast = await _get(with_lane, url, **headers)
    assert _comparable(fast, "set-cookie") == _comparable(full, "set-cookie")  # a fresh CSRF cookie each time
    assert with_lane._resolved != {}, "the full stack answered"


def test_every_lane_route_is_a_real_get_operation():
    from django.urls import resolve

    for path, _query in lane.ROUTES:
        assert resolve(path).route.startswith("api/v1/")
