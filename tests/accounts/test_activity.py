"""GET /api/v1/users/{id}/activity: staff or self (others 404), newest first, cursor pages."""

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import UserActivity
from tests.accounts.conftest import assert_error, iso, result_ids

pytestmark = pytest.mark.django_db

BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
ACTIONS = ["register", "login", "logout", "login", "refresh_reuse", "login", "logout"]


def _url(user_id: int) -> str:
    return f"/api/v1/users/{user_id}/activity"


def _trail(user, count: int = len(ACTIONS), same_time: bool = False) -> list[UserActivity]:
    """`count` activities of `user`, one minute apart (or all at one instant), oldest first."""
    return [
        UserActivity.objects.create(
            user=user,
            action=ACTIONS[n % len(ACTIONS)],
            created_at=BASE if same_time else BASE + timedelta(minutes=n),
            metadata={"n": n},
        )
        for n in range(count)
    ]


def test_activity_of_self_is_newest_first_with_exact_shape(user_api, user):
    trail = _trail(user)

    response = user_api.get(_url(user.pk))

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"id": a.pk, "action": a.action, "created_at": iso(a.created_at), "metadata": a.metadata}
            for a in reversed(trail)
        ],
        "next": None,
        "previous": None,
    }


def test_activity_lists_only_that_users_rows(staff_api, user, other_user):
    mine = _trail(user, 3)
    _trail(other_user, 4)

    assert result_ids(staff_api.get(_url(user.pk))) == [a.pk for a in reversed(mine)]


def test_staff_can_read_any_users_activity(staff_api, other_user):
    trail = _trail(other_user, 2)

    assert result_ids(staff_api.get(_url(other_user.pk))) == [a.pk for a in reversed(trail)]


def test_activity_of_another_user_as_non_staff_is_404(user_api, other_user):
    _trail(other_user, 2)

    assert_error(user_api.get(_url(other_user.pk)), 404, "not_found")


@pytest.mark.parametrize("client", ["user_api", "staff_api"])
def test_activity_of_an_unknown_user_is_404(request, client):
    assert_error(request.getfixturevalue(client).get(_url(987654321)), 404, "not_found")


def test_activity_anonymous_is_401(api, user):
    assert_error(api.get(_url(user.pk)), 401, "not_authenticated")


def test_activity_pages_newest_first_through_next_links(user_api, user):
    trail = _trail(user, 7)

    pages, url = [], f"{_url(user.pk)}?page_size=3"
    while url:
        response = user_api.get(url)
        pages.append(result_ids(response))
        url = response.json()["next"]

    newest_first = [a.pk for a in reversed(trail)]
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]


def test_activity_previous_link_returns_the_previous_page(user_api, user):
    _trail(user, 7)
    first = user_api.get(_url(user.pk), {"page_size": 3}).json()
    second = user_api.get(first["next"]).json()

    back = user_api.get(second["previous"]).json()

    assert back["results"] == first["results"]
    assert back["previous"] is None


def test_activity_with_identical_timestamps_pages_each_row_once(user_api, user):
    trail = _trail(user, 8, same_time=True)

    seen, url = [], f"{_url(user.pk)}?page_size=3"
    while url:
        response = user_api.get(url)
        seen.extend(result_ids(response))
        url = response.json()["next"]

    assert seen == sorted((a.pk for a in trail), reverse=True)


def test_activity_paging_is_stable_while_new_activity_arrives(user_api, user):
    trail = _trail(user, 7)

    seen, url = [], f"{_url(user.pk)}?page_size=2"
    while url:
        response = user_api.get(url)
        seen.extend(result_ids(response))
        url = response.json()["next"]
        UserActivity.objects.create(user=user, action="login")  # newer than everything paged so far

    assert seen == [a.pk for a in reversed(trail)]


def test_activity_with_an_invalid_cursor_or_page_size_is_400(user_api, user):
    assert assert_error(user_api.get(_url(user.pk), {"cursor": "bogus"}), 400, "validation_error") == {
        "field": "cursor"
    }
    assert assert_error(user_api.get(_url(user.pk), {"page_size": "0"}), 400, "validation_error") == {
        "field": "page_size"
    }


def test_activity_costs_the_same_queries_for_any_page_size(user_api, user, django_assert_num_queries):
    _trail(user, 120)

    with django_assert_num_queries(3):  # the token's user, the target user, the page
        small = user_api.get(_url(user.pk), {"page_size": 5})
    with django_assert_num_queries(3):
        large = user_api.get(_url(user.pk), {"page_size": 100})

    assert len(small.json()["results"]) == 5
    assert len(large.json()["results"]) == 100
