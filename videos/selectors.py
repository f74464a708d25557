"""Video-side reads: every access check funnels through a `<entity>_get_for_user` gate (foreign → 404)."""

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Count, Exists, F, QuerySet
from django.http import HttpRequest

from config import adb
from config.bulk import aiter_sql
from config.errors import NotFound
from config.pagination import LARGE_PAGE, apaginate, merged_paginate, merged_sql
from videos.models import DetectionEvent, GroundTruthBox, Project, TestSession, Video
from videos.storage import media_signer

PROJECT_ORDERING = ("-created_at", "-id")


def _owned(queryset: QuerySet[Any], owner_id: int | None, owner_path: str) -> QuerySet[Any]:
    """Only rows of `owner_id`'s projects; None (staff) sees all."""
    return queryset if owner_id is None else queryset.filter(**{owner_path: owner_id})


def _visible(queryset: QuerySet[Any], user: Any, owner_path: str) -> QuerySet[Any]:
    return _owned(queryset, None if user.is_staff else user.id, owner_path)


def _scope(user: Any) -> dict[str, int]:
    """The fast reads' owner slot: staff see all, so their statements carry no owner filter."""
    return {} if user.is_staff else {"owner_id": user.id}


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


def _video_search(
    *, owner_id: int | None = None, search: str | None = None, status: str | None = None
) -> QuerySet[Video]:
    queryset = _owned(Video.objects.all(), owner_id, "project__owner_id")
    if search:
        queryset = queryset.filter(original_name__icontains=search)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def video_search(*, user: Any, search: str | None = None, status: str | None = None) -> QuerySet[Video]:
    """The caller's videos across projects (staff: all) whose original name contains `search`, any case.

    icontains compiles to UPPER("original_name"::text) LIKE UPPER('%…%'), the expression the trigram GIN
    index video_name_trgm covers on PostgreSQL (videos migration 0004).
    """
    owner_id = None if user.is_staff else user.id
    return _video_search(owner_id=owner_id, search=(search or "").strip(), status=status)


async def video_search_page(
    request: Any, *, user: Any, search: str | None, status: str | None, fast: bool = False
) -> dict[str, Any]:
    """One cursor page (newest first) of video_search, in one statement on the async pool when `fast`."""
    search = (search or "").strip()
    serialize = lambda row: video_row_to_dict(row, request)  # noqa: E731
    if fast:
        values = {**_scope(user), **({"search": search} if search else {}), **({"status": status} if status else {})}
        page = await adb.page(
            request,
            key=("search", user.is_staff, bool(search), bool(status)),
            build=lambda **v: _video_search(**v).values(*VIDEO_COLUMNS),
            values=values,
            model=Video,
            ordering=VIDEO_ORDERING,
            serialize=serialize,
        )
        if page is not None:
            return page  # an empty page is rare: the ORM path below builds it
    queryset = video_search(user=user, search=search, status=status).values(*VIDEO_COLUMNS)
    return await apaginate(request, queryset, VIDEO_ORDERING, serialize)


async def video_get_for_user(*, user: Any, video_id: int) -> Video:
    """The video if the caller may see its project, else 404."""
    video = await _visible(Video.objects.all(), user, "project__owner_id").filter(pk=video_id).afirst()
    if video is None:
        raise NotFound("Video not found.")
    return video


def _visible_video(*, video_id: int, owner_id: int | None = None) -> QuerySet[Video]:
    return _owned(Video.objects.filter(pk=video_id), owner_id, "project__owner_id")


async def video_get_for_user_fast(*, user: Any, video_id: int) -> Video:
    """`video_get_for_user` in one statement on the async pool (config.adb)."""
    video = await adb.first(
        ("video", user.is_staff),
        lambda **v: _visible_video(**v).order_by("pk")[:1],
        {"video_id": video_id, **_scope(user)},
    )
    if video is None:
        raise NotFound("Video not found.")
    return video  # type: ignore[no-any-return]


async def video_page_fast(
    request: HttpRequest, *, user: Any, project_id: int, status: str | None, ground_truth_generated: bool | None
) -> dict[str, Any] | None:
    """A page of `video_list` for a visible project in one statement; None if empty (the ORM path answers)."""
    values: dict[str, Any] = {"project_id": project_id, **_scope(user), **({"status": status} if status else {})}

    def build(*, project_id: int, owner_id: int | None = None, status: str | None = None) -> QuerySet[Video]:
        queryset = video_list(project_id=project_id, status=status, ground_truth_generated=ground_truth_generated)
        return _owned(queryset, owner_id, "project__owner_id").values(*VIDEO_COLUMNS)

    return await adb.page(
        request,
        key=("videos", user.is_staff, bool(status), ground_truth_generated),
        build=build,
        values=values,
        model=Video,
        ordering=VIDEO_ORDERING,
        serialize=lambda row: video_row_to_dict(row, request),
    )


def _video_links(request: Any) -> tuple[str, Callable[[int, str], str]]:
    """The absolute `/api/v1/videos/` URL and a media signer, made once per request (a list page needs both
    twice per video)."""
    links = getattr(request, "_fw_video_links", None)
    if links is None:
        links = request._fw_video_links = (request.build_absolute_uri("/api/v1/videos/"), media_signer())
    return links


# What a video's JSON is made from: list pages read these columns as values() rows (no model instances).
VIDEO_COLUMNS = (
    "id",
    "project_id",
    "original_name",
    "size_bytes",
    "content_type",
    "sha256",
    "status",
    "stage",
    "progress",
    "error",
    "duration_s",
    "fps",
    "width",
    "height",
    "frame_count",
    "codec",
    "ground_truth_generated",
    "thumbnail",
    "created_at",
    "updated_at",
)


def video_row_to_dict(row: Mapping[str, Any], request: Any) -> dict[str, Any]:
    """A `values(*VIDEO_COLUMNS)` row as the API's video (VideoOut)."""
    pk = row["id"]
    videos_url, sign = _video_links(request)
    base = f"{videos_url}{pk}"
    return {
        "id": pk,
        "project_id": row["project_id"],
        "original_name": row["original_name"],
        "size_bytes": row["size_bytes"],
        "content_type": row["content_type"],
        "sha256": row["sha256"],
        "status": row["status"],
        "stage": row["stage"],
        "progress": row["progress"],
        "error": row["error"] or None,
        "duration_s": row["duration_s"],
        "fps": row["fps"],
        "width": row["width"],
        "height": row["height"],
        "frame_count": row["frame_count"],
        "codec": row["codec"],
        "ground_truth_generated": row["ground_truth_generated"],
        "thumbnail_url": f"{base}/thumbnail?sig={sign(pk, 'thumbnail')}" if row["thumbnail"] else None,
        "file_url": f"{base}/file?sig={sign(pk, 'file')}",
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def video_to_dict(video: Video, request: Any) -> dict[str, Any]:
    row = {name: getattr(video, name) for name in VIDEO_COLUMNS}
    row["thumbnail"] = video.thumbnail.name
    return video_row_to_dict(row, request)


def ground_truth_list(*, video_id: int):
    return GroundTruthBox.objects.filter(video_id=video_id).values(*GROUND_TRUTH_FIELDS)


async def ground_truth_page(request: HttpRequest, *, user: Any, video_id: int, fast: bool = False) -> dict[str, Any]:
    """A cursor page of a visible video's ground truth (404 for a foreign one): when `fast`, in one statement on
    the async pool with the access check folded in; an empty answer there, rare, goes to the ORM path, which
    tells "foreign" from "no boxes"."""

    def build(*, video_id: int, owner_id: int | None = None) -> QuerySet[Any]:
        return ground_truth_list(video_id=video_id).filter(Exists(_visible_video(video_id=video_id, owner_id=owner_id)))

    if fast:
        page = await adb.page(
            request,
            key=("ground-truth", user.is_staff),
            build=build,
            values={"video_id": video_id, **_scope(user)},
            model=GroundTruthBox,
            ordering=GROUND_TRUTH_ORDERING,
            spec=LARGE_PAGE,
        )
        if page is not None:
            return page
    await video_get_for_user(user=user, video_id=video_id)
    return await apaginate(request, ground_truth_list(video_id=video_id), GROUND_TRUTH_ORDERING, spec=LARGE_PAGE)


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
)
# Scores live in DetectionResult: one LEFT JOIN on its primary key (null until the session is scored).
DETECTION_RESULT_FIELDS = {"validation_result": F("result__validation_result"), "iou": F("result__iou")}


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


def detection_list(*, session_id: int) -> QuerySet[DetectionEvent]:
    """A session's detections with their scores as plain rows (`values`)."""
    return DetectionEvent.objects.filter(test_session_id=session_id).values(
        *DETECTION_FIELDS, **DETECTION_RESULT_FIELDS
    )


def video_detection_parts(*, video_id: int) -> list[QuerySet[DetectionEvent]]:
    """A video's detections as one `detection_list` per session (each an index range of
    det_session_ts_idx), for `config.pagination.merged_sql` to merge in DETECTION_ORDERING. A separate
    (video, timestamp) index would serve this as one range, but it cost ingest about a quarter of its COPY
    time (a WAL record per row per index, bench/bench_sessions.py)."""
    sessions = TestSession.objects.filter(video_id=video_id).order_by("pk").values_list("pk", flat=True)
    return [detection_list(session_id=pk) for pk in sessions]


def video_detection_page(request: HttpRequest, *, video_id: int) -> dict[str, Any]:
    """Sync: a cursor page of a video's detections, every session's in one merged statement."""
    return merged_paginate(request, video_detection_parts(video_id=video_id), DETECTION_ORDERING, spec=LARGE_PAGE)


async def video_detection_rows(*, video_id: int) -> AsyncIterator[dict[str, Any]]:
    """Every detection of a video in DETECTION_ORDERING, streamed through a server-side cursor."""
    parts = await sync_to_async(video_detection_parts)(video_id=video_id)
    if parts:
        ordered = [part.order_by(*DETECTION_ORDERING) for part in parts]
        async for row in aiter_sql(*merged_sql(ordered, DETECTION_ORDERING)):
            yield row
