"""Versioned read-through cache: keys carry per-scope version counters that writes bump; values are orjson bytes."""

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache as django_cache
from django.db import transaction
from redis.exceptions import NoScriptError, RedisError

from config.metrics import CACHE_REQUESTS
from config.redis import async_redis
from config.renderers import dumps

logger = logging.getLogger(__name__)

TTL_S = 60
LOCK_MS = 5_000  # A recomputation that takes longer than this lets a second one start.
WAIT_S = 0.25  # How long a request waits for another's recomputation before computing itself.
POLL_S = 0.01
DOWN_S = 5.0  # After a Redis error, skip Redis this long (a dead host would cost a timeout per request).
PREFIX = "fw:c:"
STATS_KEY = PREFIX + "stats"
GLOBAL = "global"
USERS = "users"
HIT, MISS_LOCKED, MISS_WAIT = 0, 1, 2

# One round trip: read the scopes' versions, build the key, GET it, count the hit or miss and, on a miss,
# try to take the recomputation lock. No KEYS/SCAN anywhere: invalidation is a version bump.
_LOOKUP = """
local key = ARGV[3]
for i = 5, #ARGV do
  key = key .. ':' .. (redis.call('GET', ARGV[1] .. 'v:' .. ARGV[i]) or '0')
end
local value = redis.call('GET', key)
if value then
  redis.call('HINCRBY', ARGV[1] .. 'stats', ARGV[2] .. ':hits', 1)
  return {key, 0, value}
end
redis.call('HINCRBY', ARGV[1] .. 'stats', ARGV[2] .. ':misses', 1)
if redis.call('SET', key .. ':lock', '1', 'NX', 'PX', ARGV[4]) then
  return {key, 1}
end
return {key, 2}
"""

_LOOKUP_SHA = hashlib.sha1(_LOOKUP.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

_down_until: dict[str, float] = {}
_sync_clients: dict[str, redis.Redis] = {}
_local_stats: Counter[str] = Counter()


# --- Scopes and invalidation -----------------------------------------------------
def owner_scope(owner_id: int) -> str:
    return f"owner:{owner_id}"


def project_scope(project_id: int) -> str:
    return f"project:{project_id}"


def project_scopes(project_id: int, owner_id: int) -> tuple[str, ...]:
    """Everything a write under one project can change: that project, its owner's totals, the staff totals."""
    return project_scope(project_id), owner_scope(owner_id), GLOBAL


def _sync_redis(url: str) -> redis.Redis:
    client = _sync_clients.get(url)
    if client is None:
        client = _sync_clients[url] = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    return client


def bump(*scopes: str) -> None:
    """Invalidate every cached value built under `scopes` (new versions make new keys; old ones expire)."""
    try:
        if settings.REDIS_URL:
            pipe = _sync_redis(settings.REDIS_URL).pipeline(transaction=False)
            for scope in scopes:
                pipe.incr(f"{PREFIX}v:{scope}")
            pipe.execute()
            return
        for scope in scopes:
            django_cache.add(f"c:v:{scope}", 0, None)
            django_cache.incr(f"c:v:{scope}")
    except (RedisError, OSError, ValueError):
        # Values still expire within TTL_S; a write must not fail because the cache is down.
        logger.warning("cache version bump failed", extra={"scopes": scopes})


def bump_on_commit(*scopes: str) -> None:
    """Bump once the surrounding transaction commits (at once outside one), so readers never cache old rows."""
    transaction.on_commit(lambda: bump(*scopes))


def project_changed(project_id: int, owner_id: int) -> None:
    """After-commit invalidation for any write under a project (one line in the write services)."""
    bump_on_commit(*project_scopes(project_id, owner_id))


# --- Reads --------------------------------------------------------------------------
def _base_key(name: str, parts: Sequence[Any]) -> str:
    text = ":".join(str(p) for p in parts)
    if len(text) > 64:  # User text (search queries) can be long: hash it.
        text = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"{PREFIX}{name}:{text}"


def _count(name: str, result: str) -> None:
    CACHE_REQUESTS.labels(cache=name, result=result).inc()


async def get_or_compute(
    name: str, scopes: Sequence[str], parts: Sequence[Any], compute: Callable[[], Awaitable[Any]]
) -> bytes:
    """The JSON bytes of `compute()`, from the cache when fresh. Stampede-safe; a cache outage falls back to it."""
    url = settings.REDIS_URL
    if not url:
        return await _local_get_or_compute(name, scopes, parts, compute)
    if _down_until.get(url, 0.0) > time.monotonic():
        _count(name, "error")
        return dumps(await compute())
    client = async_redis(url)
    try:
        key, state, *value = await _lookup(client, name, _base_key(name, parts), scopes)
    except (RedisError, OSError):
        _down_until[url] = time.monotonic() + DOWN_S
        _count(name, "error")
        return dumps(await compute())
    if state == HIT:
        _count(name, "hit")
        return bytes(value[0])
    _count(name, "miss")
    if state == MISS_WAIT:
        waited = await _wait_for(client.get, key)
        if waited is not None:
            return bytes(waited)
    try:
        data = dumps(await compute())
    finally:
        if state == MISS_LOCKED:
            await _quietly(client.delete(key.decode() + ":lock"))
    await _quietly(client.set(key, data, ex=TTL_S))
    return data


async def _lookup(client: Any, name: str, base: str, scopes: Sequence[str]) -> list[Any]:
    args = (PREFIX, name, base, LOCK_MS, *scopes)
    try:
        return await client.evalsha(_LOOKUP_SHA, 0, *args)  # type: ignore[no-any-return]
    except NoScriptError:  # First use on this Redis (or after SCRIPT FLUSH): send the script once.
        return await client.eval(_LOOKUP, 0, *args)  # type: ignore[no-any-return]


async def _wait_for(get: Callable[[Any], Awaitable[Any]], key: Any) -> Any:
    """Poll for another request's recomputed value for up to WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        try:
            value = await get(key)
        except (RedisError, OSError):
            return None
        if value is not None:
            return value
    return None


async def _quietly(operation: Awaitable[Any]) -> None:
    try:
        await operation
    except (RedisError, OSError):
        logger.warning("cache write failed")


async def _local_get(key: str) -> Any:
    return django_cache.get(key)


async def _local_get_or_compute(
    name: str, scopes: Sequence[str], parts: Sequence[Any], compute: Callable[[], Awaitable[Any]]
) -> bytes:
    """Embedded mode: the same protocol on Django's in-process cache (no I/O, so no thread hop needed)."""
    versions = django_cache.get_many([f"c:v:{s}" for s in scopes])
    key = ":".join([_base_key(name, parts), *(str(versions.get(f"c:v:{s}", 0)) for s in scopes)])
    value = django_cache.get(key)
    if value is not None:
        _local_stats[f"{name}:hits"] += 1
        _count(name, "hit")
        return value  # type: ignore[no-any-return]
    _local_stats[f"{name}:misses"] += 1
    _count(name, "miss")
    locked = django_cache.add(f"{key}:lock", 1, LOCK_MS / 1000)
    if not locked:
        waited = await _wait_for(_local_get, key)
        if waited is not None:
            return waited  # type: ignore[no-any-return]
    try:
        data = dumps(await compute())
    finally:
        if locked:
            django_cache.delete(f"{key}:lock")
    django_cache.set(key, data, TTL_S)
    return data


async def user_page(
    name: str, *, user_id: int, is_staff: bool, params: str, compute: Callable[[], Awaitable[Any]]
) -> bytes:
    """A page of one caller's data, keyed by user + host + path and query string (filters, cursor) under the
    caller's version (staff: the global one), so any write under their projects shows at once."""
    scope = GLOBAL if is_staff else owner_scope(user_id)
    return await get_or_compute(name, [scope], [user_id, params], compute)


# --- Figures ------------------------------------------------------------------------
def _per_cache(counts: dict[str, int]) -> dict[str, dict[str, Any]]:
    caches: dict[str, dict[str, Any]] = {}
    for field, value in counts.items():
        name, _, kind = field.rpartition(":")
        caches.setdefault(name, {"hits": 0, "misses": 0})[kind] = int(value)
    for figures in caches.values():
        total = figures["hits"] + figures["misses"]
        figures["hit_rate"] = round(figures["hits"] / total, 4) if total else None
    return caches


def _totals(caches: dict[str, dict[str, Any]]) -> dict[str, Any]:
    hits = sum(c["hits"] for c in caches.values())
    misses = sum(c["misses"] for c in caches.values())
    return {"hits": hits, "misses": misses, "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None}


async def cache_stats() -> dict[str, Any]:
    """Hits, misses and hit rate per cache name (all processes when on Redis), key count and memory."""
    if not settings.REDIS_URL:
        caches = _per_cache(dict(_local_stats))
        # LocMemCache keeps its entries in `_cache`; other local backends have no cheap count.
        keys = len(getattr(django_cache, "_cache", ())) or None
        return {"backend": "local", **_totals(caches), "keys": keys, "memory": None, "caches": caches}
    pipe = async_redis().pipeline(transaction=False)
    pipe.hgetall(STATS_KEY).dbsize().info("memory").info("stats")
    counts, keys, memory, stats = await pipe.execute()
    caches = _per_cache({k.decode(): int(v) for k, v in counts.items()})
    return {
        "backend": "redis",
        **_totals(caches),
        "keys": keys,
        "memory": {
            "used_bytes": memory.get("used_memory"),
            "used_human": memory.get("used_memory_human"),
            "peak_bytes": memory.get("used_memory_peak"),
            "max_bytes": memory.get("maxmemory"),
            "policy": memory.get("maxmemory_policy"),
            "evicted_keys": stats.get("evicted_keys"),
            "expired_keys": stats.get("expired_keys"),
        },
        "caches": caches,
    }
