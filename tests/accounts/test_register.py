"""POST /api/v1/auth/register (each test stays within the `auth` budget of 5 calls per minute)."""

import pytest

from accounts.models import User, UserActivity
from tests.accounts.conftest import STRONG_PASSWORD, actions_of, assert_error, iso
from tests.factories import UserFactory

URL = "/api/v1/auth/register"

pytestmark = pytest.mark.django_db


def _register(api, **body):
    return api.post(URL, body, format="json")


def test_register_creates_user_and_returns_exact_shape_with_lowercased_email(api):
    response = _register(api, email="Ada.Lovelace@Example.COM", username="ada", password=STRONG_PASSWORD)

    assert response.status_code == 201, response.content
    user = User.objects.get()
    assert response.json() == {
        "id": user.pk,
        "email": "ada.lovelace@example.com",
        "username": "ada",
        "plan": "free",
        "is_active": True,
        "is_staff": False,
        "date_joined": iso(user.date_joined),
    }
    assert user.email == "ada.lovelace@example.com"
    assert user.check_password(STRONG_PASSWORD)
    assert user.is_superuser is False


def test_register_response_never_contains_the_password(api):
    response = _register(api, email="ada@example.com", username="ada", password=STRONG_PASSWORD)

    assert response.status_code == 201
    assert "password" not in response.json()
    assert STRONG_PASSWORD.encode() not in response.content
    assert User.objects.get().password.encode() not in response.content


def test_register_writes_one_register_activity_with_client_ip(api):
    response = _register(api, email="ada@example.com", username="ada", password=STRONG_PASSWORD)

    assert response.status_code == 201
    activity = UserActivity.objects.get()
    assert activity.user_id == response.json()["id"]
    assert activity.action == "register"
    assert activity.metadata == {"ip": "127.0.0.1"}


def test_register_ignores_privileged_fields_in_the_body(api):
    response = _register(
        api,
        email="ada@example.com",
        username="ada",
        password=STRONG_PASSWORD,
        is_staff=True,
        is_superuser=True,
        plan="enterprise",
        is_active=False,
    )

    assert response.status_code == 201
    user = User.objects.get()
    assert (user.is_staff, user.is_superuser, user.plan, user.is_active) == (False, False, "free", True)
    assert response.json()["plan"] == "free"
    assert response.json()["is_staff"] is False


def test_register_with_empty_body_names_every_missing_field(api):
    details = assert_error(api.post(URL, {}, format="json"), 400, "validation_error")

    assert set(details["fields"]) == {"email", "username", "password"}
    assert User.objects.count() == 0
    assert UserActivity.objects.count() == 0


@pytest.mark.parametrize("missing", ["email", "username", "password"])
def test_register_without_a_field_is_rejected_naming_that_field(api, missing):
    body = {"email": "ada@example.com", "username": "ada", "password": STRONG_PASSWORD}
    del body[missing]

    details = assert_error(api.post(URL, body, format="json"), 400, "validation_error")

    assert list(details["fields"]) == [missing]
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", ["ada@example.com"]),
        ("email", {"address": "ada@example.com"}),
        ("email", 42),
        ("username", ["ada"]),
        ("username", True),
        ("password", {"secret": STRONG_PASSWORD}),
        ("password", [STRONG_PASSWORD]),
        ("password", None),
    ],
)
def test_register_with_a_wrong_typed_field_is_rejected_naming_that_field(api, field, value):
    body = {"email": "ada@example.com", "username": "ada", "password": STRONG_PASSWORD, field: value}

    details = assert_error(api.post(URL, body, format="json"), 400, "validation_error")

    assert list(details["fields"]) == [field]
    assert User.objects.count() == 0
    assert UserActivity.objects.count() == 0


@pytest.mark.parametrize("email", ["not-an-email", "ada@", "@example.com", "ada example@example.com", ""])
def test_register_with_an_invalid_email_is_rejected(api, email):
    body = {"email": email, "username": "ada", "password": STRONG_PASSWORD}

    details = assert_error(api.post(URL, body, format="json"), 400, "validation_error")

    assert list(details["fields"]) == ["email"]
    assert User.objects.count() == 0


@pytest.mark.parametrize("username", ["has space", "semi;colon", "x" * 151])
def test_register_with_an_invalid_username_is_rejected(api, username):
    body = {"email": "ada@example.com", "username": username, "password": STRONG_PASSWORD}

    details = assert_error(api.post(URL, body, format="json"), 400, "validation_error")

    assert list(details["fields"]) == ["username"]
    assert User.objects.count() == 0


def test_register_with_a_malformed_json_body_is_a_bad_request(api):
    response = api.post(URL, b'{"email": ', content_type="application/json")

    assert_error(response, 400, "bad_request")
    assert User.objects.count() == 0


def test_register_with_a_taken_email_in_any_case_is_a_conflict_naming_email(api):
    existing = UserFactory(email="taken@example.com")

    response = _register(api, email="TAKEN@Example.com", username="newcomer", password=STRONG_PASSWORD)

    assert assert_error(response, 409, "conflict") == {"field": "email"}
    assert list(User.objects.values_list("pk", flat=True)) == [existing.pk]
    assert UserActivity.objects.count() == 0


def test_register_with_a_taken_username_is_a_conflict_naming_username(api):
    existing = UserFactory(username="ada")

    response = _register(api, email="someone-else@example.com", username="ada", password=STRONG_PASSWORD)

    assert assert_error(response, 409, "conflict") == {"field": "username"}
    assert list(User.objects.values_list("pk", flat=True)) == [existing.pk]
    assert UserActivity.objects.count() == 0


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ada", "Xy7-abc", "This password is too short. It must contain at least 8 characters."),
        ("ada", "qwertyuiop", "This password is too common."),
        ("ada", "48201937465108", "This password is entirely numeric."),
        ("harrietvane", "harrietvane9", "The password is too similar to the username."),
    ],
    ids=["too-short", "common", "numeric", "similar-to-username"],
)
def test_register_with_a_weak_password_is_rejected_naming_password(api, username, password, message):
    response = _register(api, email="someone@example.com", username=username, password=password)

    details = assert_error(response, 400, "validation_error")
    assert details["field"] == "password"
    assert message in details["fields"]["password"]
    assert User.objects.count() == 0
    assert UserActivity.objects.count() == 0


def test_registered_user_can_log_in_with_the_chosen_password(api):
    assert _register(api, email="ada@example.com", username="ada", password=STRONG_PASSWORD).status_code == 201

    response = api.post("/api/v1/auth/token", {"username": "ada", "password": STRONG_PASSWORD}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert actions_of(User.objects.get()) == ["register", "login"]
