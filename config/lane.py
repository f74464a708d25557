"""The hot lane: cached reads answered by the handler itself, before URL resolution, Ninja and the middleware chain.

A cached dashboard read does about 0.1 ms of its own work (token check, one Redis call, headers), yet costs ~1 ms
through the full stack, most of it in the nested middleware coroutines, URL resolution and Ninja's operation
machinery (bench/profile_hot.py). For the GETs in ROUTES the handler calls the same body function the Ninja
operation calls, then applies the same response steps the middleware would, in MIDDLEWARE's order, through the
functions those middleware use (one place per concept). tests/config/test_lane.py holds the two paths to the
same status, headers and bytes.

The lane steps aside (returns None, and the full stack answers) whenever a step it does not repeat could apply:
a path and query string not in ROUTES as they are (any other spelling of a parameter goes to Ninja's parsing),
a Cookie header (CSRF and sessions read cookies), no valid bearer token (the stack's 401), or a request the
security/common middleware would redirect or refuse.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, HttpResponseBase
from django.urls import resolve
from django.utils.module_loading import import_string

from accounts.auth import bearer_user
from config import hopfree
from config.caching import apply_cache_headers
from config.compression import compress_response
from config.logging import request_id_var
from config.metrics import observe_request
from config.middleware import rate_limit, request_context_finish, request_context_start, timeout_response

Body = Callable[[ASGIRequest, Any], Awaitable[bytes]]

# Exact (path, query string) → the body function its Ninja operation returns as application/json.
ROUTES: dict[tuple[str, str], str] = {
    ("/api/v1/dashboard/stats", ""): "analytics.api.dashboard_stats_body",
    ("/api/v1/dashboard/stats", "fresh=1"): "analytics.api.dashboard_stats_fresh_body",
}


def _unused(request: Any) -> None:  # pragma: no cover - the lane never calls the next layer
    raise AssertionError("the lane calls middleware hooks only")


class HotLane:
    """One per handler: the route table resolved once, and the middleware instances whose hooks it calls."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[Body, str]] = {}
        # Request-side hooks that may answer instead of the view (HTTPS redirect, banned agents, slash
        # redirects) and response-side header work, as in MIDDLEWARE.
        self.security = hopfree.SecurityMiddleware(_unused)
        self.xframe = hopfree.XFrameOptionsMiddleware(_unused)
        self.common = hopfree.CommonMiddleware(_unused)

    def _route(self, path: str, query: str) -> tuple[Body, str] | None:
        entry = self.routes.get((path, query))
        if entry is None and (path, query) in ROUTES:
            entry = self.routes[path, query] = (import_string(ROUTES[path, query]), "/" + resolve(path).route)
        return entry

    async def serve(self, request: ASGIRequest) -> HttpResponseBase | None:
        """The full stack's answer to `request`, or None when the lane does not serve it."""
        if (
            request.method != "GET"
            or "HTTP_COOKIE" in request.META
            or (route := self._route(request.path_info, request.META.get("QUERY_STRING", ""))) is None
        ):
            return None
        user = bearer_user(request)
        if user is None or self.security.process_request(request) or self.common.process_request(request):
            return None
        body, label = route
        started, token = request_context_start(request)
        try:
            response = await self._respond(request, user, body)
        except BaseException:  # cancelled (client gone, shutdown): every Exception became a response below
            request_id_var.reset(token)
            observe_request(request, label, 500, started)
            raise
        # Outward through the same steps as MIDDLEWARE (inner to outer). Sessions, auth, messages and CSP do
        # nothing for API paths and JSON bodies; CSRF sets no cookie on a cookie-less GET.
        response = apply_cache_headers(request, response)
        response = compress_response(request, response)
        response = self.xframe.process_response(request, response)
        response = self.security.process_response(request, response)
        request_context_finish(request, response, started, token)
        observe_request(request, label, response.status_code, started)
        return response

    async def _respond(self, request: ASGIRequest, user: Any, body: Body) -> HttpResponseBase:
        """What RateLimit, Timeout and, below them, the Ninja operation (its exception handlers included) and
        CommonMiddleware would answer: a 429 or 504 is made above CommonMiddleware, so it gets no Content-Length."""
        refusal, limit_headers = await rate_limit(request)
        if refusal is not None:
            return refusal
        limit = settings.REQUEST_TIMEOUT_S
        response: HttpResponseBase
        try:
            async with asyncio.timeout(limit if limit > 0 else None) as deadline:
                data = await body(request, user)
        except Exception as exc:  # noqa: BLE001 - as Ninja does: its handlers shape every error
            if isinstance(exc, TimeoutError) and deadline.expired():
                response = timeout_response(request, limit)
            else:
                from config.api import api  # the Ninja operation's exception handlers (config.api imports apps)

                response = self.common.process_response(request, api.on_exception(request, exc))
        else:
            response = self.common.process_response(request, HttpResponse(data, content_type="application/json"))
        for key, value in limit_headers.items():
            response[key] = value
        return response
