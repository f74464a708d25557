"""Video-side writes: projects, uploads, durable jobs."""

import logging
from typing import TYPE_CHECKING, Any

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from dramatiq.errors import BrokerError
from redis.exceptions import RedisError

from config import cache
from config.errors import Conflict, NotFound
from videos import detections
from videos.models import ProcessingJob, Project, TestSession, Video
from videos.storage import clean_original_name, stored_name

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from videos.storage import VideoUpload


def project_create(*, owner_id: int, name: str, description: str = "") -> Project:
    """Create a project; a duplicate name for the same owner is a 409."""
    try:
        with transaction.atomic():
            project = Project.objects.create(owner_id=owner_id, name=name.strip(), description=description)
            cache.project_changed(project.pk, owner_id)
            return project
    except IntegrityError as exc:
        raise Conflict("You already have a project with this name.", details={"field": "name"}) from exc


def project_update(*, project: Project, data: dict[str, Any]) -> Project:
    """Apply a PATCH to a project."""
    for field, value in data.items():
        setattr(project, field, value.strip() if field == "name" else value)
    try:
        with transaction.atomic():
            project.save(update_fields=[*data, "updated_at"])
            cache.project_changed(project.pk, project.owner_id)
    except IntegrityError as exc:
        raise Conflict("You already have a project with this name.", details={"field": "name"}) from exc
    return project


def _delete_files_on_commit(names: list[str]) -> None:
    def delete() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(delete)


def project_delete(*, project: Project) -> None:
    """Delete a project, its videos and everything under them; stored files go once the rows are gone."""
    with transaction.atomic():
        names = [
            name
            for pair in Video.objects.filter(project=project).values_list("file", "thumbnail")
            for name in pair
            if name
        ]
        lock_sessions(TestSession.objects.filter(video__project=project))
        cache.project_changed(project.pk, project.owner_id)
        project.delete()
        _delete_files_on_commit(names)


# --- Upload ---------------------------------------------------------------------
PLAN_PRIORITY = {"free": 0, "pro": 5, "enterprise": 9}


def video_ingest(*, project: Project, user_id: int, upload: "VideoUpload") -> Video:
    """Store a streamed upload under a generated name, create the video and enqueue its processing job.

    The row and the job commit together; if they cannot, the stored file is removed again.
    """
    content_type = upload.sniffed_type or "application/octet-stream"
    name = default_storage.save(stored_name(content_type), upload)
    try:
        with transaction.atomic():
            video = Video.objects.create(
                project=project,
                uploaded_by_id=user_id,
                original_name=clean_original_name(upload.name or ""),
                file=name,
                size_bytes=upload.size,
                content_type=content_type,
                sha256=upload.sha256,
            )
            job_enqueue(video=video, kind=ProcessingJob.Kind.PROCESS, priority=_owner_priority(video))
            cache.project_changed(project.pk, project.owner_id)
    except BaseException:
        default_storage.delete(name)
        raise
    finally:
        upload.close()
    return video


def job_enqueue(
    *, video: Video, kind: str, priority: int = 0, test_session: TestSession | None = None
) -> ProcessingJob:
    """Create the durable job (or return the live one: idempotent) and send its message once committed."""
    live = ProcessingJob.objects.filter(
        video=video, kind=kind, test_session=test_session, state__in=ProcessingJob.ACTIVE
    ).first()
    if live is not None:
        return live
    try:
        with transaction.atomic():
            job = ProcessingJob.objects.create(video=video, kind=kind, priority=priority, test_session=test_session)
    except IntegrityError:  # A concurrent request created it first.
        return ProcessingJob.objects.get(
            video=video, kind=kind, test_session=test_session, state__in=ProcessingJob.ACTIVE
        )
    transaction.on_commit(lambda: send_job_or_leave_pending(job))
    return job


def send_job_or_leave_pending(job: ProcessingJob) -> None:
    """send_job after commit; with the broker down the job stays pending (the request still succeeds) and
    requeue_stale_jobs sends it once it is older than the lease."""
    try:
        send_job(job)
    except (BrokerError, RedisError, OSError):
        logger.warning("broker unavailable: job left pending for requeue_stale_jobs", extra={"job_id": job.pk})


def send_job(job: ProcessingJob) -> None:
    """Send the actor message for a job (also used by requeue_stale_jobs)."""
    from videos import actors

    actor = actors.ACTORS[job.kind]
    queue = actors.PAID_QUEUE if job.priority > 0 else actor.queue_name
    message = actor.message(job.pk).copy(queue_name=queue)
    actor.broker.enqueue(message)


def video_reprocess(*, video: Video) -> Video:
    """Queue processing again; while a job is pending or running this returns without a second job."""
    with transaction.atomic():
        job = job_enqueue(video=video, kind=ProcessingJob.Kind.PROCESS, priority=_owner_priority(video))
        if job.state == ProcessingJob.State.PENDING and job.attempts == 0:
            Video.objects.filter(pk=video.pk, status__in=[Video.Status.COMPLETED, Video.Status.FAILED]).update(
                status=Video.Status.QUEUED, stage="queued", progress=0, error=""
            )
        cache.project_changed(video.project_id, video.project.owner_id)
    video.refresh_from_db()
    return video


def _owner_priority(video: Video) -> int:
    plan = Project.objects.filter(pk=video.project_id).values_list("owner__plan", flat=True).first()
    return PLAN_PRIORITY.get(plan or "free", 0)


def video_delete(*, video: Video) -> None:
    """Delete a video and its rows; its stored files go once the delete commits."""
    with transaction.atomic():
        names = [name for name in (video.file.name, video.thumbnail.name) if name]
        lock_sessions(TestSession.objects.filter(video=video))
        cache.project_changed(video.project_id, video.project.owner_id)
        video.delete()
        _delete_files_on_commit(names)


# --- Test sessions ---------------------------------------------------------------
def session_create(*, video: Video, user_id: int, model_name: str, iou_threshold: float) -> TestSession:
    """Open a test session; the video must have finished processing (409 otherwise)."""
    if video.status != Video.Status.COMPLETED:
        raise Conflict("The video has not finished processing.", details={"status": video.status})
    session = TestSession.objects.create(
        video=video, created_by_id=user_id, model_name=model_name.strip(), iou_threshold=iou_threshold
    )
    cache.project_changed(video.project_id, video.project.owner_id)
    return session


def lock_sessions(sessions: QuerySet[TestSession]) -> list[int]:
    """Lock sessions' rows until the transaction ends. Detections and results reference their session
    without a database constraint (models.DetectionEvent), so a delete first waits for ingest or scoring
    writing under these locks and then cascades to their committed rows, leaving no orphans. The ids locked."""
    return list(sessions.order_by("pk").select_for_update(of=("self",)).values_list("pk", flat=True))


def detections_ingest(*, session: TestSession, body: bytes, jsonl: bool) -> int:
    """Parse and validate a JSON array or JSON Lines body (the first bad row is named, nothing inserted) and
    insert its rows in bulk, under the session's row lock (see lock_sessions)."""
    video = session.video
    columns = detections.read_body(
        body, jsonl=jsonl, width=video.width, height=video.height, frame_count=video.frame_count
    )
    with transaction.atomic():
        locked = TestSession.objects.select_for_update().filter(pk=session.pk).values_list("status", flat=True)
        status = locked.first()
        if status is None:
            raise NotFound("Test session not found.")
        if status != TestSession.Status.OPEN:
            raise Conflict("Detections can only be added while the session is open.", details={"status": status})
        detections.insert_rows(session_id=session.pk, video_id=session.video_id, rows=columns)
        cache.project_changed(video.project_id, video.project.owner_id)
    return len(columns)


def session_complete(*, session: TestSession) -> TestSession:
    """Close ingest and queue scoring; repeating it while scoring is a no-op, after completion a 409."""
    with transaction.atomic():
        session = TestSession.objects.select_for_update().select_related("video").get(pk=session.pk)
        if session.status == TestSession.Status.COMPLETED:
            raise Conflict("The session is already scored.", details={"status": session.status})
        if session.status in (TestSession.Status.OPEN, TestSession.Status.FAILED):
            session.status = TestSession.Status.SCORING
            session.error = ""
            session.save(update_fields=["status", "error"])
        job_enqueue(video=session.video, kind=ProcessingJob.Kind.SCORE, test_session=session)
        cache.project_changed(session.video.project_id, session.video.project.owner_id)
    return session
