"""Async-only middleware: request context, the error shape, rate limits, timeouts, CSP on HTML."""

import asyncio
import contextvars
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from accounts.auth import bearer_user
from config import throttling
from config.errors import database_unavailable, database_unavailable_response, error_response
from config.logging import request_id_var

logger = logging.getLogger("framewise.request")

GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class AsyncMiddleware:
    """Base for middleware that only runs on the event loop (no thread hop per request)."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)


def request_context_start(request: HttpRequest) -> tuple[float, contextvars.Token[str]]:
    """Name the request (X-Request-ID echoed when safe, else generated) and start its clock."""
    started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    request.request_id = request_id  # type: ignore[attr-defined]
    return started, request_id_var.set(request_id)


def request_context_finish(
    request: HttpRequest, response: HttpResponseBase, started: float, token: contextvars.Token[str]
) -> None:
    """X-Request-ID and X-Process-Time on the response; a slow request is logged."""
    request_id_var.reset(token)
    elapsed = time.perf_counter() - started
    response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
    response["X-Process-Time"] = f"{elapsed:.6f}"
    if elapsed > settings.SLOW_REQUEST_S:
        logger.warning(
            "slow request",
            extra={
                "request_id": request.request_id,  # type: ignore[attr-defined]
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )


class RequestContextMiddleware(AsyncMiddleware):
    """X-Request-ID (echoed when safe, else generated), X-Process-Time, slow-request log."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started, token = request_context_start(request)
        try:
            response = await self.get_response(request)
        except BaseException:
            request_id_var.reset(token)
            raise
        request_context_finish(request, response, started, token)
        return response


_PASSTHROUGH = ("/admin/", "/silk/", "/static/")


class ErrorShapeMiddleware(AsyncMiddleware):
    """Give error responses that frameworks produce on their own (405s, CSRF, bare 404s) the error shape."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if (
            response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not request.path.startswith(_PASSTHROUGH)
        ):
            shaped = error_response(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate", "Content-Range"):
                if header in response:
                    shaped[header] = response[header]
            return shaped
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        """Views outside Ninja (DRF, plain Django) that lose the database answer 503, not 500."""
        if database_unavailable(exception) and not request.path.startswith(_PASSTHROUGH):
            logger.warning("database unavailable", exc_info=exception)
            return database_unavailable_response()
        return None


async def rate_limit(request: HttpRequest) -> tuple[HttpResponseBase | None, dict[str, str]]:
    """The request's scoped limit, per user (bearer token) else per client IP: a 429 to answer instead, or
    the RateLimit-* headers for the response (none when limits are off, the path is unscoped or Redis is down)."""
    scope = throttling.scope_for(request) if settings.RATE_LIMIT_ENABLED else None
    if scope is None:
        return None, {}
    user = bearer_user(request) if scope != "auth" else None
    ident = f"u{user.id}" if user is not None else f"ip{throttling.client_ip(request)}"
    verdict = await throttling.hit(scope, ident)
    if verdict is None:
        return None, {}
    if not verdict.allowed:
        refusal = error_response(
            429,
            message=f"Rate limit exceeded for '{scope}'; retry in {verdict.reset_s} s.",
            details={"scope": scope, "retry_after": verdict.reset_s},
            headers=verdict.headers(),
        )
        return refusal, {}
    return None, verdict.headers()


class RateLimitMiddleware(AsyncMiddleware):
    """Scoped limits per user (from the bearer token) else per client IP; RateLimit-* headers."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        refusal, headers = await rate_limit(request)
        if refusal is not None:
            return refusal
        response = await self.get_response(request)
        for key, value in headers.items():
            response[key] = value
        return response


# (method, path pattern) answered without REQUEST_TIMEOUT_S: they have their own bounds (body size,
# row count, the long poll's 30 s cap). Streamed bodies are exempt by construction: the limit covers
# producing the response, not sending it.
TIMEOUT_EXEMPT: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/api/v1/projects/[^/]+/videos$")),  # upload
    ("POST", re.compile(r"^/api/v1/test-sessions/[^/]+/detections$")),  # bulk detections
    ("POST", re.compile(r"^/api/v1/users/bulk$")),  # bulk user import
    ("GET", re.compile(r"^/api/v1/videos/[^/]+/status$")),  # long poll
)


def timeout_exempt(request: HttpRequest) -> bool:
    return any(request.method == method and pattern.match(request.path) for method, pattern in TIMEOUT_EXEMPT)


class TimeoutMiddleware(AsyncMiddleware):
    """504 `request_timeout` after REQUEST_TIMEOUT_S, cancelling the rest of the stack and the view.

    Cancellation stops the work on the event loop at its next await; a thread hop already running
    (a sync service) finishes in its thread and its result is dropped, which is why the bulk writes
    are exempt rather than answered 504 while they commit."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit = settings.REQUEST_TIMEOUT_S
        if limit <= 0 or timeout_exempt(request):
            return await self.get_response(request)
        try:
            async with asyncio.timeout(limit) as deadline:
                return await self.get_response(request)
        except TimeoutError:
            if not deadline.expired():
                raise  # A TimeoutError of the view's own, not ours.
        return timeout_response(request, limit)


def timeout_response(request: HttpRequest, limit: float) -> HttpResponseBase:
    """The 504 of a request cancelled after `limit` seconds."""
    logger.warning("request timeout", extra={"method": request.method, "path": request.path, "timeout_s": limit})
    return error_response(
        504,
        message=f"The request took longer than {limit:g} s and was cancelled.",
        details={"timeout_s": limit},
    )


class ContentSecurityPolicyMiddleware(AsyncMiddleware):
    """CONTENT_SECURITY_POLICY on HTML responses (admin, API docs, pages) that do not set their own."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html") and not response.has_header(
            "Content-Security-Policy"
        ):
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response
