"""One rate limiter for DRF and Ninja: fixed windows counted atomically in Redis (in-process when embedded)."""

import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.http import HttpRequest

from config.redis import async_redis

logger = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# (method, path pattern, scope); first match wins, other /api/ requests are "general".
SCOPED_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/api/v1/auth/(token|register)$"), "auth"),
    ("POST", re.compile(r"^/api/v1/projects/[^/]+/videos$"), "upload"),
)

# INCR and PEXPIRE in one atomic step: N concurrent hits against a limit L let exactly L through.
_LUA_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return {count, ttl}
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    window_s: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_s)
        return headers


@cache
def parse_rates(spec: str) -> dict[str, Rate]:
    """'auth=5/m,upload=2/m' → {"auth": Rate(5, 60), ...}."""
    rates: dict[str, Rate] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        scope, _, rate = part.partition("=")
        count, _, unit = rate.partition("/")
        rates[scope.strip()] = Rate(int(count), _UNITS[unit.strip()[:1].lower() or "s"])
    return rates


def scope_for(request: HttpRequest) -> str | None:
    path = request.path
    if not path.startswith("/api/"):
        return None
    for method, pattern, scope in SCOPED_ROUTES:
        if request.method == method and pattern.match(path):
            return scope
    if request.method == "GET" and path == "/api/v1/videos" and request.GET.get("search"):
        return "search"
    return "general"


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT hops back in X-Forwarded-For."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "unknown")


class _LocalCounter:
    """In-process fixed windows for embedded mode (one process, so a lock is atomic enough)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}

    def hit(self, key: str, window_s: int) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            count, expires = self._windows.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + window_s
                if len(self._windows) > 100_000:  # Bound memory: drop expired windows.
                    self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            self._windows[key] = (count + 1, expires)
            return count + 1, expires - now

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


local_counter = _LocalCounter()


async def hit(scope: str, ident: str) -> Verdict | None:
    """Count one request of `ident` in `scope`; None when the scope has no limit.

    A Redis outage fails open (logged): rate limiting must not take the API down.
    """
    rate = parse_rates(settings.RATE_LIMITS).get(scope)
    if rate is None:
        return None
    key = f"fw:rl:{scope}:{ident}"
    if settings.REDIS_URL:
        try:
            count, ttl_ms = await async_redis().eval(_LUA_HIT, 1, key, rate.window_s * 1000)
        except Exception:  # noqa: BLE001 - any Redis failure means "no verdict"
            logger.warning("rate limiter unavailable", extra={"scope": scope})
            return None
        ttl_s = max(ttl_ms, 0) / 1000
    else:
        count, ttl_s = local_counter.hit(key, rate.window_s)
    reset = max(1, int(-(-ttl_s // 1)))
    return Verdict(count <= rate.limit, rate.limit, max(rate.limit - count, 0), reset)
