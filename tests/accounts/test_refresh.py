"""POST /api/v1/auth/token/refresh: rotation, blacklisting, family revocation on reuse, forged tokens."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import TokenFamily, UserActivity
from tests.accounts.conftest import actions_of, assert_error, claims
from tests.conftest import tokens_for

URL = "/api/v1/auth/token/refresh"

pytestmark = pytest.mark.django_db


def _refresh(api, raw):
    return api.post(URL, {"refresh": raw}, format="json")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_refresh_returns_a_new_pair_in_the_same_family(api, user):
    old = tokens_for(user)

    response = _refresh(api, old["refresh"])

    assert response.status_code == 200, response.content
    new = response.json()
    assert set(new) == {"access", "refresh"}
    assert new["refresh"] != old["refresh"]
    assert new["access"] != old["access"]
    old_refresh, new_refresh = claims(old["refresh"]), claims(new["refresh"])
    assert new_refresh["jti"] != old_refresh["jti"]
    assert new_refresh["fam"] == old_refresh["fam"]
    assert new_refresh["user_id"] == str(user.pk)
    assert AccessToken(new["access"])["user_id"] == str(user.pk)
    assert OutstandingToken.objects.filter(jti=new_refresh["jti"]).exists()
    assert list(BlacklistedToken.objects.values_list("token__jti", flat=True)) == [old_refresh["jti"]]


def test_refreshed_access_token_authenticates_the_api(api, user):
    new = _refresh(api, tokens_for(user)["refresh"]).json()

    response = api.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {new['access']}")

    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_refresh_reissues_the_staff_claim_from_the_current_user(api, user):
    old = tokens_for(user)
    user.is_staff = True
    user.save(update_fields=["is_staff"])

    new = _refresh(api, old["refresh"]).json()

    assert AccessToken(old["access"])["is_staff"] is False
    assert AccessToken(new["access"])["is_staff"] is True
    assert claims(new["refresh"])["is_staff"] is True


def test_rotated_away_refresh_is_refused(api, user):
    old = tokens_for(user)
    assert _refresh(api, old["refresh"]).status_code == 200

    assert_error(_refresh(api, old["refresh"]), 401, "not_authenticated")


def test_reusing_a_rotated_away_refresh_revokes_the_whole_family(api, user):
    first = tokens_for(user)
    second = _refresh(api, first["refresh"]).json()
    family_id = claims(first["refresh"])["fam"]

    assert_error(_refresh(api, first["refresh"]), 401, "not_authenticated")

    # The legitimate successor is dead too: the family is revoked.
    assert_error(_refresh(api, second["refresh"]), 401, "not_authenticated")
    assert TokenFamily.objects.get(pk=family_id).revoked_at is not None
    assert actions_of(user) == ["refresh_reuse"]


def test_refresh_reuse_leaves_the_users_other_sessions_alone(api, user):
    session_a = tokens_for(user)
    session_b = tokens_for(user)
    assert _refresh(api, session_a["refresh"]).status_code == 200
    assert _refresh(api, session_a["refresh"]).status_code == 401

    response = _refresh(api, session_b["refresh"])

    assert response.status_code == 200
    assert TokenFamily.objects.get(pk=claims(session_b["refresh"])["fam"]).revoked_at is None


def test_an_access_token_is_not_accepted_as_refresh(api, user):
    pair = tokens_for(user)

    assert_error(_refresh(api, pair["access"]), 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 0


@pytest.mark.parametrize("raw", ["garbage", "a.b.c", "x" * 4096])
def test_a_garbage_refresh_is_401(api, user, raw):
    assert_error(_refresh(api, raw), 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 0


def test_an_expired_refresh_is_401(api, user):
    token = RefreshToken(tokens_for(user)["refresh"])
    token.set_exp(lifetime=-timedelta(minutes=1))

    assert_error(_refresh(api, str(token)), 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 0


def test_a_refresh_signed_with_another_key_is_401(api, user):
    payload = RefreshToken(tokens_for(user)["refresh"]).payload
    forged = jwt.encode(payload, "another-signing-key-that-is-long-enough", algorithm="HS256")
    assert jwt.decode(forged, options={"verify_signature": False}) == payload

    assert_error(_refresh(api, forged), 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 0


def test_an_alg_none_refresh_is_401(api, user):
    payload = RefreshToken(tokens_for(user)["refresh"]).payload
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."

    assert_error(_refresh(api, unsigned), 401, "not_authenticated")
    assert BlacklistedToken.objects.count() == 0


def test_a_refresh_of_a_deactivated_user_is_401(api, user):
    pair = tokens_for(user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert_error(_refresh(api, pair["refresh"]), 401, "not_authenticated")
    assert OutstandingToken.objects.filter(user=user).count() == 1


@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": None}, {"refresh": ["x"]}])
def test_refresh_without_a_refresh_string_is_400_naming_refresh(api, body):
    details = assert_error(api.post(URL, body, format="json"), 400, "validation_error")

    assert list(details["fields"]) == ["refresh"]


def test_refresh_reuse_activity_is_written_once_per_family(api, user):
    first = tokens_for(user)
    assert _refresh(api, first["refresh"]).status_code == 200
    for _ in range(3):
        assert _refresh(api, first["refresh"]).status_code == 401

    assert UserActivity.objects.filter(user=user, action="refresh_reuse").count() == 1
