"""POST /api/v1/auth/token, and the `auth` rate limit (5/minute per IP) it shares with registration."""

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import TokenFamily, User, UserActivity
from tests.accounts.conftest import STRONG_PASSWORD, actions_of, assert_error
from tests.factories import UserFactory

URL = "/api/v1/auth/token"

pytestmark = pytest.mark.django_db


def _login(api, **body):
    return api.post(URL, body, format="json")


def test_login_by_username_returns_a_verified_access_and_refresh_pair(api, user):
    response = _login(api, username=user.username, password=STRONG_PASSWORD)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh"}
    access = AccessToken(body["access"])
    refresh = RefreshToken(body["refresh"])
    assert access["user_id"] == str(user.pk)
    assert refresh["user_id"] == str(user.pk)
    assert access["is_staff"] is False
    # A login starts a new refresh-token family.
    assert refresh["fam"] == refresh["jti"]
    assert list(TokenFamily.objects.values_list("id", "user_id", "revoked_at")) == [(refresh["jti"], user.pk, None)]


def test_login_by_email_in_any_case_returns_a_pair(api, user):
    response = _login(api, email=user.email.upper(), password=STRONG_PASSWORD)

    assert response.status_code == 200, response.content
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_login_carries_the_staff_claim_for_staff(api, staff):
    response = _login(api, username=staff.username, password=STRONG_PASSWORD)

    assert response.status_code == 200
    assert AccessToken(response.json()["access"])["is_staff"] is True


def test_login_access_token_authenticates_the_api(api, user):
    access = _login(api, username=user.username, password=STRONG_PASSWORD).json()["access"]

    response = api.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}")

    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_login_writes_one_login_activity(api, user):
    assert _login(api, username=user.username, password=STRONG_PASSWORD).status_code == 200

    assert actions_of(user) == ["login"]


def test_login_with_wrong_password_is_401_and_writes_nothing(api, user):
    response = _login(api, username=user.username, password="Wrong-Horse-Battery")

    assert_error(response, 401, "not_authenticated")
    assert UserActivity.objects.count() == 0
    assert TokenFamily.objects.count() == 0


@pytest.mark.parametrize(
    "credentials",
    [{"username": "nobody"}, {"email": "nobody@example.com"}],
    ids=["unknown-username", "unknown-email"],
)
def test_login_of_an_unknown_user_is_401(api, user, credentials):
    response = _login(api, password=STRONG_PASSWORD, **credentials)

    assert_error(response, 401, "not_authenticated")
    assert UserActivity.objects.count() == 0
    assert TokenFamily.objects.count() == 0


@pytest.mark.parametrize("by", ["username", "email"])
def test_login_of_an_inactive_user_with_the_right_password_is_401(api, by):
    inactive = UserFactory(is_active=False)

    response = _login(api, password=STRONG_PASSWORD, **{by: getattr(inactive, by)})

    assert_error(response, 401, "not_authenticated")
    assert UserActivity.objects.count() == 0
    assert TokenFamily.objects.count() == 0


def test_login_with_both_username_and_email_is_400(api, user):
    response = _login(api, username=user.username, email=user.email, password=STRONG_PASSWORD)

    assert_error(response, 400, "validation_error")
    assert UserActivity.objects.count() == 0
    assert TokenFamily.objects.count() == 0


def test_login_with_neither_username_nor_email_is_400(api, user):
    response = _login(api, password=STRONG_PASSWORD)

    assert_error(response, 400, "validation_error")
    assert TokenFamily.objects.count() == 0


def test_login_without_password_is_400_naming_password(api, user):
    details = assert_error(_login(api, username=user.username), 400, "validation_error")

    assert list(details["fields"]) == ["password"]
    assert TokenFamily.objects.count() == 0


def test_sixth_auth_call_in_a_minute_is_rate_limited_with_retry_headers(api, user):
    for _ in range(5):
        response = _login(api, username=user.username, password="Wrong-Horse-Battery")
        assert response.status_code == 401
    assert response["RateLimit-Limit"] == "5"
    assert response["RateLimit-Remaining"] == "0"

    # Right credentials this time: the limiter answers before the view runs.
    response = _login(api, username=user.username, password=STRONG_PASSWORD)

    details = assert_error(response, 429, "rate_limited")
    assert details["scope"] == "auth"
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert details["retry_after"] == retry_after
    assert response["RateLimit-Limit"] == "5"
    assert response["RateLimit-Remaining"] == "0"
    assert int(response["RateLimit-Reset"]) == retry_after
    assert UserActivity.objects.count() == 0
    assert TokenFamily.objects.count() == 0


def test_register_and_login_share_the_auth_budget(api, user):
    for n in range(3):
        body = {"email": f"new{n}@example.com", "username": f"new{n}", "password": STRONG_PASSWORD}
        assert api.post("/api/v1/auth/register", body, format="json").status_code == 201
    for _ in range(2):
        assert _login(api, username=user.username, password="Wrong-Horse-Battery").status_code == 401

    response = api.post(
        "/api/v1/auth/register",
        {"email": "late@example.com", "username": "late", "password": STRONG_PASSWORD},
        format="json",
    )

    assert_error(response, 429, "rate_limited")
    assert not User.objects.filter(username="late").exists()
