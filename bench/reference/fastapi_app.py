"""The seed plans' stack serving Framewise's hot reads: the reference that bench/bench_http.py measures beside it.

FastAPI + SQLAlchemy 2 async (asyncpg) + redis.asyncio + orjson, written the way a team following the seed plans
would: declarative models over Framewise's tables, one AsyncSession per request through a dependency (so each
read sits in BEGIN … ROLLBACK), a pre-pinged pool, JWT bearer auth that decodes the token and then loads the user
row, ORJSONResponse and Starlette's GZipMiddleware. Read-only: it never writes to the database.

    PYTHONPATH=var/reference:. uvicorn bench.reference.fastapi_app:app --workers 2

Environment: DATABASE_URL (postgres://…), REDIS_URL, SECRET_KEY (the key Framewise's SimpleJWT signs with, so its
access tokens work here unchanged).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import jwt
import orjson
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import ORJSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import BigInteger, DateTime, ForeignKey, String, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The seed plans name ORJSONResponse; FastAPI (0.13x+) deprecates it in favour of response models, and says so on
# every response class it builds.
warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")

# --- Settings ----------------------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/fw_bench_http")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-framewise-embedded-only")
DASHBOARD_TTL_S = 30
SIGNED_URL_STEP_S = 3600


def async_database_url(url: str) -> str:
    """postgres://… → postgresql+asyncpg://… (SQLAlchemy's name for the asyncpg dialect)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+asyncpg://{rest}" if sep and scheme in ("postgres", "postgresql") else url


engine = create_async_engine(async_database_url(DATABASE_URL), pool_size=10, pool_pre_ping=True)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
redis = aioredis.from_url(REDIS_URL)


# --- Models (Framewise's tables, as migrated by Django) ------------------------------------------------------------
class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}  # Django's timestamptz columns


class User(Base):
    __tablename__ = "accounts_user"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    password: Mapped[str] = mapped_column(String(128))
    last_login: Mapped[datetime | None]
    is_superuser: Mapped[bool]
    username: Mapped[str] = mapped_column(String(150))
    first_name: Mapped[str] = mapped_column(String(150))
    last_name: Mapped[str] = mapped_column(String(150))
    email: Mapped[str] = mapped_column(String(254))
    is_staff: Mapped[bool]
    is_active: Mapped[bool]
    date_joined: Mapped[datetime]
    plan: Mapped[str] = mapped_column(String(16))


class Project(Base):
    __tablename__ = "videos_project"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str]
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts_user.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Video(Base):
    __tablename__ = "videos_video"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("videos_project.id"))
    uploaded_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts_user.id"))
    original_name: Mapped[str] = mapped_column(String(255))
    file: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[int]
    error: Mapped[str]
    duration_s: Mapped[float | None]
    fps: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    frame_count: Mapped[int | None]
    codec: Mapped[str] = mapped_column(String(16))
    thumbnail: Mapped[str] = mapped_column(String(255))
    ground_truth_generated: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class GroundTruthBox(Base):
    __tablename__ = "videos_groundtruthbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    video_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("videos_video.id"))
    frame: Mapped[int]
    timestamp_ms: Mapped[int]
    label: Mapped[str] = mapped_column(String(64))
    x: Mapped[int]
    y: Mapped[int]
    w: Mapped[int]
    h: Mapped[int]


class TestSession(Base):
    __tablename__ = "videos_testsession"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    video_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("videos_video.id"))
    created_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("accounts_user.id"))
    model_name: Mapped[str] = mapped_column(String(200))
    iou_threshold: Mapped[float]
    status: Mapped[str] = mapped_column(String(16))
    tp: Mapped[int]
    fp: Mapped[int]
    fn: Mapped[int]
    precision: Mapped[float | None]
    recall: Mapped[float | None]
    f1: Mapped[float | None]
    mean_iou: Mapped[float | None]
    error: Mapped[str]
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class DetectionEvent(Base):
    __tablename__ = "videos_detectionevent"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    test_session_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("videos_testsession.id"))
    video_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("videos_video.id"))
    frame: Mapped[int]
    timestamp_ms: Mapped[int]
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float]
    x: Mapped[float]
    y: Mapped[float]
    w: Mapped[float]
    h: Mapped[float]


# --- App, session and auth dependencies ---------------------------------------------------------------------------
@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await redis.aclose()
    await engine.dispose()


app = FastAPI(title="Framewise reference (FastAPI)", default_response_class=ORJSONResponse, lifespan=lifespan)
app.add_middleware(GZipMiddleware, minimum_size=1000)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session


bearer = HTTPBearer(auto_error=False)
SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User:
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED, "Invalid or missing token.", headers={"WWW-Authenticate": "Bearer"}
    )
    if credentials is None:
        raise unauthorized
    try:
        claims = jwt.decode(credentials.credentials, SECRET_KEY, algorithms=["HS256"])
        if claims.get("token_type", "access") != "access":
            raise unauthorized
        user_id = int(claims["user_id"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
        raise unauthorized from exc
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise unauthorized
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


# --- Serialisation and keyset pages -------------------------------------------------------------------------------
def sign_media(video_id: int, kind: str) -> str:
    """`<hour stamp>:<HMAC>` of "kind:video_id:stamp", for the signed file and thumbnail URLs."""
    stamp = str(int(time.time()) // SIGNED_URL_STEP_S * SIGNED_URL_STEP_S)
    mac = hmac.new(SECRET_KEY.encode(), f"{kind}:{video_id}:{stamp}".encode(), hashlib.sha256).digest()
    return f"{stamp}:{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def video_to_dict(video: Video, request: Request) -> dict[str, Any]:
    base = f"{request.base_url}api/v1/videos/{video.id}"
    return {
        "id": video.id,
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
        "thumbnail_url": f"{base}/thumbnail?sig={sign_media(video.id, 'thumbnail')}" if video.thumbnail else None,
        "file_url": f"{base}/file?sig={sign_media(video.id, 'file')}",
        "created_at": video.created_at,
        "updated_at": video.updated_at,
    }


def box_to_dict(box: GroundTruthBox) -> dict[str, Any]:
    return {
        "id": box.id,
        "frame": box.frame,
        "timestamp_ms": box.timestamp_ms,
        "label": box.label,
        "x": box.x,
        "y": box.y,
        "w": box.w,
        "h": box.h,
    }


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "plan": user.plan,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "date_joined": user.date_joined,
    }


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values, default=str)).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The cursor's keyset values as `types` (datetime from ISO text); 400 if it is not one of ours."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError
        return [datetime.fromisoformat(v) if t is datetime else t(v) for t, v in zip(types, raw, strict=True)]
    except (ValueError, TypeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Invalid cursor.") from exc


def page(request: Request, rows: list[Any], size: int, key: Any, serialize: Any) -> dict[str, Any]:
    """{"results", "next", "previous"} from `size + 1` fetched rows (forward keyset pages)."""
    more = len(rows) > size
    rows = rows[:size]
    next_url = None
    if more and rows:
        next_url = str(request.url.include_query_params(cursor=encode_cursor(key(rows[-1]))))
    return {"results": [serialize(r) for r in rows], "next": next_url, "previous": None}


PageSize = Annotated[int, Query(ge=1)]


# --- Endpoints ----------------------------------------------------------------------------------------------------
@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/projects/{project_id}/videos")
async def list_videos(
    project_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    cursor: str | None = None,
    page_size: PageSize = 50,
) -> ORJSONResponse:
    query = select(Project.id).where(Project.id == project_id)
    if not user.is_staff:
        query = query.where(Project.owner_id == user.id)
    if (await session.execute(query)).scalar_one_or_none() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Project not found.")
    size = min(page_size, 100)
    videos = select(Video).where(Video.project_id == project_id)
    if cursor:
        after = decode_cursor(cursor, (datetime, int))
        videos = videos.where(tuple_(Video.created_at, Video.id) < tuple(after))
    videos = videos.order_by(Video.created_at.desc(), Video.id.desc()).limit(size + 1)
    rows = list((await session.scalars(videos)).all())
    return ORJSONResponse(
        page(request, rows, size, lambda v: [v.created_at, v.id], lambda v: video_to_dict(v, request))
    )


async def visible_video(session: AsyncSession, user: User, video_id: int) -> Video:
    """The video if its project is the user's (staff: any), else 404."""
    query = select(Video).join(Project, Project.id == Video.project_id).where(Video.id == video_id)
    if not user.is_staff:
        query = query.where(Project.owner_id == user.id)
    video = (await session.scalars(query)).first()
    if video is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Video not found.")
    return video


@app.get("/api/v1/videos/{video_id}")
async def get_video(video_id: int, request: Request, session: SessionDep, user: CurrentUser) -> ORJSONResponse:
    return ORJSONResponse(video_to_dict(await visible_video(session, user, video_id), request))


@app.get("/api/v1/videos/{video_id}/ground-truth")
async def list_ground_truth(
    video_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    cursor: str | None = None,
    page_size: PageSize = 1000,
) -> ORJSONResponse:
    await visible_video(session, user, video_id)
    size = min(page_size, 5000)
    boxes = select(GroundTruthBox).where(GroundTruthBox.video_id == video_id)
    if cursor:
        after = decode_cursor(cursor, (int, int))
        boxes = boxes.where(tuple_(GroundTruthBox.frame, GroundTruthBox.id) > tuple(after))
    boxes = boxes.order_by(GroundTruthBox.frame, GroundTruthBox.id).limit(size + 1)
    rows = list((await session.scalars(boxes)).all())
    return ORJSONResponse(page(request, rows, size, lambda b: [b.frame, b.id], box_to_dict))


# One statement over the raw tables; {scope} is the owner filter ("TRUE" for staff, who see every project).
DASHBOARD_SQL = """
SELECT
    (SELECT COUNT(*) FROM videos_project p WHERE {scope}) AS project_count,
    v.video_count, v.queued, v.processing, v.completed, v.failed, v.last_updated,
    s.test_session_count, s.active_test_sessions, s.average_precision, s.average_recall, s.average_f1,
    (SELECT COUNT(*) FROM videos_detectionevent d
        JOIN videos_video vv ON vv.id = d.video_id JOIN videos_project p ON p.id = vv.project_id
        WHERE {scope}) AS detection_count,
    (SELECT COUNT(*) FROM videos_groundtruthbox g
        JOIN videos_video vv ON vv.id = g.video_id JOIN videos_project p ON p.id = vv.project_id
        WHERE {scope}) AS ground_truth_count
FROM (
    SELECT COUNT(*) AS video_count,
        COUNT(*) FILTER (WHERE vv.status = 'queued') AS queued,
        COUNT(*) FILTER (WHERE vv.status = 'processing') AS processing,
        COUNT(*) FILTER (WHERE vv.status = 'completed') AS completed,
        COUNT(*) FILTER (WHERE vv.status = 'failed') AS failed,
        MAX(vv.updated_at) AS last_updated
    FROM videos_video vv JOIN videos_project p ON p.id = vv.project_id
    WHERE {scope}
) v, (
    SELECT COUNT(*) AS test_session_count,
        COUNT(*) FILTER (WHERE t.status IN ('open', 'scoring')) AS active_test_sessions,
        AVG(COALESCE(t.precision, 0)) FILTER (WHERE t.status = 'completed') AS average_precision,
        AVG(COALESCE(t.recall, 0)) FILTER (WHERE t.status = 'completed') AS average_recall,
        AVG(COALESCE(t.f1, 0)) FILTER (WHERE t.status = 'completed') AS average_f1
    FROM videos_testsession t
        JOIN videos_video vv ON vv.id = t.video_id JOIN videos_project p ON p.id = vv.project_id
    WHERE {scope}
) s
"""
DASHBOARD_OWNER = text(DASHBOARD_SQL.format(scope="p.owner_id = :owner_id"))
DASHBOARD_ALL = text(DASHBOARD_SQL.format(scope="TRUE"))


async def dashboard_stats(session: AsyncSession, user: User) -> dict[str, Any]:
    if user.is_staff:
        result = await session.execute(DASHBOARD_ALL)
    else:
        result = await session.execute(DASHBOARD_OWNER, {"owner_id": user.id})
    row = result.mappings().one()
    return {
        "project_count": row["project_count"],
        "video_count": row["video_count"],
        "videos_by_status": {s: row[s] for s in ("queued", "processing", "completed", "failed")},
        "test_session_count": row["test_session_count"],
        "active_test_sessions": row["active_test_sessions"],
        "detection_count": row["detection_count"],
        "ground_truth_count": row["ground_truth_count"],
        "average_precision": row["average_precision"],
        "average_recall": row["average_recall"],
        "average_f1": row["average_f1"],
        "last_updated": row["last_updated"],
    }


@app.get("/api/v1/dashboard/stats")
async def get_dashboard_stats(session: SessionDep, user: CurrentUser, fresh: bool = False) -> Response:
    key = f"dashboard:stats:{'all' if user.is_staff else user.id}"
    if not fresh:
        cached = await redis.get(key)
        if cached is not None:
            return Response(cached, media_type="application/json")
    body = orjson.dumps(await dashboard_stats(session, user))
    await redis.set(key, body, ex=DASHBOARD_TTL_S)
    return Response(body, media_type="application/json")


USER_ORDERINGS = {
    "-date_joined": (User.date_joined.desc(), User.id.desc()),
    "date_joined": (User.date_joined.asc(), User.id.asc()),
}


@app.get("/api/v1/users")
async def list_users(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    plan: str | None = None,
    is_active: bool | None = None,
    ordering: str = "-date_joined",
    cursor: str | None = None,
    page_size: PageSize = 50,
) -> ORJSONResponse:
    if not user.is_staff:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Staff only.")
    if ordering not in USER_ORDERINGS:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"ordering must be one of {', '.join(USER_ORDERINGS)}.")
    size = min(page_size, 100)
    users = select(User)
    if plan:
        users = users.where(User.plan == plan)
    if is_active is not None:
        users = users.where(User.is_active == is_active)
    if cursor:
        after = tuple(decode_cursor(cursor, (datetime, int)))
        key = tuple_(User.date_joined, User.id)
        users = users.where(key < after if ordering.startswith("-") else key > after)
    users = users.order_by(*USER_ORDERINGS[ordering]).limit(size + 1)
    rows = list((await session.scalars(users)).all())
    return ORJSONResponse(page(request, rows, size, lambda u: [u.date_joined, u.id], user_to_dict))
