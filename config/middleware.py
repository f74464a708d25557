"""Async-only middleware: request context, the error shape, rate limits."""

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from accounts.auth import bearer_user
from config import throttling
from config.errors import error_response
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


class RequestContextMiddleware(AsyncMiddleware):
    """X-Request-ID (echoed when safe, else generated), X-Process-Time, slow-request log."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from django.conf import settings

        started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = await self.get_response(request)
        finally:
            request_id_var.reset(token)
        elapsed = time.perf_counter() - started
        response["X-Request-ID"] = request_id
        response["X-Process-Time"] = f"{elapsed:.6f}"
        if elapsed > settings.SLOW_REQUEST_S:
            logger.warning(
                "slow request",
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
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


class RateLimitMiddleware(AsyncMiddleware):
    """Scoped limits per user (from the bearer token) else per client IP; RateLimit-* headers."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from django.conf import settings

        scope = throttling.scope_for(request) if settings.RATE_LIMIT_ENABLED else None
        if scope is None:
            return await self.get_response(request)
        user = bearer_user(request) if scope != "auth" else None
        ident = f"u{user.id}" if user is not None else f"ip{throttling.client_ip(request)}"
        verdict = await throttling.hit(scope, ident)
        if verdict is None:
            return await self.get_response(request)
        if not verdict.allowed:
            return error_response(
                429,
                message=f"Rate limit exceeded for '{scope}'; retry in {verdict.reset_s} s.",
                details={"scope": scope, "retry_after": verdict.reset_s},
                headers=verdict.headers(),
            )
        response = await self.get_response(request)
        for key, value in verdict.headers().items():
            response[key] = value
        return response
