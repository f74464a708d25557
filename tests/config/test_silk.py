"""django-silk: off by default (no route), on with SILK_ENABLED=1: staff-only, SQL recorded, no JWT stored."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_silk_is_off_by_default_and_silk_answers_404_in_the_error_shape(client):
    assert "silk" not in settings.INSTALLED_APPS
    assert not any("silk" in m for m in settings.MIDDLEWARE)
    response = client.get("/silk/")
    assert response.status_code == 404
    body = response.json()
    assert (body["error"], body["details"]) == ("not_found", None)


@pytest.fixture(scope="module")
def silk_run(tmp_path_factory) -> dict:
    """The auth flow of tests/config/silk_flow.py in a child process built with SILK_ENABLED=1."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLITE_PATH", "BROKER_URL")}
    db = connection.settings_dict
    if connection.vendor == "postgresql":  # The child creates (and drops) test_<this name>_silk.
        name = db["NAME"].removeprefix("test_")
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{name}_silk"
    else:
        env["SQLITE_PATH"] = str(tmp_path_factory.mktemp("silk") / "silk.sqlite3")
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SILK_ENABLED="1",
        SILK_PROFILE_PATHS="/api/v1/projects",
        RATE_LIMIT_ENABLED="0",
        EMBEDDED_WORKER="0",
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.config.silk_flow"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_silk_records_requests_and_the_sql_of_async_views(silk_run):
    assert {"/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/projects"} <= set(silk_run["recorded_paths"])
    assert silk_run["ninja_sql_queries"] >= 1


def test_no_jwt_reaches_silks_tables(silk_run):
    assert silk_run["leaks"] == []
    assert silk_run["eyJ_in_store"] is False
    assert "Corr3ct" not in silk_run["login_request_body"]
    assert "********************" in silk_run["login_request_body"]


def test_silk_pages_are_for_staff_only(silk_run):
    status, location = silk_run["anonymous"]
    assert status == 302
    assert location.startswith("/admin/login/")
    assert silk_run["plain_user"] == 403
    assert silk_run["staff"] == 200


def test_python_profiler_runs_only_on_chosen_paths(silk_run):
    assert silk_run["profiled"] == ["/api/v1/projects"]
