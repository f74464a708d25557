"""Durable jobs: leases, retries that replace partial output, exhausted attempts, stale-job recovery, long poll."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.videos.conftest import upload, wait_for_status
from videos import processing
from videos.models import GroundTruthBox, ProcessingJob, Video
from videos.progress import publish_video

pytestmark = pytest.mark.django_db(transaction=True)


def test_retry_after_a_dead_worker_replaces_partial_boxes(owner_api, project, sample_video, worker):
    worker.pause()
    body = upload(owner_api, project["id"], sample_video[0]).json()
    job = ProcessingJob.objects.get(video_id=body["id"])
    # A worker claimed the job, wrote partial output, then died: its heartbeat went stale.
    GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video_id=body["id"], frame=i, timestamp_ms=i, label="stale", x=0, y=0, w=1, h=1)
        for i in range(5)
    )
    stale = timezone.now() - timedelta(seconds=processing.LEASE_S + 5)
    ProcessingJob.objects.filter(pk=job.pk).update(state="running", attempts=1, heartbeat_at=stale, started_at=stale)
    worker.broker.flush_all()  # the original message is gone with the dead worker
    worker.resume()
    call_command("requeue_stale_jobs")
    assert wait_for_status(owner_api, body["id"])["status"] == "completed"
    assert not GroundTruthBox.objects.filter(video_id=body["id"], label="stale").exists()
    frames = list(GroundTruthBox.objects.filter(video_id=body["id"]).values_list("frame", flat=True))
    assert (frames and len(frames) == len(set(frames))) or len(frames) == GroundTruthBox.objects.filter(
        video_id=body["id"]
    ).count()
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("succeeded", 2)


def test_a_job_delivered_twice_runs_once(owner_api, project, sample_video, worker):
    body = upload(owner_api, project["id"], sample_video[0]).json()
    assert wait_for_status(owner_api, body["id"])["status"] == "completed"
    count = GroundTruthBox.objects.filter(video_id=body["id"]).count()
    job = ProcessingJob.objects.get(video_id=body["id"])
    processing.process_video_job(job_id=job.pk)  # duplicate delivery after success: a no-op
    assert GroundTruthBox.objects.filter(video_id=body["id"]).count() == count
    job.refresh_from_db()
    assert job.attempts == 1


def test_a_live_lease_is_not_taken_twice(owner_api, project, sample_video):
    body = upload(owner_api, project["id"], sample_video[0]).json()
    job = ProcessingJob.objects.get(video_id=body["id"])
    assert processing.job_claim(job_id=job.pk) is not None
    assert processing.job_claim(job_id=job.pk) is None  # redelivered while running: skipped
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("running", 1)


def test_exhausted_attempts_end_failed_without_redelivery(owner_api, project, sample_video):
    body = upload(owner_api, project["id"], sample_video[0]).json()
    job = ProcessingJob.objects.get(video_id=body["id"])
    ProcessingJob.objects.filter(pk=job.pk).update(
        attempts=processing.MAX_ATTEMPTS, last_error="decoder crashed (signal 11)"
    )
    assert processing.job_claim(job_id=job.pk) is None
    job.refresh_from_db()
    video = Video.objects.get(pk=body["id"])
    assert (job.state, video.status, video.error) == ("failed", "failed", "decoder crashed (signal 11)")
    assert processing.requeue_stale_jobs(older_than_s=0) == 0


def test_long_poll_returns_when_progress_changes(owner_api, project, sample_video):
    body = upload(owner_api, project["id"], sample_video[0]).json()

    def advance() -> None:
        time.sleep(0.5)
        Video.objects.filter(pk=body["id"]).update(status="processing", stage="probing", progress=7)
        publish_video(body["id"])

    thread = threading.Thread(target=advance)
    thread.start()
    response = owner_api.get(f"/api/v1/videos/{body['id']}/status?wait=20")
    thread.join()
    assert response.json() == {
        "video_id": body["id"],
        "status": "processing",
        "stage": "probing",
        "progress": 7,
        "error": None,
        "changed": True,
    }


def test_long_poll_times_out_unchanged(owner_api, project, sample_video):
    body = upload(owner_api, project["id"], sample_video[0]).json()
    response = owner_api.get(f"/api/v1/videos/{body['id']}/status?wait=0.3")
    assert response.json()["changed"] is False
