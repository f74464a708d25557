"""X-Request-ID, X-Process-Time and the slow-request log, over both WSGI-style and ASGI clients."""

import json
import logging

import pytest
from django.test import AsyncClient

from config.logging import JsonFormatter, request_id_var

pytestmark = pytest.mark.django_db


def test_request_id_is_generated_when_absent(api):
    response = api.get("/health/live")
    assert len(response["X-Request-ID"]) == 32
    assert float(response["X-Process-Time"]) >= 0


def test_safe_request_id_is_echoed(api):
    response = api.get("/health/live", HTTP_X_REQUEST_ID="abc-123.trace:7")
    assert response["X-Request-ID"] == "abc-123.trace:7"


def test_unsafe_request_id_is_replaced(api):
    response = api.get("/health/live", HTTP_X_REQUEST_ID="bad id\nInjected: 1")
    assert response["X-Request-ID"] != "bad id\nInjected: 1"
    assert len(response["X-Request-ID"]) == 32


def test_error_responses_carry_request_headers_too(api):
    response = api.get("/api/v1/nowhere", HTTP_X_REQUEST_ID="rid-404")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "rid-404"
    assert "X-Process-Time" in response


async def test_headers_over_the_asgi_handler():
    response = await AsyncClient().get("/health/live", headers={"X-Request-ID": "asgi-1"})
    assert response.status_code == 200
    assert response["X-Request-ID"] == "asgi-1"
    assert "X-Process-Time" in response


def test_slow_request_is_logged_as_warning_with_request_id(api, settings, caplog):
    settings.SLOW_REQUEST_S = 0.0
    with caplog.at_level(logging.WARNING, logger="framewise.request"):
        api.get("/health/live", HTTP_X_REQUEST_ID="slow-1")
    [record] = [r for r in caplog.records if r.name == "framewise.request"]
    assert record.getMessage() == "slow request"
    assert record.request_id == "slow-1"
    assert record.path == "/health/live"
    assert record.status == 200


def test_fast_request_is_not_logged(api, caplog):
    with caplog.at_level(logging.WARNING, logger="framewise.request"):
        api.get("/health/live")
    assert [r for r in caplog.records if r.name == "framewise.request"] == []


def test_json_formatter_emits_request_id_and_extras():
    token = request_id_var.set("rid-9")
    try:
        record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello %s", "args": ("you",)})
        record.duration_ms = 12.5
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello you"
    assert line["request_id"] == "rid-9"
    assert line["duration_ms"] == 12.5
    assert line["level"] == "INFO"
