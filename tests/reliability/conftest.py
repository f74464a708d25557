"""Chaos-suite fixtures: subprocess environments sharing the test database, servers, workers, the figures."""

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction

from tests.factories import UserFactory
from tests.reliability import report
from tests.reliability.procs import Server, Worker
from videos import services
from videos.models import ProcessingJob, Project, Video

# CHAOS_SCALE=10 makes nightly-sized runs (bigger uploads, more hostile cases); 1 keeps CI within minutes.
CHAOS_SCALE = float(os.environ.get("CHAOS_SCALE", "1"))

SUBPROCESS_APP = "framewise-chaos-subprocess"

needs_services = pytest.mark.skipif(
    not (django_settings.DATABASE_URL.startswith("postgres") and django_settings.REDIS_URL),
    reason="real worker processes need PostgreSQL and a Redis broker (CI runs them; set DATABASE_URL and REDIS_URL)",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.chaos)


def pytest_sessionfinish(session: pytest.Session) -> None:
    report.save()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if report.collected:
        terminalreporter.section("chaos figures (this run)")
        terminalreporter.write_line(report.table(report.collected))


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()
    return root


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def server_tmp(tmp_path: Path) -> Path:
    """The servers' TMPDIR: where Django spools request bodies and the upload handler writes its temp file."""
    path = tmp_path / "server-tmp"
    path.mkdir()
    return path


@pytest.fixture
def live_env(transactional_db, media_root: Path, server_tmp: Path) -> Iterator[dict[str, str]]:
    """Environment for subprocesses that share this test's database, Redis db and media root."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLITE_PATH")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        MEDIA_ROOT=str(media_root),
        TMPDIR=str(server_tmp),
        EMBEDDED_WORKER="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        RATE_LIMIT_ENABLED="0",
    )
    if connection.vendor == "postgresql":
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}?application_name={SUBPROCESS_APP}"
        env["DATABASE_URL"] = url
    else:
        env["SQLITE_PATH"] = str(db["NAME"])
    yield env
    if connection.vendor == "postgresql":
        # Connections of killed subprocesses can outlive them briefly; only this test database's are touched.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                [SUBPROCESS_APP],
            )


@pytest.fixture
def start_server(live_env: dict[str, str], log_dir: Path) -> Iterator[Callable[..., Server]]:
    """Start uvicorn subprocesses (env overrides as keywords); all are stopped after the test."""
    started: list[Server] = []

    def start(**overrides: str) -> Server:
        server = Server({**live_env, **overrides}, log_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_worker(live_env: dict[str, str], log_dir: Path) -> Iterator[Callable[..., Worker]]:
    """Start rundramatiq subprocesses on the Redis broker; all are stopped after the test."""
    import dramatiq

    import videos.actors  # noqa: F401 - declares the queues on this process's broker

    dramatiq.get_broker().flush_all()
    started: list[Worker] = []

    def start(wrap: tuple[str, ...] = (), threads: int = 1, **overrides: str) -> Worker:
        worker = Worker({**live_env, **overrides}, log_dir, threads=threads, wrap=wrap)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    dramatiq.get_broker().flush_all()


@pytest.fixture
def project(transactional_db) -> Project:
    return Project.objects.create(owner=UserFactory(), name="chaos")


def add_video(project: Project, path: Path) -> Video:
    """Store a file and create its video and job as an upload does; the message is sent on commit."""
    with path.open("rb") as handle:
        name = default_storage.save(f"videos/chaos/{uuid.uuid4().hex}{path.suffix}", File(handle))
    with transaction.atomic():
        video = Video.objects.create(
            project=project,
            uploaded_by=project.owner,
            original_name=path.name,
            file=name,
            size_bytes=path.stat().st_size,
            content_type="video/x-msvideo" if path.suffix == ".avi" else "video/mp4",
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        services.job_enqueue(video=video, kind=ProcessingJob.Kind.PROCESS)
    return video
