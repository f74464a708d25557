"""A real uvicorn server under hostile clients: aborted and oversized uploads, lying framing, names, rate limits."""

import asyncio
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.core.cache import cache

from tests.conftest import tokens_for
from tests.factories import UserFactory
from tests.reliability import report
from tests.reliability.conftest import CHAOS_SCALE
from tests.reliability.procs import status_kb, wait_until
from videos.models import ProcessingJob, Project, Video

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
BOUNDARY = "chaos-boundary-5b1f"
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42".ljust(24, b"\x00")


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def owner_and_project(transactional_db):
    owner = UserFactory()
    return owner, Project.objects.create(owner=owner, name="uploads")


def payload_file(directory: Path, size: int) -> Path:
    """`size` bytes that sniff as MP4 (an ftyp box, then random bytes), written in 1 MiB steps."""
    path = directory / f"payload-{size}.mp4"
    with path.open("wb") as handle:
        handle.write(MP4_HEAD)
        left = size - len(MP4_HEAD)
        while left > 0:
            handle.write(os.urandom(min(MIB, left)))
            left -= MIB
    os.truncate(path, size)
    return path


def multipart(path: Path, filename: str = "clip.mp4") -> tuple[bytes, bytes, int]:
    """(preamble, epilogue, total length) of a one-part multipart body around the file's bytes."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head, tail, len(head) + path.stat().st_size + len(tail)


def body_chunks(path: Path, head: bytes, tail: bytes, limit: int | None = None) -> Iterator[bytes]:
    """The multipart body from disk in 1 MiB chunks, cut after `limit` bytes when given."""
    sent = 0

    def cut(chunk: bytes) -> bytes:
        return chunk if limit is None else chunk[: max(0, limit - sent)]

    for piece in (head, *iter_file(path), tail):
        piece = cut(piece)
        if not piece:
            return
        sent += len(piece)
        yield piece


def iter_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            yield chunk


def raw_request(
    port: int,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes],
    *,
    chunked: bool = False,
    abort: bool = False,
    timeout_s: float = 60,
) -> int | None:
    """Send a request over a bare socket (any framing, lies included); the status, or None if none came back.

    The body is sent from a thread while this one reads, so an early 413 is seen even if the server stops
    reading. `abort` closes the socket after the chunks instead of waiting for an answer.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send() -> None:
        try:
            for chunk in chunks:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered early and closed

    if abort:
        send()
        sock.close()
        return None
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    try:
        while b"\r\n" not in received and (data := sock.recv(65536)):
            received += data
    except OSError:
        pass
    sock.close()
    sender.join(10)
    return int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else None


def upload_headers(owner, length: int | None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {tokens_for(owner)['access']}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Connection": "close",
    }
    if length is not None:
        headers["Content-Length"] = str(length)
    return headers


def nothing_kept(media_root: Path, server_tmp: Path) -> bool:
    return (
        not Video.objects.exists() and not ProcessingJob.objects.exists() and not files(media_root) + files(server_tmp)
    )


def test_upload_aborted_at_half_leaves_nothing(owner_and_project, start_server, media_root, server_tmp, tmp_path):
    owner, project = owner_and_project
    server = start_server()
    source = payload_file(tmp_path, 8 * MIB)
    head, tail, length = multipart(source)
    path = f"/api/v1/projects/{project.pk}/videos"
    raw_request(
        server.port, path, upload_headers(owner, length), body_chunks(source, head, tail, length // 2), abort=True
    )
    # The server notices the disconnect, the parse fails and every temporary file is removed.
    wait_until(lambda: nothing_kept(media_root, server_tmp), 15, "the aborted upload to be cleaned up", 0.1)
    assert server.running()
    report.record(
        "upload_abort",
        item=6,
        scenario="upload aborted at 50 % (raw socket, uvicorn)",
        figure="0 rows, 0 stored files, 0 temporary files",
        goal="0 / 0 / 0",
        ok=True,
    )


def test_big_upload_memory_and_lying_framing(owner_and_project, start_server, media_root, server_tmp, tmp_path):
    owner, project = owner_and_project
    big_mb = 500 if CHAOS_SCALE >= 5 else 100
    limit = big_mb * MIB
    server = start_server(VIDEO_MAX_BYTES=str(limit))
    path = f"/api/v1/projects/{project.pk}/videos"

    # Warm-up: lazy imports and first-request allocations are not the upload's cost.
    small = payload_file(tmp_path, MIB)
    head, tail, length = multipart(small)
    assert raw_request(server.port, path, upload_headers(owner, length), body_chunks(small, head, tail)) == 202

    source = payload_file(tmp_path, limit)
    head, tail, length = multipart(source)
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
    before_kb = status_kb(server.pid, "VmRSS")
    status = raw_request(server.port, path, upload_headers(owner, length), body_chunks(source, head, tail))
    growth_mb = (status_kb(server.pid, "VmHWM") - before_kb) / 1024
    assert status == 202
    stored = Video.objects.order_by("-id").first()
    assert stored.size_bytes == limit
    assert files(server_tmp) == []
    Video.objects.all().delete()
    for f in files(media_root):
        f.unlink()

    # limit + 1 byte; no Content-Length (chunked); Content-Length smaller and larger than the body.
    over = payload_file(tmp_path, limit + 1)
    head, tail, length = multipart(over)
    cases = {
        "limit + 1 byte": ({"length": length}, {413}),
        "chunked, no Content-Length": ({"length": None, "chunked": True}, {413, 400}),
        "Content-Length smaller than the body": ({"length": length - MIB}, {413, 400}),
        # Django reads the whole body before the view runs, so the server waits for bytes that never come;
        # the client gives up (no answer) and the spooled body is dropped.
        "Content-Length larger than the body": ({"length": length + 10 * MIB, "timeout_s": 10}, {None}),
    }
    outcomes = {}
    for name, (framing, expected) in cases.items():
        headers = upload_headers(owner, framing["length"])
        if framing.get("chunked"):
            headers["Transfer-Encoding"] = "chunked"
        status = raw_request(
            server.port,
            path,
            headers,
            body_chunks(over, head, tail),
            chunked=framing.get("chunked", False),
            timeout_s=framing.get("timeout_s", 60),
        )
        wait_until(lambda: nothing_kept(media_root, server_tmp), 15, f"nothing kept after {name}", 0.1)
        outcomes[name] = status
        assert status in expected, (name, status)
    assert server.running()
    report.record(
        "upload_memory",
        item=7,
        scenario=f"{big_mb} MiB upload on uvicorn",
        figure=f"202, peak RSS growth {growth_mb:.1f} MB",
        goal="< 30 MB",
        ok=growth_mb < 30,
        growth_mb=round(growth_mb, 1),
    )
    report.record(
        "upload_framing",
        item=7,
        scenario="limit + 1, chunked without Content-Length, Content-Length too small / too large",
        figure=", ".join(f"{name}: {status}" for name, status in outcomes.items()) + "; 0 bytes kept",
        goal="413 (400 if malformed; no answer if the body never completes), 0 bytes kept",
        ok=True,
    )
    assert growth_mb < 30


HOSTILE_NAMES = [
    "../../../../tmp/escape.mp4",
    "..\\..\\windows\\escape.mp4",
    "/etc/cron.d/escape.mp4",
    "nul\x00byte.mp4",
    "rtl\u202egnp.mp4",
    "\u2067isolate\u2069.mp4",
    "x" * 300 + ".mp4",
    "....//....//escape.mp4",
    "%2e%2e%2fescape.mp4",
]


def test_hostile_names_store_nothing_outside_the_root(
    owner_and_project, start_server, media_root, server_tmp, tmp_path
):
    owner, project = owner_and_project
    server = start_server()
    source = payload_file(tmp_path, 64 * 1024)
    outside_before = set(files(tmp_path)) - set(files(media_root)) - set(files(server_tmp))
    statuses = []
    for name in HOSTILE_NAMES:
        head, tail, length = multipart(source, filename=name.replace('"', ""))
        path = f"/api/v1/projects/{project.pk}/videos"
        statuses.append(raw_request(server.port, path, upload_headers(owner, length), body_chunks(source, head, tail)))
    outside_after = set(files(tmp_path)) - set(files(media_root)) - set(files(server_tmp))
    names = list(Video.objects.values_list("original_name", flat=True))
    assert all(s in (202, 400) for s in statuses), statuses
    assert outside_after == outside_before
    assert not Path(tempfile.gettempdir(), "escape.mp4").exists()
    assert all(media_root in p.parents for p in files(media_root))
    assert all("/" not in n and "\\" not in n and "\x00" not in n and len(n) <= 255 for n in names)
    assert not any(ch in n for n in names for ch in "\u202e\u2067\u2069")
    report.record(
        "names",
        item=9,
        scenario=f"{len(HOSTILE_NAMES)} hostile file names (../, \\, NUL, RTL, 300 chars) over HTTP",
        figure=f"0 files outside the storage root; statuses {sorted(set(statuses))}",
        goal="0 files outside the root",
        ok=True,
    )


async def _burst(url: str, count: int, forwarded: bool) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=count)) as client:

        def headers(i: int) -> dict[str, str]:
            return {"X-Forwarded-For": f"203.0.113.{i % 250}, 198.51.100.{i // 250}"} if forwarded else {}

        body = {"username": "nobody", "password": "wrong-password"}
        return await asyncio.gather(
            *(client.post("/api/v1/auth/token", json=body, headers=headers(i)) for i in range(count))
        )


def test_rate_limit_over_real_http(start_server, live_env):
    server = start_server(RATE_LIMIT_ENABLED="1", RATE_LIMITS="auth=5/m,general=1000/m", TRUSTED_PROXY_COUNT="0")
    figures = {}
    for forwarded in (False, True):
        if forwarded:  # a fresh window for the second burst
            if live_env.get("REDIS_URL"):
                cache.clear()
            else:
                server.stop()
                server = start_server(RATE_LIMIT_ENABLED="1", RATE_LIMITS="auth=5/m,general=1000/m")
        responses = asyncio.run(_burst(server.url, 100, forwarded))
        passed = [r for r in responses if r.status_code != 429]
        limited = [r for r in responses if r.status_code == 429]
        assert len(passed) == 5 and len(limited) == 95, sorted({r.status_code for r in responses})
        for response in limited:
            assert 1 <= int(response.headers["Retry-After"]) <= 60
            assert response.headers["RateLimit-Limit"] == "5"
            assert response.headers["RateLimit-Remaining"] == "0"
            assert response.json()["error"] == "rate_limited"
        figures["rotated X-Forwarded-For" if forwarded else "one client"] = (len(passed), len(limited))
    report.record(
        "rate_limit",
        item=11,
        scenario="100 parallel POST /auth/token against auth=5/m over HTTP (uvicorn); again with 100 rotated XFF",
        figure="; ".join(f"{k}: {p} passed, {n} x 429" for k, (p, n) in figures.items())
        + " (Retry-After, RateLimit-* on all)",
        goal="exactly 5 pass, 95 x 429, TRUSTED_PROXY_COUNT=0",
        ok=True,
        backend="redis" if live_env.get("REDIS_URL") else "in-process",
    )
