"""Video detail ETag/304, signed file and thumbnail URLs, Range requests, reprocess, delete, ground truth pages."""

import hashlib

import orjson
import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.factories import UserFactory
from tests.videos.conftest import upload
from videos.models import GroundTruthBox, ProcessingJob, Video

pytestmark = pytest.mark.django_db


@pytest.fixture
def video(owner_api, project, sample_video):
    response = upload(owner_api, project["id"], sample_video[0])
    assert response.status_code == 202
    return response.json()


def _body(response) -> bytes:
    """The whole body, draining async streaming responses too."""
    if not response.streaming:
        return response.content

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


def test_detail_has_etag_and_answers_304(owner_api, video):
    first = owner_api.get(f"/api/v1/videos/{video['id']}")
    assert first.status_code == 200
    etag = first["ETag"]
    again = owner_api.get(f"/api/v1/videos/{video['id']}", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    Video.objects.filter(pk=video["id"]).update(progress=50)
    Video.objects.get(pk=video["id"]).save(update_fields=["updated_at"])
    changed = owner_api.get(f"/api/v1/videos/{video['id']}", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_signed_file_url_needs_no_header(video, sample_video):
    response = APIClient().get(video["file_url"])
    assert response.status_code == 200
    assert _body(response) == sample_video[0].read_bytes()
    assert response["ETag"] == f'"{video["sha256"]}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"


def test_bad_or_foreign_signature_is_404(video):
    client = APIClient()
    assert client.get(f"/api/v1/videos/{video['id']}/file?sig=nope").status_code == 404
    thumb_sig = video["file_url"].split("sig=")[1]
    assert client.get(f"/api/v1/videos/{video['id']}/thumbnail?sig={thumb_sig}").status_code == 404
    assert client.get(f"/api/v1/videos/{video['id']}/file").status_code == 404


def test_expired_signature_is_404(video, monkeypatch):
    from videos import storage

    monkeypatch.setattr(storage, "SIGNED_URL_TTL_S", -1)
    assert APIClient().get(video["file_url"]).status_code == 404


def test_range_requests(owner_api, video, sample_video):
    data = sample_video[0].read_bytes()
    url = f"/api/v1/videos/{video['id']}/file"
    part = owner_api.get(url, HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert _body(part) == data[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert part["Content-Length"] == "10"
    suffix = owner_api.get(url, HTTP_RANGE="bytes=-5")
    assert (suffix.status_code, _body(suffix)) == (206, data[-5:])
    open_ended = owner_api.get(url, HTTP_RANGE=f"bytes={len(data) - 3}-")
    assert _body(open_ended) == data[-3:]
    beyond = owner_api.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{len(data)}"
    assert owner_api.get(url, HTTP_IF_NONE_MATCH=f'"{video["sha256"]}"').status_code == 304


def test_foreign_user_cannot_read_file_with_a_token(video):
    stranger = APIClient()
    stranger.credentials(**bearer(UserFactory()))
    assert stranger.get(f"/api/v1/videos/{video['id']}/file").status_code == 404
    assert stranger.get(f"/api/v1/videos/{video['id']}").status_code == 404


def test_thumbnail_missing_until_processed(owner_api, video):
    assert video["thumbnail_url"] is None
    assert owner_api.get(f"/api/v1/videos/{video['id']}/thumbnail").status_code == 404


def test_reprocess_is_idempotent_while_a_job_is_live(owner_api, video):
    first = owner_api.post(f"/api/v1/videos/{video['id']}/reprocess")
    second = owner_api.post(f"/api/v1/videos/{video['id']}/reprocess")
    assert (first.status_code, second.status_code) == (202, 202)
    assert ProcessingJob.objects.filter(video_id=video["id"]).count() == 1


def test_reprocess_after_completion_queues_a_new_job(owner_api, video):
    ProcessingJob.objects.filter(video_id=video["id"]).update(state="succeeded")
    Video.objects.filter(pk=video["id"]).update(status="completed", progress=100)
    response = owner_api.post(f"/api/v1/videos/{video['id']}/reprocess")
    assert response.json()["status"] == "queued"
    assert ProcessingJob.objects.filter(video_id=video["id"], state="pending").count() == 1


def test_delete_video_removes_row_and_file(owner_api, video, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert owner_api.delete(f"/api/v1/videos/{video['id']}").status_code == 204
    assert not Video.objects.filter(pk=video["id"]).exists()
    assert [p for p in media_root.rglob("*") if p.is_file()] == []


def test_video_list_filters_and_fixed_queries(owner_api, project, video, django_assert_num_queries):
    Video.objects.filter(pk=video["id"]).update(status="completed", ground_truth_generated=True)
    base = f"/api/v1/projects/{project['id']}/videos"
    with django_assert_num_queries(2):
        assert [v["id"] for v in owner_api.get(base).json()["results"]] == [video["id"]]
    assert owner_api.get(base + "?status=queued").json()["results"] == []
    assert len(owner_api.get(base + "?ground_truth_generated=true").json()["results"]) == 1
    assert owner_api.get(base + "?ground_truth_generated=false").json()["results"] == []


def test_ground_truth_pages_and_jsonl_stream_every_box_once(owner_api, video):
    GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video_id=video["id"], frame=i // 2, timestamp_ms=i * 20, label="motion", x=i, y=1, w=2, h=3)
        for i in range(25)
    )
    url, seen = f"/api/v1/videos/{video['id']}/ground-truth?page_size=7", []
    while url:
        page = owner_api.get(url).json()
        seen += [b["id"] for b in page["results"]]
        url = page["next"]
    ids = list(GroundTruthBox.objects.filter(video_id=video["id"]).order_by("frame", "id").values_list("id", flat=True))
    assert seen == ids
    stream = owner_api.get(f"/api/v1/videos/{video['id']}/ground-truth?format=jsonl")
    assert stream["Content-Type"] == "application/jsonl"
    rows = [orjson.loads(line) for line in _body(stream).splitlines()]
    assert [r["id"] for r in rows] == ids
    assert set(rows[0]) == {"id", "frame", "timestamp_ms", "label", "x", "y", "w", "h"}


def test_status_without_wait_returns_current_state(owner_api, video):
    body = owner_api.get(f"/api/v1/videos/{video['id']}/status").json()
    assert body == {
        "video_id": video["id"],
        "status": "queued",
        "stage": "queued",
        "progress": 0,
        "error": None,
        "changed": False,
    }


def test_sha256_matches_the_stored_bytes(video, media_root):
    [stored] = [p for p in media_root.rglob("*") if p.is_file()]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == video["sha256"]


def test_video_pages_are_stable_while_videos_arrive(owner_api, project):
    def add(name: str) -> int:
        return Video.objects.create(
            project_id=project["id"],
            original_name=name,
            file=f"videos/{name}",
            size_bytes=1,
            content_type="video/mp4",
            sha256="0" * 64,
        ).pk

    before = [add(f"v{i}.mp4") for i in range(9)]
    Video.objects.filter(pk__in=before[:4]).update(created_at=Video.objects.get(pk=before[0]).created_at)
    seen, url = [], f"/api/v1/projects/{project['id']}/videos?page_size=4"
    while url:
        page = owner_api.get(url).json()
        seen += [v["id"] for v in page["results"]]
        add(f"late{len(seen)}.mp4")
        url = page["next"]
    expected = list(Video.objects.filter(pk__in=before).order_by("-created_at", "-id").values_list("id", flat=True))
    assert [pk for pk in seen if pk in before] == expected
    assert len(seen) == len(set(seen))
