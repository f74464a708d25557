"""Redis (cache, rate limits, broker, channel layer) restarted under mixed HTTP load, a worker and WebSocket clients."""

import asyncio
import json
import random
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import tokens_for
from tests.media import make_moving_box_video
from tests.reliability import report
from tests.reliability.conftest import needs_services
from tests.reliability.procs import Proc, manage, wait_until
from tests.reliability.test_authorization_matrix import World
from videos.models import ProcessingJob, Video

pytestmark = [
    needs_services,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
    pytest.mark.django_db(transaction=True),
]

REDIS_PORT = 6391  # a private redis-server: the shared one on 6379 is never restarted
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
LEASE_S = 4
MIN_REQUESTS = 1000
CLIENTS = 6
UPLOADS = 12
SOCKETS = 4
OUTAGE_S = 3.0
AFTER_S = 15.0  # load keeps going this long after Redis is back (and until MIN_REQUESTS)
SNAPSHOT_LIMIT_S = 10.0
SEED = 20260607


def start_redis(log_dir: Path) -> Proc:
    cmd = ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = Proc("redis", cmd, {"PATH": "/usr/bin:/bin:/usr/local/bin"}, log_dir)
    wait_until(lambda: "Ready to accept connections" in proc.tail(20) or not proc.running(), 10, "redis-server")
    assert proc.running(), proc.tail()
    return proc


@pytest.fixture
def redis_proc(log_dir):
    """Our own redis-server; the test replaces it (a restart) through `holder[0]`."""
    holder = [start_redis(log_dir)]
    yield holder
    holder[0].stop()


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("redis") / "small.avi"
    make_moving_box_video(path, frames=24, width=160, height=120, fourcc="MJPG")
    return path.read_bytes()


class HttpLoad:
    """Client threads over a request mix; one request in ~20 is an upload (a processing job), up to UPLOADS."""

    def __init__(self, base_url: str, token: str, world: World, video: bytes) -> None:
        project, detail = f"/api/v1/projects/{world.project.pk}", f"/api/v1/videos/{world.video.pk}"
        self.reads = [
            "/api/v1/videos",
            detail,
            f"{project}/videos",
            "/api/v1/dashboard/stats",  # the versioned Redis cache (config/cache.py)
            "/health",
            f"{project}/stats",
            f"{detail}/status",
        ]
        self.upload_path, self.video = f"{project}/videos", video
        self.base_url, self.headers = base_url, {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results: list[tuple[str, int, float]] = []  # (path, status, monotonic time)
        self.uploads = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def next_request(self, i: int) -> tuple[str, str]:
        with self.lock:
            if i % 20 == 7 and self.uploads < UPLOADS:
                self.uploads += 1
                return "POST", self.upload_path
        return "GET", self.reads[i % len(self.reads)]

    def run(self, offset: int) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:
            i = offset * 3
            while not self.stop.is_set():
                method, path = self.next_request(i)
                i += 1
                try:
                    if method == "POST":
                        files = {"file": ("clip.avi", self.video, "video/x-msvideo")}
                        status = client.post(path, files=files).status_code
                    else:
                        status = client.get(path).status_code
                except httpx.HTTPError:
                    status = 0
                with self.lock:
                    self.results.append((path if method == "GET" else "upload", status, time.monotonic()))

    def count(self) -> int:
        with self.lock:
            return len(self.results)


class SocketClients:
    """WebSocket clients on one event loop in a thread; each reconnects when closed and logs its snapshots."""

    def __init__(self, base_url: str, token: str, world: World) -> None:
        ws = base_url.replace("http://", "ws://")
        paths = [f"/ws/videos/{world.video.pk}/", f"/ws/projects/{world.project.pk}/"]
        self.urls = [f"{ws}{paths[i % 2]}?token={token}" for i in range(SOCKETS)]
        self.snapshots: list[list[float]] = [[] for _ in self.urls]
        self.closes: list[list[float]] = [[] for _ in self.urls]
        self.running = True
        self.thread = threading.Thread(target=lambda: asyncio.run(self.main()), daemon=True)

    async def client(self, i: int) -> None:
        """Reconnects as web/static/web/app.js does: backoff 1 s x 2^attempt (jitter x0.5-1, cap 30 s), reset
        by a snapshot."""
        rng, attempt = random.Random(SEED + i), 0
        while self.running:
            try:
                async with connect(self.urls[i], origin="http://127.0.0.1", open_timeout=5) as socket:
                    while self.running:
                        try:
                            message = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
                        except TimeoutError:
                            continue
                        if message.get("type") == "snapshot":
                            self.snapshots[i].append(time.monotonic())
                            attempt = 0
            except Exception:  # noqa: BLE001 - any close or failed connect: reconnect, as the page does
                self.closes[i].append(time.monotonic())
            delay = min(30.0, 2.0**attempt) * (0.5 + rng.random() / 2)
            attempt += 1
            deadline = time.monotonic() + delay
            while self.running and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    async def main(self) -> None:
        await asyncio.gather(*(self.client(i) for i in range(SOCKETS)))


def test_redis_restart_under_mixed_load(start_server, start_worker, live_env, log_dir, redis_proc, small_video):
    world = World()
    env = {"REDIS_URL": REDIS_URL, "BROKER_URL": REDIS_URL, "JOB_LEASE_S": str(LEASE_S)}
    limits = {"RATE_LIMIT_ENABLED": "1", "RATE_LIMITS": "auth=10000/m,upload=10000/m,search=10000/m,general=100000/m"}
    server = start_server(**env, **limits)
    start_worker(threads=2, **env)
    requeuer = manage("requeue", {**live_env, **env}, log_dir, "requeue_stale_jobs", "--every", "1")
    token = tokens_for(world.owner)["access"]
    sockets = SocketClients(server.url, token, world)
    load = HttpLoad(server.url, token, world, small_video)
    try:
        sockets.thread.start()
        wait_until(lambda: all(sockets.snapshots), 15, "every socket's first snapshot")
        for thread in load.threads:
            thread.start()
        wait_until(lambda: load.count() >= 150, 60, "load before the outage", 0.05)
        redis_proc[0].stop(timeout_s=0)  # SIGTERM then SIGKILL: no persistence, so every key is gone
        down_at = time.monotonic()
        time.sleep(OUTAGE_S)
        redis_proc[0] = start_redis(log_dir)
        up_at = time.monotonic()
        wait_until(lambda: load.count() >= MIN_REQUESTS and time.monotonic() > up_at + AFTER_S, 180, "the load", 0.1)
    finally:
        load.stop.set()
        for thread in load.threads:
            thread.join(60)
        sockets.running = False
        sockets.thread.join(30)
    accepted = sum(1 for path, status, _ in load.results if path == "upload" and status == 202)
    wait_until(
        lambda: ProcessingJob.objects.filter(state__in=ProcessingJob.ACTIVE).count() == 0, 120, "every job to finish"
    )
    requeuer.stop()

    outside_health = [(p, s) for p, s, _ in load.results if p != "/health" and (s >= 500 or s == 0)]
    health = Counter(s for p, s, _ in load.results if p == "/health")
    health_503_while_down = sum(1 for p, s, t in load.results if p == "/health" and s == 503 and down_at <= t <= up_at)
    jobs = Counter(ProcessingJob.objects.values_list("state", flat=True))
    videos = Counter(Video.objects.exclude(pk=world.video.pk).values_list("status", flat=True))
    resnapshot = [min((t - up_at for t in times if t >= up_at), default=None) for times in sockets.snapshots]
    reconnected = [any(down_at <= t for t in closes) for closes in sockets.closes]
    worst = max((r for r in resnapshot if r is not None), default=float("inf"))
    ok = (
        not outside_health
        and jobs == {"succeeded": accepted}
        and videos == {"completed": accepted}
        and None not in resnapshot
        and worst <= SNAPSHOT_LIMIT_S
    )
    report.record(
        "redis_restart",
        item=4,
        scenario=f"own redis-server killed for {OUTAGE_S:.0f} s and restarted empty under {len(load.results)} requests "
        f"({CLIENTS} clients: lists, details, dashboard, uploads, /health), rundramatiq + requeue_stale_jobs, "
        f"{SOCKETS} WebSockets",
        figure=f"{len(outside_health)} x 5xx outside /health ({health_503_while_down} x 503 on /health while down); "
        f"{jobs.get('succeeded', 0)}/{accepted} jobs completed, 0 lost; sockets re-snapshotted ≤ {worst:.1f} s",
        goal=f"0 x 5xx, 0 jobs lost, re-snapshot ≤ {SNAPSHOT_LIMIT_S:.0f} s after Redis is back",
        ok=ok,
        statuses=dict(Counter(s for _, s, _ in load.results)),
        health=dict(health),
        jobs=dict(jobs),
        resnapshot_s=[None if r is None else round(r, 2) for r in resnapshot],
        sockets_closed_by_outage=reconnected,
    )
    assert not outside_health, Counter(outside_health)
    assert health_503_while_down > 0, health
    assert jobs == {"succeeded": accepted} and accepted > 0, (jobs, accepted)
    assert videos == {"completed": accepted}, videos
    assert None not in resnapshot and worst <= SNAPSHOT_LIMIT_S, resnapshot
