"""The versioned cache: every kind of write is visible at once, stampedes compute once, Redis down falls back."""

import asyncio

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from config import cache
from tests.analytics.conftest import make_upload
from tests.conftest import bearer
from tests.factories import UserFactory
from videos import processing, services
from videos.models import ProcessingJob, Project, TestSession, Video
from videos.vision import Box

pytestmark = pytest.mark.django_db(transaction=True)  # version bumps run on commit

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def _dashboard(client, path="/api/v1/dashboard/stats"):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def _both(client, project_id):
    """The owner's dashboard and the project's stats, both through the cache."""
    return _dashboard(client), _dashboard(client, f"/api/v1/projects/{project_id}/stats")


def _finish(video_id):
    processing.replace_ground_truth(video_id, [Box(0, 0, "car", 0, 0, 10, 10), Box(1, 100, "car", 0, 0, 10, 10)])
    Video.objects.filter(pk=video_id).update(status="completed", width=100, height=100, frame_count=10)
    ProcessingJob.objects.filter(video_id=video_id, state="pending").update(state="succeeded")


def test_every_kind_of_write_is_visible_immediately(user_api, user, staff_api):
    project = services.project_create(owner_id=user.pk, name="p")
    dash, stats = _both(user_api, project.pk)
    assert (dash["project_count"], stats["video_count"]) == (1, 0)
    staff_before = _dashboard(staff_api)

    video = services.video_ingest(project=project, user_id=user.pk, upload=make_upload())  # upload
    dash, stats = _both(user_api, project.pk)
    assert dash["videos_by_status"]["queued"] == stats["videos_by_status"]["queued"] == 1
    assert _dashboard(staff_api)["video_count"] == staff_before["video_count"] + 1  # staff totals too

    job = ProcessingJob.objects.select_related("video__project").get(video=video)
    processing._fail(job, "unreadable")  # worker status change
    assert _both(user_api, project.pk)[1]["videos_by_status"]["failed"] == 1

    services.video_reprocess(video=video)  # reprocess → queued
    assert _both(user_api, project.pk)[0]["videos_by_status"]["queued"] == 1

    _finish(video.pk)  # (the real worker path is tested below with OpenCV)
    services.project_update(project=project, data={"description": "x"})  # project update bumps too
    dash, stats = _both(user_api, project.pk)
    assert (dash["ground_truth_count"], stats["videos_by_status"]["completed"]) == (2, 1)

    video.refresh_from_db()
    session = services.session_create(video=video, user_id=user.pk, model_name="m", iou_threshold=0.5)
    assert _both(user_api, project.pk)[0]["active_test_sessions"] == 1

    rows = [{"frame": 0, "timestamp_ms": 0, "label": "car", "confidence": 0.9, "x": 0, "y": 0, "w": 10, "h": 10}]
    session = TestSession.objects.select_related("video").get(pk=session.pk)
    services.detections_ingest(session=session, body=orjson.dumps(rows), jsonl=False)
    assert _both(user_api, project.pk)[1]["detection_count"] == 1

    services.session_complete(session=session)  # → scoring (still active), then the scoring job completes it
    processing.score_session_job(job_id=ProcessingJob.objects.get(test_session=session, state="pending").pk)
    dash, stats = _both(user_api, project.pk)
    assert (dash["active_test_sessions"], dash["average_precision"], dash["average_recall"]) == (0, 1.0, 0.5)

    services.video_delete(video=Video.objects.get(pk=video.pk))
    dash, stats = _both(user_api, project.pk)
    assert (dash["video_count"], dash["detection_count"], stats["test_session_count"]) == (0, 0, 0)

    services.project_delete(project=Project.objects.get(pk=project.pk))
    assert _dashboard(user_api)["project_count"] == 0
    assert user_api.get(f"/api/v1/projects/{project.pk}/stats").status_code == 404


def test_real_processing_invalidates(user_api, user, tmp_path):
    """The worker's own code path (OpenCV in its child) moves queued → completed with ground truth."""
    from tests.media import make_moving_box_video

    project = services.project_create(owner_id=user.pk, name="p")
    path = tmp_path / "moving.mp4"
    make_moving_box_video(path, frames=24, fps=24.0, width=160, height=120, box=(30, 20), speed=(4, 2))
    upload = make_upload()
    upload.seek(0)
    upload.truncate()
    upload.write(path.read_bytes())
    upload.size = upload.tell()
    upload.seek(0)
    video = services.video_ingest(project=project, user_id=user.pk, upload=upload)
    assert _dashboard(user_api)["videos_by_status"]["queued"] == 1
    processing.process_video_job(job_id=ProcessingJob.objects.get(video=video).pk)
    dash = _dashboard(user_api)
    assert dash["videos_by_status"]["completed"] == 1
    assert dash["ground_truth_count"] == Video.objects.get(pk=video.pk).ground_truth.count() > 0
    # Ground-truth pages are cached too: a second processing replaces the boxes (new ids) and its commit
    # invalidates them, so the next page shows the new rows.
    url = f"/api/v1/videos/{video.pk}/ground-truth"
    first = _dashboard(user_api, url)
    assert _dashboard(user_api, url) == first  # a hit
    assert [b["id"] for b in first["results"]] == list(
        Video.objects.get(pk=video.pk).ground_truth.order_by("frame", "id").values_list("id", flat=True)
    )
    services.video_reprocess(video=video)
    processing.process_video_job(job_id=ProcessingJob.objects.filter(video=video, state="pending").get().pk)
    again = _dashboard(user_api, url)
    assert [b["id"] for b in again["results"]] == list(
        Video.objects.get(pk=video.pk).ground_truth.order_by("frame", "id").values_list("id", flat=True)
    )
    assert {b["id"] for b in again["results"]}.isdisjoint(b["id"] for b in first["results"])


def test_admin_edits_and_deletes_invalidate_cached_pages(user_api, user, client):
    """The admin writes through Django's forms, not the services: its saves and deletes bump the same keys."""
    from videos.models import GroundTruthBox

    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    project = services.project_create(owner_id=user.pk, name="p")
    video = services.video_ingest(project=project, user_id=user.pk, upload=make_upload())
    _finish(video.pk)
    cache.bump(cache.owner_scope(user.pk))
    url = f"/api/v1/videos/{video.pk}/ground-truth"
    box = GroundTruthBox.objects.filter(video=video).order_by("frame").first()
    assert _dashboard(user_api, url)["results"][0]["label"] == "car"
    form = {"video": video.pk, "frame": box.frame, "timestamp_ms": box.timestamp_ms, "label": "truck"}
    form |= {"x": box.x, "y": box.y, "w": box.w, "h": box.h}
    response = client.post(f"/admin/videos/groundtruthbox/{box.pk}/change/", form)
    assert response.status_code == 302, response.content
    assert _dashboard(user_api, url)["results"][0]["label"] == "truck"  # change: visible at once
    response = client.post(f"/admin/videos/groundtruthbox/{box.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert box.pk not in [b["id"] for b in _dashboard(user_api, url)["results"]]  # delete
    assert _dashboard(user_api)["project_count"] == 1
    action = {"action": "delete_selected", "post": "yes", "_selected_action": [project.pk]}
    response = client.post("/admin/videos/project/", action)  # bulk delete from the changelist
    assert response.status_code == 302
    assert _dashboard(user_api)["project_count"] == 0


def test_users_summary_invalidated_by_account_writes(staff_api, api):
    before = _dashboard(staff_api, "/api/v1/analytics/users")
    response = api.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "username": "newbie", "password": "Corr3ct-Horse-Battery"},
        format="json",
    )
    assert response.status_code == 201
    after = _dashboard(staff_api, "/api/v1/analytics/users")
    assert after["total_users"] == before["total_users"] + 1


def test_fresh_bypasses_the_cache(user_api, user):
    project = services.project_create(owner_id=user.pk, name="p")
    assert _dashboard(user_api)["video_count"] == 0
    # A write that bypasses the services (so no version bump): only ?fresh=1 sees it before the TTL.
    Video.objects.create(project=project, original_name="a", file="a", size_bytes=1, content_type="video/mp4")
    assert _dashboard(user_api)["video_count"] == 0
    assert _dashboard(user_api, "/api/v1/dashboard/stats?fresh=1")["video_count"] == 1


def test_one_owners_write_keeps_other_owners_cached(user_api, user):
    other = UserFactory()
    calls = []

    async def compute():
        calls.append(1)
        return {"n": len(calls)}

    def read(owner):
        return async_to_sync(cache.get_or_compute)("t", [cache.owner_scope(owner.pk)], [owner.pk], compute)

    read(user), read(other)
    services.project_create(owner_id=other.pk, name="p")
    assert (read(user), read(other)) == (b'{"n":1}', b'{"n":3}')


def test_redis_down_answers_from_the_database(user_api, user, api):
    project = services.project_create(owner_id=user.pk, name="p")
    with override_settings(REDIS_URL=CLOSED_PORT_URL):
        assert _dashboard(user_api)["project_count"] == 1
        services.video_ingest(project=project, user_id=user.pk, upload=make_upload())  # the bump fails quietly
        assert _dashboard(user_api)["video_count"] == 1
        assert _dashboard(user_api, f"/api/v1/projects/{project.pk}/stats")["video_count"] == 1
        health = api.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["cache"]["status"] == "unhealthy"


def test_stampede_computes_once():
    calls = []

    async def slow():
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"value": 42}

    async def burst():
        return await asyncio.gather(*(cache.get_or_compute("burst", [cache.GLOBAL], ["k"], slow) for _ in range(20)))

    results = async_to_sync(burst)()
    assert results == [b'{"value":42}'] * 20
    assert len(calls) == 1


def test_failed_computation_releases_the_lock():
    async def boom():
        raise RuntimeError("database down")

    async def fine():
        return [1]

    with pytest.raises(RuntimeError):
        async_to_sync(cache.get_or_compute)("flaky", [cache.GLOBAL], ["k"], boom)
    # A second caller does not wait out the lock: it computes at once.
    assert async_to_sync(cache.get_or_compute)("flaky", [cache.GLOBAL], ["k"], fine) == b"[1]"


def test_search_pages_cached_per_user_query_and_cursor(user):
    other = UserFactory()
    calls = []

    def page(owner, params):
        async def compute():
            calls.append(params)
            return {"results": [params], "next": None, "previous": None}

        get = async_to_sync(cache.user_page)
        return get("search", user_id=owner.pk, is_staff=False, params=params, compute=compute)

    first = page(user, "search=cat&cursor=")
    assert page(user, "search=cat&cursor=") == first  # hit
    page(user, "search=cat&cursor=abc")  # another cursor: another key
    page(other, "search=cat&cursor=")  # another user: another key
    assert len(calls) == 3
    project = services.project_create(owner_id=user.pk, name="p")  # a write under the owner
    services.video_ingest(project=project, user_id=user.pk, upload=make_upload())
    page(user, "search=cat&cursor=")
    page(other, "search=cat&cursor=")  # untouched owner: still cached
    assert len(calls) == 4
    assert orjson.loads(page(user, "x" * 500))["results"] == ["x" * 500]  # long queries are hashed into the key


def test_bump_is_skipped_when_the_transaction_rolls_back(user):
    from django.db import transaction

    seen = []

    async def compute():
        seen.append(1)
        return len(seen)

    def read():
        return async_to_sync(cache.get_or_compute)("rb", [cache.owner_scope(user.pk)], [user.pk], compute)

    read()
    with pytest.raises(RuntimeError), transaction.atomic():
        cache.project_changed(1, user.pk)
        raise RuntimeError
    assert read() == b"1"


def test_client_for_other_owner_sees_only_own(api, user):
    services.project_create(owner_id=user.pk, name="p")
    api.credentials(**bearer(UserFactory()))
    assert _dashboard(api)["project_count"] == 0
