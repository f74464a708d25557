"""accounts.auth.JWTAuth on a tiny Ninja API: stateless access-token auth on the event loop."""

from datetime import timedelta

import pytest
from ninja import NinjaAPI
from ninja.testing import TestAsyncClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts import auth
from accounts.auth import JWTAuth
from accounts.models import User
from tests.conftest import tokens_for

api = NinjaAPI(urls_namespace="test-auth", auth=JWTAuth())


@api.get("/whoami")
async def whoami(request):
    return {"id": request.auth.id, "is_staff": request.auth.is_staff}


@pytest.fixture
def client() -> TestAsyncClient:
    return TestAsyncClient(api)


@pytest.fixture
def user_tokens(user) -> dict[str, str]:
    return tokens_for(user)  # minted synchronously: the tests below run on the event loop


@pytest.fixture
def staff_tokens(staff) -> dict[str, str]:
    return tokens_for(staff)


def _bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


@pytest.mark.django_db
async def test_valid_access_token_authenticates_as_its_user(client, user, user_tokens):
    response = await client.get("/whoami", headers=_bearer(user_tokens["access"]))

    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "is_staff": False}


async def test_valid_access_token_authenticates_without_database_access(client):
    # No django_db mark: any query during authentication would error out.
    token = AccessToken.for_user(User(pk=4242, username="ghost"))
    token["is_staff"] = True

    response = await client.get("/whoami", headers=_bearer(str(token)))

    assert response.status_code == 200
    assert response.json() == {"id": 4242, "is_staff": True}


@pytest.mark.django_db
async def test_access_token_carries_the_staff_claim(client, staff, staff_tokens):
    response = await client.get("/whoami", headers=_bearer(staff_tokens["access"]))

    assert response.status_code == 200
    assert response.json()["id"] == staff.pk
    assert response.json()["is_staff"] is True


@pytest.mark.django_db
async def test_request_auth_id_equals_the_integer_user_id(client, user, user_tokens):
    response = await client.get("/whoami", headers=_bearer(user_tokens["access"]))

    assert response.json()["id"] == user.pk


@pytest.mark.django_db
async def test_bearer_scheme_is_case_insensitive(client, user_tokens):
    response = await client.get("/whoami", headers={"Authorization": f"bearer {user_tokens['access']}"})

    assert response.status_code == 200


@pytest.mark.django_db
async def test_refresh_token_is_401(client, user_tokens):
    response = await client.get("/whoami", headers=_bearer(user_tokens["refresh"]))

    assert response.status_code == 401


@pytest.mark.django_db
async def test_expired_access_token_is_401(client, user_tokens):
    token = AccessToken(user_tokens["access"])
    token.set_exp(lifetime=-timedelta(seconds=1))

    response = await client.get("/whoami", headers=_bearer(str(token)))

    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["missing", "empty", "no-token", "garbage", "three-parts", "basic"],
)
async def test_missing_or_garbage_credentials_are_401(client, headers):
    response = await client.get("/whoami", headers=headers)

    assert response.status_code == 401


# --- The verified-token cache (accounts.auth._verified) --------------------------------------------------------


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Counts real verifications (AccessToken constructions) by user_from_access_token."""
    seen: list[str] = []
    real = auth.AccessToken

    def counting(raw: str) -> AccessToken:
        seen.append(raw)
        return real(raw)

    monkeypatch.setattr(auth, "AccessToken", counting)
    auth._verified.clear()
    return seen


@pytest.mark.django_db
def test_a_token_is_verified_once_then_served_from_the_cache(user_tokens, user, decodes):
    first = auth.user_from_access_token(user_tokens["access"])
    second = auth.user_from_access_token(user_tokens["access"])

    assert first is not None and first.id == user.pk
    assert second is first
    assert decodes == [user_tokens["access"]]


@pytest.mark.django_db
def test_a_cached_token_stops_working_at_its_expiry(user_tokens, decodes, monkeypatch):
    raw = user_tokens["access"]
    exp = AccessToken(raw)["exp"]
    assert auth.user_from_access_token(raw) is not None

    monkeypatch.setattr(auth.time, "time", lambda: exp - 0.001)
    assert auth.user_from_access_token(raw) is not None
    monkeypatch.setattr(auth.time, "time", lambda: exp)
    assert auth.user_from_access_token(raw) is None
    assert len(decodes) == 1


@pytest.mark.django_db
def test_failures_are_not_cached_and_a_settings_change_forgets(user_tokens, decodes, settings):
    raw = user_tokens["access"]
    assert auth.user_from_access_token(raw[:-2] + "xx") is None
    assert auth.user_from_access_token(raw[:-2] + "xx") is None
    assert auth._verified == {}
    assert auth.user_from_access_token(raw) is not None
    assert list(auth._verified) == [raw]

    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT}
    assert auth._verified == {}
    assert auth.user_from_access_token(raw) is not None
    assert len(decodes) == 4
