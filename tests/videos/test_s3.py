"""Media on S3 (django-storages) against moto's server: upload, processing in a separate worker process,
presigned serving, deletion, bounded transfer memory."""

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import pytest
from asgiref.sync import async_to_sync
from botocore.config import Config
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from rest_framework.test import APIClient

from config.storage import IMMUTABLE_CACHE_CONTROL, s3_storage
from tests.videos.conftest import upload
from tests.videos.test_processing_flow import _iou
from videos.models import GroundTruthBox, ProcessingJob, Video

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "framewise-test"
REGION = "us-east-1"
KEYS = {"access_key": "testing", "secret_key": "testing"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's S3 server in a subprocess on a free port, with an empty bucket."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "moto server exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            break
        assert time.monotonic() < deadline, "moto server did not start"
        time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
    )
    client.create_bucket(Bucket=BUCKET)
    yield SimpleNamespace(endpoint=endpoint, client=client)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def _keys(client) -> list[str]:
    return sorted(obj["Key"] for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.fixture
def s3(settings, moto_server):
    """STORAGES["default"] on the moto bucket, as the AWS_* variables would configure it; the setting_changed
    signal resets the cached default_storage both ways."""
    for key in _keys(moto_server.client):
        moto_server.client.delete_object(Bucket=BUCKET, Key=key)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(bucket=BUCKET, endpoint_url=moto_server.endpoint, region=REGION, **KEYS),
    }
    settings.MEDIA_REDIRECT = True
    return moto_server


def _worker_env(endpoint: str) -> dict[str, str]:
    """The test process's configuration for a worker process: the test database, broker and bucket."""
    url = urlsplit(settings.DATABASE_URL)
    database_url = urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "BROKER_URL": settings.BROKER_URL,
        "EMBEDDED_WORKER": "0",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": KEYS["access_key"],
        "AWS_SECRET_ACCESS_KEY": KEYS["secret_key"],
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def s3_worker(request, transactional_db, s3, tmp_path):
    """`manage.py rundramatiq` in its own process group, configured only through the environment.

    Needs a shared broker; without one (embedded mode: the stub broker lives in this process) the in-process
    Dramatiq worker runs the jobs instead. Yields how the jobs run.
    """
    if not settings.BROKER_URL:
        request.getfixturevalue("worker")
        yield SimpleNamespace(mode="in-process", proc=None, log=None)
        return
    import dramatiq

    import videos.actors  # noqa: F401 - declares the queues the flush below empties

    dramatiq.get_broker().flush_all()  # Messages of earlier tests must not reach this worker.
    log = tmp_path / "worker.log"
    cmd = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "2"]
    cmd += ["--worker-shutdown-timeout", "5000"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=_worker_env(s3.endpoint), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    yield SimpleNamespace(mode="subprocess", proc=proc, log=log)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    dramatiq.get_broker().flush_all()


def _wait_done(worker, video_id: int, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while (status := Video.objects.values_list("status", flat=True).get(pk=video_id)) not in ("completed", "failed"):
        if worker.proc is not None and worker.proc.poll() is not None:
            pytest.fail(f"worker exited {worker.proc.returncode}:\n{worker.log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"video {video_id} still {status} after {timeout_s} s"
        time.sleep(0.2)
    return status


def test_upload_processing_serving_and_delete_on_s3(owner_api, project, sample_video, s3, s3_worker, media_root):
    if os.environ.get("CI"):
        assert s3_worker.mode == "subprocess"  # CI has Redis: processing must happen in another process.
    path, truth = sample_video
    data = path.read_bytes()
    response = upload(owner_api, project["id"], path)
    assert response.status_code == 202, response.content
    video = response.json()
    stored = Video.objects.get(pk=video["id"]).file.name
    assert _keys(s3.client) == [stored]
    head = s3.client.head_object(Bucket=BUCKET, Key=stored)
    assert (head["ContentLength"], head["ContentType"]) == (len(data), "video/mp4")
    assert head["CacheControl"] == IMMUTABLE_CACHE_CONTROL
    assert [p for p in media_root.rglob("*") if p.is_file()] == []  # Nothing reached the local disk.

    assert _wait_done(s3_worker, video["id"]) == "completed", Video.objects.get(pk=video["id"]).error
    done = owner_api.get(f"/api/v1/videos/{video['id']}").json()
    assert (done["frame_count"], done["width"], done["height"]) == (48, 160, 120)
    assert ProcessingJob.objects.get(video_id=video["id"]).state == "succeeded"
    boxes = {b.frame: (b.x, b.y, b.w, b.h) for b in GroundTruthBox.objects.filter(video_id=video["id"])}
    visible = [t for t in truth if t.fully_visible and t.frame in boxes]
    assert len(visible) >= 10
    assert statistics.median(_iou(boxes[t.frame], (t.x, t.y, t.w, t.h)) for t in visible) >= 0.5
    thumb_key = Video.objects.get(pk=video["id"]).thumbnail.name
    assert _keys(s3.client) == sorted([stored, thumb_key])

    client = APIClient()
    redirect = client.get(done["file_url"])
    assert redirect.status_code == 302
    assert redirect["Cache-Control"] == "private, no-store"
    location = redirect["Location"]
    assert location.startswith(f"{s3.endpoint}/{BUCKET}/{stored}?")
    assert "X-Amz-Expires=3600" in location
    full = httpx.get(location)
    assert (full.status_code, full.content, full.headers["content-type"]) == (200, data, "video/mp4")
    part = httpx.get(location, headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, data[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert httpx.get(location, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    assert client.get(done["file_url"], HTTP_IF_NONE_MATCH=f'"{video["sha256"]}"').status_code == 304
    assert client.get(f"/api/v1/videos/{video['id']}/file?sig=nope").status_code == 404

    thumb = httpx.get(client.get(done["thumbnail_url"])["Location"])
    assert (thumb.status_code, thumb.headers["content-type"], thumb.content[:3]) == (200, "image/jpeg", b"\xff\xd8\xff")
    assert "max-age=31536000" in thumb.headers["cache-control"]

    assert owner_api.delete(f"/api/v1/videos/{video['id']}").status_code == 204
    assert _keys(s3.client) == []


@pytest.mark.django_db
def test_project_delete_removes_its_objects(owner_api, project, sample_video, s3, django_capture_on_commit_callbacks):
    ids = [upload(owner_api, project["id"], sample_video[0]).json()["id"] for _ in range(2)]
    thumb = default_storage.save("thumbnails/t.jpg", ContentFile(b"\xff\xd8\xff\xe0 jpeg"))
    Video.objects.filter(pk=ids[0]).update(thumbnail=thumb)
    assert len(_keys(s3.client)) == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert owner_api.delete(f"/api/v1/projects/{project['id']}").status_code == 204
    assert _keys(s3.client) == []


@pytest.mark.django_db
def test_signature_checks_come_before_the_redirect(owner_api, project, sample_video, s3, monkeypatch):
    video = upload(owner_api, project["id"], sample_video[0]).json()
    from videos import storage

    monkeypatch.setattr(storage, "SIGNED_URL_TTL_S", -1)
    assert APIClient().get(video["file_url"]).status_code == 404


def test_save_to_s3_memory_is_bounded(s3, tmp_path):
    """A 48 MiB save holds a few 5 MiB parts, not the file (boto3's defaults peak near the file's size)."""
    path = tmp_path / "big.bin"
    with path.open("wb") as fh:
        for i in range(48):
            fh.write(bytes([i]) * (1024 * 1024))
    default_storage.exists("warm-up")  # Client creation is not part of the transfer.
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            name = default_storage.save("big/big.bin", File(fh))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert default_storage.size(name) == 48 * 1024 * 1024
    assert peak < 28 * 1024 * 1024


@pytest.mark.django_db
def test_unreachable_object_store_leaves_no_row_and_no_temporary_file(owner_api, project, sample_video, settings):
    dead = s3_storage(bucket=BUCKET, endpoint_url=f"http://127.0.0.1:{_free_port()}", region=REGION, **KEYS)
    dead["OPTIONS"]["client_config"] = Config(retries={"total_max_attempts": 1})  # Fail fast in the test.
    settings.STORAGES = {**settings.STORAGES, "default": dead}
    response = upload(owner_api, project["id"], sample_video[0])
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert not Video.objects.exists()
    assert list(Path(settings.FILE_UPLOAD_TEMP_DIR).iterdir()) == []


@pytest.mark.django_db
def test_streaming_from_s3_without_redirect_serves_ranges(owner_api, project, sample_video, s3, settings):
    settings.MEDIA_REDIRECT = False
    data = sample_video[0].read_bytes()
    video = upload(owner_api, project["id"], sample_video[0]).json()
    part = owner_api.get(f"/api/v1/videos/{video['id']}/file", HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206
    assert b"".join(async_to_sync(_collect)(part)) == data[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(data)}"


async def _collect(response) -> list[bytes]:
    return [chunk async for chunk in response.streaming_content]
