"""Benchmark uploads: MiB/s and server peak-RSS growth for an N MiB multipart upload vs raw loopback copies.

Four scenarios, each against a fresh server subprocess on 127.0.0.1 (port --port) and the same bytes from the same file:

* ``raw-tcp``    a tiny asyncio TCP server (a subprocess of this script) that receives and drops the bytes;
* ``asgi-drain`` a minimal ASGI app under the chosen server (same flags) that drains ``receive()``, fed the
  same multipart body; ``asgi-octets`` the same app fed the bare bytes as application/octet-stream;
* ``framewise``  ``POST /api/v1/projects/{id}/videos`` on ``config.asgi:application`` in production mode
  (PostgreSQL + Redis), checked for 202, the stored size and the SHA-256.

The client streams the body (multipart: preamble, 1 MiB chunks read from disk, closing boundary) with an
explicit Content-Length, so it never holds the file. The server's RSS is sampled every ~10 ms from
/proc/<pid>/status, and its exact peak comes from VmHWM, reset before each upload via /proc/<pid>/clear_refs.
Growth = peak during the upload - RSS just before it. Results are merged per server into
bench/results/upload.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import BIN, ROOT, RssSampler, ServerProcess, prepare_database

BENCH_DIR = ROOT / "bench"
WORK_DIR = Path(tempfile.gettempdir()) / "framewise-bench"
MEDIA_ROOT = WORK_DIR / "media"
RESULTS = BENCH_DIR / "results" / "upload.json"

MIB = 1024 * 1024
CHUNK = MIB
GOAL_GROWTH_MB = 30
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42".ljust(24, b"\x00")  # enough for the upload sniffer; not a playable file
BOUNDARY = "framewise-bench-7c1f0e5a"
DATABASE_URL = "postgres://root@127.0.0.1:5432/fw_bench"
REDIS_URL = "redis://127.0.0.1:6379/5"
PASSWORD = "Bench-Upload-Horse-42"  # noqa: S105 - throwaway account in the benchmark database


# --- Test data ------------------------------------------------------------------
def ensure_file(mb: int) -> Path:
    """An `mb` MiB file starting with an MP4 ftyp box, then seeded random bytes (cached in the work dir)."""
    path = WORK_DIR / f"upload_{mb}mb.mp4"
    size = mb * MIB
    if path.exists() and path.stat().st_size == size:
        with path.open("rb") as f:
            if f.read(len(MP4_HEAD)) == MP4_HEAD:
                return path
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(mb)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as f:
        f.write(MP4_HEAD)
        left = size - len(MP4_HEAD)
        while left > 0:
            n = min(CHUNK, left)
            f.write(rng.randbytes(n))
            left -= n
    partial.rename(path)
    return path


def sha256_of(path: Path, limit: int | None = None) -> str:
    digest = hashlib.sha256()
    for chunk in file_chunks(path, limit):
        digest.update(chunk)
    return digest.hexdigest()


def file_chunks(path: Path, limit: int | None = None) -> Iterator[bytes]:
    """The file (or its first `limit` bytes) in 1 MiB chunks read from disk."""
    left = path.stat().st_size if limit is None else limit
    with path.open("rb") as f:
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def multipart(path: Path, limit: int | None = None) -> tuple[Iterator[bytes], int]:
    """A streamed multipart/form-data body with one `file` part, and its exact length."""
    size = path.stat().st_size if limit is None else limit
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="bench.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from file_chunks(path, size)
        yield tail

    return body(), len(head) + size + len(tail)


# --- RSS sampling -----------------------------------------------------------------
# --- Servers ----------------------------------------------------------------------
async def drain_app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    """Minimal ASGI app: read and discard the request body, answer with the byte count."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    received, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        received += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"received": received}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Sink(asyncio.BufferedProtocol):
    """Plain TCP sink: an 8-byte big-endian length, then that many bytes received into one reused buffer
    and dropped; answers b'<n>\\n'. No per-read allocation: the loopback ceiling for a Python process."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(CHUNK))
        self.header = b""
        self.left = self.received = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        offset = 0
        if len(self.header) < 8:
            offset = min(8 - len(self.header), nbytes)
            self.header += bytes(self.view[:offset])
            if len(self.header) < 8:
                return
            (self.left,) = struct.unpack("!Q", self.header)
        self.received += nbytes - offset
        if self.received >= self.left:
            self.transport.write(b"%d\n" % self.received)
            self.transport.close()


async def _raw_server(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def run_raw_server(port: int) -> None:
    """uvloop when installed (as uvicorn[standard] uses it), else the stdlib loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_raw_server(port))
    else:
        uvloop.run(_raw_server(port))


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        BROKER_URL=REDIS_URL,
        EMBEDDED_WORKER="0",  # production layout: processing runs in separate workers, not in the web process
        RATE_LIMIT_ENABLED="0",
        VIDEO_MAX_BYTES=str(1 << 40),
        MEDIA_ROOT=str(MEDIA_ROOT),
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(BENCH_DIR),  # for bench_upload:drain_app
        PYTHONUNBUFFERED="1",
    )
    return env


class Server(ServerProcess):
    """A server subprocess on 127.0.0.1:<port>: the raw TCP sink, uvicorn or daphne."""

    def __init__(self, kind: str, app: str, port: int) -> None:
        self.kind, self.app = kind, app
        if kind == "raw-tcp":
            cmd = [sys.executable, __file__, "--raw-server", "--port", str(port)]
        elif kind == "uvicorn":
            host = ["--host", "127.0.0.1", "--port", str(port)]
            cmd = [str(BIN / "uvicorn"), app, *host, "--workers", "1", "--no-access-log"]
        elif kind == "daphne":
            cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0", app]
        else:
            raise ValueError(kind)
        log_path = WORK_DIR / f"server-{kind}-{app.replace(':', '_')}.log"
        super().__init__(cmd, port, server_env(), log_path, kind)


# --- Framewise setup ----------------------------------------------------------------
def create_account_and_project(client: Any) -> int:
    """Register a fresh user, get a token (set on the client), create a project; its id."""
    name = f"bench{int(time.time() * 1000)}"
    email = f"{name}@example.com"
    r = client.post("/api/v1/auth/register", json={"email": email, "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['access']}"
    r = client.post("/api/v1/projects", json={"name": "upload bench"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def media_files() -> dict[Path, int]:
    return {p: p.stat().st_size for p in MEDIA_ROOT.rglob("*") if p.is_file()}


def purge_bench_queue() -> None:
    """Drop the processing messages the uploads enqueued (no worker runs against the bench Redis db)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("fw-dramatiq*"))
    if keys:
        client.delete(*keys)


# --- Scenarios ----------------------------------------------------------------------
def send_raw(port: int, path: Path, limit: int | None = None) -> int:
    size = path.stat().st_size if limit is None else limit
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(struct.pack("!Q", size))
        for chunk in file_chunks(path, size):
            sock.sendall(chunk)
        reply = b""
        while not reply.endswith(b"\n"):
            part = sock.recv(64)
            if not part:
                break
            reply += part
    received = int(reply)
    assert received == size, f"raw server received {received} of {size} bytes"
    return received


def post_multipart(client: Any, url: str, path: Path, limit: int | None = None) -> Any:
    body, length = multipart(path, limit)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(length)}
    return client.post(url, content=body, headers=headers)


def measure(server: Server, upload: Callable[[], Any]) -> tuple[float, dict[str, Any], Any]:
    """Time one upload while sampling the server's RSS."""
    time.sleep(0.2)  # let the server settle after the previous request / cleanup
    with RssSampler(server.proc.pid) as sampler:
        started = time.perf_counter()
        result = upload()
        seconds = time.perf_counter() - started
    return seconds, sampler.summary(), result


def run_scenario(name: str, server: Server, upload: Callable[[], Any], check: Callable[[Any], None], args) -> dict:
    size = args.mb * MIB
    runs = []
    for i in range(args.repeats):
        seconds, rss, result = measure(server, upload)
        check(result)
        runs.append({"seconds": round(seconds, 4), "mib_per_s": round(size / MIB / seconds, 1), **rss})
        print(
            f"  {name:<11} #{i + 1:<2} {size / MIB / seconds:8.1f} MiB/s  {seconds:6.3f} s  "
            f"peak RSS +{rss['peak_growth_mb']:.1f} MB (sampled +{rss['sampled_peak_growth_mb']:.1f}, "
            f"baseline {rss['baseline_mb']:.1f} MB)",
            flush=True,
        )
    return {
        "scenario": name,
        "server": server.kind,
        "app": server.app,
        "mib_per_s_median": statistics.median(r["mib_per_s"] for r in runs),
        "peak_rss_growth_mb_max": max(r["peak_growth_mb"] for r in runs),
        "peak_rss_growth_mb_median": statistics.median(r["peak_growth_mb"] for r in runs),
        "baseline_first_mb": runs[0]["baseline_mb"],
        "after_last_mb": runs[-1]["after_mb"],
        "runs": runs,
    }


def bench_raw_tcp(path: Path, args) -> dict:
    server = Server("raw-tcp", "asyncio", args.port)
    try:
        server.wait_ready(None)
        if args.warmup_mb:
            send_raw(args.port, path, args.warmup_mb * MIB)
        return run_scenario("raw-tcp", server, lambda: send_raw(args.port, path), lambda _: None, args)
    finally:
        server.stop()


def post_octets(client: Any, url: str, path: Path, limit: int | None = None) -> Any:
    size = path.stat().st_size if limit is None else limit
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    return client.post(url, content=file_chunks(path, size), headers=headers)


def bench_asgi_drain(path: Path, args, *, octets: bool) -> dict:
    """The drain app fed the multipart body, or (octets) the bare bytes as application/octet-stream.

    The second isolates what the server does with any body from what it does with form bodies (Twisted,
    under daphne, parses multipart/form-data itself before the ASGI app sees a byte). Each gets a fresh
    server: memory freed by one request stays resident and would hide the next one's growth.
    """
    import httpx

    size = args.mb * MIB
    send = post_octets if octets else post_multipart
    server = Server(args.server, "bench_upload:drain_app", args.port)
    try:
        server.wait_ready("/")
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=120) as client:
            if args.warmup_mb:
                send(client, "/", path, args.warmup_mb * MIB)

            def check(r: Any) -> None:
                assert r.status_code == 200, r.text
                assert r.json()["received"] >= size, r.text

            name = "asgi-octets" if octets else "asgi-drain"
            return run_scenario(name, server, lambda: send(client, "/", path), check, args)
    finally:
        server.stop()


def bench_framewise(path: Path, args) -> dict:
    import httpx

    size = args.mb * MIB
    digest = sha256_of(path)
    server = Server(args.server, "config.asgi:application", args.port)
    try:
        server.wait_ready("/health/live")
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=120) as client:
            project_id = create_account_and_project(client)
            url = f"/api/v1/projects/{project_id}/videos"
            state: dict[str, Any] = {}

            def delete_video(video_id: int) -> None:
                r = client.delete(f"/api/v1/videos/{video_id}")
                assert r.status_code == 204, r.text

            if args.warmup_mb:
                r = post_multipart(client, url, path, args.warmup_mb * MIB)
                assert r.status_code == 202, r.text
                delete_video(r.json()["id"])

            def upload() -> Any:
                state["before"] = media_files()
                return post_multipart(client, url, path)

            def check(r: Any) -> None:
                assert r.status_code == 202, f"{r.status_code} {r.text}"
                video = r.json()
                assert video["size_bytes"] == size, video
                assert video["sha256"] == digest, video
                new = {p: n for p, n in media_files().items() if p not in state["before"]}
                assert list(new.values()) == [size], f"stored files {new}, expected one of {size} bytes"
                delete_video(video["id"])  # outside the timed/sampled window

            return run_scenario("framewise", server, upload, check, args)
    finally:
        server.stop()


# --- Main ---------------------------------------------------------------------------
def server_version(kind: str) -> str:
    from importlib.metadata import version

    return version(kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="upload size in MiB")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--warmup-mb", type=int, default=4, help="untimed upload per server first (0: none)")
    parser.add_argument("--raw-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        run_raw_server(args.port)
        return

    started, load_1m = time.perf_counter(), round(os.getloadavg()[0], 2)
    path = ensure_file(args.mb)
    print(f"{args.mb} MiB upload from {path}, server {args.server}, {args.repeats} repeats", flush=True)
    prepare_database("fw_bench", server_env())
    MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    try:
        scenarios = [
            bench_raw_tcp(path, args),
            bench_asgi_drain(path, args, octets=False),
            bench_asgi_drain(path, args, octets=True),
            bench_framewise(path, args),
        ]
    finally:
        shutil.rmtree(MEDIA_ROOT, ignore_errors=True)
        purge_bench_queue()

    framewise = scenarios[-1]
    run = {
        "server": args.server,
        "server_version": server_version(args.server),
        "upload_mib": args.mb,
        "repeats": args.repeats,
        "warmup_mib": args.warmup_mb,
        "goal_peak_rss_growth_mb": GOAL_GROWTH_MB,
        "meets_goal": framewise["peak_rss_growth_mb_max"] < GOAL_GROWTH_MB,
        "scenarios": scenarios,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": load_1m,  # throughput is CPU-bound on both ends: note other load on the host
        "wall_s": round(time.perf_counter() - started, 1),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out: dict[str, Any] = {}
    if RESULTS.exists():
        with contextlib.suppress(ValueError):
            out = json.loads(RESULTS.read_text())
    out["benchmark"] = "streamed multipart upload vs raw loopback copies: MiB/s and server peak RSS growth"
    out["units"] = "MiB = MB = 2**20 bytes; RSS growth = peak VmRSS/VmHWM during the upload - VmRSS just before"
    out.setdefault("runs", {})[args.server] = run
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")

    print(f"\n{args.mb} MiB upload, {args.server} {run['server_version']}, median of {args.repeats}")
    print(f"{'scenario':<12} {'server':<9} {'MiB/s':>8} {'peak RSS growth MB (max/median)':>33}")
    for s in scenarios:
        growth = f"{s['peak_rss_growth_mb_max']:.1f} / {s['peak_rss_growth_mb_median']:.1f}"
        print(f"{s['scenario']:<12} {s['server']:<9} {s['mib_per_s_median']:>8.1f} {growth:>33}")
    verdict = "meets" if run["meets_goal"] else "MISSES"
    print(f"framewise {verdict} the goal (peak RSS growth < {GOAL_GROWTH_MB} MB); {run['wall_s']} s -> {RESULTS}")


if __name__ == "__main__":
    main()
