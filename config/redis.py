"""Async Redis clients, one per event loop (a client's connections belong to the loop that made them)."""

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


def async_redis(url: str | None = None) -> aioredis.Redis:
    """The running loop's client for `url` (default REDIS_URL); short timeouts, so an outage fails fast."""
    url = url or settings.REDIS_URL
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=30)
        per_loop[url] = client
    return client
