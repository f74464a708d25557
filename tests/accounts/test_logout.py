"""POST /api/v1/auth/logout: blacklists the refresh token and revokes its family."""

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import TokenFamily, UserActivity
from tests.accounts.conftest import actions_of, assert_error, claims, client_for
from tests.conftest import tokens_for

URL = "/api/v1/auth/logout"
REFRESH_URL = "/api/v1/auth/token/refresh"

pytestmark = pytest.mark.django_db


def test_logout_without_authentication_is_401_and_blacklists_nothing(api, user):
    pair = tokens_for(user)

    assert_error(api.post(URL, {"refresh": pair["refresh"]}, format="json"), 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 0
    assert UserActivity.objects.count() == 0
    assert api.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json").status_code == 200


def test_logout_answers_205_with_an_empty_body(user_api, user):
    response = user_api.post(URL, {"refresh": tokens_for(user)["refresh"]}, format="json")

    assert response.status_code == 205
    assert response.content == b""


def test_logged_out_refresh_is_refused_at_refresh(api, user_api, user):
    pair = tokens_for(user)
    assert user_api.post(URL, {"refresh": pair["refresh"]}, format="json").status_code == 205

    assert_error(api.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json"), 401, "not_authenticated")
    assert TokenFamily.objects.get(pk=claims(pair["refresh"])["fam"]).revoked_at is not None


def test_logout_revokes_the_rotated_family_not_other_sessions(api, user_api, user):
    session_a, session_b = tokens_for(user), tokens_for(user)
    rotated = api.post(REFRESH_URL, {"refresh": session_a["refresh"]}, format="json").json()

    assert user_api.post(URL, {"refresh": rotated["refresh"]}, format="json").status_code == 205

    assert api.post(REFRESH_URL, {"refresh": rotated["refresh"]}, format="json").status_code == 401
    assert api.post(REFRESH_URL, {"refresh": session_b["refresh"]}, format="json").status_code == 200


def test_logout_writes_one_logout_activity(user_api, user):
    assert user_api.post(URL, {"refresh": tokens_for(user)["refresh"]}, format="json").status_code == 205

    assert actions_of(user) == ["logout"]


def test_logout_with_another_users_refresh_is_400_and_leaves_it_valid(api, user_api, other_user):
    theirs = tokens_for(other_user)

    details = assert_error(user_api.post(URL, {"refresh": theirs["refresh"]}, format="json"), 400, "validation_error")

    assert details["field"] == "refresh"
    assert BlacklistedToken.objects.count() == 0
    assert TokenFamily.objects.filter(revoked_at__isnull=False).count() == 0
    assert UserActivity.objects.count() == 0
    assert api.post(REFRESH_URL, {"refresh": theirs["refresh"]}, format="json").status_code == 200


def test_logout_without_refresh_is_400_naming_refresh(user_api):
    details = assert_error(user_api.post(URL, {}, format="json"), 400, "validation_error")

    assert list(details["fields"]) == ["refresh"]
    assert UserActivity.objects.count() == 0


def test_logout_with_an_access_token_as_refresh_is_refused(user, user_api):
    response = client_for(user).post(URL, {"refresh": tokens_for(user)["access"]}, format="json")

    assert_error(response, 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 0
    assert UserActivity.objects.count() == 0
