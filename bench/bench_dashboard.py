"""Benchmark the dashboard: uncached (?fresh=1) and cached answers at 10 000 and 10 000 000 detections.

Goal (issue 8): uncached <= 5 ms median at any size (the answer sums one maintained counter row per project,
so its cost must not grow with detections); cached >= 1 000 requests/s at 64 connections.

Setup: database ``fw_bench_dashboard`` (created if missing, migrated), Redis db 4; for each size a user
``benchdash-<rows>`` with one project, one completed video and one test session. Detections are COPYed (text
blocks of 100 000 rows, 1 000 000 per statement, so the statement-level counter trigger runs once per million)
until that session holds the size. Rows are kept between runs (a later run only tops up).

* in-process: ``analytics.selectors.dashboard_stats`` (one SQL statement through the ORM's thread hop) and
  ``dashboard_stats_cached`` (one Redis round trip) awaited in a loop on one event loop; median and p95.
* HTTP: uvicorn (one worker) serving GET /api/v1/dashboard/stats?fresh=1 and the cached path, loaded by wrk
  (2 threads, 64 connections, --duration s each, closed loop); requests/s and latency percentiles.
* trigger cost: 100 000 detections inserted through ``videos.detections.insert_rows`` (the ingest COPY path)
  with the analytics insert trigger enabled and disabled (ALTER TABLE ... DISABLE TRIGGER), alternating,
  median of --repeats; the rows go to a scratch session and are deleted again.

Results go to bench/results/dashboard.json. The machine has 2 shared cores: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import BIN, ROOT, ServerProcess, prepare_database
from common import bench_env as common_bench_env

RESULTS = ROOT / "bench" / "results" / "dashboard.json"
WORK_DIR = Path(tempfile.gettempdir()) / "framewise-bench"
DB_NAME = "fw_bench_dashboard"
DATABASE_URL = f"postgres://root@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/4"
USERNAME = "benchdash"
COPY_COLUMNS = "test_session_id, video_id, frame, timestamp_ms, label, confidence, x, y, w, h"
BLOCK_ROWS = 100_000
STATEMENT_ROWS = 1_000_000
GOAL_UNCACHED_MS = 5.0
GOAL_CACHED_RPS = 1_000


def bench_env() -> dict[str, str]:
    return common_bench_env(DATABASE_URL, REDIS_URL)


def seed(username: str) -> tuple[Any, Any]:
    """A benchmark user and its session (created once)."""
    from accounts.models import User
    from videos.models import Project, TestSession, Video

    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    project, _ = Project.objects.get_or_create(owner=user, name="dashboard")
    video = Video.objects.filter(project=project).first() or Video.objects.create(
        project=project, original_name="bench.mp4", file="videos/bench.mp4", size_bytes=1,
        content_type="video/mp4", sha256="0" * 64, status="completed", width=1920, height=1080, frame_count=10_000,
    )  # fmt: skip
    session = TestSession.objects.filter(video=video, model_name="bench").first() or TestSession.objects.create(
        video=video, model_name="bench"
    )
    return user, session


def copy_block(session: Any, rows: int) -> bytes:
    lines = (
        f"{session.pk}\t{session.video_id}\t{i % 10_000}\t{i % 10_000 * 40}\tcar\t0.5\t10\t10\t50\t50\n"
        for i in range(rows)
    )
    return "".join(lines).encode()


def top_up(session: Any, target: int) -> dict[str, Any]:
    """COPY detections into `session` until its project's counter says `target` (the counters are exact)."""
    from django.db import connection, transaction

    from analytics.models import ProjectStats

    have = ProjectStats.objects.get(project_id=session.video.project_id).detection_count
    block = copy_block(session, BLOCK_ROWS)
    started, added = time.perf_counter(), 0
    while have + added < target:
        todo = min(STATEMENT_ROWS, target - have - added)
        sql = f"COPY videos_detectionevent ({COPY_COLUMNS}) FROM STDIN"
        with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for offset in range(0, todo, BLOCK_ROWS):
                n = min(BLOCK_ROWS, todo - offset)
                copy.write(block if n == BLOCK_ROWS else copy_block(session, n))
        added += todo
        print(f"  {have + added:>12,} detections", flush=True)
    if added:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE videos_detectionevent")
    return {"added": added, "seconds": round(time.perf_counter() - started, 1)}


def trigger_cost(session: Any, repeats: int) -> dict[str, Any]:
    """Ingest 100 000 rows through the service's COPY path with and without the counter trigger."""
    from django.db import connection, transaction

    from videos import detections
    from videos.models import DetectionEvent, TestSession

    scratch = TestSession.objects.create(video_id=session.video_id, model_name="scratch")
    n = 100_000
    frames = np.arange(n, dtype=np.int64) % 10_000
    boxes = {name: np.full(n, value) for name, value in (("x", 10.0), ("y", 10.0), ("w", 50.0), ("h", 50.0))}
    rows = detections.Detections(frames, frames * 40, ["car"] * n, np.full(n, 0.5), **boxes)
    times: dict[str, list[float]] = {"with_trigger": [], "without_trigger": []}
    try:
        for _ in range(repeats):
            for label, enabled in (("with_trigger", True), ("without_trigger", False)):
                # ALTER TABLE inside the transaction: nobody else ever sees the triggers disabled, and rows
                # inserted uncounted are deleted uncounted, so the counters stay exact.
                with transaction.atomic(), connection.cursor() as cursor:
                    # Deferred FK checks would block ALTER TABLE later on; both variants check at once.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    if not enabled:
                        cursor.execute("ALTER TABLE videos_detectionevent DISABLE TRIGGER analytics_insert")
                        cursor.execute("ALTER TABLE videos_detectionevent DISABLE TRIGGER analytics_delete")
                    started = time.perf_counter()
                    detections.insert_rows(session_id=scratch.pk, video_id=scratch.video_id, rows=rows)
                    times[label].append(time.perf_counter() - started)
                    DetectionEvent.objects.filter(test_session=scratch).delete()
                    if not enabled:
                        cursor.execute("ALTER TABLE videos_detectionevent ENABLE TRIGGER analytics_insert")
                        cursor.execute("ALTER TABLE videos_detectionevent ENABLE TRIGGER analytics_delete")
    finally:
        scratch.delete()
    with_s, without_s = statistics.median(times["with_trigger"]), statistics.median(times["without_trigger"])
    return {
        "rows": len(rows),
        "with_trigger_ms": round(with_s * 1000, 1),
        "without_trigger_ms": round(without_s * 1000, 1),
        "overhead_ms": round((with_s - without_s) * 1000, 1),
        "overhead_pct": round((with_s / without_s - 1) * 100, 1),
        "rows_per_s_with": round(len(rows) / with_s),
        "rows_per_s_without": round(len(rows) / without_s),
    }


def in_process(user: Any, n: int) -> dict[str, Any]:
    from analytics import selectors

    async def run() -> dict[str, Any]:
        out = {}
        for name, call in (
            ("uncached", lambda: selectors.dashboard_stats(user=user)),
            ("cached", lambda: selectors.dashboard_stats_cached(user=user)),
        ):
            for _ in range(20):  # warm-up: pool connection, Redis connection, script loaded
                await call()
            samples = []
            for _ in range(n):
                started = time.perf_counter()
                await call()
                samples.append((time.perf_counter() - started) * 1000)
            samples.sort()
            out[name] = {"median_ms": round(statistics.median(samples), 3), "p95_ms": round(samples[int(n * 0.95)], 3)}
        return out

    return asyncio.run(run())


class Uvicorn(ServerProcess):
    def __init__(self, port: int) -> None:
        cmd = [str(BIN / "uvicorn"), "config.asgi:application", "--port", str(port), "--workers", "1"]
        cmd += ["--no-access-log", "--log-level", "warning"]
        super().__init__(cmd, port, {**os.environ, **bench_env()}, WORK_DIR / "server-dashboard.log", "uvicorn")


def wrk(url: str, token: str, duration: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{duration}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": round(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))),  # type: ignore[union-attr]
        "p50_ms": ms("50%"),
        "p90_ms": ms("90%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,10000000", help="comma-separated detection counts to measure at")
    parser.add_argument("--port", type=int, default=8047)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--samples", type=int, default=500, help="in-process calls per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="trigger-cost repetitions")
    args = parser.parse_args()
    targets = sorted(int(r) for r in args.rows.split(","))

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.update(bench_env())
    prepare_database(DB_NAME, bench_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from accounts.services import tokens_issue

    user, session = seed(f"{USERNAME}-{targets[0]}")
    results: dict[str, Any] = {
        "benchmark": "dashboard stats: uncached (?fresh=1) and cached (PostgreSQL counters, Redis, uvicorn)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "noise": "2 shared cores; other work was running",
    }
    print("== trigger cost on ingest (100 000 rows, COPY path)", flush=True)
    results["trigger_cost"] = trigger_cost(session, args.repeats)
    print(json.dumps(results["trigger_cost"]), flush=True)
    results["sizes"] = []
    server = Uvicorn(args.port)
    try:
        server.wait_ready()
        base = f"http://127.0.0.1:{args.port}/api/v1/dashboard/stats"
        for target in targets:
            print(f"== {target:,} detections", flush=True)
            user, session = seed(f"{USERNAME}-{target}")
            token = tokens_issue(user)["access"]
            seeded = top_up(session, target)
            entry = {"detections": target, "seeding": seeded, "in_process": in_process(user, args.samples)}
            entry["http"] = {
                "uncached": wrk(f"{base}?fresh=1", token, args.duration),
                "cached": wrk(base, token, args.duration),
            }
            print(json.dumps(entry), flush=True)
            results["sizes"].append(entry)
    finally:
        server.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(
        f"\n{'detections':>12} {'uncached med ms':>16} {'cached med ms':>14} {'fresh req/s':>12} {'cached req/s':>13}"
    )
    for e in results["sizes"]:
        ip, http = e["in_process"], e["http"]
        print(
            f"{e['detections']:>12,} {ip['uncached']['median_ms']:>16} {ip['cached']['median_ms']:>14} "
            f"{http['uncached']['requests_per_s']:>12} {http['cached']['requests_per_s']:>13}"
        )
    worst = max(e["in_process"]["uncached"]["median_ms"] for e in results["sizes"])
    print(f"goal uncached <= {GOAL_UNCACHED_MS} ms median: {'met' if worst <= GOAL_UNCACHED_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
