"""accounts.auth.JWTAuth on a tiny Ninja API: stateless access-token auth on the event loop."""

from datetime import timedelta

import pytest
from ninja import NinjaAPI
from ninja.testing import TestAsyncClient
from rest_framework_simplejwt.tokens import AccessToken

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
