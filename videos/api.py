"""Projects and videos API (Ninja, async): parse → selector/service → schema."""

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Query, Router, Status

from accounts.auth import bearer_user
from config import adb, cache
from config.errors import NotFound, PayloadTooLarge, ValidationFailed
from config.pagination import LARGE_PAGE, apaginate, page_list
from videos import detections, media, progress, reports, selectors, services
from videos.schemas import (
    DetectionIn,
    DetectionPage,
    GroundTruthPage,
    InsertedOut,
    ProjectIn,
    ProjectOut,
    ProjectPage,
    ProjectPatch,
    TestSessionIn,
    TestSessionOut,
    TestSessionPage,
    VideoOut,
    VideoPage,
    VideoSearchFilters,
    VideoStatusOut,
)
from videos.storage import check_media_signature, parse_video_upload

router = Router()

_UPLOAD_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
        "required": True,
    }
}


# --- Projects -------------------------------------------------------------------
@router.post("/projects", response={201: ProjectOut}, tags=["projects"])
async def create_project(request: HttpRequest, payload: ProjectIn):
    project = await sync_to_async(services.project_create)(owner_id=request.auth.id, **payload.dict())
    return Status(201, selectors.project_to_dict(project))


@router.get("/projects", response=ProjectPage, tags=["projects"])
async def list_projects(request: HttpRequest):
    queryset = selectors.project_list(user=request.auth)
    return await apaginate(request, queryset, selectors.PROJECT_ORDERING, selectors.project_to_dict)


@router.get("/projects/{project_id}", response=ProjectOut, tags=["projects"])
async def get_project(request: HttpRequest, project_id: int):
    project = await selectors.project_get_for_user(user=request.auth, project_id=project_id, annotate=True)
    return selectors.project_to_dict(project)


@router.patch("/projects/{project_id}", response=ProjectOut, tags=["projects"])
async def update_project(request: HttpRequest, project_id: int, payload: ProjectPatch):
    project = await selectors.project_get_for_user(user=request.auth, project_id=project_id, annotate=True)
    changes = {k: v for k, v in payload.dict(exclude_unset=True).items() if v is not None}
    project = await sync_to_async(services.project_update)(project=project, data=changes)
    return selectors.project_to_dict(project)


@router.delete("/projects/{project_id}", response={204: None}, tags=["projects"])
async def delete_project(request: HttpRequest, project_id: int):
    project = await selectors.project_get_for_user(user=request.auth, project_id=project_id)
    await sync_to_async(services.project_delete)(project=project)
    return Status(204, None)


# --- Videos ---------------------------------------------------------------------
def _receive_upload(request: HttpRequest, project: Any, user_id: int) -> Any:
    """Stream the body to a temporary file (hash, sniff, limit), then store and register it: one thread hop."""
    upload = parse_video_upload(request, max_bytes=settings.VIDEO_MAX_BYTES)
    return services.video_ingest(project=project, user_id=user_id, upload=upload)


@router.post("/projects/{project_id}/videos", response={202: VideoOut}, tags=["videos"], openapi_extra=_UPLOAD_BODY)
async def upload_video(request: HttpRequest, project_id: int):
    project = await selectors.project_get_for_user(user=request.auth, project_id=project_id)
    video = await sync_to_async(_receive_upload)(request, project, request.auth.id)
    return Status(202, selectors.video_to_dict(video, request))


@router.get("/projects/{project_id}/videos", response=VideoPage, tags=["videos"])
async def list_videos(
    request: HttpRequest, project_id: int, status: str | None = None, ground_truth_generated: bool | None = None
):
    if adb.enabled(request):
        filters = {"status": status, "ground_truth_generated": ground_truth_generated}
        page = await selectors.video_page_fast(request, user=request.auth, project_id=project_id, **filters)
        if page is not None:
            return media.json_response(page)
    await selectors.project_get_for_user(user=request.auth, project_id=project_id)
    queryset = selectors.video_list(project_id=project_id, status=status, ground_truth_generated=ground_truth_generated)
    queryset = queryset.values(*selectors.VIDEO_COLUMNS)
    serialize = lambda row: selectors.video_row_to_dict(row, request)  # noqa: E731
    return media.json_response(await apaginate(request, queryset, selectors.VIDEO_ORDERING, serialize))


async def _cached_page(name: str, request: HttpRequest, compute: Any) -> HttpResponse:
    """A page of the caller's data from cache `name`, keyed by host, path and query string (filters, cursor)."""
    user = request.auth
    params = request.get_host() + request.get_full_path()
    body = await cache.user_page(name, user_id=user.id, is_staff=user.is_staff, params=params, compute=compute)
    return HttpResponse(body, content_type="application/json")


@router.get("/videos", response=VideoPage, tags=["videos"])
async def search_videos(request: HttpRequest, filters: Query[VideoSearchFilters]):
    """The caller's videos across projects (staff: all), newest first; `search` matches the original name.
    Pages are cached under the caller's version key, so any write to their projects shows at once."""
    user, fast = request.auth, adb.enabled(request)
    return await _cached_page(
        "search", request, lambda: selectors.video_search_page(request, user=user, fast=fast, **filters.dict())
    )


@router.get("/videos/{video_id}", response=VideoOut, tags=["videos"])
async def get_video(request: HttpRequest, video_id: int):
    get = selectors.video_get_for_user_fast if adb.enabled(request) else selectors.video_get_for_user
    video = await get(user=request.auth, video_id=video_id)
    etag = media.video_etag(video)
    if media.etag_matches(request, etag):
        return media.not_modified(etag)
    response = HttpResponse(media.render_json(selectors.video_to_dict(video, request)), content_type="application/json")
    response["ETag"] = etag
    return response


@router.get("/videos/{video_id}/status", response=VideoStatusOut, tags=["videos"])
async def get_video_status(request: HttpRequest, video_id: int, wait: float = 0):
    video = await selectors.video_get_for_user(user=request.auth, video_id=video_id)
    return await progress.wait_for_change(video, wait_s=min(max(wait, 0.0), 30.0))


async def _media_video(request: HttpRequest, video_id: int, kind: str) -> Any:
    """Signed URL (no header needed) or bearer token; anything else is 404."""
    sig = request.GET.get("sig")
    if sig is not None:
        if not check_media_signature(video_id, kind, sig):
            raise NotFound("Video not found.")
        video = await selectors.Video.objects.filter(pk=video_id).afirst()
        if video is None:
            raise NotFound("Video not found.")
        return video
    user = bearer_user(request)
    if user is None:
        raise NotFound("Video not found.")
    return await selectors.video_get_for_user(user=user, video_id=video_id)


@router.get("/videos/{video_id}/file", auth=None, tags=["videos"])
async def get_video_file(request: HttpRequest, video_id: int):
    video = await _media_video(request, video_id, "file")
    return await media.serve_file(request, video.file.name, video.content_type, f'"{video.sha256}"')


@router.get("/videos/{video_id}/thumbnail", auth=None, tags=["videos"])
async def get_video_thumbnail(request: HttpRequest, video_id: int):
    video = await _media_video(request, video_id, "thumbnail")
    if not video.thumbnail:
        raise NotFound("This video has no thumbnail yet.")
    return await media.serve_file(request, video.thumbnail.name, "image/jpeg", f'"t-{video.thumbnail.name}"')


@router.post("/videos/{video_id}/reprocess", response={202: VideoOut}, tags=["videos"])
async def reprocess_video(request: HttpRequest, video_id: int):
    video = await selectors.video_get_for_user(user=request.auth, video_id=video_id)
    video = await sync_to_async(services.video_reprocess)(video=video)
    return Status(202, selectors.video_to_dict(video, request))


@router.delete("/videos/{video_id}", response={204: None}, tags=["videos"])
async def delete_video(request: HttpRequest, video_id: int):
    video = await selectors.video_get_for_user(user=request.auth, video_id=video_id)
    await sync_to_async(services.video_delete)(video=video)
    return Status(204, None)


@router.get("/videos/{video_id}/ground-truth", response=GroundTruthPage, tags=["videos"])
async def list_ground_truth(request: HttpRequest, video_id: int, format: str | None = None):
    """Pages are cached under the caller's version key: new ground truth (a reprocessing) commits with a bump."""
    user = request.auth
    if format == "jsonl":
        await selectors.video_get_for_user(user=user, video_id=video_id)
        queryset = selectors.ground_truth_list(video_id=video_id).order_by(*selectors.GROUND_TRUTH_ORDERING)
        return media.jsonl_response(queryset)
    fast = adb.enabled(request)
    return await _cached_page(
        "ground_truth", request, lambda: selectors.ground_truth_page(request, user=user, video_id=video_id, fast=fast)
    )


# --- Test sessions -----------------------------------------------------------------
@router.post("/videos/{video_id}/test-sessions", response={201: TestSessionOut}, tags=["test sessions"])
async def create_test_session(request: HttpRequest, video_id: int, payload: TestSessionIn):
    video = await selectors.video_get_for_user(user=request.auth, video_id=video_id)
    session = await sync_to_async(services.session_create)(video=video, user_id=request.auth.id, **payload.dict())
    return Status(201, selectors.session_to_dict(session))


@router.get("/videos/{video_id}/test-sessions", response=TestSessionPage, tags=["test sessions"])
async def list_test_sessions(request: HttpRequest, video_id: int):
    await selectors.video_get_for_user(user=request.auth, video_id=video_id)
    queryset = selectors.session_list(video_id=video_id)
    return await apaginate(request, queryset, selectors.SESSION_ORDERING, selectors.session_to_dict)


@router.get("/test-sessions/{session_id}", response=TestSessionOut, tags=["test sessions"])
async def get_test_session(request: HttpRequest, session_id: int):
    return selectors.session_to_dict(await selectors.session_get_for_user(user=request.auth, session_id=session_id))


def _ingest(request: HttpRequest, session: Any) -> int:
    """Read, parse, validate and insert off the event loop (one thread hop)."""
    body = request.read(detections.MAX_BODY_BYTES + 1)
    if len(body) > detections.MAX_BODY_BYTES:
        raise PayloadTooLarge(f"At most {detections.MAX_BODY_BYTES} bytes of detections per request.")
    jsonl = request.content_type in ("application/jsonl", "application/x-ndjson", "application/json-lines")
    return services.detections_ingest(session=session, body=body, jsonl=jsonl)


_DETECTIONS_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "array", "items": DetectionIn.model_json_schema()}},
            "application/jsonl": {"schema": {"type": "string"}},
        },
        "required": True,
    }
}


@router.post(
    "/test-sessions/{session_id}/detections",
    response={201: InsertedOut},
    tags=["test sessions"],
    openapi_extra=_DETECTIONS_BODY,
)
async def add_detections(request: HttpRequest, session_id: int):
    session = await selectors.session_get_for_user(user=request.auth, session_id=session_id)
    inserted = await sync_to_async(_ingest)(request, session)
    return Status(201, {"inserted": inserted})


@router.post("/test-sessions/{session_id}/complete", response={202: TestSessionOut}, tags=["test sessions"])
async def complete_test_session(request: HttpRequest, session_id: int):
    session = await selectors.session_get_for_user(user=request.auth, session_id=session_id)
    session = await sync_to_async(services.session_complete)(session=session)
    return Status(202, selectors.session_to_dict(session))


@router.get("/test-sessions/{session_id}/detections", response=DetectionPage, tags=["test sessions"])
async def list_session_detections(request: HttpRequest, session_id: int, format: str | None = None):
    await selectors.session_get_for_user(user=request.auth, session_id=session_id)
    queryset = selectors.detection_list(session_id=session_id)
    if format == "jsonl":
        return media.jsonl_response(queryset.order_by(*selectors.DETECTION_ORDERING))
    return await apaginate(request, queryset, selectors.DETECTION_ORDERING, spec=LARGE_PAGE)


@router.get("/videos/{video_id}/detections", response=DetectionPage, tags=["test sessions"])
async def list_video_detections(request: HttpRequest, video_id: int, format: str | None = None):
    """All sessions' detections in timestamp order: one session index range each, merged by the database."""
    await selectors.video_get_for_user(user=request.auth, video_id=video_id)
    if format == "jsonl":
        return media.jsonl_response(selectors.video_detection_rows(video_id=video_id))
    return await sync_to_async(selectors.video_detection_page)(request, video_id=video_id)


@router.get("/test-sessions/{session_id}/report", tags=["test sessions"])
async def get_session_report(request: HttpRequest, session_id: int, min_confidence: float = Query(0.0, ge=0, le=1)):
    session = await selectors.session_get_for_user(user=request.auth, session_id=session_id)
    return await sync_to_async(reports.session_report)(session=session, min_confidence=min_confidence)


@router.get("/test-sessions/{session_id}/timeline", tags=["test sessions"])
async def get_session_timeline(request: HttpRequest, session_id: int, format: str | None = None):
    session = await selectors.session_get_for_user(user=request.auth, session_id=session_id)
    rows = await sync_to_async(reports.session_timeline)(session=session)
    if format == "jsonl":
        return media.jsonl_lines(rows)
    return page_list(request, rows, key="frame", spec=LARGE_PAGE)


@router.get("/videos/{video_id}/compare", tags=["test sessions"])
async def compare_sessions(request: HttpRequest, video_id: int, a: int, b: int):
    video = await selectors.video_get_for_user(user=request.auth, video_id=video_id)
    first = await selectors.session_get_for_user(user=request.auth, session_id=a)
    second = await selectors.session_get_for_user(user=request.auth, session_id=b)
    return await sync_to_async(reports.sessions_compare)(video=video, a=first, b=second)


@router.get("/test-sessions/{session_id}/export", tags=["test sessions"])
async def export_session(request: HttpRequest, session_id: int, format: str = "coco"):
    session = await selectors.session_get_for_user(user=request.auth, session_id=session_id)
    if format != "coco":
        raise ValidationFailed("Only format=coco is supported.", details={"field": "format"})
    response = StreamingHttpResponse(reports.coco_export(session, session.video), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}-coco.json"'
    return response
