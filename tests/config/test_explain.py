"""Every hot query has an index: EXPLAIN with sequential scans priced out finds no Seq Scan of a large table.

Each query is compiled from the selector the API calls (the same queryset, through the same keyset
pagination, first page and a cursor page), or captured while a gate selector runs. With
`enable_seqscan = off` PostgreSQL still picks a Seq Scan when no index can serve the query, so any
Seq Scan left in the plan means "no usable index", whatever the table size in the test.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import User, UserActivity
from analytics import selectors as analytics_selectors
from config.metrics import JobsCollector
from config.pagination import DEFAULT_PAGE, LARGE_PAGE, PageSpec, paginate, plan_page
from tests.factories import UserFactory
from videos import selectors
from videos.models import DetectionEvent, GroundTruthBox, ProcessingJob, Project, TestSession, Video
from videos.processing import requeue_stale_jobs

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN plans are checked on PostgreSQL only"),
]

LARGE_TABLES = {
    "analytics_projectstats",
    "accounts_user",
    "accounts_useractivity",
    "videos_project",
    "videos_video",
    "videos_groundtruthbox",
    "videos_detectionevent",
    "videos_testsession",
    "videos_processingjob",
}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _seq_scans(sql: str, params: Any = ()) -> list[str]:
    """Large tables the planner can only read by Seq Scan for this query."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (document,) = cursor.fetchone()
    return [
        node["Relation Name"]
        for node in _nodes(document[0]["Plan"])
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE_TABLES
    ]


def _pages(queryset, ordering, spec: PageSpec = DEFAULT_PAGE, **query: str) -> list[tuple[str, Any]]:
    """The SQL of the first page and of the page after its first row, as the paginator builds them."""
    factory = RequestFactory()
    first = factory.get("/", {**query, "page_size": "1"})
    next_url = paginate(first, queryset, ordering, spec=spec)["next"]
    assert next_url, "the fixture must give this query at least two rows"
    cursor = parse_qs(urlparse(next_url).query)["cursor"][0]
    second = factory.get("/", {**query, "page_size": "1", "cursor": cursor})
    return [plan_page(r, queryset, ordering, spec).queryset.query.sql_with_params() for r in (first, second)]


def _video_detection_pages(video_id: int) -> list[str]:
    """The SQL of a video's first detections page and of the page after its first row (merged sessions)."""
    factory = RequestFactory()
    with CaptureQueriesContext(connection) as queries:
        next_url = selectors.video_detection_page(factory.get("/", {"page_size": "1"}), video_id=video_id)["next"]
        cursor = parse_qs(urlparse(next_url).query)["cursor"][0]
        selectors.video_detection_page(factory.get("/", {"page_size": "1", "cursor": cursor}), video_id=video_id)
    return [q["sql"] for q in queries.captured_queries if "merged" in q["sql"]]


def _captured(run) -> list[str]:
    """SQL a selector or service executed (with its parameters inlined by the driver)."""
    with CaptureQueriesContext(connection) as queries:
        run()
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]


@pytest.fixture
def world() -> dict[str, Any]:
    owner = UserFactory(plan=User.Plan.PRO)
    UserFactory(plan=User.Plan.PRO)
    UserFactory(is_active=False)
    UserFactory(is_active=False, plan=User.Plan.PRO)
    staff = UserFactory(is_staff=True)
    projects = [Project.objects.create(owner=owner, name=f"p{i}") for i in range(2)]
    now = timezone.now()
    videos = [
        Video.objects.create(
            project=projects[i % 2],
            original_name=f"street-cam-{i}.mp4",
            file="v",
            size_bytes=1,
            content_type="video/mp4",
            sha256="0",
            status=Video.Status.COMPLETED,
            ground_truth_generated=True,
            created_at=now - timedelta(minutes=i),
        )
        for i in range(4)
    ]
    video = Video.objects.filter(project=projects[0]).first()
    sessions = [TestSession.objects.create(video=video, model_name=f"m{i}") for i in range(2)]
    GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video=video, frame=f, timestamp_ms=f * 40, label="motion", x=1, y=1, w=2, h=2) for f in range(3)
    )
    DetectionEvent.objects.bulk_create(
        DetectionEvent(
            test_session=s,
            video=video,
            frame=f,
            timestamp_ms=f * 40,
            label="motion",
            confidence=0.9,
            x=1,
            y=1,
            w=2,
            h=2,
        )
        for s in sessions
        for f in range(3)
    )
    UserActivity.objects.bulk_create(UserActivity(user=owner, action="login") for _ in range(3))
    ProcessingJob.objects.bulk_create(ProcessingJob(video=v, kind="process", state="succeeded") for v in videos)
    return {"owner": owner, "staff": staff, "project": projects[0], "video": video, "session": sessions[0]}


def _hot_queries(w: dict[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    owner, staff, video = w["owner"], w["staff"], w["video"]
    queries: dict[str, list[tuple[str, Any]]] = {}
    for who, user in (("owner", owner), ("staff", staff)):
        queries[f"projects list ({who})"] = _pages(selectors.project_list(user=user), selectors.PROJECT_ORDERING)
        for search in ("", "street", "AM"):  # "AM": shorter than a trigram.
            for status in ("", "completed"):
                qs = selectors.video_search(user=user, search=search, status=status)
                queries[f"search {search!r} status {status!r} ({who})"] = _pages(qs, selectors.VIDEO_ORDERING)
    for status in (None, "completed"):
        for ground_truth in (None, True):
            qs = selectors.video_list(project_id=w["project"].pk, status=status, ground_truth_generated=ground_truth)
            queries[f"videos list status={status} gt={ground_truth}"] = _pages(qs, selectors.VIDEO_ORDERING)
    queries["ground truth page"] = _pages(
        selectors.ground_truth_list(video_id=video.pk), selectors.GROUND_TRUTH_ORDERING, LARGE_PAGE
    )
    queries["detections per session"] = _pages(
        selectors.detection_list(session_id=w["session"].pk), selectors.DETECTION_ORDERING, LARGE_PAGE
    )
    queries["detections per video"] = [(sql, ()) for sql in _video_detection_pages(video.pk)]
    queries["test sessions list"] = _pages(selectors.session_list(video_id=video.pk), selectors.SESSION_ORDERING)
    for name, ordering in account_selectors.USER_ORDERINGS.items():
        for filters in (
            {},
            {"plan": "pro"},
            {"is_active": False},
            {"plan": "pro", "is_active": True},
            {"search": "user"},
        ):
            qs = account_selectors.user_list(**filters)
            queries[f"users ordering={name} {filters}"] = _pages(qs, ordering)
    queries["user activity"] = _pages(
        account_selectors.activity_list(user_id=owner.pk), account_selectors.ACTIVITY_ORDERING
    )
    # The staff dashboard sums every project's counter row by design (one row per project, whatever the
    # videos and detections): a scan of that small table is its plan, so only the owner's is checked here.
    queries["dashboard (owner)"] = [analytics_selectors.dashboard_query(user=owner)]
    for who, user in (("owner", owner), ("staff", staff)):
        queries[f"project stats ({who})"] = [
            analytics_selectors.project_stats_query(user=user, project_id=w["project"].pk)
        ]
    gates = {
        "project detail": lambda: async_to_sync(selectors.project_get_for_user)(
            user=owner, project_id=w["project"].pk, annotate=True
        ),
        "video detail": lambda: async_to_sync(selectors.video_get_for_user)(user=owner, video_id=video.pk),
        "session detail": lambda: async_to_sync(selectors.session_get_for_user)(user=owner, session_id=w["session"].pk),
        "jobs by state (/metrics)": lambda: list(JobsCollector().collect()),
        "stale jobs (requeue_stale_jobs)": requeue_stale_jobs,
    }
    for name, run in gates.items():
        captured = _captured(run)
        assert captured, name
        queries[name] = [(sql, ()) for sql in captured]
    return queries


def test_no_hot_query_needs_a_sequential_scan_of_a_large_table(world):
    offences = {}
    for name, statements in _hot_queries(world).items():
        for sql, params in statements:
            if tables := _seq_scans(sql, params):
                offences[name] = sorted(set(tables))
    assert offences == {}


def test_the_check_catches_a_query_no_index_serves(world):
    """The detector itself: a filter on an unindexed column must be reported."""
    sql, params = Video.objects.filter(codec="h264").query.sql_with_params()
    assert _seq_scans(sql, params) == ["videos_video"]


def test_a_videos_detections_merge_the_session_index_ranges(world):
    """No (video, timestamp) index: each session's range of det_session_ts_idx is read in order and merged
    (Merge Append), with nothing sorted, on the first page and after a cursor. Sorts are priced out as
    sequential scans are: with the fixture's few rows (or another test's statistics) sorting each session
    is the cheaper plan, and an unavoidable Sort (a shape that cannot merge) still shows."""
    pages = _video_detection_pages(world["video"].pk)
    assert len(pages) == 2
    for sql in pages:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            (document,) = cursor.fetchone()
        nodes = list(_nodes(document[0]["Plan"]))
        kinds = [node["Node Type"] for node in nodes]
        assert "Merge Append" in kinds and "Sort" not in kinds, kinds
        scans = [n["Index Name"] for n in nodes if n.get("Relation Name") == "videos_detectionevent"]
        assert scans == ["det_session_ts_idx"] * 2  # the fixture's two sessions


def _index_names(sql: str, params: Any = ()) -> set[str]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (document,) = cursor.fetchone()
    return {node["Index Name"] for node in _nodes(document[0]["Plan"]) if "Index Name" in node}


def test_search_text_is_served_by_the_trigram_index(world):
    """Across all videos (staff) with no keyset order to walk instead, the substring filter uses video_name_trgm.

    A caller's own search may start from their projects instead (owner index, then each project's videos):
    the planner's choice, and index-backed either way (checked above)."""
    sql, params = selectors.video_search(user=world["staff"], search="street").values("pk").query.sql_with_params()
    assert "video_name_trgm" in _index_names(sql, params)
