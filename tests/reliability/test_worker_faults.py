"""Real rundramatiq workers under faults: SIGKILL mid-job, poison videos, duplicate and concurrent delivery."""

import contextlib
import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db.models import Count

from tests.media import make_moving_box_video
from tests.reliability import report
from tests.reliability.conftest import add_video, needs_services
from tests.reliability.procs import alive, descendants, manage, wait_until
from videos import processing, services, vision
from videos.models import GroundTruthBox, ProcessingJob, Video

pytestmark = [needs_services, pytest.mark.django_db(transaction=True)]

LEASE_S = 4
REQUEUE_EVERY_S = 1
KILLS = 5
SEED = 20260601


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """~3 s of decode + MOG2 on this machine: long enough to kill the worker at a random point of it."""
    path = tmp_path_factory.mktemp("chaos") / "long.avi"
    make_moving_box_video(path, frames=200, width=640, height=480, fourcc="MJPG", textured=True, box=(60, 40))
    return path


@pytest.fixture(scope="module")
def long_video_boxes(long_video: Path) -> set[tuple[int, int, int, int, int]]:
    return {(b.frame, b.x, b.y, b.w, b.h) for b in vision.detect_motion(str(long_video), stride=processing.GT_STRIDE)}


def job_of(video: Video) -> ProcessingJob:
    return ProcessingJob.objects.get(video=video, kind=ProcessingJob.Kind.PROCESS)


def finished(video: Video) -> bool:
    return Video.objects.filter(pk=video.pk, status__in=["completed", "failed"]).exists()


def assert_one_result_set(video: Video, expected: set[tuple[int, int, int, int, int]]) -> None:
    rows = list(GroundTruthBox.objects.filter(video=video).values_list("frame", "x", "y", "w", "h"))
    assert len(rows) == len(set(rows)), "duplicate ground-truth rows"
    assert set(rows) == expected


@pytest.fixture
def fault_env() -> dict[str, str]:
    return {"JOB_LEASE_S": str(LEASE_S)}


@pytest.fixture
def requeuer(live_env, log_dir, fault_env):
    """The `requeue_stale_jobs --every N` service that compose runs next to the workers."""
    proc = manage("requeue", {**live_env, **fault_env}, log_dir, "requeue_stale_jobs", "--every", str(REQUEUE_EVERY_S))
    yield proc
    proc.stop()


def holder(workers: list, video: Video):
    """The worker whose decoder child has the video's file open (probe, thumbnail and MOG2 all run in one)."""
    target = os.path.realpath(default_storage.path(video.file.name))
    for worker in workers:
        for pid in descendants(worker.pid):
            with contextlib.suppress(OSError):
                if any(os.path.realpath(fd) == target for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    return worker
    return None


def test_worker_sigkill_mid_job_five_times(project, long_video, long_video_boxes, start_worker, requeuer, fault_env):
    """Two supervised workers (compose runs replicas with `restart: unless-stopped`); the busy one is killed."""
    rng = random.Random(SEED)
    workers = [start_worker(**fault_env), start_worker(**fault_env)]
    rounds = []
    for _ in range(KILLS):
        video = add_video(project, long_video)
        kill_at = rng.randint(1, 95)  # progress %, so kills land in probing, thumbnail, decoding and MOG2
        wait_until(lambda v=video, k=kill_at: Video.objects.get(pk=v.pk).progress >= k, 60, f"progress {kill_at}")
        victim = wait_until(lambda v=video: holder(workers, v), 10, "the worker running the job")
        stage = Video.objects.values_list("stage", flat=True).get(pk=video.pk)
        attempts = job_of(video).attempts
        doomed = descendants(victim.pid)  # the worker child, its forkserver and the decoder child
        killed_at = time.monotonic()
        os.kill(victim.child(), signal.SIGKILL)
        # Dramatiq's main exits once its worker child dies (its supervisor restarts it); the other worker
        # takes the job over once the lease has expired and requeue_stale_jobs has resent it.
        wait_until(lambda w=victim: not w.running(), 15, "dramatiq main to exit after its child died")
        wait_until(lambda d=doomed: not any(alive(p) for p in d), 15, "orphaned decoder processes to exit")
        wait_until(lambda v=video, a=attempts: job_of(v).attempts > a, LEASE_S + 30, "the job to be re-claimed")
        reclaimed_s = time.monotonic() - killed_at
        workers.remove(victim)
        restart_started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:  # the restart overlaps the rest of the job, as a supervisor's would
            replacement = pool.submit(start_worker, **fault_env)
            wait_until(lambda v=video: finished(v), 120, "the video to finish")
            workers.append(replacement.result())
        restart_s = time.monotonic() - restart_started
        rounds.append(
            {
                "kill_at_progress": kill_at,
                "stage": stage,
                "reclaimed_s": round(reclaimed_s, 2),
                "worker_restart_s": round(restart_s, 2),  # includes waiting for the job when that is longer
                "finished_s": round(time.monotonic() - killed_at, 2),
                "processes_killed_or_orphaned": len(doomed),
            }
        )
    videos = Video.objects.filter(project=project)
    statuses = sorted(videos.values_list("status", flat=True))
    for video in videos:
        assert_one_result_set(video, long_video_boxes)
    sets = dict(GroundTruthBox.objects.values_list("video").annotate(n=Count("id")).values_list("video", "n"))
    worst = max(r["reclaimed_s"] for r in rounds)
    ok = statuses == ["completed"] * KILLS and worst <= LEASE_S + 10
    report.record(
        "worker_sigkill",
        item=1,
        scenario=f"worker SIGKILL mid-job x{KILLS} (rundramatiq, Redis broker, lease {LEASE_S} s)",
        figure=f"{statuses.count('completed')}/{KILLS} completed, 1 result set each, re-claimed in ≤ {worst:.1f} s",
        goal=f"5/5, ≤ lease + 10 s = {LEASE_S + 10} s",
        ok=ok,
        rounds=rounds,
        boxes_per_video=sorted(sets.values()),
    )
    assert statuses == ["completed"] * KILLS
    assert worst <= LEASE_S + 10, rounds


@pytest.fixture(scope="module")
def huge_frames_video(tmp_path_factory) -> Path:
    """4K Motion-JPEG frames: 25 MB each once decoded, past a decoder capped at DECODE_MEMORY_BYTES below."""
    path = tmp_path_factory.mktemp("chaos") / "huge.avi"
    make_moving_box_video(path, frames=6, width=3840, height=2160, fourcc="MJPG", box=(200, 100), speed=(40, 20))
    return path


READABLE_DECODER_ERRORS = ("decoder ran out of memory", "no frame of the video could be decoded")


def test_poison_videos_fail_within_three_attempts_and_the_worker_survives(
    project, huge_frames_video, long_video, long_video_boxes, start_worker, requeuer, fault_env
):
    # 1. A video that exhausts the decoder: its child hits RLIMIT_AS; the job fails at once, readably.
    worker = start_worker(**fault_env, DECODE_MEMORY_BYTES=str(384 * 2**20))
    exhausting = add_video(project, huge_frames_video)
    wait_until(lambda: finished(exhausting), 60, "the exhausting video to finish")
    exhausting.refresh_from_db()
    job = job_of(exhausting)
    assert (exhausting.status, job.state, job.attempts) == ("failed", "failed", 1)
    assert exhausting.error.startswith(READABLE_DECODER_ERRORS), exhausting.error

    # 2. A video that takes its worker down on every attempt (as an OOM kill would): 3 claims, then failed.
    killer = add_video(project, long_video)
    workers, kills = [worker], 0
    while not finished(killer):
        state = job_of(killer)
        if state.state == "running" and (busy := holder(workers, killer)):
            os.kill(busy.child(), signal.SIGKILL)
            kills += 1
            wait_until(lambda b=busy: not b.running(), 15, "dramatiq main to exit")
            workers = [start_worker(**fault_env)]
        time.sleep(0.05)
        assert kills <= processing.MAX_ATTEMPTS
    job, killer = job_of(killer), Video.objects.get(pk=killer.pk)
    assert (killer.status, job.state, job.attempts, kills) == ("failed", "failed", processing.MAX_ATTEMPTS, 3)
    assert killer.error == f"Gave up after {processing.MAX_ATTEMPTS} attempts."
    # No further redelivery: two more leases and requeue passes leave it alone.
    time.sleep(2 * LEASE_S + 2 * REQUEUE_EVERY_S)
    assert (job_of(killer).state, job_of(killer).attempts) == ("failed", processing.MAX_ATTEMPTS)
    assert processing.requeue_stale_jobs(older_than_s=LEASE_S) == 0

    # 3. The surviving worker still processes a good video.
    good = add_video(project, long_video)
    wait_until(lambda: finished(good), 120, "the good video to finish")
    assert Video.objects.get(pk=good.pk).status == "completed"
    assert_one_result_set(good, long_video_boxes)
    report.record(
        "poison",
        item=2,
        scenario="poison videos on a real worker: decoder memory exhausted; worker killed on every attempt",
        figure=f"failed after 1 and {job.attempts} attempts, readable errors, 0 redeliveries, worker survives",
        goal="≤ 3 attempts, failed, readable error, no redelivery, worker survives",
        ok=True,
        errors=[exhausting.error, killer.error],
    )


def test_duplicate_and_concurrent_delivery_keep_one_result_set(
    project, long_video, long_video_boxes, start_worker, fault_env
):
    """The same job's message sent again while it runs (another worker gets it) and after it finished."""
    workers = [start_worker(**fault_env), start_worker(**fault_env)]
    video = add_video(project, long_video)
    wait_until(lambda: Video.objects.get(pk=video.pk).progress >= 20, 60, "the job to run")
    assert holder(workers, video) is not None
    for _ in range(3):
        services.send_job(job_of(video))
    wait_until(lambda: finished(video), 120, "the video to finish")
    services.send_job(job_of(video))
    time.sleep(2)  # let the late duplicate be consumed
    job = job_of(video)
    assert (Video.objects.get(pk=video.pk).status, job.state, job.attempts) == ("completed", "succeeded", 1)
    assert_one_result_set(video, long_video_boxes)
    report.record(
        "duplicate_delivery",
        item=3,
        scenario="job message delivered 3x while running (2 workers) and 1x after success",
        figure=f"1 result set ({len(long_video_boxes)} boxes, 0 duplicates), attempts {job.attempts}",
        goal="one result set, no duplicate rows",
        ok=True,
    )
