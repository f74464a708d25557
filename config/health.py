"""Liveness and readiness: each backing service checked concurrently with a short timeout."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.redis import async_redis

CHECK_TIMEOUT_S = 2.0


def _database_ping() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # Returns a pooled connection; this thread may not run again soon.


async def check_database() -> None:
    await sync_to_async(_database_ping, thread_sensitive=False)()


async def check_cache() -> None:
    if settings.REDIS_URL:
        await async_redis().ping()


def _amqp_ping(url: str) -> None:
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = params.blocked_connection_timeout = CHECK_TIMEOUT_S
    params.connection_attempts = 1
    pika.BlockingConnection(params).close()


async def check_broker() -> None:
    url = settings.BROKER_URL
    if url.startswith(("amqp://", "amqps://")):
        await sync_to_async(_amqp_ping, thread_sensitive=False)(url)
    elif url:
        await async_redis(url).ping()


async def check_channel_layer() -> None:
    hosts = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts", [])
    for host in hosts:
        await async_redis(host if isinstance(host, str) else host["address"]).ping()


CHECKS: dict[str, Callable[[], Awaitable[None]]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
}


async def _timed(check: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        state = "healthy"
    except Exception:  # noqa: BLE001 - any failure means unhealthy
        state = "unhealthy"
    return {"status": state, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def health(request: HttpRequest) -> HttpResponse:
    results = await asyncio.gather(*(_timed(check) for check in CHECKS.values()))
    checks = dict(zip(CHECKS, results, strict=True))
    healthy = all(c["status"] == "healthy" for c in checks.values())
    response = JsonResponse(
        {"status": "healthy" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503
    )
    response["Cache-Control"] = "no-store"
    return response


async def live(request: HttpRequest) -> HttpResponse:
    response = JsonResponse({"status": "alive"})
    response["Cache-Control"] = "no-store"
    return response
