"""Dramatiq actors: thin entry points taking job ids; durable state lives in ProcessingJob."""

import dramatiq

from videos import processing

PAID_QUEUE = "videos.paid"
dramatiq.get_broker().declare_queue(PAID_QUEUE)


# Every job actor: our own attempt counter (ProcessingJob.attempts) caps retries; backoff 1 s → 60 s.
_JOB_OPTIONS = {
    "queue_name": "videos",
    "max_retries": processing.MAX_ATTEMPTS - 1,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
}


@dramatiq.actor(**_JOB_OPTIONS, time_limit=30 * 60 * 1000)
def process_video(job_id: int) -> None:
    """Probe, thumbnail and ground truth for the job's video (retried with exponential backoff)."""
    processing.process_video_job(job_id=job_id)


@dramatiq.actor(**_JOB_OPTIONS, time_limit=10 * 60 * 1000)
def score_test_session(job_id: int) -> None:
    """Match a test session's detections to the ground truth and store every result (retried with backoff)."""
    processing.score_session_job(job_id=job_id)


# Job kind → actor; requeueing and enqueueing look actors up here.
ACTORS = {"process": process_video, "score": score_test_session}
