"""Video fixtures: an isolated MEDIA_ROOT, projects, generated videos, and a real Dramatiq worker."""

import time
from pathlib import Path

import dramatiq
import pytest
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.factories import UserFactory
from tests.media import make_moving_box_video


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()
    return root


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory):
    """A small MP4 with a bright box moving on black, and its analytic ground truth."""
    path = tmp_path_factory.mktemp("videos") / "moving.mp4"
    truth = make_moving_box_video(path, frames=48, fps=24.0, width=160, height=120, box=(30, 20), speed=(4, 2))
    return path, truth


@pytest.fixture
def owner(db):
    return UserFactory()


@pytest.fixture
def owner_api(owner):
    client = APIClient()
    client.credentials(**bearer(owner))
    return client


@pytest.fixture
def project(owner_api):
    response = owner_api.post("/api/v1/projects", {"name": "Cams", "description": "street"}, format="json")
    assert response.status_code == 201
    return response.json()


@pytest.fixture
def worker(transactional_db):
    """A real Dramatiq worker on the configured broker (Redis in CI, the stub locally)."""
    import videos.actors  # noqa: F401 - registers the actors

    broker = dramatiq.get_broker()
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    yield worker
    worker.stop()
    broker.flush_all()


def upload(client, project_id, path):
    with open(path, "rb") as fh:
        return client.post(f"/api/v1/projects/{project_id}/videos", {"file": fh}, format="multipart")


def wait_for_status(client, video_id, statuses=("completed", "failed"), timeout_s=120.0):
    """Wait (reading the database, so polling spends no rate limit) then return the API's view of the video."""
    from videos.models import Video

    deadline = time.monotonic() + timeout_s
    while (status := Video.objects.values_list("status", flat=True).get(pk=video_id)) not in statuses:
        assert time.monotonic() < deadline, f"video {video_id} still {status} after {timeout_s} s"
        time.sleep(0.1)
    response = client.get(f"/api/v1/videos/{video_id}")
    assert response.status_code == 200, response.content
    return response.json()
