"""Test-only views (slow, streaming, messages) mounted next to the real URLconf; used via pytest.mark.urls."""

import asyncio

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401 - same error views
from config.urls import urlpatterns as project_urlpatterns

# What the slow view got to do before the middleware gave up on it.
events: list[str] = []


async def slow(request: HttpRequest, **kwargs: int) -> JsonResponse:
    events.append("started")
    try:
        await asyncio.sleep(float(request.GET.get("s", "5")))
        events.append("finished")
    except asyncio.CancelledError:
        events.append("cancelled")
        raise
    return JsonResponse({"slept": True})


async def slow_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def rows():
        for i in range(3):
            await asyncio.sleep(0.1)
            yield f'{{"row": {i}}}\n'.encode()

    return StreamingHttpResponse(rows(), content_type="application/jsonl")


def add_message(request: HttpRequest) -> HttpResponse:
    messages.info(request, "saved")
    return HttpResponse("ok", content_type="text/plain")


def read_messages(request: HttpRequest) -> HttpResponse:
    return HttpResponse(",".join(str(m) for m in messages.get_messages(request)), content_type="text/plain")


urlpatterns = [
    path("api/v1/_test/slow", slow),
    path("api/v1/_test/stream", slow_stream),
    path("api/v1/videos/<int:video_id>/status", slow),  # shadows the long poll: same path class
    path("_test/messages/add", add_message),
    path("_test/messages/read", read_messages),
    *project_urlpatterns,
]
