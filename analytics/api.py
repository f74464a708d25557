"""Analytics API (Ninja, async): dashboards from maintained counters, users, cache and database figures."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from analytics import selectors
from analytics.schemas import CacheStatsOut, DatabasePoolOut, StatsOut, UsersSummaryOut
from config import adb, cache
from config.errors import Forbidden
from config.renderers import dumps

router = Router(tags=["analytics"])


def _json(data: bytes) -> HttpResponse:
    """Cached values are stored as JSON bytes: a hit is returned without decoding or re-encoding."""
    return HttpResponse(data, content_type="application/json")


def _require_staff(request: HttpRequest) -> None:
    if not request.auth.is_staff:  # type: ignore[attr-defined]
        raise Forbidden("Staff only.")


async def dashboard_stats_body(request: HttpRequest, user: Any) -> bytes:
    """The cached dashboard's JSON; config.lane serves it before the middleware chain as well."""
    return await selectors.dashboard_stats_cached(user=user, fast=adb.enabled(request))


async def dashboard_stats_fresh_body(request: HttpRequest, user: Any) -> bytes:
    """The dashboard's JSON from the database (`?fresh=1`), encoded as a cached value is; the lane serves it too."""
    return dumps(await selectors.dashboard_stats(user=user, fast=adb.enabled(request)))


@router.get("/dashboard/stats", response=StatsOut)
async def get_dashboard_stats(request: HttpRequest, fresh: bool = False):
    body = dashboard_stats_fresh_body if fresh else dashboard_stats_body
    return _json(await body(request, request.auth))


@router.get("/projects/{project_id}/stats", response=StatsOut)
async def get_project_stats(request: HttpRequest, project_id: int, fresh: bool = False):
    fast = adb.enabled(request)
    if fresh:
        return await selectors.project_stats_get_for_user(user=request.auth, project_id=project_id, fast=fast)
    return _json(await selectors.project_stats_cached(user=request.auth, project_id=project_id, fast=fast))


@router.get("/analytics/users", response=UsersSummaryOut)
async def get_users_summary(request: HttpRequest):
    _require_staff(request)
    return _json(await selectors.users_summary_cached())


@router.get("/analytics/cache", response=CacheStatsOut)
async def get_cache_stats(request: HttpRequest):
    _require_staff(request)
    return await cache.cache_stats()


@router.get("/metrics/database", response=DatabasePoolOut)
async def get_database_metrics(request: HttpRequest):
    _require_staff(request)
    return selectors.database_pool_stats()
