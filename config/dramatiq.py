"""The embedded worker: with the stub broker, actors run on threads inside the web process."""

import logging
import threading

import dramatiq
from django.conf import settings
from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_worker: dramatiq.Worker | None = None


def start_embedded_worker(threads: int = 2) -> dramatiq.Worker | None:
    """Start (once) a worker on the configured broker when EMBEDDED_WORKER is on."""
    global _worker
    if not settings.EMBEDDED_WORKER:
        return None
    with _lock:
        if _worker is None:
            autodiscover_modules(*settings.DRAMATIQ_AUTODISCOVER_MODULES)
            _worker = dramatiq.Worker(dramatiq.get_broker(), worker_threads=threads)
            _worker.start()
            threading.Thread(target=_requeue_forever, name="requeue-stale-jobs", daemon=True).start()
            logger.info("embedded dramatiq worker started", extra={"threads": threads})
    return _worker


def _requeue_forever(every_s: float = 60.0) -> None:
    """The embedded stand-in for the `requeue_stale_jobs --every 60` service of scaled-out deployments."""
    import time

    from django.db import close_old_connections

    from videos.processing import requeue_stale_jobs

    while True:
        time.sleep(every_s)
        try:
            requeue_stale_jobs()
        except Exception:
            logger.exception("requeue_stale_jobs failed")
        finally:
            close_old_connections()
