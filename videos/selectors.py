"""Video-side reads: every access check funnels through a `<entity>_get_for_user` gate (foreign → 404)."""

from typing import Any

from django.db.models import Count, QuerySet

from config.errors import NotFound
from videos.models import DetectionEvent, GroundTruthBox, Project, TestSession, Video
from videos.storage import sign_media

PROJECT_ORDERING = ("-created_at", "-id")


def _visible(queryset: QuerySet[Any], user: Any, owner_path: str) -> QuerySet[Any]:
    return queryset if user.is_staff else queryset.filter(**{owner_path: user.id})


def project_list(*, user: Any) -> QuerySet[Project]:
    """The caller's projects (staff: all), each annotated with video_count in the same query."""
    return _visible(Project.objects.annotate(video_count=Count("videos")), user, "owner_id")


async def project_get_for_user(*, user: Any, project_id: int, annotate: bool = False) -> Project:
    """The project if the caller may see it, else 404."""
    queryset = project_list(user=user) if annotate else _visible(Project.objects.all(), user, "owner_id")
    project = await queryset.filter(pk=project_id).afirst()
    if project is None:
        raise NotFound("Project not found.")
    return project


def project_to_dict(project: Project) -> dict[str, Any]:
    return {
        "id": project.pk,
        "name": project.name,
        "description": project.description,
        "video_count": getattr(project, "video_count", 0),
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


VIDEO_ORDERING = ("-created_at", "-id")
GROUND_TRUTH_ORDERING = ("frame", "id")
GROUND_TRUTH_FIELDS = ("id", "frame", "timestamp_ms", "label", "x", "y", "w", "h")


def video_list(*, project_id: int, status: str | None = None, ground_truth_generated: bool | None = None):
    queryset = Video.objects.filter(project_id=project_id)
    if status:
        queryset = queryset.filter(status=status)
    if ground_truth_generated is not None:
        queryset = queryset.filter(ground_truth_generated=ground_truth_generated)
    return queryset


async def video_get_for_user(*, user: Any, video_id: int) -> Video:
    """The video if the caller may see its project, else 404."""
    video = await _visible(Video.objects.all(), user, "project__owner_id").filter(pk=video_id).afirst()
    if video is None:
        raise NotFound("Video not found.")
    return video


def video_to_dict(video: Video, request: Any) -> dict[str, Any]:
    base = f"/api/v1/videos/{video.pk}"
    thumbnail_url = None
    if video.thumbnail:
        thumbnail_url = request.build_absolute_uri(f"{base}/thumbnail?sig={sign_media(video.pk, 'thumbnail')}")
    return {
        "id": video.pk,
        "project_id": video.project_id,
        "original_name": video.original_name,
        "size_bytes": video.size_bytes,
        "content_type": video.content_type,
        "sha256": video.sha256,
        "status": video.status,
        "stage": video.stage,
        "progress": video.progress,
        "error": video.error or None,
        "duration_s": video.duration_s,
        "fps": video.fps,
        "width": video.width,
        "height": video.height,
        "frame_count": video.frame_count,
        "codec": video.codec,
        "ground_truth_generated": video.ground_truth_generated,
        "thumbnail_url": thumbnail_url,
        "file_url": request.build_absolute_uri(f"{base}/file?sig={sign_media(video.pk, 'file')}"),
        "created_at": video.created_at,
        "updated_at": video.updated_at,
    }


def ground_truth_list(*, video_id: int):
    return GroundTruthBox.objects.filter(video_id=video_id).values(*GROUND_TRUTH_FIELDS)


async def video_snapshot(*, video_id: int) -> dict[str, Any]:
    """The fields of a progress message for one video, for a (re)connecting client."""
    from asgiref.sync import sync_to_async

    from videos.progress import video_state

    state = await sync_to_async(video_state)(video_id)
    return state or {}


async def project_snapshot(*, project_id: int) -> list[dict[str, Any]]:
    """Unfinished and recent videos' states for a project socket (bounded to the newest 100)."""
    rows = Video.objects.filter(project_id=project_id).order_by("-created_at", "-id")[:100]
    return [
        {"video_id": v.pk, "status": v.status, "stage": v.stage, "progress": v.progress, "error": v.error or None}
        async for v in rows
    ]


SESSION_ORDERING = ("-created_at", "-id")
DETECTION_ORDERING = ("timestamp_ms", "id")
DETECTION_FIELDS = (
    "id",
    "test_session_id",
    "frame",
    "timestamp_ms",
    "label",
    "confidence",
    "x",
    "y",
    "w",
    "h",
    "validation_result",
    "iou",
)


async def session_get_for_user(*, user: Any, session_id: int) -> TestSession:
    """The test session if the caller may see its video's project, else 404."""
    queryset = _visible(TestSession.objects.select_related("video"), user, "video__project__owner_id")
    session = await queryset.filter(pk=session_id).afirst()
    if session is None:
        raise NotFound("Test session not found.")
    return session


def session_list(*, video_id: int) -> QuerySet[TestSession]:
    return TestSession.objects.filter(video_id=video_id)


def session_to_dict(session: TestSession) -> dict[str, Any]:
    return {
        "id": session.pk,
        "video_id": session.video_id,
        "model_name": session.model_name,
        "iou_threshold": session.iou_threshold,
        "status": session.status,
        "tp": session.tp,
        "fp": session.fp,
        "fn": session.fn,
        "precision": session.precision,
        "recall": session.recall,
        "f1": session.f1,
        "mean_iou": session.mean_iou,
        "error": session.error or None,
        "created_at": session.created_at,
        "completed_at": session.completed_at,
    }


def detection_list(**filters: Any) -> QuerySet[DetectionEvent]:
    """Detections as plain rows (`values`), filtered by test_session_id or video_id."""
    return DetectionEvent.objects.filter(**filters).values(*DETECTION_FIELDS)
