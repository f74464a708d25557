"""Prometheus metrics: the shared metric objects, the latency middleware, the jobs collector and GET /metrics."""

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram(
    "framewise_http_request_duration_seconds",
    "HTTP request latency by route pattern (not raw path).",
    ["method", "route", "status"],
)
CACHE_REQUESTS = Counter(
    "framewise_cache_requests_total",
    "Application cache lookups by cache name and result (hit, miss, stale, error).",
    ["cache", "result"],
)
WEBSOCKETS_OPEN = Gauge(
    "framewise_websockets_open",
    "WebSocket connections currently open in this process.",
    multiprocess_mode="livesum",  # Multiprocess mode: the sum over live processes.
)
ACTOR_DURATION = Histogram(
    "framewise_actor_duration_seconds",
    "Dramatiq actor run time by actor and outcome.",
    ["actor", "outcome"],
)

UNMATCHED_ROUTE = "<unmatched>"
# Anything else is folded into "other" so a client cannot grow the label set with made-up methods.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: HttpRequest) -> str:
    """The URL pattern that served the request ("/api/v1/videos/<video_id>"), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:  # Answered before URL resolution (e.g. 429 from the rate limiter): resolve it here.
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED_ROUTE
    return "/" + match.route


class PrometheusMiddleware:
    """Request latency by method, route pattern and status; async-only, so it costs no thread hop."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        status = 500
        try:
            response = await self.get_response(request)
            status = response.status_code
            return response
        finally:
            observe_request(request, route_label(request), status, started)


def observe_request(request: HttpRequest, route: str, status: int, started: float) -> None:
    """One REQUEST_LATENCY sample (the request took from `started`, a perf_counter reading, until now)."""
    method = request.method if request.method in _METHODS else "other"
    REQUEST_LATENCY.labels(method, route, str(status)).observe(time.perf_counter() - started)


class ActorMetrics(dramatiq.Middleware):
    """Records ACTOR_DURATION for every processed message (outcome: success or failure)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        with self._lock:
            self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            started = self._started.pop(message.message_id, None)
        if started is not None:
            outcome = "success" if exception is None else "failure"
            ACTOR_DURATION.labels(message.actor_name, outcome).observe(time.perf_counter() - started)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        with self._lock:
            self._started.pop(message.message_id, None)


class JobsCollector(Collector):
    """framewise_jobs{kind, state}: ProcessingJob rows counted at scrape time (index-only scan of job_state_kind_idx).

    The database is shared, so every process reports the same figure: the value is read per scrape, never
    accumulated, and a database error drops the family from that scrape instead of failing it.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from videos.models import ProcessingJob

        family = GaugeMetricFamily("framewise_jobs", "Processing jobs by kind and state.", labels=["kind", "state"])
        try:
            counts = {
                (row["kind"], row["state"]): row["n"]
                for row in ProcessingJob.objects.order_by().values("state", "kind").annotate(n=Count("*"))
            }
        except Exception:  # noqa: BLE001 - a scrape must still answer while the database is down
            logger.warning("jobs collector: database unavailable")
            return
        for kind in ProcessingJob.Kind.values:
            for state in ProcessingJob.State.values:  # Zeros too, so alerts see a series, not an absence.
                family.add_metric([kind, state], counts.get((kind, state), 0))
        yield family


class _HostMetrics:
    """What one scrape reports: every process of this host in multiprocess mode, else this process; plus jobs."""

    def collect(self) -> Iterator[Any]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            yield from multiprocess.MultiProcessCollector(CollectorRegistry()).collect()
        else:
            yield from REGISTRY.collect()
        yield from JobsCollector().collect()


def scrape(accept: str = "") -> tuple[bytes, str]:
    """(body, content type) negotiated from the Accept header: Prometheus text, or OpenMetrics when asked."""
    encoder, content_type = choose_encoder(accept)
    return encoder(_HostMetrics()), content_type  # type: ignore[arg-type]


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return hmac.compare_digest(supplied.encode(), token.encode())


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: open like /health unless METRICS_TOKEN is set (then `Authorization: Bearer <token>`)."""
    if not _authorized(request):
        from config.errors import error_response  # Lazy: this module loads with the broker, before the apps.

        return error_response(401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, content_type = scrape(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
