"""Every operation (Ninja OpenAPI + DRF accounts URLs) x {anonymous, other, owner, staff} → the expected status."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from tests.conftest import tokens_for
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.reliability import report
from videos.models import DetectionEvent, DetectionResult, GroundTruthBox, Project, TestSession, Video
from videos.storage import sign_media

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "other", "owner", "staff")
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2048


def operations() -> set[str]:
    """'METHOD /path' for every Ninja operation (from the OpenAPI document) and every DRF accounts view."""
    from accounts import urls as account_urls
    from config.api import api

    ops = {f"{m.upper()} {p}" for p, methods in api.get_openapi_schema()["paths"].items() for m in methods}
    for pattern in account_urls.urlpatterns:
        view = pattern.callback.cls
        path = "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        handlers = (m for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m))
        ops |= {f"{m.upper()} {path}" for m in handlers}
    return ops


class World:
    """An owner's project, a completed video with files, a scored and an open session; another user; staff."""

    def __init__(self) -> None:
        self.owner, self.other, self.staff = UserFactory(), UserFactory(), UserFactory(is_staff=True)
        self.project = Project.objects.create(owner=self.owner, name="matrix")
        self.video = Video.objects.create(
            project=self.project,
            uploaded_by=self.owner,
            original_name="v.mp4",
            file=default_storage.save("videos/m.mp4", ContentFile(MP4)),
            thumbnail=default_storage.save("thumbnails/m.jpg", ContentFile(b"\xff\xd8\xff\xe0jpeg")),
            size_bytes=len(MP4),
            content_type="video/mp4",
            sha256="0" * 64,
            status="completed",
            stage="done",
            progress=100,
            width=160,
            height=120,
            frame_count=48,
            fps=24.0,
            duration_s=2.0,
            codec="mp4v",
            ground_truth_generated=True,
        )
        GroundTruthBox.objects.create(video=self.video, frame=1, timestamp_ms=42, label="motion", x=1, y=1, w=9, h=9)
        self.scored = TestSession.objects.create(video=self.video, created_by=self.owner, model_name="a")
        detection = DetectionEvent.objects.create(
            test_session=self.scored, video=self.video, frame=1, timestamp_ms=42, label="motion", confidence=0.9,
            x=1, y=1, w=9, h=9,
        )  # fmt: skip
        DetectionResult.objects.create(detection=detection, test_session=self.scored, validation_result="TP", iou=1.0)
        TestSession.objects.filter(pk=self.scored.pk).update(status="completed", tp=1, precision=1, recall=1, f1=1)
        self.open = TestSession.objects.create(video=self.video, created_by=self.owner, model_name="b")

    def client(self, role: str) -> APIClient:
        client = APIClient()
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for(getattr(self, role))['access']}")
        return client


PASSWORD = DEFAULT_PASSWORD
DETECTION = {"frame": 1, "timestamp_ms": 42, "label": "motion", "confidence": 0.5, "x": 1, "y": 1, "w": 5, "h": 5}
Request = Callable[[World, str], tuple[str, str, Any]]  # → (method, url, json body or None)
OBJECT = {"anonymous": 401, "other": 404}  # everything under a project: foreign answers 404, never 403
STAFF_ONLY = {"anonymous": 401, "other": 403, "owner": 403, "staff": None}


def obj(ok: int) -> dict[str, int]:
    return {**OBJECT, "owner": ok, "staff": ok}


def anyone(ok: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, ok)


def user(ok: int) -> dict[str, int]:
    return {"anonymous": 401, "other": ok, "owner": ok, "staff": ok}


def staff_only(ok: int) -> dict[str, int]:
    return {**STAFF_ONLY, "staff": ok}


V, S = "/api/v1/videos/{video_id}", "/api/v1/test-sessions/{session_id}"
MATRIX: dict[str, tuple[Request, dict[str, int]]] = {
    "POST /api/v1/auth/register": (
        lambda w, r: ("post", "/api/v1/auth/register", {"email": f"{r}@new.io", "username": r, "password": PASSWORD}),
        anyone(201),
    ),
    "POST /api/v1/auth/token": (
        lambda w, r: ("post", "/api/v1/auth/token", {"username": w.owner.username, "password": DEFAULT_PASSWORD}),
        anyone(200),
    ),
    "POST /api/v1/auth/token/refresh": (
        lambda w, r: ("post", "/api/v1/auth/token/refresh", {"refresh": tokens_for(w.owner)["refresh"]}),
        anyone(200),
    ),
    "POST /api/v1/auth/logout": (
        lambda w, r: ("post", "/api/v1/auth/logout", {"refresh": tokens_for(getattr(w, r, w.owner))["refresh"]}),
        user(205),
    ),
    "GET /api/v1/auth/me": (lambda w, r: ("get", "/api/v1/auth/me", None), user(200)),
    "GET /api/v1/users": (lambda w, r: ("get", "/api/v1/users", None), staff_only(200)),
    "POST /api/v1/users/bulk": (
        lambda w, r: ("post", "/api/v1/users/bulk", [{"email": "bulk@new.io", "username": "bulk"}]),
        staff_only(201),
    ),
    "GET /api/v1/users/{user_id}": (lambda w, r: ("get", f"/api/v1/users/{w.owner.pk}", None), obj(200)),
    "PATCH /api/v1/users/{user_id}": (
        lambda w, r: ("patch", f"/api/v1/users/{w.owner.pk}", {"username": f"renamed-{r}"}),
        obj(200),
    ),
    "GET /api/v1/users/{user_id}/activity": (
        lambda w, r: ("get", f"/api/v1/users/{w.owner.pk}/activity", None),
        obj(200),
    ),
    "POST /api/v1/projects": (lambda w, r: ("post", "/api/v1/projects", {"name": f"new-{r}"}), user(201)),
    "GET /api/v1/projects": (lambda w, r: ("get", "/api/v1/projects", None), user(200)),
    # Search lists only the caller's videos: another user gets 200 with no results, never a foreign row.
    "GET /api/v1/videos": (lambda w, r: ("get", "/api/v1/videos?search=clip", None), user(200)),
    # Analytics: the dashboard covers the caller's own projects (another user sees zeros), staff see all.
    "GET /api/v1/dashboard/stats": (lambda w, r: ("get", "/api/v1/dashboard/stats", None), user(200)),
    "GET /api/v1/projects/{project_id}/stats": (
        lambda w, r: ("get", f"/api/v1/projects/{w.project.pk}/stats", None),
        obj(200),
    ),
    "GET /api/v1/analytics/users": (lambda w, r: ("get", "/api/v1/analytics/users", None), staff_only(200)),
    "GET /api/v1/analytics/cache": (lambda w, r: ("get", "/api/v1/analytics/cache", None), staff_only(200)),
    "GET /api/v1/metrics/database": (lambda w, r: ("get", "/api/v1/metrics/database", None), staff_only(200)),
    "GET /api/v1/projects/{project_id}": (lambda w, r: ("get", f"/api/v1/projects/{w.project.pk}", None), obj(200)),
    "PATCH /api/v1/projects/{project_id}": (
        lambda w, r: ("patch", f"/api/v1/projects/{w.project.pk}", {"description": "x"}),
        obj(200),
    ),
    "DELETE /api/v1/projects/{project_id}": (
        lambda w, r: ("delete", f"/api/v1/projects/{w.project.pk}", None),
        obj(204),
    ),
    "POST /api/v1/projects/{project_id}/videos": (
        lambda w, r: ("upload", f"/api/v1/projects/{w.project.pk}/videos", None),
        obj(202),
    ),
    "GET /api/v1/projects/{project_id}/videos": (
        lambda w, r: ("get", f"/api/v1/projects/{w.project.pk}/videos", None),
        obj(200),
    ),
    f"GET {V}": (lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}", None), obj(200)),
    f"DELETE {V}": (lambda w, r: ("delete", f"/api/v1/videos/{w.video.pk}", None), obj(204)),
    f"GET {V}/status": (lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}/status", None), obj(200)),
    # Signed URLs are capabilities: anyone holding a valid one gets the file; without one, nobody does.
    f"GET {V}/file": (
        lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}/file?sig={sign_media(w.video.pk, 'file')}", None),
        anyone(200),
    ),
    f"GET {V}/thumbnail": (
        lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}/thumbnail?sig=forged", None),
        anyone(404),
    ),
    f"POST {V}/reprocess": (lambda w, r: ("post", f"/api/v1/videos/{w.video.pk}/reprocess", None), obj(202)),
    f"GET {V}/ground-truth": (lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}/ground-truth", None), obj(200)),
    f"POST {V}/test-sessions": (
        lambda w, r: ("post", f"/api/v1/videos/{w.video.pk}/test-sessions", {"model_name": "m"}),
        obj(201),
    ),
    f"GET {V}/test-sessions": (lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}/test-sessions", None), obj(200)),
    f"GET {V}/detections": (lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}/detections", None), obj(200)),
    f"GET {V}/compare": (
        lambda w, r: ("get", f"/api/v1/videos/{w.video.pk}/compare?a={w.scored.pk}&b={w.scored.pk}", None),
        obj(200),
    ),
    f"GET {S}": (lambda w, r: ("get", f"/api/v1/test-sessions/{w.scored.pk}", None), obj(200)),
    f"POST {S}/detections": (
        lambda w, r: ("post", f"/api/v1/test-sessions/{w.open.pk}/detections", [DETECTION]),
        obj(201),
    ),
    f"GET {S}/detections": (lambda w, r: ("get", f"/api/v1/test-sessions/{w.scored.pk}/detections", None), obj(200)),
    f"POST {S}/complete": (lambda w, r: ("post", f"/api/v1/test-sessions/{w.open.pk}/complete", None), obj(202)),
    f"GET {S}/report": (lambda w, r: ("get", f"/api/v1/test-sessions/{w.scored.pk}/report", None), obj(200)),
    f"GET {S}/timeline": (lambda w, r: ("get", f"/api/v1/test-sessions/{w.scored.pk}/timeline", None), obj(200)),
    f"GET {S}/export": (lambda w, r: ("get", f"/api/v1/test-sessions/{w.scored.pk}/export", None), obj(200)),
}


def test_every_operation_has_a_matrix_entry():
    """A new endpoint without an entry here fails: authorization must be decided for it, not assumed."""
    assert operations() == set(MATRIX)


def _call(world: World, role: str, op: str) -> int:
    build, _ = MATRIX[op]
    method, url, body = build(world, role)
    client = world.client(role)
    if method == "upload":
        upload = ContentFile(MP4, name="clip.mp4")
        return client.post(url, {"file": upload}, format="multipart").status_code
    return getattr(client, method)(url, body, format="json").status_code


def test_authorization_matrix(settings, media_root):
    settings.RATE_LIMIT_ENABLED = False
    outcomes: dict[tuple[str, str], tuple[int, int]] = {}
    for op in sorted(MATRIX):
        for role in ROLES:
            world = World()  # fresh objects per call: deletes and uploads do not leak into the next case
            outcomes[op, role] = (_call(world, role, op), MATRIX[op][1][role])
    wrong = {k: v for k, v in outcomes.items() if v[0] != v[1]}
    foreign = [k for k in outcomes if k[1] == "other" and MATRIX[k[0]][1]["other"] == 404]
    report.record(
        "authz_matrix",
        item=13,
        scenario=f"{len(MATRIX)} operations x {len(ROLES)} roles (anonymous, other user, owner, staff)",
        figure=f"{len(outcomes) - len(wrong)}/{len(outcomes)} as expected; {len(foreign)} foreign-object cases 404",
        goal="100 %, foreign objects 404",
        ok=not wrong,
    )
    assert not wrong, {f"{op} as {role}": f"got {got}, expected {exp}" for (op, role), (got, exp) in wrong.items()}
