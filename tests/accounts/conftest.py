"""Fixtures and helpers for the accounts API tests (shared ones live in tests/conftest.py)."""

import base64
import json
from datetime import datetime
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import UntypedToken

from accounts.models import User, UserActivity
from tests.conftest import bearer
from tests.factories import DEFAULT_PASSWORD, UserFactory

STRONG_PASSWORD = DEFAULT_PASSWORD


def client_for(user: User) -> APIClient:
    """An API client carrying a fresh access token of `user` (minted directly: no /auth/token call)."""
    client = APIClient()
    client.credentials(**bearer(user))
    return client


def assert_error(response: Any, status: int, code: str) -> Any:
    """Assert the project's error shape with `status` and `code`; return its `details`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "message", "details"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["details"] is None or isinstance(body["details"], dict)
    return body["details"]


def iso(value: datetime) -> str:
    """A datetime as the API renders it (ISO 8601, UTC as Z)."""
    return value.isoformat().replace("+00:00", "Z")


def user_shape(user: User) -> dict[str, Any]:
    """The contract's user shape, read back from the database."""
    user.refresh_from_db()
    return {
        "id": user.pk,
        "email": user.email,
        "username": user.username,
        "plan": user.plan,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "date_joined": iso(user.date_joined),
    }


def actions_of(user: User) -> list[str]:
    """The user's activity actions, oldest first."""
    return list(UserActivity.objects.filter(user=user).order_by("created_at", "id").values_list("action", flat=True))


def claims(raw: str) -> dict[str, Any]:
    """A token's verified claims, whether or not it has been blacklisted since."""
    return dict(UntypedToken(raw).payload)


def encode_cursor(values: list[Any], backwards: Any = False) -> str:
    """A cursor in the paginator's wire format (base64url JSON), for tampering tests."""
    raw = json.dumps({"v": values, "b": backwards}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def result_ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def other_user(db) -> User:
    return UserFactory()


@pytest.fixture
def superuser(db) -> User:
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def superuser_api(superuser) -> APIClient:
    return client_for(superuser)
