"""Projects, videos, durable processing jobs, ground truth, test sessions and detections."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Project(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="project_owner_name_uniq")]
        indexes = [models.Index(fields=["owner", "-created_at", "-id"], name="project_owner_created_idx")]

    def __str__(self) -> str:
        return self.name


class Video(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    UNFINISHED = (Status.QUEUED, Status.PROCESSING)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="videos")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="uploaded_videos"
    )
    original_name = models.CharField(max_length=255)
    file = models.FileField(max_length=255)
    size_bytes = models.BigIntegerField()
    content_type = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=32, default="queued")
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    duration_s = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    codec = models.CharField(max_length=16, blank=True, default="")
    thumbnail = models.FileField(max_length=255, blank=True, default="")
    ground_truth_generated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "-created_at", "-id"], name="video_project_created_idx"),
            # (project, status) leads, so status-filtered pages keep the newest-first keyset order.
            models.Index(fields=["project", "status", "-created_at", "-id"], name="video_project_status_idx"),
            models.Index(
                fields=["project", "ground_truth_generated", "-created_at", "-id"], name="video_project_gt_idx"
            ),
            # Staff-wide lists and search pages (GET /videos): newest first over every project, or one status.
            models.Index(fields=["-created_at", "-id"], name="video_created_idx"),
            models.Index(fields=["status", "-created_at", "-id"], name="video_status_created_idx"),
            models.Index(
                fields=["updated_at"],
                name="video_unfinished_idx",
                condition=Q(status__in=["queued", "processing"]),
            ),
        ]

    def __str__(self) -> str:
        return self.original_name


class TestSession(models.Model):
    __test__ = False  # Not a pytest test class.

    class Status(models.TextChoices):
        OPEN = "open"
        SCORING = "scoring"
        COMPLETED = "completed"
        FAILED = "failed"

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="test_sessions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="test_sessions"
    )
    model_name = models.CharField(max_length=200)
    iou_threshold = models.FloatField(default=0.5)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    tp = models.PositiveIntegerField(default=0)
    fp = models.PositiveIntegerField(default=0)
    fn = models.PositiveIntegerField(default=0)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    f1 = models.FloatField(null=True, blank=True)
    mean_iou = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["video", "-created_at", "-id"], name="session_video_created_idx"),
            models.Index(fields=["status"], name="session_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} on video {self.video_id}"


class ProcessingJob(models.Model):
    """Durable job record: the source of truth for retries, leases and recovery (the broker is at-least-once)."""

    class Kind(models.TextChoices):
        PROCESS = "process"
        SCORE = "score"

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    ACTIVE = (State.PENDING, State.RUNNING)

    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="jobs")
    test_session = models.ForeignKey(TestSession, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    priority = models.SmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["state", "priority", "created_at"], name="job_state_priority_idx"),
            # Jobs by state and kind for /metrics: an index-only scan, no heap reads.
            models.Index(fields=["state", "kind"], name="job_state_kind_idx"),
            models.Index(
                fields=["created_at"], name="job_active_created_idx", condition=Q(state__in=["pending", "running"])
            ),
        ]
        constraints = [
            # At most one live job per video and kind: reprocess is idempotent while one is pending/running.
            models.UniqueConstraint(
                fields=["video"],
                condition=Q(kind="process", state__in=["pending", "running"]),
                name="job_one_active_process_per_video",
            ),
            models.UniqueConstraint(
                fields=["test_session"],
                condition=Q(kind="score", state__in=["pending", "running"]),
                name="job_one_active_score_per_session",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.state})"


class GroundTruthBox(models.Model):
    # Indexed as the leading column of gt_video_frame_idx; a separate FK index would only slow COPY.
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="ground_truth", db_index=False)
    frame = models.PositiveIntegerField()
    timestamp_ms = models.PositiveIntegerField()
    label = models.CharField(max_length=64)
    x = models.IntegerField()
    y = models.IntegerField()
    w = models.PositiveIntegerField()
    h = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["video", "frame", "id"], name="gt_video_frame_idx")]

    def __str__(self) -> str:
        return f"{self.label} @ frame {self.frame}"


class DetectionEvent(models.Model):
    class Result(models.TextChoices):
        TP = "TP"
        FP = "FP"

    # Neither key has a database constraint: each check runs once per row at commit and cost ~40% of bulk
    # ingest time each (bench/bench_sessions.py). Integrity holds by locking instead: ingest inserts under
    # the session's row lock, and deletes lock the sessions first (services.lock_sessions) and cascade
    # through the ORM. Both keys lead composite indexes below, so no separate FK indexes either.
    test_session = models.ForeignKey(
        TestSession, on_delete=models.CASCADE, related_name="detections", db_index=False, db_constraint=False
    )
    # Denormalised from the session: the counter triggers (analytics) group a COPY's rows by it without a
    # join. Not indexed (a video's detections are read per session, selectors.video_detection_parts), so
    # a video's deletion reaches them through its sessions, by det_session_ts_idx.
    video = models.ForeignKey(
        Video, on_delete=models.DO_NOTHING, related_name="detections", db_index=False, db_constraint=False
    )
    frame = models.PositiveIntegerField()
    timestamp_ms = models.PositiveIntegerField()
    label = models.CharField(max_length=64)
    confidence = models.FloatField()
    x = models.FloatField()
    y = models.FloatField()
    w = models.FloatField()
    h = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["test_session", "timestamp_ms", "id"], name="det_session_ts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.confidence:.2f} @ frame {self.frame}"


class DetectionResult(models.Model):
    """A scored detection's `validation_result` and `iou`, in a narrow table of its own: the scoring job
    COPYs these rows in, where updating every detection row rewrote each wide tuple and all its indexes
    (4x slower, bench/bench_sessions.py). Readers LEFT JOIN it; an unscored detection has no row."""

    detection = models.OneToOneField(
        DetectionEvent, on_delete=models.DO_NOTHING, primary_key=True, related_name="result", db_constraint=False
    )
    # Cascades (and re-scoring replaces) by session; no per-row constraint check, as for the detections.
    test_session = models.ForeignKey(
        TestSession, on_delete=models.CASCADE, related_name="results", db_index=False, db_constraint=False
    )
    validation_result = models.CharField(max_length=2, choices=DetectionEvent.Result.choices)
    iou = models.FloatField()
    # Deletes by session (re-scoring, cascade) find their rows through an index on test_session_id made by
    # migration 0006: BRIN on PostgreSQL, where a btree cost ~40% of the write-back COPY and rows arrive in
    # one batch per session, so block ranges stay narrow; a plain index elsewhere.

    def __str__(self) -> str:
        return f"{self.validation_result} (IoU {self.iou:.2f}) for detection {self.detection_id}"
