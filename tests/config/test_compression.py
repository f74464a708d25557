"""gzip/Brotli: negotiated, ≥ 1 KiB compressible bodies only, streams flushed per chunk, ETags weakened."""

import gzip
import zlib

import brotli
import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from config.compression import choose_encoding, compress_response, is_compressible

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", "br"),
        ("br", "br"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip", "gzip"),
        ("br;q=0, gzip;q=0.1", "gzip"),
        ("gzip;q=0, br;q=0", None),
        ("identity", None),
        ("", None),
        ("*", "br"),
        ("*;q=0, gzip", "gzip"),
        ("deflate, GZIP;q=0.8", "gzip"),
        ("br;q=junk, gzip", "gzip"),
    ],
)
def test_choose_encoding(header, expected):
    assert choose_encoding(header) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/jsonl", True),
        ("text/html; charset=utf-8", True),
        ("application/vnd.api+json", True),
        ("video/mp4", False),
        ("image/jpeg", False),
        ("image/svg+xml", False),
        ("application/zip", False),
        ("application/octet-stream", False),
        ("application/gzip", False),
        ("", False),
    ],
)
def test_is_compressible(content_type, expected):
    assert is_compressible(content_type) is expected


def _get(accept_encoding: str = "", **headers: str):
    return RequestFactory().get("/api/v1/x", HTTP_ACCEPT_ENCODING=accept_encoding, **headers)


def _json(size: int) -> HttpResponse:
    return HttpResponse(b"[" + b'"row",' * (size // 6) + b'"end"]', content_type="application/json")


def test_whole_body_gzip_round_trips_and_sets_headers():
    response = _json(5000)
    identity = response.content
    response["ETag"] = '"abc"'
    compress_response(_get("gzip"), response)
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.content) == identity
    assert response["Content-Length"] == str(len(response.content))
    assert response["Vary"] == "Accept-Encoding"
    assert response["ETag"] == 'W/"abc"'


def test_whole_body_brotli_round_trips():
    response = _json(5000)
    identity = response.content
    compress_response(_get("gzip, br"), response)
    assert response["Content-Encoding"] == "br"
    assert brotli.decompress(response.content) == identity


def test_body_under_one_kib_is_sent_as_is_but_varies():
    response = _json(1000)
    assert len(response.content) < 1024
    compress_response(_get("gzip, br"), response)
    assert not response.has_header("Content-Encoding")
    assert response["Vary"] == "Accept-Encoding"


def test_client_without_accept_encoding_gets_identity():
    response = _json(5000)
    compress_response(_get(""), response)
    assert not response.has_header("Content-Encoding")
    assert response["Vary"] == "Accept-Encoding"


@pytest.mark.parametrize("content_type", ["video/mp4", "image/jpeg", "application/zip", "application/octet-stream"])
def test_media_and_opaque_bytes_are_never_compressed(content_type):
    response = HttpResponse(b"a" * 10_000, content_type=content_type)
    compress_response(_get("gzip, br"), response)
    assert not response.has_header("Content-Encoding")
    assert not response.has_header("Vary")
    assert response.content == b"a" * 10_000


def test_already_encoded_and_range_responses_are_left_alone():
    encoded = _json(5000)
    encoded["Content-Encoding"] = "gzip"
    partial = HttpResponse(b"a" * 5000, content_type="text/plain", status=206)
    partial["Content-Range"] = "bytes 0-4999/9000"
    for response in (encoded, partial):
        body = response.content
        compress_response(_get("gzip"), response)
        assert response.content == body
    assert partial.get("Content-Encoding") is None


def test_sync_stream_is_compressed_chunk_by_chunk():
    response = StreamingHttpResponse(iter([b"a" * 3000, b"b" * 3000]), content_type="application/json")
    response["Content-Length"] = "6000"
    compress_response(_get("gzip"), response)
    assert response["Content-Encoding"] == "gzip"
    assert not response.has_header("Content-Length")
    assert gzip.decompress(b"".join(response.streaming_content)) == b"a" * 3000 + b"b" * 3000


def _chunks(response) -> list[bytes]:
    """Every chunk of an async streamed body, as sent."""

    async def collect() -> list[bytes]:
        return [chunk async for chunk in response.streaming_content]

    return async_to_sync(collect)()


def _decoder(encoding: str):
    """Decode one chunk of a stream with all the output it yields (Brotli caps each call's output)."""
    if encoding == "gzip":
        return zlib.decompressobj(31).decompress
    decompressor = brotli.Decompressor()

    def decode(chunk: bytes) -> bytes:
        parts = [decompressor.process(chunk)]
        while more := decompressor.process(b""):
            parts.append(more)
        return b"".join(parts)

    return decode


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_jsonl_stream_is_compressed_and_every_chunk_decodes_to_whole_rows(user_api, video, encoding):
    url = f"/api/v1/videos/{video.pk}/ground-truth?format=jsonl"
    identity = b"".join(_chunks(user_api.get(url)))
    response = user_api.get(url, HTTP_ACCEPT_ENCODING=encoding)
    assert response["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response["Vary"]
    decoded = [part for part in map(_decoder(encoding), _chunks(response)) if part]
    # 2 500 rows in batches of 1 000: each flushed chunk decodes to whole lines at once.
    assert [part.count(b"\n") for part in decoded] == [1000, 1000, 500]
    assert all(part.endswith(b"\n") for part in decoded)
    assert b"".join(decoded) == identity
    assert len(identity.splitlines()) == 2500


def test_json_page_is_compressed_through_the_stack(user_api, video):
    url = f"/api/v1/videos/{video.pk}/ground-truth"
    identity = user_api.get(url)
    compressed = user_api.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert compressed["Content-Encoding"] == "gzip"
    assert gzip.decompress(compressed.content) == identity.content
    assert len(compressed.content) < len(identity.content) / 3
    assert compressed["ETag"] == "W/" + identity["ETag"]


def test_video_file_is_never_compressed(user_api, video):
    response = user_api.get(f"/api/v1/videos/{video.pk}/file", HTTP_ACCEPT_ENCODING="gzip, br")
    assert response.status_code == 200
    assert not response.has_header("Content-Encoding")
    assert response["Content-Length"] == str(video.size_bytes)


async def test_static_files_get_security_headers_and_compression():
    import httpx
    from django.contrib.staticfiles import finders

    from config.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/static/ninja/swagger-ui-bundle.js", headers={"Accept-Encoding": "br"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "br"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    with open(finders.find("ninja/swagger-ui-bundle.js"), "rb") as fh:
        assert response.content == fh.read()  # httpx decoded the Brotli body
