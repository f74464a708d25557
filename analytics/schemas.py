"""Ninja schemas of the analytics API (documentation of the shapes; hot reads return pre-serialised JSON)."""

from datetime import datetime
from typing import Any

from ninja import Schema


class VideosByStatusOut(Schema):
    queued: int
    processing: int
    completed: int
    failed: int


class StatsOut(Schema):
    project_count: int
    video_count: int
    videos_by_status: VideosByStatusOut
    test_session_count: int
    active_test_sessions: int
    detection_count: int
    ground_truth_count: int
    average_precision: float | None
    average_recall: float | None
    average_f1: float | None
    last_updated: datetime | None


class UsersByPlanOut(Schema):
    free: int
    pro: int
    enterprise: int


class UsersSummaryOut(Schema):
    total_users: int
    active_users: int
    inactive_users: int
    superusers: int
    new_users_today: int
    new_users_week: int
    by_plan: UsersByPlanOut


class CacheFiguresOut(Schema):
    hits: int
    misses: int
    hit_rate: float | None


class CacheStatsOut(Schema):
    backend: str
    hits: int
    misses: int
    hit_rate: float | None
    keys: int | None
    memory: dict[str, Any] | None
    caches: dict[str, CacheFiguresOut]


class DatabasePoolOut(Schema):
    vendor: str
    pool: dict[str, Any] | None
    settings: dict[str, Any] | None
