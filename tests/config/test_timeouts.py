"""REQUEST_TIMEOUT_S: 504 request_timeout and the view cancelled; long polls and streams exempt."""

import pytest
from django.test import AsyncClient, RequestFactory

from config.middleware import timeout_exempt
from tests.config import urls as test_urls

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.config.urls")]


@pytest.fixture(autouse=True)
def _short_timeout(settings):
    settings.REQUEST_TIMEOUT_S = 0.05
    test_urls.events.clear()


async def test_slow_request_answers_504_and_the_view_is_cancelled():
    response = await AsyncClient().get("/api/v1/_test/slow?s=5")
    assert response.status_code == 504
    assert response.json() == {
        "error": "request_timeout",
        "message": "The request took longer than 0.05 s and was cancelled.",
        "details": {"timeout_s": 0.05},
    }
    assert test_urls.events == ["started", "cancelled"]
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "X-Request-ID" in response


async def test_request_within_the_limit_is_untouched(settings):
    settings.REQUEST_TIMEOUT_S = 5
    response = await AsyncClient().get("/api/v1/_test/slow?s=0")
    assert response.status_code == 200
    assert test_urls.events == ["started", "finished"]


async def test_long_poll_is_exempt():
    response = await AsyncClient().get("/api/v1/videos/1/status?s=0.2&wait=1")
    assert response.status_code == 200
    assert test_urls.events == ["started", "finished"]


async def test_streamed_body_may_take_longer_than_the_limit():
    response = await AsyncClient().get("/api/v1/_test/stream")
    assert response.status_code == 200
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert body == b'{"row": 0}\n{"row": 1}\n{"row": 2}\n'


async def test_zero_disables_the_limit(settings):
    settings.REQUEST_TIMEOUT_S = 0
    response = await AsyncClient().get("/api/v1/_test/slow?s=0.1")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "exempt"),
    [
        ("POST", "/api/v1/projects/3/videos", True),
        ("POST", "/api/v1/test-sessions/9/detections", True),
        ("POST", "/api/v1/users/bulk", True),
        ("GET", "/api/v1/videos/4/status", True),
        ("GET", "/api/v1/projects/3/videos", False),
        ("GET", "/api/v1/test-sessions/9/detections", False),
        ("POST", "/api/v1/projects", False),
    ],
)
def test_exempt_routes(method, path, exempt):
    request = RequestFactory().generic(method, path)
    assert timeout_exempt(request) is exempt
