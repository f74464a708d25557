"""Ninja schemas of the videos API (<Entity>In/Out/Patch)."""

from datetime import datetime
from typing import Literal

from ninja import Field, Schema


class ProjectIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class ProjectPatch(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class ProjectOut(Schema):
    id: int
    name: str
    description: str
    video_count: int
    created_at: datetime
    updated_at: datetime


class ProjectPage(Schema):
    results: list[ProjectOut]
    next: str | None
    previous: str | None


class VideoOut(Schema):
    id: int
    project_id: int
    original_name: str
    size_bytes: int
    content_type: str
    sha256: str
    status: str
    stage: str
    progress: int
    error: str | None
    duration_s: float | None
    fps: float | None
    width: int | None
    height: int | None
    frame_count: int | None
    codec: str
    ground_truth_generated: bool
    thumbnail_url: str | None
    file_url: str
    created_at: datetime
    updated_at: datetime


class VideoPage(Schema):
    results: list[VideoOut]
    next: str | None
    previous: str | None


class VideoSearchFilters(Schema):
    search: str | None = Field(default=None, max_length=100, description="Case-insensitive substring of the name.")
    status: Literal["queued", "processing", "completed", "failed"] | None = None


class VideoStatusOut(Schema):
    video_id: int
    status: str
    stage: str
    progress: int
    error: str | None
    changed: bool


class GroundTruthOut(Schema):
    id: int
    frame: int
    timestamp_ms: int
    label: str
    x: int
    y: int
    w: int
    h: int


class GroundTruthPage(Schema):
    results: list[GroundTruthOut]
    next: str | None
    previous: str | None


class TestSessionIn(Schema):
    model_name: str = Field(min_length=1, max_length=200)
    iou_threshold: float = Field(default=0.5, gt=0.0, le=1.0)


class TestSessionOut(Schema):
    id: int
    video_id: int
    model_name: str
    iou_threshold: float
    status: str
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    mean_iou: float | None
    error: str | None
    created_at: datetime
    completed_at: datetime | None


class TestSessionPage(Schema):
    results: list[TestSessionOut]
    next: str | None
    previous: str | None


class DetectionOut(Schema):
    id: int
    test_session_id: int
    frame: int
    timestamp_ms: int
    label: str
    confidence: float
    x: float
    y: float
    w: float
    h: float
    validation_result: str | None
    iou: float | None


class DetectionPage(Schema):
    results: list[DetectionOut]
    next: str | None
    previous: str | None


class InsertedOut(Schema):
    inserted: int


class DetectionIn(Schema):
    """One detection in a POST body (documentation; rows are validated in bulk by videos.detections)."""

    frame: int = Field(ge=0)
    timestamp_ms: int = Field(ge=0)
    label: str = Field(min_length=1, max_length=64)
    confidence: float = Field(ge=0, le=1)
    x: float = Field(ge=0)
    y: float = Field(ge=0)
    w: float = Field(gt=0)
    h: float = Field(gt=0)
