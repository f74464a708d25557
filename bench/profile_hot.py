"""CPU per request of the hot reads, in-process: the whole ASGI app (middleware, handler, view) called in a loop.

The steadier figure behind bench_http.py's req/s: no load generator shares the cores and no queueing shows, so a
change's effect on the server's own work is visible in one run. Uses bench_http.py's database (seeded by it, or
by `manage.py seed_demo`) and Redis db 7; `--profile NAME` prints cProfile's top functions for one scenario.

    .venv/bin/python bench/profile_hot.py                  # every scenario, CPU ms per request
    .venv/bin/python bench/profile_hot.py --profile dashboard_cached
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DB = os.environ.get("BENCH_HTTP_DB", "fw_bench_http")
os.environ.update(
    {
        "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "RATE_LIMIT_ENABLED": os.environ.get("RATE_LIMIT_ENABLED", "0"),
        "JWT_ACCESS_MINUTES": "240",
        "DEBUG": "0",
        "EMBEDDED_WORKER": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
)


async def call(app: Any, path: str, token: str) -> tuple[int, int]:
    """One GET through the ASGI app as uvicorn would send it; (status, body bytes)."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8766"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept-encoding", b"gzip"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8766),
    }
    sent = False
    done = asyncio.Event()
    status, size = 0, 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    return status, size


def scenarios(ids: dict[str, int]) -> dict[str, tuple[str, str]]:
    return {
        "videos_list": ("bench", f"/api/v1/projects/{ids['project']}/videos"),
        "video_detail": ("bench", f"/api/v1/videos/{ids['video']}"),
        "ground_truth_1000": ("bench", f"/api/v1/videos/{ids['gt_video']}/ground-truth"),
        "dashboard_cached": ("bench", "/api/v1/dashboard/stats"),
        "dashboard_uncached": ("bench", "/api/v1/dashboard/stats?fresh=1"),
        "users_filtered": ("bench-admin", "/api/v1/users?plan=pro&is_active=true&ordering=-date_joined"),
        "search": ("bench", "/api/v1/videos?search=clip_01"),
        "health_live": ("bench", "/health/live"),
    }


def setup() -> tuple[dict[str, str], dict[str, int]]:
    from accounts.models import User
    from accounts.services import tokens_issue
    from videos.models import Project, Video

    users = {u.username: u for u in User.objects.filter(username__in=["bench", "bench-admin"])}
    if len(users) != 2:
        raise SystemExit(f"seed {DB} first: .venv/bin/python bench/bench_http.py (or manage.py seed_demo)")
    tokens = {name: tokens_issue(user)["access"] for name, user in users.items()}
    project = Project.objects.filter(owner=users["bench"]).order_by("-created_at", "-id").first()
    videos = Video.objects.filter(project=project).order_by("-created_at", "-id")[:50]
    ids = {
        "project": project.pk,
        "video": videos[0].pk,
        "gt_video": next(v.pk for v in videos if v.ground_truth_generated),
    }
    return tokens, ids


async def measure(app: Any, token: str, path: str, n: int) -> dict[str, Any]:
    for _ in range(50):  # warm-up: compiled shapes, prepared statements, caches
        status, size = await call(app, path, token)
    samples = []
    for _ in range(n):
        t0 = time.process_time()
        await call(app, path, token)
        samples.append(time.process_time() - t0)
    return {"status": status, "bytes": size, "cpu_ms": statistics.median(samples) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="requests per scenario")
    parser.add_argument("--only", nargs="*", help="scenario names")
    parser.add_argument("--profile", metavar="SCENARIO", help="cProfile one scenario")
    args = parser.parse_args()

    import django

    django.setup()
    tokens, ids = setup()
    from config.asgi import application

    table = scenarios(ids)

    async def run() -> None:
        if args.profile:
            user, path = table[args.profile]
            await measure(application, tokens[user], path, 10)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.n):
                await call(application, path, tokens[user])
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
            stats.print_stats(int(os.environ.get("TOP", "40")))
            return
        print(f"{'scenario':<22}{'status':>7}{'bytes':>9}{'CPU ms/req':>12}")
        for name, (user, path) in table.items():
            if args.only and name not in args.only:
                continue
            r = await measure(application, tokens[user], path, args.n)
            print(f"{name:<22}{r['status']:>7}{r['bytes']:>9}{r['cpu_ms']:>12.3f}")

    asyncio.run(run())


if __name__ == "__main__":
    main()
