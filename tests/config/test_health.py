"""/health checks each backing service; /health/live is always 200."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = {"database", "cache", "broker", "channel_layer"}


def test_health_reports_every_check_healthy(api):
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert set(body["checks"]) == CHECKS
    for check in body["checks"].values():
        assert check["status"] == "healthy"
        assert check["latency_ms"] >= 0
    assert response["Cache-Control"] == "no-store"


def test_health_is_503_when_redis_is_unreachable(api, settings):
    if not settings.REDIS_URL:
        pytest.skip("embedded mode has no Redis to lose")
    dead = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = dead
    settings.BROKER_URL = dead
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "x", "CONFIG": {"hosts": [dead]}}}
    response = api.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "healthy"
    assert {body["checks"][c]["status"] for c in ("cache", "broker", "channel_layer")} == {"unhealthy"}


def test_liveness_is_always_ok(api):
    response = api.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
