"""Shared fixtures: real PostgreSQL and Redis in CI (never SQLite there), API clients, users, tokens."""

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import UserFactory


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not (settings.DATABASE_URL.startswith("postgres") and settings.REDIS_URL):
        pytest.exit("CI must run against PostgreSQL and Redis (DATABASE_URL, REDIS_URL).", returncode=1)
    # Fast hashing in tests only; production keeps Django's PBKDF2 default.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests start their own worker (tests/videos/conftest.py); importing config.asgi must not start another.
    settings.EMBEDDED_WORKER = False


@pytest.fixture(autouse=True)
def _fresh_cache_and_limits():
    """Each test starts with an empty cache and empty rate-limit windows."""
    from django.core.cache import cache

    from config.throttling import local_counter

    cache.clear()
    local_counter.clear()
    yield


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


def tokens_for(user) -> dict[str, str]:
    from accounts.services import tokens_issue

    return tokens_issue(user)


def bearer(user) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens_for(user)['access']}"}


@pytest.fixture
def user_api(user) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(user))
    return client


@pytest.fixture
def staff_api(staff) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(staff))
    return client
