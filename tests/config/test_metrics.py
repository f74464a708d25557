"""GET /metrics: Prometheus text that parses, latency by route pattern, jobs by state, sockets, actors, access."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dramatiq
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from dramatiq.brokers.stub import StubBroker
from prometheus_client.parser import text_string_to_metric_families

from config.metrics import ActorMetrics
from tests.conftest import tokens_for
from tests.factories import UserFactory
from videos.models import ProcessingJob, Project, Video

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
LATENCY = "framewise_http_request_duration_seconds"


def _video(owner) -> Video:
    project = Project.objects.create(owner=owner, name=f"p{owner.pk}")
    return Video.objects.create(
        project=project, original_name="a.mp4", file="videos/a.mp4", size_bytes=1, content_type="video/mp4", sha256="0"
    )


def _scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from a parsed /metrics answer."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        samples.setdefault(family.name, {})
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _count(samples, method: str, route: str, status: str) -> float:
    key = (("method", method), ("route", route), ("status", status))
    return samples.get(f"{LATENCY}_count", {}).get(key, 0.0)


def test_metrics_parse_and_carry_every_family_with_no_store(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        LATENCY,
        "process_cpu_seconds",
        "framewise_cache_requests",
        "framewise_websockets_open",
        "framewise_actor_duration_seconds",
        "framewise_jobs",
    } <= names


def test_video_detail_is_counted_under_its_route_template_not_its_id(client, user_api, user):
    video = _video(user)
    route = "/api/v1/videos/<video_id>"
    before = _count(_scrape(client), "GET", route, "200")
    assert user_api.get(f"/api/v1/videos/{video.pk}").status_code == 200
    assert user_api.get(f"/api/v1/videos/{video.pk}").status_code == 200
    assert user_api.get("/api/v1/videos/987654321").status_code == 404
    samples = _scrape(client)
    assert _count(samples, "GET", route, "200") == before + 2
    assert _count(samples, "GET", route, "404") >= 1
    routes = {dict(labels)["route"] for labels in samples[f"{LATENCY}_count"]}
    assert route in routes
    assert not {f"/api/v1/videos/{video.pk}", "/api/v1/videos/987654321"} & routes


def test_unmatched_paths_and_odd_methods_share_fixed_labels(client):
    before = _scrape(client)
    assert client.get("/no/such/page/12345").status_code == 404
    assert client.generic("BREW", "/metrics").status_code == 405
    after = _scrape(client)
    assert _count(after, "GET", "<unmatched>", "404") == _count(before, "GET", "<unmatched>", "404") + 1
    assert _count(after, "other", "/metrics", "405") == _count(before, "other", "/metrics", "405") + 1


def test_rate_limited_requests_keep_their_route(client, user_api, settings):
    settings.RATE_LIMITS = "general=1/m"
    route = "/api/v1/projects"
    before = _count(_scrape(client), "GET", route, "429")
    assert user_api.get("/api/v1/projects").status_code == 200
    assert user_api.get("/api/v1/projects").status_code == 429
    assert _count(_scrape(client), "GET", route, "429") == before + 1


def test_user_cache_lookups_count_hits_and_misses(client, user_api):
    def value(result: str) -> float:
        key = (("cache", "user"), ("result", result))
        return _scrape(client).get("framewise_cache_requests_total", {}).get(key, 0.0)

    hits, misses = value("hit"), value("miss")
    assert user_api.get("/api/v1/auth/me").status_code == 200
    assert user_api.get("/api/v1/auth/me").status_code == 200
    assert (value("hit"), value("miss")) == (hits + 1, misses + 1)


def test_jobs_are_reported_by_kind_and_state_exactly(client, user):
    video = _video(user)
    states = ["pending", "running", "succeeded", "succeeded", "failed"]
    ProcessingJob.objects.bulk_create(
        [ProcessingJob(video=video, kind="score", state=s) for s in states]
        + [ProcessingJob(video=video, kind="process", state="succeeded")]
    )
    jobs = {dict(k)["kind"] + ":" + dict(k)["state"]: v for k, v in _scrape(client)["framewise_jobs"].items()}
    assert jobs == {
        "process:pending": 0,
        "process:running": 0,
        "process:succeeded": 1,
        "process:failed": 0,
        "score:pending": 1,
        "score:running": 1,
        "score:succeeded": 2,
        "score:failed": 1,
    }


def test_metrics_token_when_set_is_required(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"] == "not_authenticated"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_open_websockets_gauge_follows_connect_and_disconnect():
    from config.asgi import application

    owner = await sync_to_async(UserFactory)()
    video = await sync_to_async(_video)(owner)
    token = (await sync_to_async(tokens_for)(owner))["access"]

    def gauge() -> float:
        from prometheus_client import REGISTRY

        return REGISTRY.get_sample_value("framewise_websockets_open")

    start = gauge()
    sockets = [
        WebsocketCommunicator(
            application, f"/ws/videos/{video.pk}/?token={token}", headers=[(b"origin", b"http://localhost")]
        )
        for _ in range(2)
    ]
    for socket in sockets:
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"
    assert gauge() == start + 2
    for socket in sockets:
        await socket.disconnect()
    assert gauge() == start


def test_actor_durations_are_recorded_by_outcome():
    from prometheus_client import REGISTRY

    broker = StubBroker(middleware=[ActorMetrics()])
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, actor_name="metrics_probe")
    def probe(fail: bool) -> None:
        time.sleep(0.01)
        if fail:
            raise ValueError("expected")

    def count(outcome: str) -> float:
        labels = {"actor": "metrics_probe", "outcome": outcome}
        return REGISTRY.get_sample_value("framewise_actor_duration_seconds_count", labels) or 0.0

    before = count("success"), count("failure")
    probe.send(False)
    probe.send(False)
    probe.send(True)
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join(probe.queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    assert (count("success"), count("failure")) == (before[0] + 2, before[1] + 1)
    labels = {"actor": "metrics_probe", "outcome": "success"}
    assert REGISTRY.get_sample_value("framewise_actor_duration_seconds_sum", labels) >= 0.02


def test_actor_metrics_middleware_is_installed_on_the_configured_broker():
    assert any(isinstance(m, ActorMetrics) for m in dramatiq.get_broker().middleware)


_PROCESS = """
import django, json, os
django.setup()
from django.test import Client
client = Client(HTTP_HOST="localhost")
for _ in range(int(os.environ["HITS"])):
    assert client.get("/health/live").status_code == 200
print(json.dumps(client.get("/metrics").content.decode()))
"""


def test_multiprocess_mode_sums_every_process_of_the_host(tmp_path, django_db_blocker):
    """Two processes share PROMETHEUS_MULTIPROC_DIR; the second one's scrape counts both."""
    from django.db import connection

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLITE_PATH")}
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        env["SQLITE_PATH"] = str(db["NAME"])
    env.update(DJANGO_SETTINGS_MODULE="config.settings", PROMETHEUS_MULTIPROC_DIR=str(tmp_path), EMBEDDED_WORKER="0")
    outputs = []
    for hits in (3, 4):
        run_env = {**env, "HITS": str(hits)}
        result = subprocess.run(
            [sys.executable, "-c", _PROCESS], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        outputs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    assert len(list(tmp_path.glob("*.db"))) >= 2  # One set of files per process.
    families = {f.name: f for f in text_string_to_metric_families(outputs[-1])}
    counts = {
        tuple(sorted(s.labels.items())): s.value for s in families[LATENCY].samples if s.name == f"{LATENCY}_count"
    }
    assert counts[(("method", "GET"), ("route", "/health/live"), ("status", "200"))] == 7
    assert "framewise_jobs" in families


def test_openmetrics_is_served_when_asked(client):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert "framewise_jobs" in {family.name for family in parse_openmetrics(response.content.decode())}
