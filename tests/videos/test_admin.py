"""Admin changelists run a constant number of queries, whatever the number of rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import UserActivity
from tests.factories import UserFactory
from videos.models import ProcessingJob, Project, TestSession, Video

pytestmark = pytest.mark.django_db


def _seed(owner, n: int) -> None:
    for i in range(n):
        project = Project.objects.create(owner=owner, name=f"p{Project.objects.count()}-{i}")
        video = Video.objects.create(
            project=project,
            original_name=f"v{i}.mp4",
            file=f"videos/v{i}.mp4",
            size_bytes=1,
            content_type="video/mp4",
            sha256="0" * 64,
            thumbnail=f"thumbnails/t{i}.jpg",
        )
        ProcessingJob.objects.create(video=video, kind="process", state="succeeded")
        TestSession.objects.create(video=video, created_by=owner, model_name=f"m{i}")
        UserActivity.objects.create(user=owner, action="login")


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/",
        "/admin/accounts/useractivity/",
        "/admin/videos/project/",
        "/admin/videos/video/",
        "/admin/videos/processingjob/",
        "/admin/videos/testsession/",
    ],
)
def test_changelist_query_count_is_constant(client, url):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    _seed(admin, 2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    _seed(admin, 8)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_video_change_page_shows_jobs_inline(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    _seed(admin, 1)
    video = Video.objects.get()
    page = client.get(f"/admin/videos/video/{video.pk}/change/")
    assert page.status_code == 200
    assert b"Processing job" in page.content


def test_reprocess_action_queues_a_job(client, django_capture_on_commit_callbacks):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    _seed(admin, 1)
    video = Video.objects.get()
    response = client.post("/admin/videos/video/", {"action": "reprocess", "_selected_action": [video.pk]})
    assert response.status_code == 302
    assert ProcessingJob.objects.filter(video=video, state="pending").count() == 1
