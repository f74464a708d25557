"""The middleware stack: explicit order, zero thread hops on plain requests, admin/session/CSRF/messages intact."""

from contextlib import contextmanager
from unittest import mock

import pytest
from asgiref.sync import SyncToAsync
from django.conf import settings
from django.test import AsyncClient, override_settings
from django.utils.module_loading import import_string

from tests.conftest import bearer
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@contextmanager
def counting_hops():
    """Record every `sync_to_async` call (one worker-thread hop each) made while the block runs."""
    calls: list[str] = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    with mock.patch.object(SyncToAsync, "__call__", counted):
        yield calls


async def _hops(middleware: list[str], path: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    with override_settings(MIDDLEWARE=middleware):
        client = AsyncClient(headers=headers)
        await client.get(path)  # loads the middleware chain
        with counting_hops() as calls:
            response = await client.get(path)
    return response.status_code, calls


@pytest.fixture
def token_header(user) -> dict[str, str]:
    return {"Authorization": bearer(user)["HTTP_AUTHORIZATION"]}


@pytest.mark.parametrize(
    ("path", "authenticated"),
    [("/health/live", False), ("/api/v1/projects", False), ("/api/v1/projects", True), ("/nowhere", False)],
)
async def test_middleware_stack_adds_no_thread_hop(path, authenticated, token_header):
    headers = token_header if authenticated else {}
    status, with_stack = await _hops(list(settings.MIDDLEWARE), path, headers)
    bare_status, bare = await _hops([], path, headers)
    assert status == bare_status
    # Whatever the handler and the view hop (signals, ORM) is the same with no middleware at all.
    assert with_stack == bare


async def test_stack_hops_are_counted_at_all():
    """The counter sees hops: a stock (MiddlewareMixin) middleware hops twice per request."""
    stock = ["django.middleware.clickjacking.XFrameOptionsMiddleware"]
    _, with_stock = await _hops(stock, "/health/live", {})
    _, bare = await _hops([], "/health/live", {})
    assert len(with_stock) == len(bare) + 1  # XFrameOptions has only process_response


def test_order_is_explicit():
    order = [path.rpartition(".")[2] for path in settings.MIDDLEWARE]
    assert order == [
        "PrometheusMiddleware",
        "RequestContextMiddleware",
        "SecurityMiddleware",
        "XFrameOptionsMiddleware",
        "ContentSecurityPolicyMiddleware",
        "CompressionMiddleware",
        "CacheHeadersMiddleware",
        "ErrorShapeMiddleware",
        "RateLimitMiddleware",
        "TimeoutMiddleware",
        "SessionMiddleware",
        "CommonMiddleware",
        "CsrfViewMiddleware",
        "AuthenticationMiddleware",
        "MessageMiddleware",
    ]


def test_every_middleware_is_async_and_the_stock_ones_are_hop_free_subclasses():
    for path in settings.MIDDLEWARE:
        middleware = import_string(path)
        assert middleware.async_capable, path
        assert path.startswith("config."), path
        if path.startswith("config.hopfree."):
            # Django's own class, kept sync-capable for WSGI and the sync test client.
            assert middleware.__mro__[2].__module__.startswith("django."), path
        else:
            assert middleware.sync_capable is False, path


def test_django_checks_find_the_stock_middleware_through_its_hop_free_subclass():
    assert "django.middleware.security.SecurityMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.gzip.GZipMiddleware" not in settings.MIDDLEWARE


@pytest.mark.django_db(transaction=True)
async def test_admin_login_over_asgi_saves_the_session_and_checks_csrf():
    from asgiref.sync import sync_to_async

    staff = await sync_to_async(UserFactory)(is_staff=True, is_superuser=True)
    client = AsyncClient(enforce_csrf_checks=True)
    page = await client.get("/admin/login/")
    assert page.status_code == 200
    token = client.cookies["csrftoken"].value
    refused = await client.post("/admin/login/", {"username": staff.username, "password": DEFAULT_PASSWORD})
    assert refused.status_code == 403
    login = await client.post(
        "/admin/login/?next=/admin/",
        {"username": staff.username, "password": DEFAULT_PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert login.status_code == 302, login.content
    assert login["Location"] == "/admin/"
    assert client.cookies["sessionid"].value
    home = await client.get("/admin/")
    assert home.status_code == 200
    assert b"Site administration" in home.content


@pytest.mark.urls("tests.config.urls")
async def test_messages_survive_to_the_next_request_over_asgi():
    client = AsyncClient()
    assert (await client.get("/_test/messages/add")).status_code == 200
    assert (await client.get("/_test/messages/read")).content == b"saved"
    assert (await client.get("/_test/messages/read")).content == b""
