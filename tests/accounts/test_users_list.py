"""GET /api/v1/users: staff only, filters, ordering, keyset cursor pagination, fixed query count."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import User
from tests.accounts.conftest import assert_error, encode_cursor, result_ids, user_shape
from tests.factories import UserFactory

URL = "/api/v1/users"

# Every allowed ?ordering= and the full order the contract implies (id breaks ties).
ORDERINGS = {
    "-date_joined": ("-date_joined", "-id"),
    "date_joined": ("date_joined", "id"),
    "username": ("username", "id"),
    "-username": ("-username", "-id"),
    "email": ("email", "id"),
    "-email": ("-email", "-id"),
    "id": ("id",),
    "-id": ("-id",),
}

pytestmark = pytest.mark.django_db


def _ids(*order: str) -> list[int]:
    return list(User.objects.order_by(*order).values_list("id", flat=True))


def _walk(client, url: str, max_pages: int = 60) -> list[list[int]]:
    """Follow `next` links from `url`; the ids of every page, in order."""
    pages = []
    while url:
        response = client.get(url)
        pages.append(result_ids(response))
        url = response.json()["next"]
        assert len(pages) <= max_pages, "pagination does not terminate"
    return pages


@pytest.fixture
def population(staff):
    """23 users (plus the staff caller) with distinct join times and mixed plans/states."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    users = [
        UserFactory(
            username=f"member{n:02d}",
            email=f"member{n:02d}@{'example.org' if n % 2 else 'corp.example.com'}",
            plan=["free", "pro", "enterprise"][n % 3],
            is_active=n % 4 != 0,
        )
        for n in range(23)
    ]
    for n, user in enumerate(users):
        User.objects.filter(pk=user.pk).update(date_joined=base + timedelta(hours=n))
    return users


# --- access -------------------------------------------------------------------------------------------------
def test_users_list_anonymous_is_401(api):
    assert_error(api.get(URL), 401, "not_authenticated")


def test_users_list_for_a_normal_user_is_403(user_api):
    assert_error(user_api.get(URL), 403, "forbidden")


# --- shape and defaults ---------------------------------------------------------------------------------------
def test_users_list_returns_cursor_page_shape_newest_first(staff_api, population):
    response = staff_api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    assert body["next"] is None
    assert body["previous"] is None
    assert [row["id"] for row in body["results"]] == _ids("-date_joined", "-id")
    newest = User.objects.order_by("-date_joined", "-id").first()
    assert body["results"][0] == user_shape(newest)


def test_users_list_default_page_size_is_50(staff_api, staff):
    UserFactory.create_batch(60)

    response = staff_api.get(URL)

    assert len(response.json()["results"]) == 50
    assert response.json()["next"] is not None


def test_users_list_clamps_page_size_to_100(staff_api, staff):
    UserFactory.create_batch(105)

    response = staff_api.get(URL, {"page_size": 500})

    assert response.status_code == 200
    assert result_ids(response) == _ids("-date_joined", "-id")[:100]
    assert response.json()["next"] is not None


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", " "])
def test_users_list_with_a_bad_page_size_is_400(staff_api, page_size):
    details = assert_error(staff_api.get(URL, {"page_size": page_size}), 400, "validation_error")

    assert details == {"field": "page_size"}


# --- filters ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
def test_users_list_filters_by_is_active(staff_api, population, value, expected):
    response = staff_api.get(URL, {"is_active": value, "ordering": "id"})

    expected_ids = User.objects.filter(is_active=expected).order_by("id").values_list("id", flat=True)
    assert result_ids(response) == list(expected_ids)
    assert {row["is_active"] for row in response.json()["results"]} == {expected}


def test_users_list_without_is_active_includes_inactive_users(staff_api, population):
    response = staff_api.get(URL, {"ordering": "id"})

    assert result_ids(response) == _ids("id")
    assert User.objects.filter(is_active=False).exists()


@pytest.mark.parametrize("plan", ["free", "pro", "enterprise"])
def test_users_list_filters_by_plan(staff_api, population, plan):
    response = staff_api.get(URL, {"plan": plan, "ordering": "id"})

    assert result_ids(response) == list(User.objects.filter(plan=plan).order_by("id").values_list("id", flat=True))
    assert {row["plan"] for row in response.json()["results"]} == {plan}


def test_users_list_combines_plan_and_is_active(staff_api, population):
    response = staff_api.get(URL, {"plan": "pro", "is_active": "false", "ordering": "id"})

    expected = User.objects.filter(plan="pro", is_active=False).order_by("id").values_list("id", flat=True)
    assert result_ids(response) == list(expected)
    assert expected.exists()


@pytest.mark.parametrize(("field", "value"), [("is_active", "maybe"), ("plan", "gold"), ("search", "x" * 101)], ids=str)
def test_users_list_with_an_invalid_filter_is_400_naming_it(staff_api, field, value):
    details = assert_error(staff_api.get(URL, {field: value}), 400, "validation_error")

    assert list(details["fields"]) == [field]


def test_users_list_search_matches_username_substring_case_insensitively(staff_api, population):
    response = staff_api.get(URL, {"search": "MEMBER1", "ordering": "username"})

    assert [row["username"] for row in response.json()["results"]] == [f"member{n}" for n in range(10, 20)]


def test_users_list_search_matches_email_substring_case_insensitively(staff_api, population):
    response = staff_api.get(URL, {"search": "Example.ORG", "ordering": "id"})

    assert result_ids(response) == [u.pk for u in population if u.email.endswith("@example.org")]


def test_users_list_search_without_match_is_an_empty_page(staff_api, population):
    response = staff_api.get(URL, {"search": "nobody-by-that-name"})

    assert response.json() == {"results": [], "next": None, "previous": None}


# --- ordering ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ordering", list(ORDERINGS))
def test_users_list_orders_by_each_allowed_value(staff_api, population, ordering):
    response = staff_api.get(URL, {"ordering": ordering})

    assert result_ids(response) == _ids(*ORDERINGS[ordering])


@pytest.mark.parametrize("ordering", ["password", "is_staff", "date_joined,id", "?", "-"])
def test_users_list_with_an_unknown_ordering_is_400(staff_api, ordering):
    details = assert_error(staff_api.get(URL, {"ordering": ordering}), 400, "validation_error")

    assert details["field"] == "ordering"
    assert sorted(details["allowed"]) == sorted(ORDERINGS)


# --- cursor pagination --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ordering", list(ORDERINGS))
def test_users_list_next_links_yield_every_user_once_in_order(staff_api, population, ordering):
    pages = _walk(staff_api, f"{URL}?page_size=5&ordering={ordering}")

    assert [len(page) for page in pages] == [5, 5, 5, 5, 4]
    assert [i for page in pages for i in page] == _ids(*ORDERINGS[ordering])


def test_users_list_next_links_keep_the_filters(staff_api, population):
    pages = _walk(staff_api, f"{URL}?page_size=2&plan=pro&search=member")

    expected = User.objects.filter(plan="pro").order_by("-date_joined", "-id").values_list("id", flat=True)
    assert [i for page in pages for i in page] == list(expected)


def test_users_list_previous_link_returns_the_previous_page_exactly(staff_api, population):
    first = staff_api.get(URL, {"page_size": 5}).json()
    second = staff_api.get(first["next"]).json()
    third = staff_api.get(second["next"]).json()

    back_to_second = staff_api.get(third["previous"]).json()
    back_to_first = staff_api.get(back_to_second["previous"]).json()

    assert back_to_second["results"] == second["results"]
    assert back_to_first["results"] == first["results"]
    assert back_to_first["previous"] is None
    # Going forward again from a page reached backwards continues where it should.
    assert staff_api.get(back_to_first["next"]).json()["results"] == second["results"]
    assert staff_api.get(back_to_second["next"]).json()["results"] == third["results"]


def test_users_list_first_page_has_no_previous_and_last_page_no_next(staff_api, population):
    pages = []
    url = f"{URL}?page_size=10"
    while url:
        body = staff_api.get(url).json()
        pages.append(body)
        url = body["next"]

    assert len(pages) == 3
    assert pages[0]["previous"] is None
    assert all(page["previous"] is not None for page in pages[1:])
    assert pages[-1]["next"] is None


@pytest.mark.parametrize("ordering", ["-date_joined", "username", "-email"])
def test_users_list_paging_is_stable_while_users_are_added(staff_api, population, ordering):
    before = _ids(*ORDERINGS[ordering])
    seen: list[int] = []
    url = f"{URL}?page_size=4&ordering={ordering}"
    n = 0
    while url:
        response = staff_api.get(url)
        seen.extend(result_ids(response))
        url = response.json()["next"]
        # Land new rows on both sides of the cursor in every ordering.
        for name in (f"member{n:02d}a", f"aaa{n:02d}", f"zzz{n:02d}"):
            UserFactory(username=name, email=f"{name}@example.net")
        n += 1

    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)
    # The pre-existing users keep their relative order.
    assert [i for i in seen if i in set(before)] == before


def test_users_list_identical_join_times_still_page_each_user_once(staff_api, population):
    User.objects.update(date_joined=datetime(2024, 6, 1, 12, 0, tzinfo=UTC))

    for ordering in ("-date_joined", "date_joined"):
        pages = _walk(staff_api, f"{URL}?page_size=3&ordering={ordering}")
        ids = [i for page in pages for i in page]
        assert ids == _ids(*ORDERINGS[ordering])
        assert len(ids) == len(set(ids)) == User.objects.count()


@pytest.mark.parametrize(
    ("ordering", "cursor"),
    [
        pytest.param("-date_joined", "not-a-cursor", id="garbage"),
        pytest.param("-date_joined", "%%%", id="not-base64"),
        pytest.param("-date_joined", encode_cursor(["2024-01-01T00:00:00+00:00"]), id="too-few-values"),
        pytest.param("-date_joined", encode_cursor(["2024-01-01T00:00:00+00:00", 1, 2]), id="too-many-values"),
        pytest.param("-date_joined", encode_cursor(["yesterday", 1]), id="bad-datetime"),
        pytest.param("-date_joined", encode_cursor(["2024-01-01T00:00:00+00:00", "one"]), id="bad-id"),
        pytest.param("-date_joined", encode_cursor(["2024-01-01T00:00:00+00:00", 1], "yes"), id="non-bool-direction"),
        pytest.param("username", encode_cursor(["user", {"$gt": 0}]), id="object-id"),
        pytest.param("-date_joined", encode_cursor([None, None]), id="nulls"),
        pytest.param("-date_joined", encode_cursor([{"$gt": ""}, 1]), id="object-datetime"),
        pytest.param("-date_joined", encode_cursor([1.5, 1]), id="number-datetime"),
        pytest.param("username", encode_cursor(["a\u0000b", 1]), id="nul-byte"),
    ],
)
def test_users_list_with_an_invalid_cursor_is_400(staff_api, staff, ordering, cursor):
    details = assert_error(staff_api.get(URL, {"cursor": cursor, "ordering": ordering}), 400, "validation_error")

    assert details == {"field": "cursor"}


# --- query count ------------------------------------------------------------------------------------------------
def test_users_list_costs_the_same_queries_for_any_page_size(staff_api, staff, django_assert_num_queries):
    UserFactory.create_batch(120)

    with django_assert_num_queries(2):  # the token's user, then the page
        small = staff_api.get(URL, {"page_size": 5})
    with django_assert_num_queries(2):
        large = staff_api.get(URL, {"page_size": 100})
    with django_assert_num_queries(2):
        later = staff_api.get(large.json()["next"])

    assert len(small.json()["results"]) == 5
    assert len(large.json()["results"]) == 100
    assert len(later.json()["results"]) == 21


def test_users_list_filters_do_not_add_queries(staff_api, population, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = staff_api.get(URL, {"plan": "pro", "is_active": "true", "search": "member", "ordering": "email"})

    assert response.status_code == 200
