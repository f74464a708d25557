"""The lean handler remembers resolved paths: same answers as Django's resolver, isolated per request, bounded."""

import pytest
from django.test import RequestFactory, override_settings
from django.urls import Resolver404, resolve

from config import handler as handler_module
from config.handler import LeanASGIHandler


def _request(path: str):
    return RequestFactory().get(path)


def test_remembered_resolution_matches_djangos_and_each_request_gets_its_own_match():
    handler = LeanASGIHandler()
    first = handler.resolve_request(_request("/api/v1/videos/7"))
    first.kwargs["video_id"] = 999  # a view or middleware scribbling on its match must not leak
    second = handler.resolve_request(_request("/api/v1/videos/7"))
    fresh = resolve("/api/v1/videos/7")
    assert second is not first
    assert (second.func, second.args, second.kwargs, second.route) == (fresh.func, (), fresh.kwargs, fresh.route)
    assert fresh.kwargs != first.kwargs
    assert len(handler._resolved) == 1


def test_unresolvable_paths_are_not_remembered():
    handler = LeanASGIHandler()
    with pytest.raises(Resolver404):
        handler.resolve_request(_request("/no/such/page"))
    assert handler._resolved == {}


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(handler_module, "RESOLVED_MAX", 3)
    handler = LeanASGIHandler()
    for video_id in range(10):
        handler.resolve_request(_request(f"/api/v1/videos/{video_id}"))
        assert len(handler._resolved) <= 3


def test_a_changed_urlconf_is_followed():
    handler = LeanASGIHandler()
    with pytest.raises(Resolver404):
        handler.resolve_request(_request("/api/v1/_test/slow"))
    with override_settings(ROOT_URLCONF="tests.config.urls"):
        assert handler.resolve_request(_request("/api/v1/_test/slow")).func.__name__ == "slow"
    with pytest.raises(Resolver404):
        handler.resolve_request(_request("/api/v1/_test/slow"))
