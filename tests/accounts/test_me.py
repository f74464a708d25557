"""GET /api/v1/auth/me."""

from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.accounts.conftest import assert_error, user_shape
from tests.conftest import tokens_for

URL = "/api/v1/auth/me"

pytestmark = pytest.mark.django_db


def test_me_returns_the_callers_exact_shape(user_api, user):
    response = user_api.get(URL)

    assert response.status_code == 200
    assert response.json() == user_shape(user)


def test_me_for_staff_shows_is_staff(staff_api, staff):
    response = staff_api.get(URL)

    assert response.status_code == 200
    assert response.json() == user_shape(staff)
    assert response.json()["is_staff"] is True


def test_me_without_a_token_is_401(api):
    response = api.get(URL)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
def test_me_with_a_bad_authorization_header_is_401(api, user, header):
    assert_error(api.get(URL, HTTP_AUTHORIZATION=header), 401, "not_authenticated")


def test_me_with_a_refresh_token_as_bearer_is_401(api, user):
    refresh = tokens_for(user)["refresh"]

    assert_error(api.get(URL, HTTP_AUTHORIZATION=f"Bearer {refresh}"), 401, "not_authenticated")


def test_me_with_an_expired_access_token_is_401(api, user):
    token = AccessToken(tokens_for(user)["access"])
    token.set_exp(lifetime=-timedelta(seconds=1))

    assert_error(api.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}"), 401, "not_authenticated")


def test_me_with_the_token_of_a_deactivated_user_is_401(user_api, user):
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert_error(user_api.get(URL), 401, "not_authenticated")
