"""Maintained per-project counters, kept exact by database triggers (see migrations/0002_triggers.py)."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from videos.models import Project


class ProjectStats(models.Model):
    """One row per project, written only by triggers on the videos tables, never by Python code.

    `owner_id` mirrors the project's owner so a dashboard is one indexed range over the caller's rows.
    `active_test_sessions` counts sessions that are `open` or `scoring` (not yet finished). The sums over
    completed sessions let the averages be sum / completed_session_count (a NULL metric counts as 0).
    """

    # No database constraint and DO_NOTHING: the project's delete trigger removes the row, and nothing
    # here may make a project delete slower or order-dependent.
    project = models.OneToOneField(
        Project, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="stats"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    video_count = models.BigIntegerField(db_default=0)
    videos_queued = models.BigIntegerField(db_default=0)
    videos_processing = models.BigIntegerField(db_default=0)
    videos_completed = models.BigIntegerField(db_default=0)
    videos_failed = models.BigIntegerField(db_default=0)
    test_session_count = models.BigIntegerField(db_default=0)
    active_test_sessions = models.BigIntegerField(db_default=0)
    completed_session_count = models.BigIntegerField(db_default=0)
    sum_precision = models.FloatField(db_default=0.0)
    sum_recall = models.FloatField(db_default=0.0)
    sum_f1 = models.FloatField(db_default=0.0)
    detection_count = models.BigIntegerField(db_default=0)
    ground_truth_count = models.BigIntegerField(db_default=0)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "project stats"

    def __str__(self) -> str:
        return f"stats of project {self.project_id}"
