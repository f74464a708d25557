"""HTTP load benchmark of the hot reads on the production server, against seed_demo data (wrk, else asyncio)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, ServerProcess, prepare_database

RESULTS = ROOT / "bench" / "results" / "http.json"
PASSWORD = "bench-Passw0rd!"  # noqa: S105 - seed_demo's default for its bench users
GRANIAN_PATH = os.environ.get("GRANIAN_PATH", "")  # a --target dir holding granian (not in requirements)

# wrk: one Authorization header per request (mixed: a weighted path list), summary as JSON.
WRK_LUA = """
local paths = {%(paths)s}
local i = 0
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Accept-Encoding"] = "gzip"
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p95_us": %%d, "p99_us": %%d}\\n', summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def server_cmd(server: str, port: int, workers: int) -> list[str]:
    app = "config.asgi:application"
    if server == "uvicorn":
        return [
            str(BIN / "uvicorn"),
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if server == "granian":
        return [
            str(BIN / "python"),
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            app,
        ]
    return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), app]


def xact_commits(db: str) -> int:
    """Committed transactions in the bench database: each autocommit statement is one (pg_stat_database)."""
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "root",
            "-d",
            db,
            "-tAc",
            f"select xact_commit from pg_stat_database where datname = '{db}'",  # noqa: S608 - our --db
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def run_wrk(base: str, paths: list[str], token: str, seconds: float, connections: int, threads: int) -> dict:
    script = WRK_LUA % {"paths": ", ".join(json.dumps(p) for p in paths), "token": token}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                fh.name,
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(fh.name)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["socket_errors"],
    }


async def _client_loop(host: str, port: int, paths: list[str], token: str, stop: float, out: list[tuple[float, int]]):
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                "Accept-Encoding: gzip\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            out.append((time.perf_counter() - started, status))
    finally:
        writer.close()


def run_python_client(base: str, paths: list[str], token: str, seconds: float, connections: int) -> dict:
    """Fallback load generator (slower than wrk: it measures less of the server's ceiling)."""
    host, port = base.split("//")[1].split(":")
    samples: list[tuple[float, int]] = []

    async def main() -> float:
        started = time.perf_counter()
        stop = started + seconds
        await asyncio.gather(*(_client_loop(host, int(port), paths, token, stop, samples) for _ in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies = sorted(s[0] for s in samples)
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(samples),
        "rps": len(samples) / elapsed,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "non_2xx": sum(1 for _, status in samples if not 200 <= status < 300),
        "socket_errors": 0,
    }


def run_open_loop(base: str, paths: list[str], token: str, seconds: float, connections: int, rate: float) -> dict:
    """Open-loop load: request i is due at start + i/rate whatever the server's pace, and its latency counts from
    that due time (no coordinated omission), so queueing shows in the percentiles as users would feel it."""
    host, port = base.split("//")[1].split(":")
    due: asyncio.Queue[float] = asyncio.Queue()
    samples: list[tuple[float, int]] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        i = 0
        try:
            while (when := await due.get()) >= 0:
                await asyncio.sleep(max(0.0, when - time.perf_counter()))
                path = paths[i % len(paths)]
                i += 1
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                    "Accept-Encoding: gzip\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                samples.append((time.perf_counter() - when, int(head.split(b" ", 2)[1])))
        finally:
            writer.close()

    async def main() -> float:
        workers = [asyncio.create_task(connection()) for _ in range(connections)]
        started = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due.put_nowait(started + i / rate)
        for _ in workers:
            due.put_nowait(-1.0)
        await asyncio.gather(*workers)
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies = sorted(s[0] for s in samples)
    q = statistics.quantiles(latencies, n=100)
    return {
        "offered_rps": rate,
        "achieved_rps": len(samples) / elapsed,
        "requests": len(samples),
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "non_2xx": sum(1 for _, status in samples if not 200 <= status < 300),
    }


def discover(base: str) -> dict[str, Any]:
    """Tokens and ids of the seeded data, through the API."""
    with httpx.Client(base_url=base, timeout=30) as client:
        tokens = {
            name: client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD}).json()["access"]
            for name in ("bench", "bench-admin")
        }
        auth = {"Authorization": f"Bearer {tokens['bench']}"}
        project = client.get("/api/v1/projects", headers=auth).json()["results"][0]["id"]
        videos = client.get(f"/api/v1/projects/{project}/videos", headers=auth).json()["results"]
        with_gt = next(v["id"] for v in videos if v["ground_truth_generated"])
        probes = {
            path: client.get(path, headers=auth).status_code
            for path in ("/api/v1/dashboard/stats", "/api/v1/videos?search=clip_0")
        }
    return {"tokens": tokens, "project": project, "video": videos[0]["id"], "gt_video": with_gt, "probes": probes}


def scenarios(d: dict[str, Any]) -> dict[str, tuple[str, list[str], str | None]]:
    """name → (token, paths, reason to skip)."""
    owner, staff = d["tokens"]["bench"], d["tokens"]["bench-admin"]
    dash_missing = None if d["probes"]["/api/v1/dashboard/stats"] == 200 else "GET /dashboard/stats not in this branch"
    search_missing = (
        None if d["probes"]["/api/v1/videos?search=clip_0"] == 200 else "GET /videos?search= not in this branch"
    )
    hot = [f"/api/v1/projects/{d['project']}/videos", f"/api/v1/videos/{d['video']}"]
    return {
        "videos_list": (owner, [hot[0]], None),
        "video_detail": (owner, [hot[1]], None),
        "ground_truth_1000": (owner, [f"/api/v1/videos/{d['gt_video']}/ground-truth"], None),
        "dashboard_cached": (owner, ["/api/v1/dashboard/stats"], dash_missing),
        "dashboard_uncached": (owner, ["/api/v1/dashboard/stats?fresh=1"], dash_missing),
        "users_filtered": (staff, ["/api/v1/users?plan=pro&is_active=true&ordering=-date_joined"], None),
        "search": (owner, ["/api/v1/videos?search=clip_01"], search_missing),
        # Owner-side mix: lists and details dominate; a ground-truth page every tenth request.
        "mixed": (
            owner,
            [
                hot[0],
                hot[1],
                hot[1],
                hot[0],
                hot[1],
                hot[1],
                hot[0],
                hot[1],
                hot[1],
                f"/api/v1/videos/{d['gt_video']}/ground-truth",
            ],
            None,
        ),
    }


def measure(base: str, db: str, token: str, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    load = (
        (lambda s: run_wrk(base, paths, token, s, args.connections, args.threads))
        if shutil.which("wrk") and not args.python_client
        else (lambda s: run_python_client(base, paths, token, s, args.connections))
    )
    load(args.warmup)
    time.sleep(1.2)  # let backends flush their statistics
    before = xact_commits(db)
    result = load(args.duration)
    time.sleep(1.2)
    result["sql_per_request"] = round((xact_commits(db) - before) / max(result["requests"], 1), 3)
    return result


def serve(server: str, args: argparse.Namespace, env: dict[str, str]) -> ServerProcess:
    run_env = dict(env)
    if server == "granian":
        run_env["PYTHONPATH"] = GRANIAN_PATH
    proc = ServerProcess(
        server_cmd(server, args.port, args.workers),
        args.port,
        run_env,
        ROOT / "bench" / "results" / f"http-{server}.log",
        server,
    )
    proc.wait_ready()
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--server", choices=("uvicorn", "granian", "daphne"), default="uvicorn")
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument("--compare-servers", metavar="SCENARIO", help="run SCENARIO on uvicorn, granian and daphne")
    parser.add_argument("--python-client", action="store_true", help="use the asyncio client even if wrk exists")
    parser.add_argument("--fast-reads", type=int, default=1, help="0 = ORM path everywhere (for comparison)")
    parser.add_argument("--open-loop-rate", type=float, default=1000.0, help="offered req/s for the open-loop run")
    parser.add_argument("--open-loop", nargs="*", default=["dashboard_cached"], help="scenarios run open-loop too")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--db", default="fw_bench_http")
    args = parser.parse_args()

    db = args.db
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://root@127.0.0.1:5432/{db}",
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "RATE_LIMIT_ENABLED": "0",
        "JWT_ACCESS_MINUTES": "240",
        "DEBUG": "0",
        "EMBEDDED_WORKER": "0",
        "FAST_READS": str(args.fast_reads),
        "LOG_LEVEL": "WARNING",
    }
    prepare_database(db, env)
    seeded = subprocess.run(
        [str(BIN / "python"), "manage.py", "seed_demo", "--scale", str(args.scale)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    print(seeded.stdout.strip() or "Reusing the seeded data already in the database.")
    # No hot statement may read a large table sequentially at this scale (real statistics, no overrides).
    explained = subprocess.run(
        [str(BIN / "python"), "bench/explain_hot.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    *plans, last = explained.stdout.strip().splitlines() or ["{}"]
    print("\n".join(plans) or explained.stderr[-2000:])
    base = f"http://127.0.0.1:{args.port}"
    loadavg = os.getloadavg()[0]
    report: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.compare_servers:
        rows = {}
        for server in ("uvicorn", "granian", "daphne"):
            if server == "granian" and not GRANIAN_PATH:
                rows[server] = {"skipped": "set GRANIAN_PATH to a pip --target dir holding granian"}
                continue
            proc = serve(server, args, env)
            try:
                d = discover(base)
                token, paths, _ = scenarios(d)[args.compare_servers]
                rows[server] = measure(base, db, token, paths, args)
            finally:
                proc.stop()
            print(
                f"{server:8} {args.compare_servers}: {rows[server]['rps']:8.0f} req/s  "
                f"p99 {rows[server]['p99_ms']:.1f} ms"
            )
        report["servers"] = {
            "scenario": args.compare_servers,
            "workers": args.workers,
            "results": rows,
            "loadavg_1m_at_start": loadavg,
        }
    else:
        proc = serve(args.server, args, env)
        results: dict[str, Any] = {}
        try:
            d = discover(base)
            for name, (token, paths, skip) in scenarios(d).items():
                if args.only and name not in args.only:
                    continue
                if skip:
                    results[name] = {"skipped": skip}
                    print(f"{name:20} skipped: {skip}")
                    continue
                r = results[name] = measure(base, db, token, paths, args)
                print(
                    f"{name:20} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f}  p95 {r['p95_ms']:6.1f}  "
                    f"p99 {r['p99_ms']:6.1f} ms"
                    f"  non-2xx {r['non_2xx']}  SQL/req {r['sql_per_request']}"
                )
            for name in args.open_loop or []:
                token, paths, skip = scenarios(d)[name]
                if skip or (args.only and name not in args.only):
                    continue
                r = results[f"{name}_open_loop"] = run_open_loop(
                    base, paths, token, args.duration, args.connections, args.open_loop_rate
                )
                print(
                    f"{name + ' open loop':20} offered {r['offered_rps']:.0f} req/s, achieved {r['achieved_rps']:.0f}"
                    f"  p50 {r['p50_ms']:6.1f}  p95 {r['p95_ms']:6.1f}  p99 {r['p99_ms']:6.1f} ms"
                    f"  non-2xx {r['non_2xx']}"
                )
        finally:
            proc.stop()
        key = f"{args.server}-w{args.workers}" + ("" if args.fast_reads else "-orm")
        report[key] = {
            "scale": args.scale,
            "connections": args.connections,
            "duration_s": args.duration,
            "client": "wrk" if shutil.which("wrk") and not args.python_client else "python",
            "loadavg_1m_at_start": loadavg,
            "explain_seq_scans": json.loads(last).get("explain"),
            "scenarios": results,
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
