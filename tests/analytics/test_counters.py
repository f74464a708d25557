"""Maintained counters stay exact after randomised sequences of every write path (services, worker, admin, cascades)."""

import random

import orjson
import pytest
from asgiref.sync import async_to_sync

from accounts.models import User
from analytics import selectors
from analytics.models import ProjectStats
from tests.analytics.conftest import assert_stats_equal, direct_stats, make_upload, owned
from tests.factories import UserFactory
from videos import processing, services
from videos.models import DetectionEvent, ProcessingJob, Project, TestSession, Video
from videos.vision import Box

pytestmark = pytest.mark.django_db


def _pick(rng, queryset):
    ids = sorted(queryset.values_list("pk", flat=True))
    return queryset.model.objects.get(pk=rng.choice(ids)) if ids else None


def _detections(rng, n):
    hits = [  # copies of the ground-truth boxes `finish_processing` writes, so scores are not all zero
        {
            "frame": f,
            "timestamp_ms": f * 100,
            "label": "car",
            "confidence": rng.random(),
            "x": 0,
            "y": 0,
            "w": 10,
            "h": 10,
        }
        for f in range(rng.randrange(0, 6))
    ]
    return hits + [
        {
            "frame": rng.randrange(10),
            "timestamp_ms": rng.randrange(1000),
            "label": rng.choice(["car", "person"]),
            "confidence": rng.random(),
            "x": rng.randrange(50),
            "y": rng.randrange(50),
            "w": rng.randrange(1, 40),
            "h": rng.randrange(1, 40),
        }
        for _ in range(n)
    ]


class Operations:
    """Each operation goes through the code path production uses for that write."""

    def __init__(self, rng, users):
        self.rng, self.users, self.n = rng, users, 0

    def create_project(self):
        self.n += 1
        services.project_create(owner_id=self.rng.choice(self.users).pk, name=f"p{self.n}")

    def upload(self):
        if project := _pick(self.rng, Project.objects.all()):
            services.video_ingest(project=project, user_id=project.owner_id, upload=make_upload())

    def start_processing(self):  # the worker's progress write: status → processing, then progress only
        if video := _pick(self.rng, Video.objects.filter(status="queued")):
            Video.objects.filter(pk=video.pk).update(status="processing", stage="probing", progress=1)
            Video.objects.filter(pk=video.pk).update(status="processing", stage="ground_truth", progress=40)

    def finish_processing(self):  # the worker's final transaction: ground truth replaced by COPY, completed
        if video := _pick(self.rng, Video.objects.filter(status__in=["queued", "processing"])):
            boxes = [Box(f, f * 100, "car", 0, 0, 10, 10) for f in range(self.rng.randrange(0, 6))]
            processing.replace_ground_truth(video.pk, boxes)
            Video.objects.filter(pk=video.pk).update(status="completed", width=100, height=100, frame_count=10)
            ProcessingJob.objects.filter(video=video, state__in=ProcessingJob.ACTIVE).update(state="succeeded")

    def fail_processing(self):
        job = _pick(self.rng, ProcessingJob.objects.filter(kind="process", state__in=ProcessingJob.ACTIVE))
        if job:
            processing._fail(job, "unreadable")

    def reprocess(self):
        if video := _pick(self.rng, Video.objects.filter(status__in=["completed", "failed"])):
            services.video_reprocess(video=video)
            if self.rng.random() < 0.5:  # re-run: the new ground truth replaces the old
                self.finish_processing()

    def create_session(self):
        if video := _pick(self.rng, Video.objects.filter(status="completed")):
            services.session_create(video=video, user_id=video.project.owner_id, model_name="m", iou_threshold=0.5)

    def ingest(self):
        if session := _pick(self.rng, TestSession.objects.filter(status="open", video__status="completed")):
            rows = _detections(self.rng, self.rng.randrange(1, 30))
            services.detections_ingest(session=session, body=orjson.dumps(rows), jsonl=False)

    def complete_and_score(self):
        if session := _pick(self.rng, TestSession.objects.filter(status="open", video__status="completed")):
            services.session_complete(session=session)
            job = ProcessingJob.objects.get(test_session=session, state="pending")
            if self.rng.random() < 0.8:
                processing.score_session_job(job_id=job.pk)
            else:
                processing._fail(ProcessingJob.objects.select_related("video").get(pk=job.pk), "boom")

    def delete_video(self):
        if video := _pick(self.rng, Video.objects.all()):
            services.video_delete(video=video)

    def delete_project(self):
        if self.rng.random() < 0.4 and (project := _pick(self.rng, Project.objects.all())):
            services.project_delete(project=project)

    def admin_delete_videos(self):  # a queryset delete, as the admin's bulk action does
        ids = list(Video.objects.values_list("pk", flat=True))
        Video.objects.filter(pk__in=self.rng.sample(ids, min(len(ids), 2))).delete()

    def admin_delete_sessions(self):
        ids = list(TestSession.objects.values_list("pk", flat=True))
        TestSession.objects.filter(pk__in=self.rng.sample(ids, min(len(ids), 2))).delete()

    def admin_delete_detections(self):
        if session := _pick(self.rng, TestSession.objects.all()):
            DetectionEvent.objects.filter(test_session=session, confidence__lt=0.5).delete()

    def admin_bulk_status(self):
        if project := _pick(self.rng, Project.objects.all()):
            Video.objects.filter(project=project).update(status=self.rng.choice(["failed", "completed"]))

    def admin_move_video(self):  # a project change in the admin: both projects are recounted
        video, project = _pick(self.rng, Video.objects.all()), _pick(self.rng, Project.objects.all())
        if video and project:
            Video.objects.filter(pk=video.pk).update(project=project)

    def admin_change_owner(self):
        if project := _pick(self.rng, Project.objects.all()):
            Project.objects.filter(pk=project.pk).update(owner=self.rng.choice(self.users))

    def delete_user(self):  # cascades to the user's projects and everything under them
        if self.rng.random() < 0.2 and len(self.users) > 1:
            self.users.pop(self.rng.randrange(len(self.users))).delete()


WEIGHTS = {
    "create_project": 4,
    "upload": 8,
    "start_processing": 4,
    "finish_processing": 6,
    "fail_processing": 2,
    "reprocess": 2,
    "create_session": 6,
    "ingest": 8,
    "complete_and_score": 4,
    "delete_video": 1,
    "delete_project": 1,
    "admin_delete_videos": 1,
    "admin_delete_sessions": 1,
    "admin_delete_detections": 2,
    "admin_bulk_status": 1,
    "admin_move_video": 1,
    "admin_change_owner": 1,
    "delete_user": 1,
}


def _check(users):
    assert set(ProjectStats.objects.values_list("project_id", "owner_id")) == set(
        Project.objects.values_list("pk", "owner_id")
    )
    for user in users:
        assert_stats_equal(async_to_sync(selectors.dashboard_stats)(user=user), direct_stats(owned(user.pk)))
    staff = User(id=0, is_staff=True)
    assert_stats_equal(async_to_sync(selectors.dashboard_stats)(user=staff), direct_stats(Project.objects.all()))
    for project in Project.objects.all():
        stats = async_to_sync(selectors.project_stats_get_for_user)(user=staff, project_id=project.pk)
        assert_stats_equal(stats, direct_stats(Project.objects.filter(pk=project.pk)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counters_match_direct_counts_after_random_operations(seed):
    rng = random.Random(seed)
    users = [UserFactory() for _ in range(3)]
    ops = Operations(rng, users)
    names, weights = zip(*WEIGHTS.items(), strict=True)
    for step in range(120):
        name = rng.choices(names, weights)[0]
        getattr(ops, name)()
        if step % 10 == 9:
            _check(ops.users)
    _check(ops.users)


def test_backfill_recount_matches_direct_counts():
    """The migration's recount (also used for project moves) agrees with the triggers' running totals."""
    from django.db import connection

    rng = random.Random(7)
    users = [UserFactory() for _ in range(2)]
    ops = Operations(rng, users)
    for name in ["create_project", "upload", "finish_processing", "create_session", "ingest", "complete_and_score"]:
        getattr(ops, name)()
    before = list(ProjectStats.objects.order_by("pk").values())
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM analytics_projectstats")
    _recount_all()
    after = list(ProjectStats.objects.order_by("pk").values())
    for row in (*before, *after):
        row.pop("updated_at")
    assert after == before


def _recount_all():
    import importlib

    from django.db import connection

    migration = importlib.import_module("analytics.migrations.0002_triggers")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT analytics_recount(ARRAY(SELECT id FROM videos_project))")
        else:
            cursor.execute(migration.recount("1 = 1", migration.NOW["sqlite"]))
