"""HTTP-layer fixtures: a project with a completed video (stored file, thumbnail, ground truth) and a session."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from videos.models import GroundTruthBox, Project, TestSession, Video

GROUND_TRUTH_BOXES = 2500


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def project(user):
    return Project.objects.create(owner=user, name="Cams", description="street " * 200)


@pytest.fixture
def video(project, user, media_root):
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
    name = default_storage.save("videos/test.mp4", ContentFile(data))
    thumb = default_storage.save("thumbnails/test.jpg", ContentFile(b"\xff\xd8\xff" + b"\x10" * 4000))
    video = Video.objects.create(
        project=project,
        uploaded_by=user,
        original_name="clip.mp4",
        file=name,
        size_bytes=len(data),
        content_type="video/mp4",
        sha256=hashlib.sha256(data).hexdigest(),
        status=Video.Status.COMPLETED,
        thumbnail=thumb,
        ground_truth_generated=True,
    )
    GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video=video, frame=i // 5, timestamp_ms=i * 40, label="motion", x=i % 97, y=i % 53, w=20, h=10)
        for i in range(GROUND_TRUTH_BOXES)
    )
    return video


@pytest.fixture
def session(video, user):
    return TestSession.objects.create(video=video, created_by=user, model_name="yolo")
