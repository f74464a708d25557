"""Async Redis clients, one per event loop (a client's connections belong to the loop that made them)."""

import asyncio
import weakref
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


TIMEOUT_S = 1.0


class _Connection(aioredis.Connection):
    """With `socket_timeout` set, redis-py sends every command through `asyncio.wait_for`, which on Python 3.11
    creates a task per command: a sixth of a cached read's CPU under load. Clients here make plain commands only
    (no pub/sub, no blocking reads), so the socket timeout stays unset (a send blocks only when the socket buffer
    is full) and every reply is still awaited at most TIMEOUT_S (`asyncio.timeout`, no task)."""

    async def read_response(
        self,
        disable_decoding: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 - redis-py's signature
        **kwargs: Any,
    ) -> Any:
        return await super().read_response(disable_decoding, TIMEOUT_S if timeout is None else timeout, **kwargs)


def async_redis(url: str | None = None) -> aioredis.Redis:
    """The running loop's client for `url` (default REDIS_URL); short timeouts, so an outage fails fast."""
    url = url or settings.REDIS_URL
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT_S, connection_class=_Connection, health_check_interval=30
        )
        per_loop[url] = client
    return client
