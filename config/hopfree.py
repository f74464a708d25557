"""Django's stock middleware without a thread hop per request: non-blocking hooks run on the event loop."""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# The JSON API authenticates by bearer token and its views are CSRF-exempt; health and metrics have no user:
# none of them reads a session, `request.user` or messages, so the HTML-only middleware steps aside for them.
API_PATHS = ("/api/", "/health", "/metrics")


class InlineAsyncMixin:
    """MiddlewareMixin's async path wraps process_request and process_response in `sync_to_async`, one
    thread hop each (about 1 ms and a thread-pool round trip per request). These hooks only touch memory
    unless a subclass says otherwise, so they run inline and hop only when `*_needs_thread` is true.
    The sync path (WSGI, test client) is MiddlewareMixin's own."""

    get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]
    html_only = False  # True: sessions, auth, CSRF cookies, messages — only pages outside API_PATHS use them

    def request_needs_thread(self, request: HttpRequest) -> bool:
        return False

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if self.html_only and request.path_info.startswith(API_PATHS):
            return await self.get_response(request)
        response = None
        process_request = getattr(self, "process_request", None)
        if process_request is not None:
            if self.request_needs_thread(request):
                response = await sync_to_async(process_request, thread_sensitive=True)(request)
            else:
                response = process_request(request)
        response = response or await self.get_response(request)
        process_response = getattr(self, "process_response", None)
        if process_response is not None:
            if self.response_needs_thread(request, response):
                response = await sync_to_async(process_response, thread_sensitive=True)(request, response)
            else:
                response = process_response(request, response)
        return response


class SecurityMiddleware(InlineAsyncMixin, security.SecurityMiddleware):
    """HTTPS redirect, HSTS, nosniff, Referrer-Policy, COOP: header work only."""


class XFrameOptionsMiddleware(InlineAsyncMixin, clickjacking.XFrameOptionsMiddleware):
    """X-Frame-Options: header work only."""


class CommonMiddleware(InlineAsyncMixin, common.CommonMiddleware):
    """User-agent ban, www/slash redirects (URL resolution, no I/O), Content-Length."""


class SessionMiddleware(InlineAsyncMixin, sessions.SessionMiddleware):
    """The session store is lazy: only saving a modified session touches the database or cache."""

    html_only = True

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class AuthenticationMiddleware(InlineAsyncMixin, auth.AuthenticationMiddleware):
    """`request.user` is a lazy object; loading it happens (and hops) in the view that reads it."""

    html_only = True


class MessageMiddleware(InlineAsyncMixin, messages.MessageMiddleware):
    """Storing messages may write the session (and load it first); untouched storage does nothing."""

    html_only = True

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CsrfViewMiddleware(InlineAsyncMixin, csrf.CsrfViewMiddleware):
    """The CSRF secret lives in a cookie (no I/O) unless CSRF_USE_SESSIONS; checking an unsafe request
    reads the body (request.POST), which may be a spooled file, so only that case hops."""

    def request_needs_thread(self, request: HttpRequest) -> bool:
        return bool(settings.CSRF_USE_SESSIONS)

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return bool(settings.CSRF_USE_SESSIONS)

    @property  # type: ignore[override]
    def process_view(self) -> Callable[..., Any]:
        # The handler adapts process_view to its own mode once, at load time: give the async handler a
        # coroutine function (no wrapper hop) and the sync handler the stock method.
        return self._aprocess_view if self.async_mode else super().process_view

    async def _aprocess_view(
        self, request: HttpRequest, callback: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponseBase | None:
        stock = super().process_view
        skips_body = (
            getattr(request, "csrf_processing_done", False)
            or getattr(callback, "csrf_exempt", False)
            or request.method in _SAFE_METHODS
        )
        if skips_body and not settings.CSRF_USE_SESSIONS:
            return stock(request, callback, args, kwargs)
        return await sync_to_async(stock, thread_sensitive=True)(request, callback, args, kwargs)
