"""Analytics endpoints: exact SPEC shapes, access rules, staff-only figures, one query per uncached answer."""

from datetime import datetime

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.factories import UserFactory
from videos import services
from videos.models import TestSession, Video

pytestmark = pytest.mark.django_db

STATS_FIELDS = {
    "project_count",
    "video_count",
    "videos_by_status",
    "test_session_count",
    "active_test_sessions",
    "detection_count",
    "ground_truth_count",
    "average_precision",
    "average_recall",
    "average_f1",
    "last_updated",
}


def _video(project, status="completed"):
    return Video.objects.create(
        project=project, original_name="a.mp4", file="videos/a.mp4", size_bytes=1, content_type="video/mp4",
        sha256="0" * 64, status=status, width=100, height=100, frame_count=10,
    )  # fmt: skip


@pytest.fixture
def data(user):
    mine = services.project_create(owner_id=user.pk, name="mine")
    other = services.project_create(owner_id=UserFactory().pk, name="theirs")
    _video(mine, "queued")
    video = _video(mine)
    _video(other, "failed")
    TestSession.objects.create(video=video, model_name="a", status="completed", precision=0.5, recall=1.0, f1=0.6)
    TestSession.objects.create(video=video, model_name="b", status="completed", precision=1.0, recall=0.5, f1=0.8)
    TestSession.objects.create(video=video, model_name="c", status="scoring")
    return mine, other


def test_dashboard_sums_only_the_callers_projects(user_api, data):
    body = user_api.get("/api/v1/dashboard/stats").json()
    assert set(body) == STATS_FIELDS
    assert body["project_count"] == 1
    assert body["video_count"] == 2
    assert body["videos_by_status"] == {"queued": 1, "processing": 0, "completed": 1, "failed": 0}
    assert (body["test_session_count"], body["active_test_sessions"]) == (3, 1)
    assert body["average_precision"] == pytest.approx(0.75)
    assert body["average_recall"] == pytest.approx(0.75)
    assert body["average_f1"] == pytest.approx(0.7)
    assert body["last_updated"] is not None


def test_staff_dashboard_covers_every_project(staff_api, data):
    body = staff_api.get("/api/v1/dashboard/stats?fresh=1").json()
    assert (body["project_count"], body["video_count"]) == (2, 3)
    assert body["videos_by_status"]["failed"] == 1


def test_dashboard_of_a_user_without_projects_is_zero(api, db):
    api.credentials(**bearer(UserFactory()))
    body = api.get("/api/v1/dashboard/stats").json()
    assert body["project_count"] == body["video_count"] == body["detection_count"] == 0
    assert body["average_precision"] is None and body["last_updated"] is None


def test_project_stats_for_owner_and_404_for_others(user_api, data):
    mine, other = data
    body = user_api.get(f"/api/v1/projects/{mine.pk}/stats").json()
    assert set(body) == STATS_FIELDS
    assert (body["project_count"], body["video_count"], body["test_session_count"]) == (1, 2, 3)
    for path in (
        f"/api/v1/projects/{other.pk}/stats",
        f"/api/v1/projects/{other.pk}/stats?fresh=1",
        "/api/v1/projects/999999/stats",
    ):
        response = user_api.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_stats_times_carry_their_utc_offset(user_api, data):
    """SQLite hands the counter row's time back naive; the answer is an RFC 3339 date-time either way."""
    mine, _ = data
    for path in (f"/api/v1/projects/{mine.pk}/stats?fresh=1", "/api/v1/dashboard/stats?fresh=1"):
        stamp = user_api.get(path).json()["last_updated"]
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp


def test_uncached_dashboard_is_one_query(user_api, data, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert user_api.get("/api/v1/dashboard/stats?fresh=1").status_code == 200
    with django_assert_num_queries(1):
        assert user_api.get(f"/api/v1/projects/{data[0].pk}/stats?fresh=1").status_code == 200


def test_cached_dashboard_is_no_query(user_api, data, django_assert_num_queries):
    first = user_api.get("/api/v1/dashboard/stats")
    with django_assert_num_queries(0):
        second = user_api.get("/api/v1/dashboard/stats")
    assert second.content == first.content


def test_dashboard_query_reads_counter_rows_not_base_tables(user, data, django_assert_num_queries):
    from asgiref.sync import async_to_sync

    from analytics import selectors

    with django_assert_num_queries(1) as captured:
        async_to_sync(selectors.dashboard_stats)(user=user)
    sql = captured.captured_queries[0]["sql"]
    assert "analytics_projectstats" in sql
    assert "videos_detectionevent" not in sql and "videos_video" not in sql


STAFF_ONLY = ("/api/v1/analytics/users", "/api/v1/analytics/cache", "/api/v1/metrics/database")


@pytest.mark.parametrize("path", [*STAFF_ONLY, "/api/v1/dashboard/stats", "/api/v1/projects/1/stats"])
def test_anonymous_is_refused(api, db, path):
    response = api.get(path)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize("path", STAFF_ONLY)
def test_staff_only_endpoints_refuse_users(user_api, path):
    response = user_api.get(path)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "message": "Staff only.", "details": None}


def test_users_summary(staff_api, staff):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import User

    UserFactory(plan="pro", is_active=False)
    UserFactory(plan="enterprise", is_superuser=True)
    old = UserFactory()
    User.objects.filter(pk=old.pk).update(date_joined=timezone.now() - timedelta(days=30))
    body = staff_api.get("/api/v1/analytics/users").json()
    assert body == {
        "total_users": 4,
        "active_users": 3,
        "inactive_users": 1,
        "superusers": 1,
        "new_users_today": body["new_users_today"],  # 3 unless the test runs across midnight UTC
        "new_users_week": 3,
        "by_plan": {"free": 2, "pro": 1, "enterprise": 1},
    }
    assert body["new_users_today"] in (0, 1, 2, 3)


def test_database_metrics_report_the_pool(staff_api):
    body = staff_api.get("/api/v1/metrics/database").json()
    assert body["vendor"] == connection.vendor
    if connection.vendor == "postgresql":
        assert {"pool_min", "pool_max", "pool_size", "pool_available"} <= set(body["pool"])
        assert body["pool"]["pool_max"] == body["settings"]["max_size"]
    else:
        assert body["pool"] is None


def test_cache_figures_count_hits_and_misses(staff_api, user, data):
    client = APIClient()
    client.credentials(**bearer(user))
    for _ in range(3):
        client.get("/api/v1/dashboard/stats")
    body = staff_api.get("/api/v1/analytics/cache").json()
    assert body["caches"]["dashboard"] == {"hits": 2, "misses": 1, "hit_rate": pytest.approx(2 / 3, abs=1e-4)}
    assert body["hits"] >= 2 and body["misses"] >= 1
    assert body["keys"] >= 1
    if body["backend"] == "redis":
        assert body["memory"]["used_bytes"] > 0
