"""EXPLAIN the hot reads on the seeded benchmark database with its real statistics (no planner overrides).

Run by bench_http.py after seeding (or alone: `DATABASE_URL=postgres://…/fw_bench_http python bench/explain_hot.py`).
Each statement is compiled from the selector the API calls, as the page the API would serve for the bench
users; the script prints every plan node that reads a large table (LARGE_ROWS) sequentially and exits 1 if
there is one.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from accounts import selectors as account_selectors  # noqa: E402
from accounts.models import User  # noqa: E402
from analytics import selectors as analytics_selectors  # noqa: E402
from config.pagination import LARGE_PAGE, plan_page  # noqa: E402
from videos import selectors  # noqa: E402
from videos.models import Video  # noqa: E402

LARGE = {
    "accounts_user",
    "videos_video",
    "videos_groundtruthbox",
    "videos_detectionevent",
    "videos_detectionresult",
    "videos_testsession",
    "videos_processingjob",
    "analytics_projectstats",
}


def _first_page(queryset: Any, ordering: Any, spec: Any = None) -> tuple[str, Any]:
    request = RequestFactory().get("/")
    plan = plan_page(request, queryset, ordering, spec) if spec else plan_page(request, queryset, ordering)
    return plan.queryset.query.sql_with_params()


def hot_statements() -> dict[str, tuple[str, Any]]:
    owner = User.objects.get(username="bench")
    project = selectors.project_list(user=owner).order_by("pk").first()
    video = Video.objects.filter(project=project, ground_truth_generated=True).order_by("pk").first()
    return {
        "videos list page": _first_page(selectors.video_list(project_id=project.pk), selectors.VIDEO_ORDERING),
        "video detail": Video.objects.filter(pk=video.pk, project__owner_id=owner.pk).query.sql_with_params(),
        "ground-truth page (1000)": _first_page(
            selectors.ground_truth_list(video_id=video.pk), selectors.GROUND_TRUTH_ORDERING, LARGE_PAGE
        ),
        "users filtered": _first_page(
            account_selectors.user_list(plan="pro", is_active=True), account_selectors.USER_ORDERINGS["-date_joined"]
        ),
        "search": _first_page(selectors.video_search(user=owner, search="clip_01"), selectors.VIDEO_ORDERING),
        "dashboard": analytics_selectors.dashboard_query(user=owner),
    }


def seq_scans(sql: str, params: Any) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (document,) = cursor.fetchone()
    found, stack = [], [document[0]["Plan"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("Plans", []))
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE:
            found.append(node["Relation Name"])
    return [table for table in found if _rows(table) >= LARGE_ROWS]


# A table of the LARGE set counts as large from this many rows (planner statistics): below it, as for the 50
# counter rows of scale 1 that fit in a few pages, reading the table is the plan PostgreSQL should pick.
# tests/config/test_explain.py proves, with sequential scans priced out, that an index exists either way.
LARGE_ROWS = 10_000


def _rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        (rows,) = cursor.fetchone()
    return rows


def main() -> int:
    report = {name: seq_scans(sql, params) for name, (sql, params) in hot_statements().items()}
    for name, tables in report.items():
        print(f"EXPLAIN {name:26} {'Seq Scan of ' + ', '.join(tables) if tables else 'no Seq Scan of a large table'}")
    print(json.dumps({"explain": report}))
    return 1 if any(report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
