"""Benchmark test sessions on PostgreSQL: detection ingest, scoring + write-back, and JSONL streaming memory.

Goals (issue): ingest >= 100 000 detections/s for 100 000 rows in one request, scoring (match + write every
detection's result back) >= 200 000 detections/s, and server RSS growth < 50 MB while streaming 1 000 000
detections as JSON Lines.

Setup: database ``fw_bench_sessions`` (created if missing, migrated), Redis db 6 (env BENCH_SESSIONS_DB and
BENCH_SESSIONS_REDIS override both), uvicorn (one worker) on
127.0.0.1:--port with ``config.asgi:application``. A user is registered over HTTP; its project, a completed
1920x1080 10 000-frame video and ~2 ground-truth boxes per frame are seeded in-process. The detections are
synthetic: 75% jittered copies of ground-truth boxes (several per box, as from a detector before NMS), 25%
stray boxes anywhere in the frame.

* ingest:    POST /api/v1/test-sessions/{id}/detections with the 100 000-row JSON array (5 fresh sessions,
             median, after an untimed 1 000-row warm-up) and once as application/jsonl; 201 {"inserted": 100000}
             checked. The server-side pieces (read = parse + validate, COPY, commit) are also timed in-process on
             the same body.
* scoring:   POST .../complete, then ``videos.processing.score_session_job`` run in this process (the server has
             no worker) on the warm-up session (untimed), then on 5 of the ingested sessions (median), each timed
             whole and split into load / match / write-back / finish by wrapping ``scoring.match``,
             ``scoring.metrics`` and ``processing.write_back_results`` during the call.
* streaming: 1 000 000 detections COPYed into one session; then, on a fresh uvicorn (memory the ingest requests
             left resident would hide growth) after a 1 000-row warm-up stream, GET .../detections?format=jsonl
             streamed and discarded by httpx while uvicorn's VmRSS is sampled every ~10 ms (exact peak from VmHWM,
             reset first); the line count is checked.

Results go to bench/results/sessions.json. The benchmark's rows are deleted at the end (--keep to keep them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from common import BIN, ROOT, CpuMeter, RssSampler, ServerProcess, prepare_database
from common import bench_env as common_bench_env

RESULTS = ROOT / "bench" / "results" / "sessions.json"
WORK_DIR = Path(tempfile.gettempdir()) / "framewise-bench"  # /tmp/framewise-bench
MEDIA_ROOT = WORK_DIR / "media-sessions"
# Overridable so parallel runs (e.g. one per worktree) do not share rows or queues.
DB_NAME = os.environ.get("BENCH_SESSIONS_DB", "fw_bench_sessions")
DATABASE_URL = f"postgres://root@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_SESSIONS_REDIS", "redis://127.0.0.1:6379/6")
PASSWORD = "Bench-Sessions-Horse-42"  # noqa: S105 - throwaway account in the benchmark database
USER_PREFIX = "benchsess"

WIDTH, HEIGHT, N_FRAMES, FPS = 1920, 1080, 10_000, 25
LABELS = ("person", "car", "bicycle", "dog")
ON_TARGET = 0.75
IOU_THRESHOLD = 0.5
REPEATS = 5  # timed runs per figure (median); each phase has an untimed 1 000-row warm-up first
PHASE_LIMIT_S = 180

GOAL_INGEST = 100_000
GOAL_SCORING = 200_000
GOAL_STREAM_GROWTH_MB = 50


def bench_env() -> dict[str, str]:
    # EMBEDDED_WORKER stays off (common): nobody else runs the score jobs.
    return common_bench_env(DATABASE_URL, REDIS_URL, MEDIA_ROOT=str(MEDIA_ROOT))


# --- Bounded phases -------------------------------------------------------------------
class PhaseTimeout(Exception):
    pass


@contextlib.contextmanager
def phase(name: str, limit_s: float = PHASE_LIMIT_S) -> Iterator[None]:
    """Print the phase, and abort it (SIGALRM in the main thread) after `limit_s`."""

    def expire(signum: int, frame: Any) -> None:
        raise PhaseTimeout(f"phase {name!r} took longer than {limit_s} s")

    print(f"\n== {name}", flush=True)
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    started = time.perf_counter()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        print(f"   ({name}: {time.perf_counter() - started:.1f} s)", flush=True)


# --- Test data --------------------------------------------------------------------------
def make_ground_truth(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """1-3 boxes per frame (mean 2), integer pixels inside the frame."""
    counts = rng.integers(1, 4, size=N_FRAMES)
    frame = np.repeat(np.arange(N_FRAMES), counts)
    n = frame.size
    w = rng.integers(24, 320, size=n)
    h = rng.integers(24, 320, size=n)
    x = (rng.random(n) * (WIDTH - w)).astype(np.int64)
    y = (rng.random(n) * (HEIGHT - h)).astype(np.int64)
    label = np.array(LABELS)[rng.integers(0, len(LABELS), size=n)]
    return {"frame": frame, "label": label, "box": np.stack([x, y, w, h], axis=1)}


def make_detections(rng: np.random.Generator, gt: dict[str, np.ndarray], n: int) -> list[dict[str, Any]]:
    """`n` detection objects as a client would post them (JSON types), ordered by frame."""
    target = rng.integers(0, gt["frame"].size, size=n)
    on_target = rng.random(n) < ON_TARGET
    base = gt["box"][target].astype(np.float64)
    xy = base[:, :2] + rng.normal(0, 0.06, size=(n, 2)) * base[:, 2:]
    wh = base[:, 2:] * np.exp(rng.normal(0, 0.08, size=(n, 2)))
    stray_wh = rng.uniform(20, 300, size=(n, 2))
    stray_xy = rng.uniform(0, 1, size=(n, 2)) * ([WIDTH, HEIGHT] - stray_wh)
    stray_frame = rng.integers(0, N_FRAMES, size=n)
    box = np.where(on_target[:, None], np.hstack([xy, wh]), np.hstack([stray_xy, stray_wh]))
    limit = np.array([WIDTH, HEIGHT], dtype=np.float64)
    box[:, 2:] = np.clip(box[:, 2:], 2.0, limit - 2.0).round(1)
    box[:, :2] = np.clip(box[:, :2], 0.0, limit - box[:, 2:] - 0.5).round(1)  # margin: x + w <= width
    frame = np.where(on_target, gt["frame"][target], stray_frame)
    wrong_label = rng.random(n) < 0.03
    random_label = np.array(LABELS)[rng.integers(0, len(LABELS), size=n)]
    label = np.where(on_target & ~wrong_label, gt["label"][target], random_label)
    conf = np.where(on_target, rng.beta(5, 2, n), rng.beta(2, 5, n)).round(4)
    order = np.argsort(frame, kind="stable")
    frame, label, conf, box = frame[order], label[order], conf[order], box[order]
    ts = frame * 1000 // FPS
    return [
        {"frame": f, "timestamp_ms": t, "label": lab, "confidence": c, "x": x, "y": y, "w": w, "h": h}
        for f, t, lab, c, (x, y, w, h) in zip(
            frame.tolist(), ts.tolist(), label.tolist(), conf.tolist(), box.tolist(), strict=True
        )
    ]


# --- RSS sampling ---------------------------------------------------------------------
class Server(ServerProcess):
    """uvicorn config.asgi:application on 127.0.0.1:<port>, one worker; its log goes to the work dir."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        cmd = [
            str(BIN / "uvicorn"),
            "config.asgi:application",
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log"),
        ]
        super().__init__(cmd, port, env, WORK_DIR / "server-sessions-uvicorn.log", "uvicorn")


def register(client: Any) -> str:
    """Register a fresh user and set its access token on the client; its email."""
    name = f"{USER_PREFIX}{int(time.time() * 1000)}"
    email = f"{name}@example.com"
    r = client.post("/api/v1/auth/register", json={"email": email, "username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['access']}"
    return email


def purge_bench_rows() -> None:
    """Delete every benchmark user and what hangs off it (detections first, in one statement)."""
    from django.db import connection

    from accounts.models import User
    from videos.models import DetectionEvent, DetectionResult, TestSession

    users = User.objects.filter(username__startswith=USER_PREFIX)
    session_ids = list(TestSession.objects.filter(video__project__owner__in=users).values_list("pk", flat=True))
    if session_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {DetectionEvent._meta.db_table} WHERE test_session_id = ANY(%s)",  # noqa: S608
                [session_ids],
            )
    users.delete()
    # The results too: with autovacuum off (as on the bench host) each run left its deleted results behind,
    # and the next runs' write-backs slowed down with that bloat.
    with connection.cursor() as cursor:
        for model in (DetectionEvent, DetectionResult):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def purge_bench_queue() -> None:
    """Drop the score-job messages /complete enqueued (no worker consumes the bench Redis db)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("fw-dramatiq*"))
    if keys:
        client.delete(*keys)


def copy_rows(model: Any, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY `rows` into the model's table in the caller's transaction (PostgreSQL only)."""
    from django.db import connection

    db_columns = ", ".join(model._meta.get_field(c).column for c in columns)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {model._meta.db_table} ({db_columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def seed_video(email: str, gt: dict[str, np.ndarray]) -> Any:
    """The user's project, a completed video and its ground truth (COPY via replace_ground_truth)."""
    from django.db import transaction

    from accounts.models import User
    from videos.models import GroundTruthBox, Project, Video

    user = User.objects.get(email=email)
    project = Project.objects.create(owner=user, name="sessions bench")
    video = Video.objects.create(
        project=project,
        uploaded_by=user,
        original_name="bench.mp4",
        file="videos/bench-sessions.mp4",
        size_bytes=1,
        content_type="video/mp4",
        sha256="0" * 64,
        status=Video.Status.COMPLETED,
        stage="done",
        progress=100,
        width=WIDTH,
        height=HEIGHT,
        frame_count=N_FRAMES,
        fps=float(FPS),
        duration_s=N_FRAMES / FPS,
        codec="h264",
        ground_truth_generated=True,
    )
    gt_rows = (
        (video.pk, f, f * 1000 // FPS, lab, x, y, w, h)
        for f, lab, (x, y, w, h) in zip(gt["frame"].tolist(), gt["label"].tolist(), gt["box"].tolist(), strict=True)
    )
    with transaction.atomic():
        copy_rows(GroundTruthBox, ("video_id", "frame", "timestamp_ms", "label", "x", "y", "w", "h"), gt_rows)
    return video


def create_session(client: Any, video_id: int, name: str) -> int:
    r = client.post(f"/api/v1/videos/{video_id}/test-sessions", json={"model_name": name, "iou_threshold": 0.5})
    assert r.status_code == 201, r.text
    return r.json()["id"]


# --- Ingest ----------------------------------------------------------------------------
def post_detections(client: Any, session_id: int, body: bytes, content_type: str) -> tuple[float, Any]:
    started = time.perf_counter()
    r = client.post(
        f"/api/v1/test-sessions/{session_id}/detections", content=body, headers={"Content-Type": content_type}
    )
    return time.perf_counter() - started, r


def bench_ingest(client: Any, server: Server, video: Any, bodies: dict[str, bytes], n: int) -> dict[str, Any]:
    warm = create_session(client, video.pk, "warm-up")
    seconds, r = post_detections(client, warm, bodies["json_1k"], "application/json")
    assert r.status_code == 201, r.text

    runs, sessions = [], []
    for i, (kind, content_type) in enumerate(
        [("json", "application/json")] * REPEATS + [("jsonl", "application/jsonl")]
    ):
        session_id = create_session(client, video.pk, f"ingest-{kind}-{i}")
        time.sleep(0.2)
        with RssSampler(server.proc.pid) as rss, CpuMeter([server.proc.pid], DB_NAME) as cpu:
            seconds, r = post_detections(client, session_id, bodies[kind], content_type)
        assert r.status_code == 201, f"{r.status_code} {r.text[:500]}"
        assert r.json() == {"inserted": n}, r.text
        run = {
            "format": kind,
            "session_id": session_id,
            "body_mb": round(len(bodies[kind]) / 2**20, 2),
            "seconds": round(seconds, 4),
            "rows_per_s": round(n / seconds),
            "server_peak_rss_growth_mb": rss.summary()["peak_growth_mb"],
            "cpu_s_server": round(cpu.process_s, 2),
            "cpu_s_postgres": round(cpu.postgres_s, 2),
        }
        runs.append(run)
        sessions.append(session_id)
        print(
            f"   {kind:<5} #{i + 1}  {run['seconds']:.3f} s  {run['rows_per_s']:>9,} rows/s  "
            f"({run['body_mb']} MB body, server peak RSS +{run['server_peak_rss_growth_mb']} MB; CPU s: "
            f"uvicorn {run['cpu_s_server']:.2f}, PostgreSQL {run['cpu_s_postgres']:.2f})",
            flush=True,
        )
    json_runs = [r for r in runs if r["format"] == "json"]
    median_s = statistics.median(r["seconds"] for r in json_runs)
    return {
        "rows": n,
        "median_s_json": round(median_s, 4),
        "rows_per_s_json": round(n / median_s),
        "rows_per_s_jsonl": next(r["rows_per_s"] for r in runs if r["format"] == "jsonl"),
        "runs": runs,
        "sessions": sessions,
        "warm_session": warm,
        "server_pieces_in_process": ingest_pieces(video, bodies["json"], n),
    }


def ingest_pieces(video: Any, body: bytes, n: int) -> dict[str, float]:
    """What services.detections_ingest does, piece by piece, in this process on a fresh session (committed).

    The commit (WAL flush) is timed on its own; neither key has a database constraint to check there.
    """
    from django.db import transaction

    from videos import detections
    from videos.models import TestSession

    session = TestSession.objects.create(video=video, model_name="pieces")
    t0 = time.perf_counter()
    columns = detections.read_body(
        body, jsonl=False, width=video.width, height=video.height, frame_count=video.frame_count
    )
    t2 = time.perf_counter()
    with transaction.atomic():
        TestSession.objects.select_for_update().values_list("status", flat=True).get(pk=session.pk)
        detections.insert_rows(session_id=session.pk, video_id=video.pk, rows=columns)
        t3 = time.perf_counter()
    t4 = time.perf_counter()
    out = {
        "read_s": round(t2 - t0, 4),  # parse + validate (one typed decode, then the frame checks)
        "copy_s": round(t3 - t2, 4),
        "commit_s": round(t4 - t3, 4),
        "total_s": round(t4 - t0, 4),
        "rows_per_s": round(n / (t4 - t0)),
    }
    print(
        "   in-process: "
        + ", ".join(f"{k.removesuffix('_s')} {v:.3f} s" for k, v in out.items() if k != "rows_per_s")
        + f" -> {out['rows_per_s']:,} rows/s",
        flush=True,
    )
    return out


# --- Scoring ---------------------------------------------------------------------------
@contextlib.contextmanager
def instrumented(marks: dict[str, float]) -> Iterator[None]:
    """Wrap the scoring job's pieces so their start/end times land in `marks`."""
    from videos import processing, scoring

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            marks[f"{name}_start"] = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                marks[f"{name}_end"] = time.perf_counter()

        return timed

    saved = (scoring.match, scoring.metrics, processing.write_back_results)
    scoring.match = wrap("match", scoring.match)
    scoring.metrics = wrap("metrics", scoring.metrics)
    processing.write_back_results = wrap("write_back", processing.write_back_results)
    try:
        yield
    finally:
        scoring.match, scoring.metrics, processing.write_back_results = saved


def score_one(client: Any, session_id: int, n: int) -> dict[str, Any]:
    from videos.models import DetectionEvent, ProcessingJob, TestSession
    from videos.processing import score_session_job

    r = client.post(f"/api/v1/test-sessions/{session_id}/complete")
    assert r.status_code == 202, r.text
    job = ProcessingJob.objects.get(
        test_session_id=session_id, kind=ProcessingJob.Kind.SCORE, state=ProcessingJob.State.PENDING
    )
    marks: dict[str, float] = {}
    with instrumented(marks), CpuMeter([os.getpid()], DB_NAME) as cpu:
        t0 = time.perf_counter()
        score_session_job(job_id=job.pk)
        t_end = time.perf_counter()
    session = TestSession.objects.get(pk=session_id)
    assert session.status == TestSession.Status.COMPLETED, (session.status, session.error)
    assert session.tp + session.fp == n, (session.tp, session.fp)
    unscored = DetectionEvent.objects.filter(test_session_id=session_id, result__isnull=True).count()
    assert unscored == 0, f"{unscored} detections without a result"
    total = t_end - t0
    split = {
        "load_s": marks["match_start"] - t0,  # claim, notify, both array queries
        "match_s": marks["metrics_end"] - marks["match_start"],  # scoring.match + scoring.metrics
        "write_back_s": marks["write_back_end"] - marks["write_back_start"],  # delete old results + COPY
        "finish_s": t_end - marks["write_back_end"],  # session/job updates, COMMIT, notify
    }
    split["other_s"] = total - sum(split.values())
    return {
        "session_id": session_id,
        "seconds": round(total, 4),
        "rows_per_s": round(n / total),
        **{k: round(v, 4) for k, v in split.items()},
        "cpu_s_process": round(cpu.process_s, 2),  # the bench process runs the job
        "cpu_s_postgres": round(cpu.postgres_s, 2),
        "metrics": {
            "tp": session.tp,
            "fp": session.fp,
            "fn": session.fn,
            "precision": session.precision,
            "recall": session.recall,
            "f1": session.f1,
            "mean_iou": session.mean_iou,
        },
    }


def load_pieces(session_id: int, video_id: int) -> dict[str, float]:
    """The load phase of _score piece by piece (labels as codes, config.bulk.fetch_grouped_arrays), and what
    it replaced: labels as one str per row (config.bulk.fetch_arrays), and before that ORM rows."""
    from config.bulk import fetch_arrays, fetch_grouped_arrays
    from videos.models import DetectionEvent, GroundTruthBox
    from videos.processing import DETECTION_COLUMNS, GT_COLUMNS

    detections = DetectionEvent.objects.filter(test_session_id=session_id)
    t0 = time.perf_counter()
    fetch_grouped_arrays(GroundTruthBox.objects.filter(video_id=video_id), "label", GT_COLUMNS)
    t1 = time.perf_counter()
    fetch_grouped_arrays(detections, "label", DETECTION_COLUMNS)
    t2 = time.perf_counter()
    fetch_arrays(detections, ("label", *DETECTION_COLUMNS))
    t3 = time.perf_counter()
    rows = list(detections.values_list("label", *DETECTION_COLUMNS))
    np.array(rows, dtype=object).reshape(-1, len(DETECTION_COLUMNS) + 1)
    t4 = time.perf_counter()
    return {
        "gt_arrays_s": round(t1 - t0, 4),
        "det_arrays_s": round(t2 - t1, 4),
        "det_arrays_str_labels_s": round(t3 - t2, 4),
        "det_orm_rows_s": round(t4 - t3, 4),
    }


def write_back_pieces(session_id: int, n: int) -> dict[str, Any]:
    """write_back_results on an already scored session, rolled back: the retry path (delete + COPY)."""
    from django.db import transaction

    from videos.models import DetectionEvent
    from videos.processing import write_back_results

    rng = np.random.default_rng(1)
    with transaction.atomic():
        ids = np.array(DetectionEvent.objects.filter(test_session_id=session_id).values_list("id", flat=True))
        is_tp, iou = rng.random(ids.size) < 0.2, rng.random(ids.size)
        t0 = time.perf_counter()
        write_back_results(session_id, ids, is_tp, iou)
        t1 = time.perf_counter()
        transaction.set_rollback(True)
    assert ids.size == n
    return {"rewrite_s": round(t1 - t0, 4)}


def bench_scoring(client: Any, video: Any, sessions: list[int], warm_session: int, n: int) -> dict[str, Any]:
    warm = score_one(client, warm_session, 1000)  # untimed: first-use imports and code paths, as for ingest
    print(f"   warm-up: {warm['seconds']:.3f} s for 1,000 detections", flush=True)
    runs = []
    for i, session_id in enumerate(sessions[:REPEATS]):
        run = score_one(client, session_id, n)
        runs.append(run)
        print(
            f"   #{i + 1}  {run['seconds']:.3f} s  {run['rows_per_s']:>9,} det/s  load {run['load_s']:.3f}  "
            f"match {run['match_s']:.3f}  write-back {run['write_back_s']:.3f}  finish {run['finish_s']:.3f}  "
            f"other {run['other_s']:.3f}  (CPU s: job {run['cpu_s_process']:.2f}, "
            f"PostgreSQL {run['cpu_s_postgres']:.2f})",
            flush=True,
        )
    median_s = statistics.median(r["seconds"] for r in runs)
    load = load_pieces(sessions[0], video.pk)
    print("   load pieces: " + ", ".join(f"{k} {v:.3f}" for k, v in load.items()), flush=True)
    write_back = write_back_pieces(sessions[0], n)
    print(
        f"   write-back on a retry (delete the first results + COPY): {write_back['rewrite_s']:.3f} s",
        flush=True,
    )
    return {
        "rows": n,
        "median_s": round(median_s, 4),
        "rows_per_s": round(n / median_s),
        "split_median_s": {
            key: round(statistics.median(r[key] for r in runs), 4)
            for key in ("load_s", "match_s", "write_back_s", "finish_s", "other_s")
        },
        "load_pieces": load,
        "write_back_pieces": write_back,
        "runs": runs,
    }


# --- Streaming -----------------------------------------------------------------------------
def seed_stream_session(video: Any, rows: list[dict[str, Any]], total: int) -> tuple[int, float]:
    """One session holding `total` detections (the ingest rows repeated), COPYed in-process."""
    from django.db import connection, transaction

    from videos import detections
    from videos.models import DetectionEvent, TestSession

    session = TestSession.objects.create(video=video, model_name="stream")
    base = [(r["frame"], r["timestamp_ms"], r["label"], r["confidence"], r["x"], r["y"], r["w"], r["h"]) for r in rows]
    started = time.perf_counter()
    columns = ("test_session_id", "video_id", *detections.COLUMNS)
    with transaction.atomic():
        copy_rows(DetectionEvent, columns, ((session.pk, video.pk, *base[i % len(base)]) for i in range(total)))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {DetectionEvent._meta.db_table}")
    return session.pk, time.perf_counter() - started


def stream(client: Any, session_id: int, video_id: int | None = None) -> dict[str, Any]:
    """GET ?format=jsonl of a session's detections (or, given `video_id`, the video's, every session merged),
    discarding chunks; lines, bytes, seconds; first and last line checked as JSON."""
    lines = size = 0
    first = b""
    tail = b""
    started = time.perf_counter()
    # identity: the raw bytes are counted and parsed (httpx would otherwise ask for a compressed stream)
    url = f"/api/v1/videos/{video_id}/detections" if video_id else f"/api/v1/test-sessions/{session_id}/detections"
    identity = {"Accept-Encoding": "identity"}
    with client.stream("GET", url, params={"format": "jsonl"}, headers=identity) as r:
        assert r.status_code == 200, r.read()[:500]
        assert r.headers["content-type"].startswith("application/jsonl"), r.headers
        for chunk in r.iter_raw(256 * 1024):
            if not first:
                first = chunk[: chunk.find(b"\n")]
            lines += chunk.count(b"\n")
            size += len(chunk)
            tail = (tail + chunk)[-4096:]
    seconds = time.perf_counter() - started
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    for line in (first, last):
        row = orjson.loads(line)
        assert video_id or row["test_session_id"] == session_id, row
        assert {"frame", "timestamp_ms", "label", "x"} <= row.keys(), row
    return {"lines": lines, "bytes": size, "seconds": seconds}


def bench_stream(
    client: Any, restart: Callable[[], Server], video: Any, rows: list[dict[str, Any]], warm_session: int, total: int
) -> dict[str, Any]:
    """Seed, then stream from a fresh server: memory the ingest requests left resident would hide growth."""
    import httpx

    session_id, seed_s = seed_stream_session(video, rows, total)
    print(f"   seeded {total:,} detections into session {session_id} in {seed_s:.1f} s", flush=True)
    server = restart()
    with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=client.timeout) as fresh:
        warm = stream(fresh, warm_session)  # untimed, small: first-use imports, connection pool, caches
        print(f"   fresh server; warm-up stream: {warm['lines']:,} lines", flush=True)
        time.sleep(0.5)
        with RssSampler(server.proc.pid) as rss:
            got = stream(fresh, session_id)
        time.sleep(0.5)
        with RssSampler(server.proc.pid) as video_rss:
            whole = stream(fresh, session_id, video_id=video.pk)
    assert got["lines"] == total, f"{got['lines']} lines, expected {total}"
    from videos.models import DetectionEvent

    expected = DetectionEvent.objects.filter(test_session__video_id=video.pk).count()
    assert whole["lines"] == expected, f"{whole['lines']} lines of the video, expected {expected}"
    summary = rss.summary()
    out = {
        "rows": total,
        "seed_s": round(seed_s, 2),
        "seconds": round(got["seconds"], 3),
        "rows_per_s": round(total / got["seconds"]),
        "mb_per_s": round(got["bytes"] / 2**20 / got["seconds"], 1),
        "body_mb": round(got["bytes"] / 2**20, 1),
        **{f"server_{k}": v for k, v in summary.items()},
        "video": {  # GET /videos/{id}/detections?format=jsonl: every session of the video, merged in order
            "rows": whole["lines"],
            "seconds": round(whole["seconds"], 3),
            "rows_per_s": round(whole["lines"] / whole["seconds"]),
            **{f"server_{k}": v for k, v in video_rss.summary().items()},
        },
    }
    print(
        f"   {total:,} lines in {out['seconds']:.2f} s: {out['rows_per_s']:,} rows/s, {out['mb_per_s']} MB/s; "
        f"server RSS baseline {out['server_baseline_mb']} MB, peak growth +{out['server_peak_growth_mb']} MB "
        f"(sampled +{out['server_sampled_peak_growth_mb']} MB, {out['server_samples']} samples)",
        flush=True,
    )
    print(
        f"   whole video: {whole['lines']:,} lines in {whole['seconds']:.2f} s, server peak growth "
        f"+{out['video']['server_peak_growth_mb']} MB",
        flush=True,
    )
    return out


# --- Main ----------------------------------------------------------------------------------
def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def detection_indexes() -> list[str]:
    """The detection table's indexes (each one is maintained by every COPY and non-HOT UPDATE)."""
    from django.db import connection

    from videos.models import DetectionEvent

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [DetectionEvent._meta.db_table]
        )
        return [row[0] for row in cursor.fetchall()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="detections per ingest request / scored session")
    parser.add_argument("--stream-rows", type=int, default=1_000_000, help="detections in the streamed session")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's rows in the database")
    args = parser.parse_args()

    started, load_1m = time.perf_counter(), round(os.getloadavg()[0], 2)
    env = bench_env()
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    MEDIA_ROOT.mkdir(parents=True, exist_ok=True)

    with phase("setup: database, data, server"):
        prepare_database(DB_NAME, {**os.environ, **env})
        import django

        django.setup()
        purge_bench_rows()  # leftovers of an interrupted run
        rng = np.random.default_rng(0)
        gt = make_ground_truth(rng)
        rows = make_detections(rng, gt, args.rows)
        bodies = {
            "json": orjson.dumps(rows),
            "jsonl": b"\n".join(orjson.dumps(r) for r in rows) + b"\n",
            "json_1k": orjson.dumps(rows[:1000]),
        }
        print(
            f"   {gt['frame'].size:,} ground-truth boxes over {N_FRAMES:,} frames; {args.rows:,} detections "
            f"({len(bodies['json']) / 2**20:.1f} MB JSON)",
            flush=True,
        )
        servers = [Server(args.port, {**os.environ, **env})]

    def restart() -> Server:
        servers[-1].stop()
        servers.append(Server(args.port, {**os.environ, **env}))
        servers[-1].wait_ready()
        return servers[-1]

    import httpx

    try:
        servers[0].wait_ready()
        server = servers[0]
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=PHASE_LIMIT_S) as client:
            with phase("seed: user, project, video, ground truth"):
                email = register(client)
                video = seed_video(email, gt)
            with phase(f"ingest: {args.rows:,} rows per request"):
                ingest = bench_ingest(client, server, video, bodies, args.rows)
            with phase(f"scoring: {args.rows:,} detections per session"):
                scoring_result = bench_scoring(client, video, ingest["sessions"], ingest["warm_session"], args.rows)
            with phase(f"streaming: {args.stream_rows:,} detections as JSONL"):
                streaming = bench_stream(client, restart, video, rows, ingest["warm_session"], args.stream_rows)
    except BaseException:
        print(f"server log tail:\n{servers[-1].tail()}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            server.stop()
        purge_bench_queue()
        if not args.keep:
            with phase("cleanup"):
                try:
                    purge_bench_rows()
                except Exception as exc:  # noqa: BLE001 - report, keep the figures
                    print(f"   cleanup failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    out = {
        "benchmark": "test sessions: ingest, scoring + write-back, JSONL streaming (PostgreSQL, uvicorn)",
        "goals": {
            "ingest_rows_per_s": GOAL_INGEST,
            "scoring_rows_per_s": GOAL_SCORING,
            "stream_rss_growth_mb": GOAL_STREAM_GROWTH_MB,
        },
        "meets": {
            "ingest": ingest["rows_per_s_json"] >= GOAL_INGEST,
            "scoring": scoring_result["rows_per_s"] >= GOAL_SCORING,
            "stream_rss": streaming["server_peak_growth_mb"] < GOAL_STREAM_GROWTH_MB,
            "stream_video_rss": streaming["video"]["server_peak_growth_mb"] < GOAL_STREAM_GROWTH_MB,
        },
        "ground_truth_boxes": int(gt["frame"].size),
        "frames": N_FRAMES,
        "ingest": ingest,
        "scoring": scoring_result,
        "streaming": streaming,
        "postgres": postgres_version(),
        "detection_indexes": detection_indexes(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": load_1m,
        "wall_s": round(time.perf_counter() - started, 1),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")

    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    split = scoring_result["split_median_s"]
    pieces = ingest["server_pieces_in_process"]
    table = [
        (f"ingest, JSON array: rows/s (median of {REPEATS})", f"{ingest['rows_per_s_json']:,}", ">= 100,000", "ingest"),
        ("ingest, JSON Lines: rows/s (1 run)", f"{ingest['rows_per_s_jsonl']:,}", "", None),
        (
            "  in-process: read/COPY/commit s",
            f"{pieces['read_s']:.2f}/{pieces['copy_s']:.2f}/{pieces['commit_s']:.2f}",
            "",
            None,
        ),
        (
            f"scoring + write-back: det/s (median of {REPEATS})",
            f"{scoring_result['rows_per_s']:,}",
            ">= 200,000",
            "scoring",
        ),
        (
            "  load/match/write-back/finish s",
            f"{split['load_s']:.2f}/{split['match_s']:.2f}/{split['write_back_s']:.2f}/{split['finish_s']:.2f}",
            "",
            None,
        ),
        ("stream JSONL: server peak RSS growth MB", f"{streaming['server_peak_growth_mb']}", "< 50", "stream_rss"),
        ("stream JSONL: rows/s", f"{streaming['rows_per_s']:,}", "", None),
        (
            f"stream a video's JSONL ({streaming['video']['rows']:,} rows): peak RSS MB",
            f"{streaming['video']['server_peak_growth_mb']}",
            "< 50",
            "stream_video_rss",
        ),
    ]
    print(f"\n{'measure':<44} {'figure':>20} {'goal':>11}  verdict")
    for label, figure, goal, key in table:
        print(f"{label:<44} {figure:>20} {goal:>11}  {verdict(out['meets'][key]) if key else ''}")
    print(f"\n{out['wall_s']} s, load {load_1m} at start -> {RESULTS}")


if __name__ == "__main__":
    main()
