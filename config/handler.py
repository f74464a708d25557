"""Django's ASGI handler minus the thread hops that a request which never ran sync code does not need."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import SyncToAsync, sync_to_async
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, reset_queries
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, get_resolver, set_script_prefix

from config.lane import HotLane

# These receivers manage per-thread state (Django's DB connections are per thread). A request's sync code runs on
# the thread its ThreadSensitiveContext starts on first use, so until that thread exists they have nothing to do.
_THREAD_STATE = frozenset({reset_queries, close_old_connections, close_caches})
# Cheap and context-local (no I/O): safe to run on the event loop.
_LOOP_SAFE = frozenset({reset_urlconf})

Send = Callable[[dict[str, Any]], Awaitable[None]]

# Resolved paths kept per process. A path with an id is one entry, so the map is bounded (emptied when full) and
# only paths that resolved are kept (a 404 probe cannot fill it); long paths are never kept.
RESOLVED_MAX = 4096
RESOLVED_PATH_MAX = 256


def _thread_started() -> bool:
    """Whether this request's ThreadSensitiveContext has started its thread (any sync_to_async call did)."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    return context is not None and context in SyncToAsync.context_to_thread_executor


class LeanASGIHandler(ASGIHandler):
    """Stock Django hops into a new thread three times per request (request_started, response.close with
    request_finished), ~960 → ~4 900 req/s on this machine without them. This handler runs those receivers in
    the request's thread only when that thread exists, i.e. the request used the sync ORM or other sync code,
    so connection cleanup stays exactly as before on the ORM path; any other sync receiver keeps the stock hop."""

    def __init__(self) -> None:
        super().__init__()
        self.lane = HotLane()
        self._resolved: dict[tuple[Any, str], ResolverMatch] = {}

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """Django's resolution, remembered per path: resolving tries the URL patterns one by one (~40 regexes
        before the dashboard's), a tenth of a cached read's CPU. The URLconf is fixed for a resolver, so a path
        always resolves the same way; the key holds the resolver, which Django replaces when ROOT_URLCONF
        changes. Each request gets its own match object and kwargs dict, as from a fresh resolution."""
        path = request.path_info
        if hasattr(request, "urlconf") or len(path) > RESOLVED_PATH_MAX:
            return super().resolve_request(request)  # type: ignore[no-any-return]
        key = (get_resolver(), path)
        match = self._resolved.get(key)
        if match is None:
            match = key[0].resolve(path)
            if len(self._resolved) >= RESOLVED_MAX:
                self._resolved.clear()
            self._resolved[key] = match
        clone = object.__new__(ResolverMatch)
        clone.__dict__.update(match.__dict__)
        clone.kwargs = dict(match.kwargs)
        request.resolver_match = clone
        return clone

    async def handle(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await self._started(scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        response = await self.lane.serve(request)  # a cached hot read, answered without the middleware chain
        if response is not None:
            await self.send_response(response, send)
            await self._finished(response, request)
            body_file.close()
            return

        async def process_request(request: ASGIRequest, send: Send) -> HttpResponseBase:
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # Client disconnected during send_response.
                await self.send_response(response, send)
            return response

        # As in ASGIHandler.handle: serve while listening for a disconnect, which cancels the view.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await self._finished(None, request)
        else:
            await self._finished(response, request)
        body_file.close()

    async def _started(self, scope: dict[str, Any]) -> None:
        sync_receivers, async_receivers = signals.request_started._live_receivers(self.__class__)
        if any(r not in _THREAD_STATE for r in sync_receivers):
            await signals.request_started.asend(sender=self.__class__, scope=scope)
        elif async_receivers:
            await asyncio.gather(
                *(r(signal=signals.request_started, sender=self.__class__, scope=scope) for r in async_receivers)
            )

    async def _finished(self, response: HttpResponseBase | None, request: ASGIRequest) -> None:
        sync_receivers, async_receivers = signals.request_finished._live_receivers(self.__class__)
        closers = response._resource_closers if response is not None else []
        lean = (
            not _thread_started()
            and all(r in _THREAD_STATE or r in _LOOP_SAFE for r in sync_receivers)
            and all(closer == request.close for closer in closers)  # Django adds request.close to every response
        )
        if not lean:  # Stock behaviour: one hop into the request's thread, which owns its connections.
            if response is None:
                await signals.request_finished.asend(sender=self.__class__)
            else:
                await sync_to_async(response.close)()
            return
        if response is not None:
            for closer in closers:
                closer()
            closers.clear()
            response.closed = True
        for receiver in sync_receivers:
            if receiver in _LOOP_SAFE:
                receiver(signal=signals.request_finished, sender=self.__class__)
        if async_receivers:
            await asyncio.gather(*(r(signal=signals.request_finished, sender=self.__class__) for r in async_receivers))
