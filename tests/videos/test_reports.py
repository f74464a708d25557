"""Report (AP, PR curve, per label, min_confidence), timeline, compare and COCO export of scored sessions."""

import orjson
import pytest
from asgiref.sync import async_to_sync

from tests.videos.test_sessions import DETECTIONS, det, video  # noqa: F401 - the `video` fixture
from videos import processing
from videos.models import ProcessingJob, TestSession

pytestmark = pytest.mark.django_db


def _scored(owner_api, video, rows, model="yolo"):  # noqa: F811
    session = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": model}, format="json").json()
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", rows, format="json")
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/complete")
    processing.score_session_job(job_id=ProcessingJob.objects.get(test_session_id=session["id"]).pk)
    assert TestSession.objects.get(pk=session["id"]).status == "completed"
    return session["id"]


def test_report_is_409_before_scoring(owner_api, video):  # noqa: F811
    session = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "m"}, format="json").json()
    response = owner_api.get(f"/api/v1/test-sessions/{session['id']}/report")
    assert response.status_code == 409


def test_report_figures_match_hand_computation(owner_api, video):  # noqa: F811
    sid = _scored(owner_api, video, DETECTIONS)
    report = owner_api.get(f"/api/v1/test-sessions/{sid}/report").json()
    assert (report["tp"], report["fp"], report["fn"]) == (1, 4, 2)
    # Ranked by confidence: TP, FP, FP, FP, FP with 3 GT boxes → precision envelope 1.0 up to recall 1/3.
    assert report["ap50"] == pytest.approx(1 / 3)
    assert report["iou_threshold"] == 0.5
    assert report["per_label"]["car"]["tp"] == 1
    assert report["per_label"]["car"]["fn"] == 1
    assert report["per_label"]["person"]["fn"] == 1
    assert report["per_label"]["truck"]["fp"] == 1
    assert report["pr_curve"][0] == {"confidence": 0.9, "precision": 1.0, "recall": pytest.approx(1 / 3)}


def test_min_confidence_recomputes_every_figure(owner_api, video):  # noqa: F811
    sid = _scored(owner_api, video, DETECTIONS)
    report = owner_api.get(f"/api/v1/test-sessions/{sid}/report?min_confidence=0.85").json()
    assert (report["tp"], report["fp"], report["fn"]) == (1, 0, 2)
    assert report["precision"] == 1.0
    assert report["min_confidence"] == 0.85
    assert owner_api.get(f"/api/v1/test-sessions/{sid}/report?min_confidence=2").status_code == 422


def test_timeline_per_frame(owner_api, video):  # noqa: F811
    sid = _scored(owner_api, video, DETECTIONS)
    page = owner_api.get(f"/api/v1/test-sessions/{sid}/timeline").json()
    assert page["results"] == [
        {"frame": 0, "tp": 1, "fp": 2, "fn": 1},
        {"frame": 1, "tp": 0, "fp": 1, "fn": 1},
        {"frame": 2, "tp": 0, "fp": 1, "fn": 0},
    ]
    first = owner_api.get(f"/api/v1/test-sessions/{sid}/timeline?page_size=2").json()
    rest = owner_api.get(first["next"]).json()
    assert [r["frame"] for r in first["results"] + rest["results"]] == [0, 1, 2]
    assert rest["next"] is None
    lines = owner_api.get(f"/api/v1/test-sessions/{sid}/timeline?format=jsonl").content.splitlines()
    assert [orjson.loads(x) for x in lines] == page["results"]


def test_compare_two_sessions(owner_api, video):  # noqa: F811
    perfect = [det(0, "car", 0.9, 0, 0), det(0, "car", 0.9, 50, 50), det(1, "person", 0.9, 20, 20)]
    a = _scored(owner_api, video, perfect, "perfect")
    b = _scored(owner_api, video, DETECTIONS, "noisy")
    body = owner_api.get(f"/api/v1/videos/{video.pk}/compare?a={a}&b={b}").json()
    assert (body["a"]["tp"], body["a"]["fp"], body["a"]["fn"]) == (3, 0, 0)
    assert (body["b"]["tp"], body["b"]["fp"], body["b"]["fn"]) == (1, 4, 2)
    assert body["frames"] == [{"frame": 0, "right": "a"}, {"frame": 1, "right": "a"}, {"frame": 2, "right": "a"}]


def test_coco_export_streams_a_valid_document(owner_api, video):  # noqa: F811
    sid = _scored(owner_api, video, DETECTIONS)
    response = owner_api.get(f"/api/v1/test-sessions/{sid}/export?format=coco")
    assert response["Content-Type"] == "application/json"

    async def collect() -> bytes:
        return b"".join([c async for c in response.streaming_content])

    doc = orjson.loads(async_to_sync(collect)())
    assert [c["name"] for c in doc["categories"]] == ["car", "person", "truck"]
    assert len(doc["images"]) == 10
    assert len(doc["annotations"]) == 3
    assert len(doc["detections"]) == 5
    assert doc["detections"][0]["bbox"] == [0.0, 0.0, 10.0, 10.0]
    assert {d["validation_result"] for d in doc["detections"]} == {"TP", "FP"}
    assert owner_api.get(f"/api/v1/test-sessions/{sid}/export?format=voc").status_code == 400
