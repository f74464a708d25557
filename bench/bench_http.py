"""HTTP load benchmark of the hot reads on the production server, against seed_demo data (wrk, else asyncio).

`--server fastapi-reference` serves the same reads from bench/reference/fastapi_app.py (the seed plans' FastAPI +
SQLAlchemy async stack) on the same data; `--side-by-side` runs Framewise (uvicorn) and then the reference with the
same arguments and prints one table."""

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
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, ServerProcess, prepare_database

RESULTS = ROOT / "bench" / "results" / "http.json"
PASSWORD = "bench-Passw0rd!"  # noqa: S105 - seed_demo's default for its bench users
GRANIAN_PATH = os.environ.get("GRANIAN_PATH", "")  # a --target dir holding granian (not in requirements)
REFERENCE = "fastapi-reference"
# A pip --target dir holding the reference app's packages (bench/reference/install.sh fills it when missing).
REFERENCE_PATH = ROOT / os.environ.get("REFERENCE_PATH", "var/reference")
REFERENCE_REDIS_URL = "redis://127.0.0.1:6379/9"
SERVERS = ("uvicorn", "uvicorn-shared", "granian", "daphne", REFERENCE)

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
    flags = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log"]
    flags += ["--log-level", "warning"]
    if server == "uvicorn":  # config.serve: uvicorn processes with a SO_REUSEPORT socket each (production)
        return [str(BIN / "python"), "-m", "config.serve", *flags]
    if server == "uvicorn-shared":  # stock `uvicorn --workers`: one socket shared by the workers
        return [str(BIN / "uvicorn"), app, *flags]
    if server == REFERENCE:
        # The reference's uvicorn is the one in REFERENCE_PATH (first on its PYTHONPATH), run by the venv's Python.
        return [str(BIN / "python"), "-m", "uvicorn", "bench.reference.fastapi_app:app", *flags]
    if server == "granian":
        return [str(BIN / "python"), "-m", "granian", "--interface", "asgi", *flags, app]
    return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), app]


def psql_rows(db: str, sql: str) -> list[list[str]]:
    """Rows of one statement on the bench database, as text fields (psql -tA, '|'-separated)."""
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "root", "-d", db, "-tAc", sql], capture_output=True, text=True, check=True
    )
    return [line.split("|") for line in out.stdout.strip().splitlines()]


def xact_counts(db: str) -> tuple[int, int]:
    """Committed and rolled-back transactions in the bench database (pg_stat_database). Each autocommit statement
    is one commit; a BEGIN … ROLLBACK block is one rollback however many statements it holds."""
    [[commits, rollbacks]] = psql_rows(
        db,
        f"select xact_commit, xact_rollback from pg_stat_database where datname = '{db}'",  # noqa: S608 - our --db
    )
    return int(commits), int(rollbacks)


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


def run_client(main: Any) -> Any:
    """Run a load generator's coroutine on uvloop when installed (uvicorn[standard] brings it): the client shares
    the 2 cores with the server, and asyncio's own loop costs it about twice the CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


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

    elapsed = run_client(main())
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

    elapsed = run_client(main())
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
    return {
        "tokens": tokens,
        "project": project,
        "video": videos[0]["id"],
        "gt_video": with_gt,
        "probes": probes,
        "missing": "not in this branch",
    }


def mint_access_token(user_id: int, is_staff: bool, env: dict[str, str]) -> str:
    """An access token as Framewise's SimpleJWT issues it (accounts.services.tokens_issue): HS256 under SECRET_KEY,
    user_id as a string, is_staff copied from the refresh token, JWT_ACCESS_MINUTES of life."""
    import jwt  # PyJWT: SimpleJWT's own dependency

    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + 60 * int(env.get("JWT_ACCESS_MINUTES", "15")),
        "iat": now,
        "jti": uuid.uuid4().hex,
        "user_id": str(user_id),
        "is_staff": is_staff,
    }
    return jwt.encode(claims, env.get("SECRET_KEY", "django-insecure-framewise-embedded-only"), algorithm="HS256")


def discover_reference(base: str, db: str, env: dict[str, str]) -> dict[str, Any]:
    """`discover` for the reference app, which has no login: the bench users' ids and the same project and videos
    that `discover` picks (the bench user's newest project; its newest video; the first with ground truth on the
    first page), read with psql; tokens minted here as SimpleJWT would."""
    users = dict(psql_rows(db, "select username, id from accounts_user where username in ('bench', 'bench-admin')"))
    owner = int(users["bench"])
    [[project]] = psql_rows(
        db,
        f"select id from videos_project where owner_id = {owner} order by created_at desc, id desc limit 1",  # noqa: S608
    )
    videos = psql_rows(
        db,
        f"select id, ground_truth_generated from videos_video where project_id = {int(project)} "  # noqa: S608
        "order by created_at desc, id desc limit 50",
    )
    tokens = {
        "bench": mint_access_token(owner, False, env),
        "bench-admin": mint_access_token(int(users["bench-admin"]), True, env),
    }
    auth = {"Authorization": f"Bearer {tokens['bench']}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        probes = {
            path: client.get(path, headers=auth).status_code
            for path in ("/api/v1/dashboard/stats", "/api/v1/videos?search=clip_0")
        }
    return {
        "tokens": tokens,
        "project": int(project),
        "video": int(videos[0][0]),
        "gt_video": next(int(v) for v, gt in videos if gt == "t"),
        "probes": probes,
        "missing": "not in the reference app",
    }


def response_shape(base: str, token: str, path: str) -> list[str]:
    """The field names of one answer (a page's: its own and its first result's), to compare servers' shapes."""
    body = httpx.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    fields = sorted(body) if isinstance(body, dict) else []
    results = body.get("results") if isinstance(body, dict) else None
    if isinstance(results, list) and results and isinstance(results[0], dict):
        fields += [f"results[].{k}" for k in sorted(results[0])]
    return fields


def scenarios(d: dict[str, Any]) -> dict[str, tuple[str, list[str], str | None]]:
    """name → (token, paths, reason to skip)."""
    owner, staff = d["tokens"]["bench"], d["tokens"]["bench-admin"]
    dash_missing = None if d["probes"]["/api/v1/dashboard/stats"] == 200 else f"GET /dashboard/stats {d['missing']}"
    search_missing = (
        None if d["probes"]["/api/v1/videos?search=clip_0"] == 200 else f"GET /videos?search= {d['missing']}"
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


def settle(db: str, limit_s: float = 180.0) -> None:
    """Until no statement runs on the bench database (bounded): a server keeps answering requests that wrk gave up
    on (a warm-up's, or timed-out ones), and that backlog must not load the next measurement."""
    started = time.monotonic()
    active = ["1"]
    while time.monotonic() - started < limit_s:
        [active] = psql_rows(
            db,
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and state = 'active' and pid <> pg_backend_pid()",
        )
        if active == ["0"]:
            break
        time.sleep(0.2)
    waited = time.monotonic() - started
    if waited > 1:
        print(f"  (waited {waited:.0f} s for the server's backlog to drain{'' if active == ['0'] else ', gave up'})")


def measure(base: str, db: str, token: str, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    load = (
        (lambda s: run_wrk(base, paths, token, s, args.connections, args.threads))
        if shutil.which("wrk") and not args.python_client
        else (lambda s: run_python_client(base, paths, token, s, args.connections))
    )
    load(args.warmup)
    settle(db)
    time.sleep(1.2)  # let backends flush their statistics
    before = xact_counts(db)
    result = load(args.duration)
    time.sleep(1.2)
    after = xact_counts(db)
    requests = result["requests"]
    # Autocommit statements and BEGIN … ROLLBACK blocks per answered request (None: nothing was answered).
    result["sql_per_request"] = round((after[0] - before[0]) / requests, 3) if requests else None
    result["rollbacks_per_request"] = round((after[1] - before[1]) / requests, 3) if requests else None
    return result


def ensure_reference() -> None:
    """Install the reference app's packages into REFERENCE_PATH (bench/reference/install.sh) unless there."""
    if (REFERENCE_PATH / "fastapi").is_dir() and (REFERENCE_PATH / "sqlalchemy").is_dir():
        return
    print(f"Installing the reference app's packages into {REFERENCE_PATH} ...")
    subprocess.run(
        ["sh", str(ROOT / "bench" / "reference" / "install.sh"), str(REFERENCE_PATH)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": str(BIN / "python")},
        check=True,
    )


def serve(server: str, args: argparse.Namespace, env: dict[str, str]) -> ServerProcess:
    run_env = dict(env)
    if server == "granian":
        run_env["PYTHONPATH"] = GRANIAN_PATH
    if server == REFERENCE:
        ensure_reference()
        run_env["PYTHONPATH"] = f"{REFERENCE_PATH}{os.pathsep}{ROOT}"
        run_env["REDIS_URL"] = REFERENCE_REDIS_URL
    RESULTS.parent.mkdir(parents=True, exist_ok=True)  # the server's log goes there too
    proc = ServerProcess(
        server_cmd(server, args.port, args.workers),
        args.port,
        run_env,
        ROOT / "bench" / "results" / f"http-{server}.log",
        server,
    )
    proc.wait_ready()
    return proc


# Requests made just before a scenario: the reference refreshes its 30 s dashboard entry on ?fresh=1, so the cached
# scenario (warm-up + duration + 2.4 s of pauses, under 30 s by default) measures hits, not an expiry and its
# stampede; on Framewise the fresh read leaves the cache as it is.
PRIME = {"dashboard_cached": "/api/v1/dashboard/stats?fresh=1"}


def prime(base: str, token: str, name: str) -> None:
    if name in PRIME:
        httpx.get(base + PRIME[name], headers={"Authorization": f"Bearer {token}"}, timeout=60).raise_for_status()


def run_server(server: str, args: argparse.Namespace, env: dict[str, str], loadavg: float) -> dict[str, Any]:
    """Every selected scenario (then the open-loop ones) on one server; its report entry, with `shapes`: each
    scenario's response field names (not stored, for --side-by-side's check)."""
    base = f"http://127.0.0.1:{args.port}"
    proc = serve(server, args, env)
    results: dict[str, Any] = {}
    shapes: dict[str, list[str]] = {}
    try:
        d = discover_reference(base, args.db, env) if server == REFERENCE else discover(base)
        print(f"{server}: project {d['project']}, video {d['video']}, ground-truth video {d['gt_video']}")
        for name, (token, paths, skip) in scenarios(d).items():
            if args.only and name not in args.only:
                continue
            if skip:
                results[name] = {"skipped": skip}
                print(f"{name:20} skipped: {skip}")
                continue
            settle(args.db)
            prime(base, token, name)
            shapes[name] = response_shape(base, token, paths[0])
            r = results[name] = measure(base, args.db, token, paths, args)
            print(
                f"{name:20} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f}  p95 {r['p95_ms']:6.1f}  "
                f"p99 {r['p99_ms']:6.1f} ms"
                f"  non-2xx {r['non_2xx']}  socket errors/timeouts {r['socket_errors']}"
                f"  SQL/req {r['sql_per_request']}  rollbacks/req {r['rollbacks_per_request']}"
            )
        for name, rate in open_loop_runs(args.open_loop or []):
            token, paths, skip = scenarios(d)[name]
            if skip or (args.only and name not in args.only):
                continue
            settle(args.db)
            prime(base, token, name)
            r = results[f"{name}_open_loop"] = run_open_loop(base, paths, token, args.duration, args.connections, rate)
            print(
                f"{name + ' open loop':20} offered {r['offered_rps']:.0f} req/s, achieved {r['achieved_rps']:.0f}"
                f"  p50 {r['p50_ms']:6.1f}  p95 {r['p95_ms']:6.1f}  p99 {r['p99_ms']:6.1f} ms"
                f"  non-2xx {r['non_2xx']}"
            )
    finally:
        proc.stop()
    return {
        "scale": args.scale,
        "connections": args.connections,
        "duration_s": args.duration,
        "client": "wrk" if shutil.which("wrk") and not args.python_client else "python",
        "loadavg_1m_at_start": loadavg,
        "scenarios": results,
        "shapes": shapes,
    }


# The seed plans' floors. A throughput paired with a p95 ("users >= 500 req/s with p95 < 50 ms") is checked open
# loop at that offered rate: closed loop, 64 connections with no think time queue 64 / (req/s) seconds of latency
# whatever the server does (Little's law), so a closed-loop p95 measures the client's concurrency, not the floor.
# Floors without a rate are checked on the closed-loop run at --connections.
FLOORS: tuple[tuple[str, str, str, float], ...] = (
    # (scenario or scenario_open_loop, figure, comparison, bound)
    ("videos_list", "p95_ms", "<", 200),
    ("ground_truth_1000", "p95_ms", "<", 300),
    ("dashboard_uncached", "p95_ms", "<", 100),
    ("dashboard_cached", "rps", ">=", 1000),
    ("dashboard_cached_open_loop", "p95_ms", "<", 10),
    ("users_filtered", "rps", ">=", 500),
    ("users_filtered_open_loop", "p95_ms", "<", 50),
    ("mixed", "rps", ">=", 300),
    ("mixed_open_loop", "p95_ms", "<", 100),
)
# Offered rates for the open-loop runs: the floors' throughputs (the cached dashboard's from issue 8).
OPEN_LOOP_RATES = {"dashboard_cached": 1000.0, "users_filtered": 500.0, "mixed": 300.0}


def open_loop_runs(specs: list[str]) -> list[tuple[str, float]]:
    """`NAME` (its OPEN_LOOP_RATES rate, else 1000) or `NAME:RATE` → (name, offered req/s)."""
    runs = []
    for spec in specs:
        name, _, rate = spec.partition(":")
        runs.append((name, float(rate) if rate else OPEN_LOOP_RATES.get(name, 1000.0)))
    return runs


def floors_table(run: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Each floor with the figure measured for it and a verdict (scenarios not run are left out)."""
    rows, lines = [], [f"{'floor':44} {'measured':>9} {'verdict':>8}"]
    for name, figure, op, bound in FLOORS:
        r = run["scenarios"].get(name)
        if not r or "skipped" in r or not r.get("requests"):
            continue
        value = r["achieved_rps" if figure == "rps" and "achieved_rps" in r else figure]
        met = value < bound if op == "<" else value >= bound
        unit = "req/s" if figure == "rps" else "ms"
        label = f"{name} {figure.removesuffix('_ms')} {op} {bound:g} {unit}"
        rows.append({"scenario": name, "figure": figure, "op": op, "bound": bound, "value": round(value, 1)})
        rows[-1]["met"] = met
        lines.append(f"{label:44} {value:9.1f} {'meets' if met else 'MISSES':>8}")
    return "\n".join(lines), rows


def result_key(server: str, args: argparse.Namespace) -> str:
    if server == REFERENCE:
        return f"{REFERENCE}-w{args.workers}"
    return f"{server}-w{args.workers}" + ("" if args.fast_reads else "-orm")


def side_by_side_table(ours: dict[str, Any], ref: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One line per scenario: Framewise and reference req/s and p99, Framewise/reference throughput ratio."""
    lines = [
        f"{'scenario':28} {'Framewise req/s':>15} {'p99 ms':>8} {'reference req/s':>15} {'p99 ms':>8} {'ratio':>6}",
    ]
    rows: dict[str, Any] = {}
    for name, a in ours["scenarios"].items():
        b = ref["scenarios"].get(name, {"skipped": "not run"})
        if "skipped" in a or "skipped" in b:
            rows[name] = {"skipped": a.get("skipped") or b.get("skipped")}
            lines.append(f"{name:28} skipped: {rows[name]['skipped']}")
            continue
        rps = "achieved_rps" if "achieved_rps" in a else "rps"

        def p99(x: dict[str, Any]) -> float | None:  # no latency without a response
            return round(x["p99_ms"], 1) if x.get("requests") else None

        rows[name] = {
            "framewise_rps": round(a[rps], 1),
            "framewise_p99_ms": p99(a),
            "reference_rps": round(b[rps], 1),
            "reference_p99_ms": p99(b),
            # Open loop both sides are offered the same rate, so achieved req/s only says who kept up: no ratio.
            "ratio": round(a[rps] / b[rps], 2) if b[rps] and rps == "rps" else None,
        }
        r = rows[name]
        cells = [
            f"{v:{width}.{digits}f}" if v is not None else f"{'-':>{width}}"
            for v, width, digits in (
                (r["framewise_rps"], 15, 0),
                (r["framewise_p99_ms"], 8, 1),
                (r["reference_rps"], 15, 0),
                (r["reference_p99_ms"], 8, 1),
                (r["ratio"], 6, 2),
            )
        ]
        lines.append(f"{name:28} {' '.join(cells)}")
    for side, run in (("Framewise", ours), ("reference", ref)):
        for name, r in run["scenarios"].items():
            if r.get("non_2xx") or r.get("socket_errors"):
                lines.append(
                    f"  {side} {name}: {r['requests']} responses, {r['non_2xx']} non-2xx, "
                    f"{r.get('socket_errors', 0)} socket errors/timeouts (wrk gives up after 10 s)"
                )
    for name in ours.get("shapes", {}).keys() & ref.get("shapes", {}).keys():
        missing = sorted(set(ours["shapes"][name]) - set(ref["shapes"][name]))
        extra = sorted(set(ref["shapes"][name]) - set(ours["shapes"][name]))
        if missing or extra:
            lines.append(f"  shape differs in {name}: reference lacks {missing}, adds {extra}")
    lines.append("ratio = Framewise req/s / reference req/s; open loop: achieved req/s at the same offered rate")
    return "\n".join(lines), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--side-by-side", action="store_true", help=f"run uvicorn, then {REFERENCE}; one table")
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument("--compare-servers", metavar="SCENARIO", help="run SCENARIO on uvicorn, granian and daphne")
    parser.add_argument("--python-client", action="store_true", help="use the asyncio client even if wrk exists")
    parser.add_argument("--fast-reads", type=int, default=1, help="0 = ORM path everywhere (for comparison)")
    parser.add_argument(
        "--open-loop",
        nargs="*",
        default=list(OPEN_LOOP_RATES),
        help="scenarios also run open loop, as NAME or NAME:RATE (offered req/s; default: the floor's)",
    )
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
        servers = ["uvicorn", REFERENCE] if args.side_by_side else [args.server]
        runs = {}
        for server in servers:
            print(f"--- {server}, {args.workers} worker(s)")
            runs[server] = run_server(server, args, env, os.getloadavg()[0])
            entry = report[result_key(server, args)] = {k: v for k, v in runs[server].items() if k != "shapes"}
            if server != REFERENCE:  # explain_hot.py checks Framewise's statements
                entry["explain_seq_scans"] = json.loads(last).get("explain")
                table, entry["floors"] = floors_table(runs[server])
                print(f"\nFloors ({server}, {args.workers} worker(s)):\n{table}")
        if args.side_by_side:
            table, rows = side_by_side_table(runs["uvicorn"], runs[REFERENCE])
            print(
                f"\nSide by side, {args.workers} worker(s) each, {args.connections} connections, {args.duration:g} s:"
            )
            print(table)
            report[f"side-by-side-w{args.workers}"] = {
                "framewise": result_key("uvicorn", args),
                "reference": result_key(REFERENCE, args),
                "loadavg_1m_at_start": loadavg,
                "scenarios": rows,
            }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
