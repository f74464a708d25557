"""GET/PATCH /api/v1/users/{id}: staff or self (others 404), field permissions, cached reads invalidated."""

import pytest

from accounts.models import User
from tests.accounts.conftest import assert_error, client_for, user_shape

pytestmark = pytest.mark.django_db


def _url(user_id: int) -> str:
    return f"/api/v1/users/{user_id}"


def _snapshot(user: User) -> dict:
    return user_shape(user)


# --- GET ---------------------------------------------------------------------------------------------------------
def test_get_self_returns_the_exact_shape(user_api, user):
    response = user_api.get(_url(user.pk))

    assert response.status_code == 200
    assert response.json() == user_shape(user)


def test_staff_get_any_user(staff_api, other_user):
    response = staff_api.get(_url(other_user.pk))

    assert response.status_code == 200
    assert response.json() == user_shape(other_user)


def test_get_another_users_id_as_non_staff_is_404(user_api, other_user):
    assert_error(user_api.get(_url(other_user.pk)), 404, "not_found")


@pytest.mark.parametrize("client", ["user_api", "staff_api"])
def test_get_unknown_id_is_404(request, client):
    assert_error(request.getfixturevalue(client).get(_url(987654321)), 404, "not_found")


def test_get_anonymous_is_401(api, user):
    assert_error(api.get(_url(user.pk)), 401, "not_authenticated")


def test_non_staff_cannot_tell_existing_from_missing_ids(user_api, other_user):
    existing = user_api.get(_url(other_user.pk))
    missing = user_api.get(_url(other_user.pk + 1000))

    assert existing.status_code == missing.status_code == 404
    assert existing.json() == missing.json()


# --- PATCH by self --------------------------------------------------------------------------------------------------
def test_patch_self_email_is_saved_lowercased(user_api, user):
    response = user_api.patch(_url(user.pk), {"email": "New.Address@Example.COM"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == user_shape(user)
    assert user.email == "new.address@example.com"


def test_patch_self_username(user_api, user):
    response = user_api.patch(_url(user.pk), {"username": "renamed"}, format="json")

    assert response.status_code == 200
    assert response.json()["username"] == "renamed"
    user.refresh_from_db()
    assert user.username == "renamed"


@pytest.mark.parametrize(
    "body",
    [{"plan": "enterprise"}, {"is_active": False}, {"is_staff": True}, {"email": "sneaky@example.com", "plan": "pro"}],
    ids=["plan", "is_active", "is_staff", "email-with-plan"],
)
def test_non_staff_patching_privileged_fields_is_403_and_changes_nothing(user_api, user, body):
    before = _snapshot(user)

    assert_error(user_api.patch(_url(user.pk), body, format="json"), 403, "forbidden")

    assert _snapshot(user) == before


def test_non_staff_patching_another_user_is_404_and_changes_nothing(user_api, other_user):
    before = _snapshot(other_user)

    assert_error(user_api.patch(_url(other_user.pk), {"username": "hijacked"}, format="json"), 404, "not_found")

    assert _snapshot(other_user) == before


def test_patch_to_a_taken_username_is_409_and_changes_nothing(user_api, user, other_user):
    before = _snapshot(user)

    assert_error(user_api.patch(_url(user.pk), {"username": other_user.username}, format="json"), 409, "conflict")

    assert _snapshot(user) == before


def test_patch_to_a_taken_email_in_another_case_is_409(user_api, user, other_user):
    before = _snapshot(user)

    response = user_api.patch(_url(user.pk), {"email": other_user.email.upper()}, format="json")

    assert_error(response, 409, "conflict")
    assert _snapshot(user) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"username": "has space"}, "username"),
        ({"username": ""}, "username"),
        ({"plan": "platinum"}, "plan"),
        ({"is_active": "sometimes"}, "is_active"),
    ],
)
def test_patch_with_an_invalid_value_is_400_naming_the_field(staff_api, other_user, body, field):
    before = _snapshot(other_user)

    details = assert_error(staff_api.patch(_url(other_user.pk), body, format="json"), 400, "validation_error")

    assert list(details["fields"]) == [field]
    assert _snapshot(other_user) == before


# --- PATCH by staff ----------------------------------------------------------------------------------------------
def test_staff_can_change_a_users_plan(staff_api, other_user):
    response = staff_api.patch(_url(other_user.pk), {"plan": "pro"}, format="json")

    assert response.status_code == 200
    assert response.json() == user_shape(other_user)
    assert other_user.plan == "pro"


def test_staff_can_deactivate_a_user(staff_api, other_user):
    response = staff_api.patch(_url(other_user.pk), {"is_active": False}, format="json")

    assert response.status_code == 200
    other_user.refresh_from_db()
    assert other_user.is_active is False


def test_non_superuser_staff_changing_is_staff_is_403(staff_api, other_user):
    before = _snapshot(other_user)

    assert_error(staff_api.patch(_url(other_user.pk), {"is_staff": True}, format="json"), 403, "forbidden")

    assert _snapshot(other_user) == before


def test_superuser_can_change_is_staff(superuser_api, other_user):
    response = superuser_api.patch(_url(other_user.pk), {"is_staff": True}, format="json")

    assert response.status_code == 200
    other_user.refresh_from_db()
    assert other_user.is_staff is True


def test_patch_ignores_fields_outside_the_contract(superuser_api, other_user):
    response = superuser_api.patch(
        _url(other_user.pk),
        {"is_superuser": True, "password": "x", "date_joined": "2000-01-01T00:00:00Z"},
        format="json",
    )

    assert response.status_code == 200
    other_user.refresh_from_db()
    assert other_user.is_superuser is False
    assert other_user.date_joined.year != 2000


# --- cache -----------------------------------------------------------------------------------------------------------
def test_get_is_served_from_cache_until_patch_invalidates_it(user_api, user):
    assert user_api.get(_url(user.pk)).json()["username"] == user.username  # warms the cache
    User.objects.filter(pk=user.pk).update(username="changed-behind-the-api")
    assert user_api.get(_url(user.pk)).json()["username"] == user.username  # still the cached read

    assert user_api.patch(_url(user.pk), {"email": "fresh@example.com"}, format="json").status_code == 200

    body = user_api.get(_url(user.pk)).json()
    assert body["email"] == "fresh@example.com"
    assert body["username"] == "changed-behind-the-api"


def test_patch_then_get_shows_the_new_value(user_api, user):
    assert user_api.get(_url(user.pk)).status_code == 200

    assert user_api.patch(_url(user.pk), {"username": "after-patch"}, format="json").status_code == 200

    assert user_api.get(_url(user.pk)).json()["username"] == "after-patch"
    assert user_api.get("/api/v1/auth/me").json()["username"] == "after-patch"


def test_staff_patch_invalidates_the_target_users_own_cached_reads(staff_api, other_user):
    target_api = client_for(other_user)
    assert target_api.get("/api/v1/auth/me").json()["plan"] == "free"
    assert target_api.get(_url(other_user.pk)).json()["plan"] == "free"

    assert staff_api.patch(_url(other_user.pk), {"plan": "enterprise"}, format="json").status_code == 200

    assert target_api.get("/api/v1/auth/me").json()["plan"] == "enterprise"
    assert target_api.get(_url(other_user.pk)).json()["plan"] == "enterprise"


def test_failed_patch_leaves_the_cached_read_correct(user_api, user, other_user):
    assert user_api.get(_url(user.pk)).status_code == 200

    assert user_api.patch(_url(user.pk), {"username": other_user.username}, format="json").status_code == 409

    assert user_api.get(_url(user.pk)).json() == user_shape(user)


def test_cached_get_costs_no_user_query(user_api, user, django_assert_num_queries):
    assert user_api.get(_url(user.pk)).status_code == 200

    with django_assert_num_queries(1):  # only the token's user: the shape comes from the cache
        response = user_api.get(_url(user.pk))

    assert response.json() == user_shape(user)


def test_other_users_patch_does_not_touch_anyone_elses_row(staff_api, user, other_user):
    before = _snapshot(user)

    assert (
        staff_api.patch(_url(other_user.pk), {"plan": "pro", "username": "changed"}, format="json").status_code == 200
    )

    assert _snapshot(user) == before
    assert User.objects.filter(username="changed").count() == 1
