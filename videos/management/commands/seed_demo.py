"""Seed benchmark data with COPY: scale 1 = 10 000 users, 50 projects, 10 000 videos, 1 M boxes, 500 k detections."""

import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max, Model
from django.utils import timezone

from accounts.models import User
from config.bulk import bulk_insert
from videos.models import DetectionEvent, GroundTruthBox, Project, TestSession, Video

BENCH_USER, BENCH_ADMIN = "bench", "bench-admin"
BOXES_PER_VIDEO = 1000  # 1 000 000 boxes over 1 000 videos at scale 1
PLANS = ("free", "free", "free", "pro", "enterprise")
LABELS = ("car", "person", "bike", "truck")


def _count(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _next_id(model: type[Model]) -> int:
    return int(model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1


class Command(BaseCommand):
    help = "Fill an empty database with demo/benchmark data (COPY on PostgreSQL) and print the bench credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", type=float, default=1.0, help="1 = the benchmark size; 0.01 for a quick try")
        parser.add_argument("--password", default="bench-Passw0rd!", help="password of the bench users")
        parser.add_argument("--seed", type=int, default=7, help="random seed (same data for the same scale)")

    def handle(self, *args: Any, scale: float, password: str, seed: int, **options: Any) -> None:
        if scale <= 0:
            raise CommandError("--scale must be positive.")
        if User.objects.filter(username__in=[BENCH_USER, BENCH_ADMIN]).exists() or Video.objects.exists():
            raise CommandError("The database already holds videos or bench users; seed_demo only fills an empty one.")
        started = time.monotonic()
        rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
        now = timezone.now()
        with transaction.atomic():
            counts = self._seed(scale, make_password(password), rng, now)
        if connection.vendor == "postgresql":
            # Fresh planner statistics for the tables just filled and, outside a transaction (VACUUM cannot run
            # in one), what autovacuum would leave behind: visibility maps that let index-only scans skip the
            # heap, and the counter rows' dead versions gone.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)")
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.stdout.write(f"Seeded {summary} in {time.monotonic() - started:.1f} s.")
        self.stdout.write(f"Bench user (owns the projects): username={BENCH_USER} password={password}")
        self.stdout.write(f"Bench staff user (users list):  username={BENCH_ADMIN} password={password}")

    def _seed(self, scale: float, password_hash: str, rng: random.Random, now: datetime) -> dict[str, int]:
        n_users, n_projects, n_videos = _count(10_000, scale), _count(50, scale), _count(10_000, scale)
        n_gt_videos, n_sessions = _count(1_000, scale), _count(2_000, scale)
        n_detections = _count(500_000, scale)
        uid, pid, vid = _next_id(User), _next_id(Project), _next_id(Video)
        sid, gid, did = _next_id(TestSession), _next_id(GroundTruthBox), _next_id(DetectionEvent)
        owner_id, admin_id = uid, uid + 1

        def users() -> Iterator[tuple[Any, ...]]:
            yield (owner_id, password_hash, BENCH_USER, "bench@example.com", False, True, now, "pro")
            yield (admin_id, password_hash, BENCH_ADMIN, "bench-admin@example.com", True, True, now, "enterprise")
            for i in range(2, max(n_users, 2)):
                joined = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 365))
                yield (
                    uid + i,
                    "!",
                    f"seed{i:06d}",
                    f"seed{i:06d}@example.com",
                    False,
                    rng.random() > 0.1,
                    joined,
                    rng.choice(PLANS),
                )

        user_columns = ("id", "password", "username", "email", "is_staff", "is_active", "date_joined", "plan")
        bulk_insert(
            User, (*user_columns, "is_superuser", "first_name", "last_name"), ((*row, False, "", "") for row in users())
        )
        bulk_insert(
            Project,
            ("id", "owner_id", "name", "description", "created_at", "updated_at"),
            ((pid + i, owner_id, f"Project {i:03d}", "seeded", now, now) for i in range(n_projects)),
        )

        def videos() -> Iterator[tuple[Any, ...]]:
            for i in range(n_videos):
                created = now - timedelta(seconds=i * 60)
                done = i < n_gt_videos or rng.random() < 0.8
                yield (
                    vid + i,
                    pid + i % n_projects,
                    owner_id,
                    f"clip_{i:05d}.mp4",
                    f"videos/seed/{i}.mp4",
                    5_000_000 + i,
                    "video/mp4",
                    f"{i:064x}",
                    "completed" if done else "queued",
                    "done" if done else "queued",
                    100 if done else 0,
                    "",
                    12.0,
                    25.0,
                    1280,
                    720,
                    300,
                    "h264",
                    f"thumbnails/seed/{i}.jpg" if done else "",
                    i < n_gt_videos,
                    created,
                    created,
                )

        bulk_insert(
            Video,
            (
                "id",
                "project_id",
                "uploaded_by_id",
                "original_name",
                "file",
                "size_bytes",
                "content_type",
                "sha256",
                "status",
                "stage",
                "progress",
                "error",
                "duration_s",
                "fps",
                "width",
                "height",
                "frame_count",
                "codec",
                "thumbnail",
                "ground_truth_generated",
                "created_at",
                "updated_at",
            ),
            videos(),
        )
        per_video = BOXES_PER_VIDEO
        bulk_insert(
            GroundTruthBox,
            ("id", "video_id", "frame", "timestamp_ms", "label", "x", "y", "w", "h"),
            (
                (gid + v * per_video + b, vid + v, b // 4, (b // 4) * 40, LABELS[b % 4], b % 600, b % 300, 40, 30)
                for v in range(n_gt_videos)
                for b in range(per_video)
            ),
        )

        def sessions() -> Iterator[tuple[Any, ...]]:
            for i in range(n_sessions):
                completed = i % 2 == 0
                metrics = (0.8, 0.7, 0.75, 0.6) if completed else (None, None, None, None)
                yield (
                    sid + i,
                    vid + i % n_gt_videos,
                    owner_id,
                    f"model-{i % 5}",
                    0.5,
                    "completed" if completed else "open",
                    70 if completed else 0,
                    18 if completed else 0,
                    30 if completed else 0,
                    *metrics,
                    "",
                    now - timedelta(minutes=i),
                    now if completed else None,
                )

        bulk_insert(
            TestSession,
            (
                "id",
                "video_id",
                "created_by_id",
                "model_name",
                "iou_threshold",
                "status",
                "tp",
                "fp",
                "fn",
                "precision",
                "recall",
                "f1",
                "mean_iou",
                "error",
                "created_at",
                "completed_at",
            ),
            sessions(),
        )
        per_session = max(1, n_detections // n_sessions)
        bulk_insert(
            DetectionEvent,
            ("id", "test_session_id", "video_id", "frame", "timestamp_ms", "label", "confidence", "x", "y", "w", "h"),
            (
                (
                    did + s * per_session + d,
                    sid + s,
                    vid + s % n_gt_videos,
                    d // 2,
                    (d // 2) * 40,
                    LABELS[d % 4],
                    round(rng.random(), 3),
                    float(d % 600),
                    float(d % 300),
                    40.0,
                    30.0,
                )
                for s in range(n_sessions)
                for d in range(per_session)
            ),
        )
        with connection.cursor() as cursor:  # explicit ids: move the sequences past them
            for sql in connection.ops.sequence_reset_sql(
                no_style(), [User, Project, Video, GroundTruthBox, TestSession, DetectionEvent]
            ):
                cursor.execute(sql)
        return {
            "users": max(n_users, 2),
            "projects": n_projects,
            "videos": n_videos,
            "ground-truth boxes": n_gt_videos * per_video,
            "test sessions": n_sessions,
            "detections": n_sessions * per_session,
        }
