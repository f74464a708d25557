"""Progress fan-out: a video's current state to its channel groups (video and project)."""

import asyncio
import logging
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


def _group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    """Best effort: a channel-layer outage must not fail the job that reports progress (clients re-snapshot)."""
    loop = _receiver_loop
    try:
        if isinstance(layer, InMemoryChannelLayer) and loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=5)
        else:
            async_to_sync(layer.group_send)(group, message)
    except (RedisError, OSError, TimeoutError):
        logger.warning("channel layer unavailable: progress message dropped", extra={"group": group})


def publish_video(video_id: int) -> None:
    """Send the video's state to its groups (sync: called from workers). Channels is at-most-once:
    clients get a fresh snapshot whenever they (re)connect."""
    state = video_state(video_id)
    layer = get_channel_layer()
    if state is None or layer is None:
        return
    message = {"type": "video.progress", "payload": {"type": "progress", **state}}
    _group_send(layer, video_group(video_id), message)
    _group_send(layer, project_group(state["project_id"]), message)


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
    _group_send(layer, video_group(video_id), message)
    _group_send(layer, project_group(project_id), message)
