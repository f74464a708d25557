"""HTTP helpers for media and streams: ETags, Range requests, async file streaming, JSON Lines."""

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from config.errors import error_response
from config.renderers import dumps
from videos.models import Video

CHUNK_BYTES = 256 * 1024
JSONL_BATCH = 1000
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def render_json(data: Any) -> bytes:
    return dumps(data)


def json_response(data: Any) -> HttpResponse:
    """A hot read's body straight from the dicts its selector built. Returning them to Ninja instead would
    re-validate every field through the response schema (about half a list page's CPU, bench/bench_http.py);
    tests/videos/test_response_shapes.py checks these bodies against those schemas."""
    return HttpResponse(dumps(data), content_type="application/json")


def video_etag(video: Video) -> str:
    return f'W/"v{video.pk}-{video.updated_at.timestamp():.6f}"'


def etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    if not header:
        return False
    if header.strip() == "*":
        return True
    weak = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == weak for tag in header.split(","))


def not_modified(etag: str) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag
    return response


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end) inclusive for one satisfiable range; None to send the whole file; False if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match:
        return None  # Multiple or malformed ranges: RFC 9110 lets us answer with the full body.
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # Suffix range: the last N bytes.
        length = int(last)
        if length == 0 or size == 0:
            return False
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end


async def _file_chunks(name: str, start: int, length: int) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(default_storage.open, name, "rb")
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def _redirect_to_storage(name: str) -> HttpResponse:
    """302 to the storage's own short-lived URL (a presigned S3 GET).

    The object store then answers Range (206/416) and conditional requests itself and web processes carry
    no media bytes. Streaming S3 through storage.open() is no option: django-storages' S3File downloads the
    whole object on the first read, so every Range request of a playing video would fetch all of it.
    """
    response = HttpResponseRedirect(await asyncio.to_thread(default_storage.url, name))
    response["Cache-Control"] = "private, no-store"  # The target expires (AWS_QUERYSTRING_EXPIRE).
    return response


async def serve_file(request: HttpRequest, name: str, content_type: str, etag: str) -> HttpResponse:
    """Stream a stored file with ETag/304 and single-range support (206/416), or redirect to the storage
    (MEDIA_REDIRECT); content is immutable per name."""
    cache_control = "private, max-age=31536000, immutable"
    if etag_matches(request, etag):
        response = not_modified(etag)
        response["Cache-Control"] = cache_control
        return response
    if settings.MEDIA_REDIRECT:
        return await _redirect_to_storage(name)
    size = await asyncio.to_thread(default_storage.size, name)
    status, start, end = 200, 0, size - 1
    if "Range" in request.headers:
        wanted = parse_range(request.headers["Range"], size)
        if wanted is False:
            response = error_response(416, message="The requested range is not satisfiable.")
            response["Content-Range"] = f"bytes */{size}"
            return response
        if wanted:
            status, (start, end) = 206, wanted
    length = max(end - start + 1, 0)
    response = StreamingHttpResponse(_file_chunks(name, start, length), status=status, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    response["Content-Disposition"] = "inline"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


async def _jsonl(rows: QuerySet[Any] | AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    if isinstance(rows, QuerySet):
        rows = rows.aiterator(chunk_size=JSONL_BATCH * 2)
    batch: list[bytes] = []
    async for row in rows:
        batch.append(dumps(row))
        if len(batch) >= JSONL_BATCH:
            yield b"\n".join(batch) + b"\n"
            batch = []
    if batch:
        yield b"\n".join(batch) + b"\n"


def jsonl_response(rows: QuerySet[Any] | AsyncIterator[dict[str, Any]]) -> StreamingHttpResponse:
    """Stream every row of a values() queryset (or of an async iterator such as `config.bulk.aiter_sql`) as
    JSON Lines; memory stays flat (server-side chunks)."""
    return StreamingHttpResponse(_jsonl(rows), content_type="application/jsonl")


def jsonl_lines(rows: list[dict[str, Any]]) -> HttpResponse:
    """A small, already computed list as JSON Lines."""
    return HttpResponse(b"".join(dumps(r) + b"\n" for r in rows), content_type="application/jsonl")
