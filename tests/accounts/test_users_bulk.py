"""POST /api/v1/users/bulk: staff only, ≤1000 rows, one transaction, the first bad row named."""

import pytest
from django.db import connection

from accounts.models import User
from tests.accounts.conftest import STRONG_PASSWORD, assert_error
from tests.factories import UserFactory

URL = "/api/v1/users/bulk"

pytestmark = pytest.mark.django_db


def _rows(count: int, prefix: str = "bulk", **extra) -> list[dict]:
    return [{"email": f"{prefix}{n:04d}@example.com", "username": f"{prefix}{n:04d}", **extra} for n in range(count)]


def test_bulk_anonymous_is_401(api):
    assert_error(api.post(URL, _rows(1), format="json"), 401, "not_authenticated")
    assert User.objects.count() == 0


def test_bulk_for_a_normal_user_is_403_and_creates_nothing(user_api):
    assert_error(user_api.post(URL, _rows(2), format="json"), 403, "forbidden")

    assert User.objects.count() == 1


def test_bulk_creates_every_row_and_returns_their_ids(staff_api, staff):
    rows = [
        {"email": "One@Example.com", "username": "one", "password": STRONG_PASSWORD, "plan": "pro"},
        {"email": "two@example.com", "username": "two", "plan": "enterprise"},
        {"email": "three@example.com", "username": "three"},
    ]

    response = staff_api.post(URL, rows, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"created", "ids"}
    assert body["created"] == 3
    created = {u.pk: u for u in User.objects.exclude(pk=staff.pk)}
    assert sorted(body["ids"]) == sorted(created)
    by_name = {u.username: u for u in created.values()}
    assert [(by_name[n].email, by_name[n].plan) for n in ("one", "two", "three")] == [
        ("one@example.com", "pro"),
        ("two@example.com", "enterprise"),
        ("three@example.com", "free"),
    ]
    assert by_name["one"].check_password(STRONG_PASSWORD)
    assert not by_name["two"].has_usable_password()
    assert all(u.is_active and not u.is_staff and not u.is_superuser for u in created.values())


def test_bulk_ids_follow_the_row_order(staff_api):
    response = staff_api.post(URL, _rows(5), format="json")

    assert response.status_code == 201
    ids = response.json()["ids"]
    assert [User.objects.get(pk=pk).username for pk in ids] == [f"bulk{n:04d}" for n in range(5)]


def test_bulk_accepts_exactly_1000_rows(staff_api, staff):
    response = staff_api.post(URL, _rows(1000), format="json")

    assert response.status_code == 201
    assert response.json()["created"] == 1000
    assert User.objects.count() == 1001


def test_bulk_of_1001_rows_is_400_and_creates_nothing(staff_api, staff):
    details = assert_error(staff_api.post(URL, _rows(1001), format="json"), 400, "validation_error")

    assert details == {"count": 1001}
    assert User.objects.count() == 1


def test_bulk_of_an_empty_list_is_400(staff_api, staff):
    assert_error(staff_api.post(URL, [], format="json"), 400, "validation_error")

    assert User.objects.count() == 1


@pytest.mark.parametrize("body", [{"email": "a@example.com", "username": "a"}, "users", 7, None], ids=repr)
def test_bulk_with_a_non_list_body_is_400(staff_api, staff, body):
    details = assert_error(staff_api.post(URL, body, format="json"), 400, "validation_error")

    assert details == {"field": "users"}
    assert User.objects.count() == 1


def test_bulk_with_an_invalid_email_names_its_row_and_creates_nothing(staff_api, staff):
    rows = _rows(6)
    rows[3]["email"] = "not-an-email"

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert details["row"] == 3
    assert details["field"] == "email"
    assert User.objects.count() == 1


def test_bulk_with_a_missing_field_names_its_row(staff_api, staff):
    rows = _rows(4)
    del rows[2]["username"]

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert (details["row"], details["field"]) == (2, "username")
    assert User.objects.count() == 1


def test_bulk_with_a_non_object_row_names_it(staff_api, staff):
    rows: list = _rows(3)
    rows[1] = "bulk0001"

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert details["row"] == 1
    assert User.objects.count() == 1


def test_bulk_with_an_unknown_plan_names_its_row(staff_api, staff):
    rows = _rows(3)
    rows[2]["plan"] = "platinum"

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert (details["row"], details["field"]) == (2, "plan")
    assert User.objects.count() == 1


def test_bulk_with_a_username_repeated_within_the_batch_names_the_repeat(staff_api, staff):
    rows = _rows(5)
    rows[4]["username"] = rows[1]["username"]

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert (details["row"], details["field"]) == (4, "username")
    assert User.objects.count() == 1


def test_bulk_with_an_email_repeated_in_another_case_names_the_repeat(staff_api, staff):
    rows = _rows(4)
    rows[3]["email"] = rows[0]["email"].upper()

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert (details["row"], details["field"]) == (3, "email")
    assert User.objects.count() == 1


def test_bulk_with_a_username_already_in_the_database_names_its_row(staff_api, staff):
    UserFactory(username="bulk0002", email="someone-else@example.com")
    rows = _rows(4)

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert (details["row"], details["field"]) == (2, "username")
    assert User.objects.count() == 2


def test_bulk_with_an_email_already_in_the_database_names_its_row(staff_api, staff):
    rows = _rows(4)
    rows[1]["email"] = staff.email.upper()

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert (details["row"], details["field"]) == (1, "email")
    assert User.objects.count() == 1


@pytest.mark.parametrize("password", ["short1", "password", "1234567890123", "bulk0003bulk"])
def test_bulk_with_a_weak_password_names_its_row_and_password(staff_api, staff, password):
    rows = _rows(5, password=STRONG_PASSWORD)
    rows[3]["password"] = password

    details = assert_error(staff_api.post(URL, rows, format="json"), 400, "validation_error")

    assert (details["row"], details["field"]) == (3, "password")
    assert User.objects.count() == 1


def test_bulk_costs_the_same_queries_for_10_or_500_rows(staff_api, django_assert_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite caps bound parameters per statement, so bulk_create splits the INSERT")
    with django_assert_num_queries(6) as small:
        assert staff_api.post(URL, _rows(10, "small"), format="json").status_code == 201
    with django_assert_num_queries(6) as large:
        assert staff_api.post(URL, _rows(500, "large"), format="json").status_code == 201

    assert sum("INSERT" in q["sql"] for q in small.captured_queries) == 1
    assert sum("INSERT" in q["sql"] for q in large.captured_queries) == 1
