"""One atomic limiter: exact counts under concurrency, per user else per IP, RateLimit-* headers."""

import asyncio

import pytest

from config import throttling

pytestmark = pytest.mark.django_db


async def test_concurrent_hits_let_exactly_the_limit_through(settings):
    settings.RATE_LIMITS = "auth=5/m"
    verdicts = await asyncio.gather(*(throttling.hit("auth", "ip-concurrent") for _ in range(100)))
    allowed = [v for v in verdicts if v.allowed]
    assert len(allowed) == 5
    assert sorted(v.remaining for v in allowed) == [0, 1, 2, 3, 4]
    refused = [v for v in verdicts if not v.allowed]
    assert len(refused) == 95
    assert all(1 <= v.reset_s <= 60 for v in refused)
    assert all(v.headers()["Retry-After"] == str(v.reset_s) for v in refused)


async def test_unknown_scope_is_not_limited(settings):
    settings.RATE_LIMITS = "auth=5/m"
    assert await throttling.hit("general", "ip-x") is None


def test_parse_rates_reads_every_unit():
    rates = throttling.parse_rates("auth=5/m,upload=2/h,search=30/s,general=100/d")
    assert rates == {
        "auth": throttling.Rate(5, 60),
        "upload": throttling.Rate(2, 3600),
        "search": throttling.Rate(30, 1),
        "general": throttling.Rate(100, 86400),
    }


def test_general_scope_counts_per_user_and_answers_429_with_headers(user_api, settings):
    settings.RATE_LIMITS = "general=3/m"
    statuses = [user_api.get("/api/v1/auth/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = user_api.get("/api/v1/auth/me")
    body = response.json()
    assert body["error"] == "rate_limited"
    assert body["details"]["scope"] == "general"
    assert response["RateLimit-Limit"] == "3"
    assert response["RateLimit-Remaining"] == "0"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["Retry-After"] == response["RateLimit-Reset"]


def test_successful_responses_carry_ratelimit_headers(user_api, settings):
    settings.RATE_LIMITS = "general=10/m"
    response = user_api.get("/api/v1/auth/me")
    assert response.status_code == 200
    assert response["RateLimit-Limit"] == "10"
    assert response["RateLimit-Remaining"] == "9"


def test_users_do_not_share_a_budget(db, settings):
    from rest_framework.test import APIClient

    from tests.conftest import bearer
    from tests.factories import UserFactory

    settings.RATE_LIMITS = "general=1/m"
    first, second = APIClient(), APIClient()
    first.credentials(**bearer(UserFactory()))
    second.credentials(**bearer(UserFactory()))
    assert first.get("/api/v1/auth/me").status_code == 200
    assert second.get("/api/v1/auth/me").status_code == 200
    assert first.get("/api/v1/auth/me").status_code == 429


def test_forwarded_for_is_ignored_without_trusted_proxies(api, settings):
    settings.RATE_LIMITS = "general=2/m"
    statuses = [api.get("/api/v1/auth/me", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(3)]
    assert statuses == [401, 401, 429]


def test_forwarded_for_is_used_behind_one_trusted_proxy(api, settings):
    settings.RATE_LIMITS = "general=1/m"
    settings.TRUSTED_PROXY_COUNT = 1
    assert api.get("/api/v1/auth/me", HTTP_X_FORWARDED_FOR="1.1.1.1, 2.2.2.2").status_code == 401
    # The client cannot pick its identity by prepending entries: only the proxy-appended one counts.
    assert api.get("/api/v1/auth/me", HTTP_X_FORWARDED_FOR="9.9.9.9, 2.2.2.2").status_code == 429
    assert api.get("/api/v1/auth/me", HTTP_X_FORWARDED_FOR="3.3.3.3").status_code == 401


def test_disabled_rate_limiting_adds_no_headers(user_api, settings):
    settings.RATE_LIMIT_ENABLED = False
    settings.RATE_LIMITS = "general=1/m"
    responses = [user_api.get("/api/v1/auth/me") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "RateLimit-Limit" not in responses[-1]


def test_non_api_paths_are_not_limited(api, settings):
    settings.RATE_LIMITS = "general=1/m"
    assert [api.get("/health/live").status_code for _ in range(3)] == [200, 200, 200]


async def test_hundred_concurrent_requests_against_five_per_minute_let_exactly_five_through():
    from django.test import AsyncClient

    client = AsyncClient()
    responses = await asyncio.gather(
        *(client.post("/api/v1/auth/token", {}, content_type="application/json") for _ in range(100))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [400] * 5 + [429] * 95  # auth=5/m (the default); passing ones fail validation
    passed = [r for r in responses if r.status_code != 429]
    assert sorted(r["RateLimit-Remaining"] for r in passed) == ["0", "1", "2", "3", "4"]
    assert all("Retry-After" not in r for r in passed)
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["error"] == "rate_limited"
        assert refused["RateLimit-Limit"] == "5"
        assert refused["RateLimit-Remaining"] == "0"
        assert 1 <= int(refused["Retry-After"]) <= 60
        assert refused["Retry-After"] == refused["RateLimit-Reset"]
