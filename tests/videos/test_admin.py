"""Admin changelists run a constant number of queries, whatever the number of rows."""

import pytest
from django.contrib import admin as django_admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import UserActivity
from accounts.services import tokens_issue
from tests.factories import UserFactory
from videos.models import DetectionEvent, GroundTruthBox, ProcessingJob, Project, TestSession, Video

# Every registered model's changelist: a model added to the admin is covered without editing this list.
CHANGELISTS = sorted(f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in django_admin.site._registry)

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
        session = TestSession.objects.create(video=video, created_by=owner, model_name=f"m{i}")
        box = {"frame": i, "timestamp_ms": 40 * i, "label": "motion", "x": 1, "y": 2, "w": 3, "h": 4}
        GroundTruthBox.objects.create(video=video, **box)
        DetectionEvent.objects.create(test_session=session, video=video, confidence=0.5, **box)
        UserActivity.objects.create(user=owner, action="login")
        tokens_issue(user=owner)


def test_every_model_of_ours_is_in_the_admin():
    assert {"/admin/accounts/user/", "/admin/videos/detectionevent/", "/admin/videos/groundtruthbox/"} <= set(
        CHANGELISTS
    )


@pytest.mark.parametrize("url", CHANGELISTS)
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


def test_admin_deletes_go_through_the_services_and_remove_stored_files(client, django_capture_on_commit_callbacks):
    """A video or project deleted in the admin loses its stored file too, as through the API (files go on commit)."""
    from django.core.files.storage import default_storage

    from tests.analytics.conftest import make_upload
    from videos import services

    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    project = services.project_create(owner_id=admin.pk, name="p")
    first, second = (services.video_ingest(project=project, user_id=admin.pk, upload=make_upload()) for _ in "ab")
    assert default_storage.exists(first.file.name) and default_storage.exists(second.file.name)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/videos/video/{first.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Video.objects.filter(pk=first.pk).exists()
    assert not default_storage.exists(first.file.name)
    action = {"action": "delete_selected", "post": "yes", "_selected_action": [project.pk]}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/videos/project/", action)
    assert response.status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not default_storage.exists(second.file.name)
