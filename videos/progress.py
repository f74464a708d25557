"""Progress fan-out: a video's current state to its channel groups (video and project)."""

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.utils import timezone
from redis.exceptions import RedisError

from config.errors import NotFound
from videos.models import Video

logger = logging.getLogger(__name__)

PROGRESS_FIELDS = ("id", "project_id", "status", "stage", "progress", "error")


def video_group(video_id: int) -> str:
    return f"video.{video_id}"


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def video_state(video_id: int) -> dict[str, Any] | None:
    row = Video.objects.filter(pk=video_id).values(*PROGRESS_FIELDS).first()
    if row is None:
        return None
    return {
        "video_id": row["id"],
        "project_id": row["project_id"],
        "status": row["status"],
        "stage": row["stage"],
        "progress": row["progress"],
        "error": row["error"] or None,
        "at": timezone.now().isoformat(),
    }


# Embedded mode: the in-memory layer's queues belong to the loop that serves receivers, and are not
# thread-safe, so a worker thread must hand its sends to that loop.
_receiver_loop: asyncio.AbstractEventLoop | None = None


def remember_receiver_loop() -> None:
    """Called by receivers (sockets, long polls) so embedded-mode publishers know where to send."""
    global _receiver_loop
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        _receiver_loop = asyncio.get_running_loop()


# Publishers off the event loop (workers, the embedded worker thread) send through one long-lived loop per
# process. `async_to_sync` would start a new loop per call, and channels-redis opens a new connection per
# loop: about 5 ms per message, ~10 % of scoring 100 000 detections (bench/bench_sessions.py).
_publisher: tuple[int, asyncio.AbstractEventLoop] | None = None
_publisher_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid():  # none yet, or inherited by a forked child
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="progress-publisher", daemon=True).start()
            _publisher = (os.getpid(), loop)
        return _publisher[1]


async def _send_all(layer: Any, groups: list[str], message: dict[str, Any]) -> None:
    await asyncio.gather(*(layer.group_send(group, message) for group in groups))


def _group_send(layer: Any, groups: list[str], message: dict[str, Any]) -> None:
    """Best effort: a channel-layer outage must not fail the job that reports progress (clients re-snapshot)."""
    receivers = _receiver_loop
    in_memory = isinstance(layer, InMemoryChannelLayer)
    loop = receivers if in_memory and receivers is not None and receivers.is_running() else None
    try:
        if in_memory and loop is None:
            async_to_sync(_send_all)(layer, groups, message)
            return
        future = asyncio.run_coroutine_threadsafe(_send_all(layer, groups, message), loop or _publisher_loop())
        try:
            future.result(timeout=5)
        except TimeoutError:
            future.cancel()
            raise
    except (RedisError, OSError, TimeoutError):
        logger.warning("channel layer unavailable: progress message dropped", extra={"groups": groups})


def publish_video(video_id: int) -> None:
    """Send the video's state to its groups (sync: called from workers). Channels is at-most-once:
    clients get a fresh snapshot whenever they (re)connect."""
    state = video_state(video_id)
    layer = get_channel_layer()
    if state is None or layer is None:
        return
    message = {"type": "video.progress", "payload": {"type": "progress", **state}}
    _group_send(layer, [video_group(video_id), project_group(state["project_id"])], message)


async def wait_for_change(video: Video, *, wait_s: float) -> dict[str, Any]:
    """Long poll: answer as soon as the video's status/stage/progress differs from `video`, or at `wait_s`.

    Waits on the video's channel group (pushed by the worker), not a polling loop on the database.
    """
    seen = (video.status, video.stage, video.progress)
    remember_receiver_loop()
    layer = get_channel_layer()
    channel = await layer.new_channel() if layer is not None and wait_s > 0 else None
    if channel is not None:
        await layer.group_add(video_group(video.pk), channel)
    try:
        state = await sync_to_async(video_state)(video.pk)
        deadline = asyncio.get_running_loop().time() + wait_s
        while (
            channel is not None and state is not None and (state["status"], state["stage"], state["progress"]) == seen
        ):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                message = await asyncio.wait_for(layer.receive(channel), remaining)
            except TimeoutError:
                break
            state = message["payload"]
    finally:
        if channel is not None:
            await layer.group_discard(video_group(video.pk), channel)
    if state is None:
        raise NotFound("Video not found.")
    changed = (state["status"], state["stage"], state["progress"]) != seen
    return {k: state[k] for k in ("video_id", "status", "stage", "progress", "error")} | {"changed": changed}


def publish_session(*, video_id: int, project_id: int, session_id: int, status: str, progress: int) -> None:
    """Scoring progress of a test session, on its video's groups: {"type": "session", ...}."""
    layer = get_channel_layer()
    if layer is None:
        return
    payload = {
        "type": "session",
        "video_id": video_id,
        "session_id": session_id,
        "status": status,
        "progress": progress,
        "at": timezone.now().isoformat(),
    }
    message = {"type": "video.progress", "payload": payload}
    _group_send(layer, [video_group(video_id), project_group(project_id)], message)
