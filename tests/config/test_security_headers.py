"""Security headers on every sampled response; CSP on HTML that Swagger UI and the admin live with."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import AsyncClient, Client, override_settings

from tests.config import urls as test_urls
from tests.config.test_settings_modes import _run
from videos.storage import sign_media

pytestmark = pytest.mark.django_db

_BASE = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}


def _assert_base_headers(response, label: str) -> None:
    for header, value in _BASE.items():
        assert response.get(header) == value, (label, header, response.status_code)
    if response.get("Content-Type", "").startswith("text/html"):
        assert response["Content-Security-Policy"].startswith("default-src 'self'"), label
    else:
        assert "Content-Security-Policy" not in response, label


def test_every_sampled_response_carries_the_security_headers(api, user_api, staff, project, video, session, settings):
    settings.RATE_LIMITS = "general=1000/m,auth=1/m"
    admin = Client()
    admin.force_login(staff)
    etag = user_api.get(f"/api/v1/projects/{project.pk}")["ETag"]
    sampled = {
        "live": api.get("/health/live"),
        "ready": api.get("/health"),
        "list": user_api.get("/api/v1/projects"),
        "detail": user_api.get(f"/api/v1/videos/{video.pk}"),
        "304": user_api.get(f"/api/v1/projects/{project.pk}", HTTP_IF_NONE_MATCH=etag),
        "gzip": user_api.get(f"/api/v1/videos/{video.pk}/ground-truth", HTTP_ACCEPT_ENCODING="gzip"),
        "jsonl": user_api.get(f"/api/v1/videos/{video.pk}/ground-truth?format=jsonl"),
        "file": user_api.get(f"/api/v1/videos/{video.pk}/file"),
        "range": user_api.get(f"/api/v1/videos/{video.pk}/file", HTTP_RANGE="bytes=0-1"),
        "thumbnail": api.get(f"/api/v1/videos/{video.pk}/thumbnail?sig={sign_media(video.pk, 'thumbnail')}"),
        "export": user_api.get(f"/api/v1/test-sessions/{session.pk}/export"),
        "401": api.get("/api/v1/projects"),
        "404": user_api.get("/api/v1/videos/999999"),
        "405": user_api.put("/api/v1/projects"),
        "422": user_api.post("/api/v1/projects", {"name": ""}, format="json"),
        "drf": user_api.get("/api/v1/auth/me"),
        "429-first": api.post("/api/v1/auth/token", {}, format="json"),
        "429": api.post("/api/v1/auth/token", {}, format="json"),
        "docs": api.get("/api/v1/docs"),
        "openapi": api.get("/api/v1/openapi.json"),
        "admin-login": Client().get("/admin/login/"),
        "admin": admin.get("/admin/"),
        "admin-redirect": Client().get("/admin/"),
    }
    assert sampled["429"].status_code == 429
    assert sampled["304"].status_code == 304
    for label, response in sampled.items():
        _assert_base_headers(response, label)


@pytest.mark.urls("tests.config.urls")
async def test_timeout_answer_carries_them_too(settings):
    settings.REQUEST_TIMEOUT_S = 0.01
    test_urls.events.clear()
    _assert_base_headers(await AsyncClient().get("/api/v1/_test/slow"), "504")


def test_file_responses_have_a_safe_content_disposition(user_api, video, session):
    response = user_api.get(f"/api/v1/videos/{video.pk}/file")
    # Inline, never the uploader's file name, and typed as the sniffed video type (nosniff holds it there).
    assert response["Content-Disposition"] == "inline"
    assert response["Content-Type"] == "video/mp4"
    export = user_api.get(f"/api/v1/test-sessions/{session.pk}/export")
    assert export["Content-Disposition"] == f'attachment; filename="session-{session.pk}-coco.json"'


def test_api_docs_page_loads_only_what_the_csp_allows(api):
    page = api.get("/api/v1/docs")
    assert page.status_code == 200
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    html = page.content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts
    for attrs in scripts:
        src = re.search(r'src="([^"]+)"', attrs)
        if src is None:
            # A data block, which the browser never runs, so script-src does not apply.
            assert 'type="application/json"' in attrs
        else:
            assert src.group(1).startswith("/static/")
            assert finders.find(src.group(1).removeprefix("/static/")), src.group(1)
    for href in re.findall(r'<link[^>]+href="([^"]+)"', html):
        assert href.startswith("/static/"), href
    assert "style=" not in html or "'unsafe-inline'" in csp.split("style-src", 1)[1].split(";")[0]
    # The page fetches its schema from the same origin (connect-src 'self').
    assert '"url": "/api/v1/openapi.json"' in html


def test_hsts_and_redirect_when_served_over_https(db):
    with override_settings(
        SECURE_HSTS_SECONDS=31_536_000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_SSL_REDIRECT=True
    ):
        client = Client()
        plain = client.get("/health/live")
        secure = client.get("/health/live", secure=True)
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/health/live"
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_https_mode_turns_on_hsts_and_secure_cookies():
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
    )
    result = _run(["-c", probe], HTTPS="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["31536000", "True", "True", "True"]


def test_deploy_checks_still_inspect_the_hop_free_security_middleware():
    """Without HTTPS, Django's HSTS check fires: it runs because it sees SecurityMiddleware installed."""
    result = _run(["manage.py", "check", "--deploy"], SECRET_KEY="y" * 60)
    assert "security.W004" in result.stdout + result.stderr
    assert "security.W001" not in result.stdout + result.stderr
