"""Upload → 202 queued → worker probes, thumbnails and generates ground truth → completed."""

import statistics

import pytest

from tests.videos.conftest import upload, wait_for_status
from videos.models import GroundTruthBox, ProcessingJob, Video

pytestmark = pytest.mark.django_db(transaction=True)


def _iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def test_uploaded_video_is_processed_end_to_end(owner_api, project, sample_video, worker):
    path, truth = sample_video
    response = upload(owner_api, project["id"], path)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["original_name"] == path.name
    assert body["size_bytes"] == path.stat().st_size
    assert body["content_type"] == "video/mp4"

    done = wait_for_status(owner_api, body["id"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100
    assert done["ground_truth_generated"] is True
    assert done["fps"] == pytest.approx(24.0)
    assert done["frame_count"] == 48
    assert (done["width"], done["height"]) == (160, 120)
    assert done["duration_s"] == pytest.approx(2.0, abs=0.05)
    assert done["thumbnail_url"]

    boxes = {b.frame: (b.x, b.y, b.w, b.h) for b in GroundTruthBox.objects.filter(video_id=body["id"])}
    visible = [t for t in truth if t.fully_visible and t.frame in boxes]
    assert len(visible) >= 10
    ious = [_iou(boxes[t.frame], (t.x, t.y, t.w, t.h)) for t in visible]
    assert statistics.median(ious) >= 0.5
    job = ProcessingJob.objects.get(video_id=body["id"])
    assert (job.state, job.attempts) == ("succeeded", 1)


def test_corrupt_video_fails_readably_and_the_next_still_completes(owner_api, project, sample_video, worker, tmp_path):
    bad = tmp_path / "bad.mp4"
    good_path, _ = sample_video
    # A valid MP4 signature followed by garbage: accepted by the sniffer, unreadable for the decoder.
    bad.write_bytes(good_path.read_bytes()[:32] + b"\x00garbage" * 4000)
    first = upload(owner_api, project["id"], bad).json()
    second = upload(owner_api, project["id"], good_path).json()
    failed = wait_for_status(owner_api, first["id"])
    assert failed["status"] == "failed"
    assert failed["error"]
    assert wait_for_status(owner_api, second["id"])["status"] == "completed"
    assert Video.objects.get(pk=first["id"]).ground_truth_generated is False
