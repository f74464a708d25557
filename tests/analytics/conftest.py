"""Analytics fixtures: an isolated MEDIA_ROOT, uploads through the real ingest service, direct-count oracles."""

from typing import Any

import pytest
from django.db.models import Avg, Count, Q
from django.db.models.functions import Coalesce

from videos.models import DetectionEvent, GroundTruthBox, Project, TestSession, Video
from videos.storage import VideoUpload

STATUSES = ("queued", "processing", "completed", "failed")


@pytest.fixture(autouse=True)
def _fresh_local_cache_figures():
    """Embedded mode counts hits in-process (Redis mode keeps them in the flushed Redis db)."""
    from config import cache

    cache._local_stats.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def make_upload(name: str = "clip.mp4") -> VideoUpload:
    """A stored-upload object as the streaming parser would hand it to `video_ingest`."""
    upload = VideoUpload(name, "application/octet-stream", 0, None)
    upload.write(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    upload.size = upload.tell()
    upload.seek(0)
    upload.sha256 = "0" * 64
    upload.sniffed_type = "video/mp4"
    return upload


def direct_stats(projects: Any) -> dict[str, Any]:
    """The dashboard figures computed the slow way: COUNT/AVG over the base tables."""
    project_ids = list(projects.values_list("pk", flat=True))
    videos = Video.objects.filter(project_id__in=project_ids)
    by_status = videos.aggregate(**{s: Count("pk", filter=Q(status=s)) for s in STATUSES})
    sessions = TestSession.objects.filter(video__project_id__in=project_ids)
    completed = sessions.filter(status="completed").aggregate(
        precision=Avg(Coalesce("precision", 0.0)), recall=Avg(Coalesce("recall", 0.0)), f1=Avg(Coalesce("f1", 0.0))
    )
    return {
        "project_count": len(project_ids),
        "video_count": videos.count(),
        "videos_by_status": by_status,
        "test_session_count": sessions.count(),
        "active_test_sessions": sessions.filter(status__in=["open", "scoring"]).count(),
        "detection_count": DetectionEvent.objects.filter(video__project_id__in=project_ids).count(),
        "ground_truth_count": GroundTruthBox.objects.filter(video__project_id__in=project_ids).count(),
        "average_precision": completed["precision"],
        "average_recall": completed["recall"],
        "average_f1": completed["f1"],
    }


def assert_stats_equal(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for field, value in expected.items():
        if field.startswith("average_") and value is not None:
            assert actual[field] == pytest.approx(value, abs=1e-9), field
        else:
            assert actual[field] == value, field


def owned(owner_id: int) -> Any:
    return Project.objects.filter(owner_id=owner_id)
