"""Analytics reads: each one SQL statement returning a plain dict (hot paths; no per-row work anywhere)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, connections
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from config import adb, cache
from config.errors import NotFound

STATUSES = ("queued", "processing", "completed", "failed")
COUNTERS = (
    "video_count",
    *(f"videos_{s}" for s in STATUSES),
    "test_session_count",
    "active_test_sessions",
    "completed_session_count",
    "sum_precision",
    "sum_recall",
    "sum_f1",
    "detection_count",
    "ground_truth_count",
)


def stats_to_dict(row: dict[str, Any]) -> dict[str, Any]:
    """The SPEC's stats shape from summed counters; averages are over completed sessions (null if none)."""
    completed = row["completed_session_count"]

    def mean(total: float) -> float | None:
        return total / completed if completed else None

    return {
        "project_count": row["project_count"],
        "video_count": row["video_count"],
        "videos_by_status": {s: row[f"videos_{s}"] for s in STATUSES},
        "test_session_count": row["test_session_count"],
        "active_test_sessions": row["active_test_sessions"],
        "detection_count": row["detection_count"],
        "ground_truth_count": row["ground_truth_count"],
        "average_precision": mean(row["sum_precision"]),
        "average_recall": mean(row["sum_recall"]),
        "average_f1": mean(row["sum_f1"]),
        "last_updated": row["last_updated"],
    }


# Plain SQL on the hot path: building this aggregate through the ORM cost several times the query itself
# (bench/bench_dashboard.py), and a constant string moves unchanged to an async driver later.
_STATS_COLUMNS = ", ".join(COUNTERS)
_SUMS = ", ".join(f"COALESCE(SUM({c}), 0)" for c in COUNTERS)
_DASHBOARD_SQL = f"SELECT COUNT(*), MAX(updated_at), {_SUMS} FROM analytics_projectstats"  # noqa: S608 - constants
_PROJECT_SQL = f"SELECT 1, updated_at, {_STATS_COLUMNS} FROM analytics_projectstats WHERE project_id = %s"  # noqa: S608


def _fetch_one(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()  # type: ignore[no-any-return]


async def _one(sql: str, params: list[Any], *, fast: bool) -> tuple[Any, ...] | None:
    """One row: on the async pool with no thread hop when `fast` (config.adb), else on Django's connection."""
    if fast:
        rows = await adb.fetch_sql(sql, params)
        return rows[0] if rows else None
    return await sync_to_async(_fetch_one)(sql, params)


def _as_datetime(value: Any) -> datetime | None:
    """PostgreSQL returns an aware datetime; SQLite the stored UTC text, or a naive datetime for a plain column
    (its declared type is converted), which must leave with its offset too (found by schemathesis)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    return parsed if parsed is None or timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def _row_to_stats(row: tuple[Any, ...]) -> dict[str, Any]:
    count, updated, *values = row
    counters = {c: float(v) if c.startswith("sum_") else int(v) for c, v in zip(COUNTERS, values, strict=True)}
    return stats_to_dict({**counters, "project_count": int(count), "last_updated": _as_datetime(updated)})


def dashboard_query(*, user: Any) -> tuple[str, list[Any]]:
    """The dashboard's one statement: an aggregate over one counter row per project (staff: all rows)."""
    return (_DASHBOARD_SQL, []) if user.is_staff else (f"{_DASHBOARD_SQL} WHERE owner_id = %s", [user.id])


def project_stats_query(*, user: Any, project_id: int) -> tuple[str, list[Any]]:
    """One project's counter row by primary key; the owner filter is the project gate's rule (the row mirrors
    the project's owner)."""
    if user.is_staff:
        return _PROJECT_SQL, [project_id]
    return f"{_PROJECT_SQL} AND owner_id = %s", [project_id, user.id]


async def dashboard_stats(*, user: Any, fast: bool = False) -> dict[str, Any]:
    """Totals over the caller's projects (staff: all): one aggregate over one counter row per project."""
    row = await _one(*dashboard_query(user=user), fast=fast)
    return _row_to_stats(row)  # type: ignore[arg-type]


async def project_stats_get_for_user(*, user: Any, project_id: int, fast: bool = False) -> dict[str, Any]:
    """One project's stats if the caller may see it (owner or staff), else 404: one primary-key lookup."""
    row = await _one(*project_stats_query(user=user, project_id=project_id), fast=fast)
    if row is None:
        raise NotFound("Project not found.")
    return _row_to_stats(row)


async def users_summary() -> dict[str, Any]:
    """Account figures for staff in one aggregate (`new_users_today` since 00:00 UTC, week = last 7 days)."""
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    plans = {p: Count("pk", filter=Q(plan=p)) for p in User.Plan.values}
    row = await User.objects.aaggregate(
        total_users=Count("pk"),
        active_users=Count("pk", filter=Q(is_active=True)),
        superusers=Count("pk", filter=Q(is_superuser=True)),
        new_users_today=Count("pk", filter=Q(date_joined__gte=midnight)),
        new_users_week=Count("pk", filter=Q(date_joined__gte=now - timedelta(days=7))),
        **plans,
    )
    return {
        "total_users": row["total_users"],
        "active_users": row["active_users"],
        "inactive_users": row["total_users"] - row["active_users"],
        "superusers": row["superusers"],
        "new_users_today": row["new_users_today"],
        "new_users_week": row["new_users_week"],
        "by_plan": {p: row[p] for p in User.Plan.values},
    }


def database_pool_stats() -> dict[str, Any]:
    """psycopg pool figures for this process (no query, no connection taken); None when there is no pool."""
    connection = connections["default"]
    pool = connection.pool if connection.vendor == "postgresql" else None
    return {
        "vendor": connection.vendor,
        "pool": None if pool is None else {"name": pool.name, **pool.get_stats()},
        "settings": settings.DATABASES["default"].get("OPTIONS", {}).get("pool"),
    }


# --- Cached reads (JSON bytes): the scope a value depends on decides which writes invalidate it ------------
async def dashboard_stats_cached(*, user: Any, fast: bool = False) -> bytes:
    scope, part = (cache.GLOBAL, "all") if user.is_staff else (cache.owner_scope(user.id), user.id)
    return await cache.get_or_compute("dashboard", [scope], [part], lambda: dashboard_stats(user=user, fast=fast))


async def project_stats_cached(*, user: Any, project_id: int, fast: bool = False) -> bytes:
    # Keyed by viewer too: a foreign viewer's 404 is never cached, and the owner's hit needs no access query.
    viewer = "staff" if user.is_staff else user.id
    return await cache.get_or_compute(
        "project_stats",
        [cache.project_scope(project_id)],
        [project_id, viewer],
        lambda: project_stats_get_for_user(user=user, project_id=project_id, fast=fast),
    )


async def users_summary_cached() -> bytes:
    return await cache.get_or_compute("users", [cache.USERS], ["all"], users_summary)
