"""Test sessions: create on completed videos, bulk ingest (JSON and JSONL), scoring by the worker, results."""

import orjson
import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.factories import UserFactory
from videos.models import DetectionEvent, GroundTruthBox, Project, TestSession, Video

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def video(owner):
    project = Project.objects.create(owner=owner, name="p")
    video = Video.objects.create(
        project=project,
        original_name="a.mp4",
        file="videos/a.mp4",
        size_bytes=1,
        content_type="video/mp4",
        sha256="0" * 64,
        status="completed",
        width=100,
        height=100,
        frame_count=10,
        fps=10.0,
    )
    # Frame 0: two "car" boxes; frame 1: one "person" box; frame 2: nothing.
    GroundTruthBox.objects.bulk_create(
        [
            GroundTruthBox(video=video, frame=0, timestamp_ms=0, label="car", x=0, y=0, w=10, h=10),
            GroundTruthBox(video=video, frame=0, timestamp_ms=0, label="car", x=50, y=50, w=10, h=10),
            GroundTruthBox(video=video, frame=1, timestamp_ms=100, label="person", x=20, y=20, w=10, h=10),
        ]
    )
    return video


def det(frame, label, conf, x, y, w=10, h=10):
    return {
        "frame": frame,
        "timestamp_ms": frame * 100,
        "label": label,
        "confidence": conf,
        "x": x,
        "y": y,
        "w": w,
        "h": h,
    }


# Exact case: TP on (0,0); a duplicate on the same box → FP; a box shifted by 5 px (IoU 1/3) → FP and
# the second car box unmatched → FN; a wrong label on frame 1 → FP + FN; an empty frame 2 with an FP.
DETECTIONS = [
    det(0, "car", 0.9, 0, 0),
    det(0, "car", 0.8, 1, 0),
    det(0, "car", 0.7, 55, 50),
    det(1, "truck", 0.6, 20, 20),
    det(2, "car", 0.5, 70, 70),
]


def _session(owner_api, video, **extra) -> dict:
    response = owner_api.post(
        f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "yolo", **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_session_needs_a_completed_video(owner_api, video):
    Video.objects.filter(pk=video.pk).update(status="processing")
    response = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "m"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_create_list_and_detail(owner_api, video):
    created = _session(owner_api, video, iou_threshold=0.4)
    assert (created["status"], created["iou_threshold"], created["tp"]) == ("open", 0.4, 0)
    assert owner_api.get(f"/api/v1/test-sessions/{created['id']}").json() == created
    page = owner_api.get(f"/api/v1/videos/{video.pk}/test-sessions").json()
    assert [s["id"] for s in page["results"]] == [created["id"]]


def test_foreign_session_is_404(owner_api, video):
    created = _session(owner_api, video)
    stranger = APIClient()
    stranger.credentials(**bearer(UserFactory()))
    assert stranger.get(f"/api/v1/test-sessions/{created['id']}").status_code == 404
    assert (
        stranger.post(f"/api/v1/test-sessions/{created['id']}/detections", [DETECTIONS[0]], format="json").status_code
        == 404
    )
    assert DetectionEvent.objects.count() == 0


def test_json_and_jsonl_ingest_store_the_same_rows(owner_api, video):
    a, b = _session(owner_api, video), _session(owner_api, video)
    first = owner_api.post(f"/api/v1/test-sessions/{a['id']}/detections", DETECTIONS, format="json")
    body = b"\n".join(orjson.dumps(d) for d in DETECTIONS) + b"\n"
    second = owner_api.generic(
        "POST", f"/api/v1/test-sessions/{b['id']}/detections", body, content_type="application/jsonl"
    )
    assert (first.status_code, first.json()) == (201, {"inserted": 5})
    assert (second.status_code, second.json()) == (201, {"inserted": 5})
    fields = ("frame", "timestamp_ms", "label", "confidence", "x", "y", "w", "h")
    rows_a = list(DetectionEvent.objects.filter(test_session_id=a["id"]).order_by("id").values_list(*fields))
    rows_b = list(DetectionEvent.objects.filter(test_session_id=b["id"]).order_by("id").values_list(*fields))
    assert rows_a == rows_b and len(rows_a) == 5


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": "high"}, "confidence"),
        ({"frame": -1}, "frame"),
        ({"frame": 10}, "frame"),
        ({"frame": True}, "frame"),
        ({"x": 95}, "w"),
        ({"w": 0}, "w"),
        ({"y": -3}, "y"),
        ({"label": ""}, "label"),
        ({"label": "car\u0000"}, "label"),  # PostgreSQL text cannot store NUL
        ({"timestamp_ms": 1.5}, "timestamp_ms"),
    ],
)
def test_first_bad_row_is_named_and_nothing_inserted(owner_api, video, bad, field):
    session = _session(owner_api, video)
    rows = [*DETECTIONS[:3], {**DETECTIONS[3], **bad}, {**DETECTIONS[4], "confidence": 7}]
    response = owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", rows, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["details"] == {"row": 3, "field": field}
    assert DetectionEvent.objects.count() == 0


@pytest.mark.parametrize("payload", [[], {"not": "a list"}, [1, 2]])
def test_empty_or_malformed_bodies_are_400(owner_api, video, payload):
    session = _session(owner_api, video)
    response = owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", payload, format="json")
    assert response.status_code == 400
    assert DetectionEvent.objects.count() == 0


def test_bad_jsonl_line_is_named(owner_api, video):
    session = _session(owner_api, video)
    body = orjson.dumps(DETECTIONS[0]) + b"\n{oops\n"
    response = owner_api.generic(
        "POST", f"/api/v1/test-sessions/{session['id']}/detections", body, content_type="application/jsonl"
    )
    assert response.status_code == 400
    assert response.json()["details"] == {"row": 1, "field": None}


def test_scoring_end_to_end_by_the_worker(owner_api, video, worker):
    session = _session(owner_api, video)
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", DETECTIONS, format="json")
    response = owner_api.post(f"/api/v1/test-sessions/{session['id']}/complete")
    assert (response.status_code, response.json()["status"]) == (202, "scoring")
    # Ingest is refused once scoring started.
    late = owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", DETECTIONS, format="json")
    assert late.status_code == 409
    import time

    deadline = time.monotonic() + 120
    while TestSession.objects.values_list("status", flat=True).get(pk=session["id"]) == "scoring":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    body = owner_api.get(f"/api/v1/test-sessions/{session['id']}").json()
    assert body["status"] == "completed"
    assert (body["tp"], body["fp"], body["fn"]) == (1, 4, 2)
    assert body["precision"] == pytest.approx(1 / 5)
    assert body["recall"] == pytest.approx(1 / 3)
    assert body["f1"] == pytest.approx(2 * (1 / 5) * (1 / 3) / (1 / 5 + 1 / 3))
    assert body["mean_iou"] == pytest.approx(1.0)
    results = list(
        DetectionEvent.objects.filter(test_session_id=session["id"])
        .order_by("id")
        .values_list("result__validation_result", "result__iou")
    )
    assert [r for r, _ in results] == ["TP", "FP", "FP", "FP", "FP"]
    assert results[0][1] == pytest.approx(1.0)
    assert results[2][1] == pytest.approx(50 / 150)
    assert owner_api.post(f"/api/v1/test-sessions/{session['id']}/complete").status_code == 409


def test_detections_stream_and_pages_return_every_row_once(owner_api, video):
    session = _session(owner_api, video)
    rows = [det(i % 10, "car", 0.5, 1, 1) for i in range(57)]
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", rows, format="json")
    ids = list(DetectionEvent.objects.order_by("timestamp_ms", "id").values_list("id", flat=True))
    for base in (f"/api/v1/test-sessions/{session['id']}/detections", f"/api/v1/videos/{video.pk}/detections"):
        url, seen = f"{base}?page_size=10", []
        while url:
            page = owner_api.get(url).json()
            seen += [d["id"] for d in page["results"]]
            url = page["next"]
        assert seen == ids
        stream = owner_api.get(f"{base}?format=jsonl")
        assert stream["Content-Type"] == "application/jsonl"

        async def collect(response=stream) -> bytes:
            return b"".join([c async for c in response.streaming_content])

        lines = async_to_sync(collect)().splitlines()
        assert [orjson.loads(line)["id"] for line in lines] == ids


def _walk(owner_api, url: str, link: str) -> list[int]:
    seen = []
    while url:
        page = owner_api.get(url).json()
        seen += [d["id"] for d in (page["results"] if link == "next" else reversed(page["results"]))]
        url = page[link]
    return seen


def _jsonl_ids(response) -> list[int]:
    async def collect() -> bytes:
        return b"".join([c async for c in response.streaming_content])

    return [orjson.loads(line)["id"] for line in async_to_sync(collect)().splitlines()]


def test_a_videos_detections_merge_its_sessions_in_timestamp_order(owner_api, video, django_assert_num_queries):
    """Each session is read in its own index order and the sessions merged: interleaved timestamps, ties
    on the timestamp across sessions (broken by id), an empty session; pages forwards, then backwards from
    the last page by `previous`, and the stream, each give every row once in (timestamp_ms, id) order."""
    sessions = [_session(owner_api, video) for _ in range(4)]
    for k, session in enumerate(sessions[:3]):
        rows = [det((i * 3 + k) % 10, "car", 0.5, 1, 1) for i in range(17 + k)]
        assert (
            owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", rows, format="json").status_code == 201
        )
    ids = list(DetectionEvent.objects.order_by("timestamp_ms", "id").values_list("id", flat=True))
    base = f"/api/v1/videos/{video.pk}/detections"
    assert _walk(owner_api, f"{base}?page_size=7", "next") == ids
    last = owner_api.get(f"{base}?page_size=7")
    while last.json()["next"]:
        last = owner_api.get(last.json()["next"])
    tail = [d["id"] for d in reversed(last.json()["results"])]
    assert tail + _walk(owner_api, last.json()["previous"], "previous") == ids[::-1]
    assert _jsonl_ids(owner_api.get(f"{base}?format=jsonl")) == ids
    # The access check, the video's sessions, the merged page: 3 statements at any page size.
    for size in (5, 5000):
        with django_assert_num_queries(3):
            assert owner_api.get(f"{base}?page_size={size}").status_code == 200


def test_a_video_without_sessions_has_no_detections(owner_api, video):
    assert owner_api.get(f"/api/v1/videos/{video.pk}/detections").json() == {
        "results": [],
        "next": None,
        "previous": None,
    }
    assert _jsonl_ids(owner_api.get(f"/api/v1/videos/{video.pk}/detections?format=jsonl")) == []


def test_detection_pages_cost_fixed_queries(owner_api, video, django_assert_num_queries):
    session = _session(owner_api, video)
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", [det(1, "car", 0.5, 1, 1)] * 30, format="json")
    with django_assert_num_queries(2):
        owner_api.get(f"/api/v1/test-sessions/{session['id']}/detections?page_size=5")
    with django_assert_num_queries(2):
        owner_api.get(f"/api/v1/test-sessions/{session['id']}/detections?page_size=5000")
    assert TestSession.objects.count() == 1
