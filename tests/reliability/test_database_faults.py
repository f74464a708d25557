"""pg_terminate_backend on every connection of a live uvicorn (Django's pool and the fast-read pool) under load."""

import threading
import time
from collections import Counter

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.conftest import tokens_for
from tests.reliability import report
from tests.reliability.conftest import SUBPROCESS_APP
from tests.reliability.test_authorization_matrix import World

pytestmark = [
    pytest.mark.skipif(
        not django_settings.DATABASE_URL.startswith("postgres"), reason="pg_terminate_backend needs PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 6
KILL_ROUNDS = 4
WAIT_LIMIT_S = 5.0


def terminate_app_backends() -> int:
    """Kill the server's connections to this test database only (never this test's own connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
            [SUBPROCESS_APP],
        )
        return int(cursor.fetchone()[0])


def requests_for(world: World) -> list[tuple[str, str, dict | None]]:
    """Fast-path reads (async pool), ORM reads (Ninja and DRF) and an ORM write."""
    project, video = f"/api/v1/projects/{world.project.pk}", f"/api/v1/videos/{world.video.pk}"
    return [
        ("GET", "/api/v1/videos", None),
        ("GET", f"{project}/videos", None),
        ("GET", "/api/v1/projects", None),
        ("GET", video, None),
        ("GET", f"{video}/ground-truth", None),
        ("GET", "/api/v1/auth/me", None),
        ("PATCH", project, {"description": "under fire"}),
    ]


class Load:
    """Client threads cycling through the request mix; every answer is recorded with its latency."""

    def __init__(self, base_url: str, token: str, mix: list[tuple[str, str, dict | None]]) -> None:
        self.base_url, self.mix = base_url, mix
        self.headers = {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results: list[tuple[str, int, float, bytes]] = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def run(self, offset: int) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:
            i = offset
            while not self.stop.is_set():
                method, path, body = self.mix[i % len(self.mix)]
                i += 1
                started = time.monotonic()
                try:
                    response = client.request(method, path, json=body)
                    status, content = response.status_code, response.content
                except httpx.HTTPError as exc:
                    status, content = 0, repr(exc).encode()
                with self.lock:
                    self.results.append((f"{method} {path}", status, time.monotonic() - started, content))

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def test_terminated_database_connections_answer_503_quickly_and_recover(start_server):
    world = World()
    server = start_server(DB_POOL_MIN_SIZE="4", ADB_POOL_MIN_SIZE="2")
    mix = requests_for(world)
    token = tokens_for(world.owner)["access"]
    killed: list[int] = []
    with Load(server.url, token, mix) as load:
        time.sleep(1.0)
        for _ in range(KILL_ROUNDS):
            killed.append(terminate_app_backends())
            time.sleep(1.0)
    # No restart: the same process answers every request of the mix again, sequentially.
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        after = [client.request(method, path, json=body).status_code for method, path, body in mix]
    assert server.running()

    statuses = Counter(status for _, status, _, _ in load.results)
    failed = [(what, status, body) for what, status, _, body in load.results if status >= 500 or status == 0]
    shaped = [body for _, status, body in failed if status == 503 and b'"error":"service_unavailable"' in body]
    slowest = max(elapsed for _, _, elapsed, _ in load.results)
    ok = (
        len(shaped) == len(failed)
        and slowest <= WAIT_LIMIT_S
        and all(200 <= s < 300 for s in after)
        and all(n > 0 for n in killed)
    )
    report.record(
        "pg_terminate",
        item=5,
        scenario=f"pg_terminate_backend on all app connections x{KILL_ROUNDS} under load "
        f"({CLIENTS} clients, Django pool + fast-read pool, uvicorn)",
        figure=f"{len(load.results)} requests: {len(failed)} failed, all 503 in the error shape; "
        f"slowest {slowest:.2f} s; {sum(200 <= s < 300 for s in after)}/{len(mix)} OK after, same process",
        goal=f"no wait > {WAIT_LIMIT_S:.0f} s, failures 503 (error shape), no restart",
        ok=ok,
        statuses=dict(statuses),
        backends_killed=killed,
        failures_by_request=dict(Counter(what for what, _, _ in failed)),
    )
    assert all(n > 0 for n in killed), killed
    assert len(shaped) == len(failed), failed[:5]
    assert all(200 <= s < 300 for s in after), after
    assert slowest <= WAIT_LIMIT_S, slowest
