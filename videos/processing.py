"""The processing job: claim (lease), probe, thumbnail, ground truth, replace boxes, finish. Idempotent."""

import functools
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from config import cache
from config.bulk import bulk_insert, bulk_insert_arrays, concat_grouped, fetch_grouped_arrays
from videos import scoring, vision
from videos.models import DetectionEvent, DetectionResult, GroundTruthBox, ProcessingJob, TestSession, Video
from videos.progress import publish_session, publish_video
from videos.services import lock_sessions

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# A running job whose heartbeat is older than this is presumed dead. The environment overrides here let the
# reliability suite (tests/reliability) run real workers with short leases and small decoder limits.
LEASE_S = int(os.environ.get("JOB_LEASE_S", "60"))
PROGRESS_INTERVAL_S = 0.25  # At most ~4 progress writes/messages per second.
GT_STRIDE = int(os.environ.get("GT_STRIDE", "1"))
DECODE_CPU_S = int(os.environ.get("DECODE_CPU_S", "600"))
DECODE_MEMORY_BYTES = int(os.environ.get("DECODE_MEMORY_BYTES", str(2 * 1024**3)))
DECODE_WALL_S = float(os.environ.get("DECODE_WALL_S", "900"))
# Scoring loads these, and the label of each row as an integer code (_load_scoring_inputs).
GT_COLUMNS = ("id", "frame", "x", "y", "w", "h")
DETECTION_COLUMNS = ("id", "frame", "confidence", "x", "y", "w", "h")


def job_claim(*, job_id: int) -> ProcessingJob | None:
    """Take the lease on a job: pending, or running with a stale heartbeat. None if someone else holds it,
    it already finished, or its attempts are used up (then it is marked failed)."""
    now = timezone.now()
    stale = now - timedelta(seconds=LEASE_S)
    with transaction.atomic():
        claimed = ProcessingJob.objects.filter(
            Q(state=ProcessingJob.State.PENDING) | Q(state=ProcessingJob.State.RUNNING, heartbeat_at__lt=stale),
            pk=job_id,
            attempts__lt=MAX_ATTEMPTS,
        ).update(state=ProcessingJob.State.RUNNING, attempts=F("attempts") + 1, started_at=now, heartbeat_at=now)
        if not claimed:
            exhausted = ProcessingJob.objects.filter(
                pk=job_id, state__in=ProcessingJob.ACTIVE, attempts__gte=MAX_ATTEMPTS
            ).select_related("video")
            for job in exhausted:
                _fail(job, job.last_error or f"Gave up after {MAX_ATTEMPTS} attempts.")
            return None
    return ProcessingJob.objects.select_related("video", "video__project").get(pk=job_id)


def _fail(job: ProcessingJob, error: str) -> None:
    now = timezone.now()
    ProcessingJob.objects.filter(pk=job.pk).update(state=ProcessingJob.State.FAILED, last_error=error, finished_at=now)
    if job.kind == ProcessingJob.Kind.PROCESS:
        Video.objects.filter(pk=job.video_id).update(
            status=Video.Status.FAILED, stage="failed", error=error, updated_at=now
        )
        publish_video(job.video_id)
    else:
        TestSession.objects.filter(pk=job.test_session_id).update(status=TestSession.Status.FAILED, error=error)
        publish_session(
            video_id=job.video_id,
            project_id=job.video.project_id,
            session_id=job.test_session_id,
            status=TestSession.Status.FAILED,
            progress=100,
        )
    cache.project_changed(job.video.project_id, job.video.project.owner_id)


def _retry_or_fail(job: ProcessingJob, exc: Exception) -> None:
    """After a crash: release the lease for the broker's retry, or fail for good once attempts are used up."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if job.attempts >= MAX_ATTEMPTS:
        _fail(job, f"Failed after {job.attempts} attempts: {error}")
        return
    ProcessingJob.objects.filter(pk=job.pk).update(state=ProcessingJob.State.PENDING, last_error=error)


class _Progress:
    """Writes progress and heartbeat at most every PROGRESS_INTERVAL_S, and pushes it to viewers."""

    def __init__(self, job: ProcessingJob) -> None:
        self.job = job
        self.last = 0.0

    def set(self, stage: str, progress: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        stamp = timezone.now()
        Video.objects.filter(pk=self.job.video_id).update(
            status=Video.Status.PROCESSING, stage=stage, progress=progress, updated_at=stamp
        )
        ProcessingJob.objects.filter(pk=self.job.pk).update(heartbeat_at=stamp)
        publish_video(self.job.video_id)


@contextmanager
def local_copy(name: str) -> Iterator[str]:
    """A local path for a stored file: the file itself on disk storage, else a temporary copy."""
    try:
        yield default_storage.path(name)
        return
    except NotImplementedError:
        pass
    suffix = os.path.splitext(name)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp, default_storage.open(name, "rb") as src:
        shutil.copyfileobj(src, tmp, 1024 * 1024)
        tmp.flush()
        yield tmp.name


def replace_ground_truth(video_id: int, boxes: list[vision.Box]) -> None:
    """Delete then insert the video's boxes in the caller's transaction (COPY on PostgreSQL)."""
    GroundTruthBox.objects.filter(video_id=video_id).delete()
    bulk_insert(
        GroundTruthBox,
        ("video_id", "frame", "timestamp_ms", "label", "x", "y", "w", "h"),
        ((video_id, b.frame, b.timestamp_ms, b.label, b.x, b.y, b.w, b.h) for b in boxes),
    )


def process_video_job(*, job_id: int) -> None:
    """Run one attempt of a `process` job. Unreadable videos fail for good; other errors propagate for retry."""
    job = job_claim(job_id=job_id)
    if job is None:
        return
    video = job.video
    progress = _Progress(job)
    try:
        progress.set("probing", 1, force=True)
        cache.project_changed(video.project_id, video.project.owner_id)  # queued → processing
        with local_copy(video.file.name) as path:
            limits = {"cpu_seconds": 60, "memory_bytes": DECODE_MEMORY_BYTES, "wall_seconds": 120.0}
            meta = vision.run_limited(vision.probe, path, **limits)
            Video.objects.filter(pk=video.pk).update(
                duration_s=meta.duration_s,
                fps=meta.fps,
                width=meta.width,
                height=meta.height,
                frame_count=meta.frame_count,
                codec=meta.codec,
            )
            progress.set("thumbnail", 5, force=True)
            jpeg = vision.run_limited(vision.thumbnail_jpeg, path, **limits)
            thumb = default_storage.save(f"thumbnails/{uuid.uuid4().hex}.jpg", ContentFile(jpeg))
            old_thumb = Video.objects.filter(pk=video.pk).values_list("thumbnail", flat=True).first()
            Video.objects.filter(pk=video.pk).update(thumbnail=thumb)
            if old_thumb:
                default_storage.delete(old_thumb)
            progress.set("ground_truth", 10, force=True)
            boxes = vision.detect_motion_limited(
                path,
                stride=GT_STRIDE,
                cpu_seconds=DECODE_CPU_S,
                memory_bytes=DECODE_MEMORY_BYTES,
                wall_seconds=DECODE_WALL_S,
                on_progress=lambda done, total: progress.set("ground_truth", 10 + int(85 * done / max(total, 1))),
            )
    except vision.VideoProcessingError as exc:
        _fail(job, str(exc))
        return
    except Exception as exc:
        _retry_or_fail(job, exc)
        raise
    progress.set("saving", 96, force=True)
    now = timezone.now()
    with transaction.atomic():
        replace_ground_truth(video.pk, boxes)
        Video.objects.filter(pk=video.pk).update(
            status=Video.Status.COMPLETED,
            stage="done",
            progress=100,
            error="",
            ground_truth_generated=True,
            updated_at=now,
        )
        cache.project_changed(video.project_id, video.project.owner_id)
        ProcessingJob.objects.filter(pk=job.pk).update(
            state=ProcessingJob.State.SUCCEEDED, finished_at=now, heartbeat_at=now, last_error=""
        )
    publish_video(video.pk)
    logger.info("video processed", extra={"video_id": video.pk, "boxes": len(boxes)})


def requeue_stale_jobs(*, older_than_s: int = LEASE_S) -> int:
    """Resend jobs whose worker died (running with an old heartbeat) or whose message was lost (old pending)."""
    from videos.services import send_job

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = ProcessingJob.objects.filter(
        Q(state=ProcessingJob.State.RUNNING, heartbeat_at__lt=cutoff)
        | Q(state=ProcessingJob.State.PENDING, created_at__lt=cutoff)
    )
    count = 0
    for job in stale:
        send_job(job)
        count += 1
    return count


def write_back_results(session_id: int, ids: np.ndarray, is_tp: np.ndarray, iou: np.ndarray) -> None:
    """Replace the session's stored results with one row per detection, in the caller's transaction: a
    binary COPY laid out by NumPy into the narrow results table (batched INSERTs off PostgreSQL).

    A first scoring has nothing to replace, yet deleting by session first cost as much as the COPY (the
    planner scans the whole results table for an unscored session). So the COPY goes first, in a savepoint;
    stored results make it fail on the primary key, and only then are they deleted and the COPY repeated.
    They always do: a scoring writes a result for every detection of its session, and the new rows hold
    every detection still in the session (results of detections deleted since, e.g. in the admin, are
    unreachable and go with their session)."""
    order = np.argsort(ids, kind="stable")  # ascending keys append to the primary-key index
    columns = {
        "detection_id": ids[order],
        "test_session_id": np.full(ids.size, session_id, dtype=np.int64),
        "validation_result": np.where(is_tp[order], b"TP", b"FP"),
        "iou": iou[order],
    }
    try:
        with transaction.atomic():
            bulk_insert_arrays(DetectionResult, columns)
    except IntegrityError:  # a retry, or the session scored again
        DetectionResult.objects.filter(test_session_id=session_id).delete()
        bulk_insert_arrays(DetectionResult, columns)


def score_session_job(*, job_id: int) -> None:
    """Score one attempt of a `score` job: match, write every detection's result back, store the totals."""
    job = job_claim(job_id=job_id)
    if job is None:
        return
    try:
        _score(job)
    except Exception as exc:
        _retry_or_fail(job, exc)
        raise


def _load_scoring_inputs(session: TestSession, video: Video) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The video's ground truth and the session's detections as arrays in id order, with labels as integer
    codes that mean the same label in both (the matcher only compares them), so no `str` is made per row."""
    detections = DetectionEvent.objects.filter(test_session_id=session.pk)
    later = None
    if (split_ms := _load_split_ms(video)) is not None:
        later = _loader().submit(_fetch_in_thread, detections.filter(timestamp_ms__gte=split_ms))
        detections = detections.filter(timestamp_ms__lt=split_ms)
    gt_labels, gt_codes, gt = fetch_grouped_arrays(
        GroundTruthBox.objects.filter(video_id=video.pk), "label", GT_COLUMNS
    )
    det_labels, det_codes, det = fetch_grouped_arrays(detections, "label", DETECTION_COLUMNS)
    if later is not None:
        det_labels, det_codes, det = concat_grouped((det_labels, det_codes, det), later.result())
    shared = {label: code for code, label in enumerate(gt_labels)}
    gt["label"] = gt_codes
    det["label"] = np.array([shared.setdefault(label, len(shared)) for label in det_labels], dtype=np.int64)[det_codes]
    # Rows come grouped by label. In id order, the order they were stored in, the matcher breaks ties (equal
    # confidences, equal IoUs) and the totals sum floats exactly as when rows came in storage order.
    return _in_id_order(gt), _in_id_order(det)


# The detections load in two halves at once, the later half on a second connection from a thread of its
# own: PostgreSQL's array_agg cannot run in parallel workers before version 16, and the aggregation is
# most of a session's load (~35-55 ms saved per 100 000 detections on 2 cores, bench/bench_sessions.py).
# Both halves see the same rows: ingest is refused once the session is `scoring`. Inside a transaction
# (tests) a second connection would not see its rows, so the load stays in one piece there.
_loaders: dict[int, ThreadPoolExecutor] = {}


def _loader() -> ThreadPoolExecutor:
    pid = os.getpid()  # a forked child makes its own
    if pid not in _loaders:
        _loaders[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring-load")
    return _loaders[pid]


def _load_split_ms(video: Video) -> int | None:
    """The middle of the video in ms (the detections' timestamps split there), or None to load in one piece."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or not video.duration_s:
        return None
    return int(video.duration_s * 500)


def _fetch_in_thread(queryset: QuerySet[DetectionEvent]) -> tuple[list[Any], np.ndarray, dict[str, np.ndarray]]:
    try:
        return fetch_grouped_arrays(queryset, "label", DETECTION_COLUMNS)
    finally:
        connection.close()  # this thread's connection, back to the pool


def _in_id_order(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(arrays["id"], kind="stable")
    return {column: values[order] for column, values in arrays.items()}


def _commit_without_waiting_for_the_disk() -> None:
    """The scoring transaction's COMMIT returns before its WAL is flushed (PostgreSQL synchronous_commit off,
    for this transaction only). A crash in that instant can lose the transaction, but only whole, and with it
    the job's success: the job is left claimed, requeue_stale_jobs re-sends it after its lease, and scoring
    again gives the same rows. Ingest keeps waiting: a client's 201 must survive a crash."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _score(job: ProcessingJob) -> None:
    session = TestSession.objects.get(pk=job.test_session_id)
    notify = functools.partial(
        publish_session, video_id=job.video_id, project_id=job.video.project_id, session_id=session.pk
    )
    notify(status=TestSession.Status.SCORING, progress=0)
    gt, det = _load_scoring_inputs(session, job.video)
    notify(status=TestSession.Status.SCORING, progress=30)
    result = scoring.match(
        det["frame"],
        det["label"],
        det["confidence"],
        np.stack([det[c] for c in "xywh"], axis=1),
        gt["frame"],
        gt["label"],
        np.stack([gt[c].astype(float) for c in "xywh"], axis=1),
        session.iou_threshold,
    )
    totals = scoring.metrics(result)
    notify(status=TestSession.Status.SCORING, progress=70)
    now = timezone.now()
    with transaction.atomic():
        _commit_without_waiting_for_the_disk()
        if not lock_sessions(TestSession.objects.filter(pk=session.pk)):
            return  # deleted meanwhile (its job with it): nothing to write
        write_back_results(session.pk, det["id"], result.is_tp, result.iou)
        TestSession.objects.filter(pk=session.pk).update(
            status=TestSession.Status.COMPLETED,
            tp=totals.tp,
            fp=totals.fp,
            fn=totals.fn,
            precision=totals.precision,
            recall=totals.recall,
            f1=totals.f1,
            mean_iou=totals.mean_iou,
            completed_at=now,
            error="",
        )
        cache.project_changed(job.video.project_id, job.video.project.owner_id)
        ProcessingJob.objects.filter(pk=job.pk).update(
            state=ProcessingJob.State.SUCCEEDED, finished_at=now, heartbeat_at=now, last_error=""
        )
    notify(status=TestSession.Status.COMPLETED, progress=100)
    logger.info("session scored", extra={"test_session_id": session.pk, "detections": det["id"].size})
