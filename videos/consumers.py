"""Live progress over WebSockets: snapshot on (re)connect, then progress messages; ping → pong."""

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from accounts.auth import user_from_access_token
from config.errors import NotFound
from config.metrics import WEBSOCKETS_OPEN
from config.redis import async_redis
from videos import progress, selectors

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096
IDLE_TIMEOUT_S = 60.0  # No client message (a ping will do) for this long closes the socket.
MAX_SOCKETS_PER_USER = 20
_SLOT_TTL_S = 3600
REDIS_DOWN = (RedisError, OSError)  # slots and the channel layer live in Redis


class _LocalSlots:
    """Open-socket counts per user inside one process (embedded mode)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def change(self, key: str, delta: int) -> int:
        with self.lock:
            self.counts[key] += delta
            return self.counts[key]


_local_slots = _LocalSlots()


async def _change_slots(user_id: Any, delta: int) -> int:
    key = f"fw:ws:{user_id}"
    if not settings.REDIS_URL:
        return _local_slots.change(key, delta)
    client = async_redis()
    count = int(await client.incrby(key, delta))
    await client.expire(key, _SLOT_TTL_S)  # A crashed process's slots expire instead of leaking forever.
    return count


class ProgressConsumer(AsyncJsonWebsocketConsumer):
    """`/ws/videos/{id}/` or `/ws/projects/{id}/`; close codes 4401 (auth), 4404 (unknown/foreign), 4429 (cap)."""

    group: str | None = None
    user_id: Any = None
    idle_task: asyncio.Task[None] | None = None
    counted = False  # Whether this socket is in WEBSOCKETS_OPEN (decremented exactly once).

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Redis going away fails the channel layer's receive and ends the socket: the client reconnects and
        gets a fresh snapshot, so this is logged as a warning, not an application crash."""
        try:
            await super().__call__(scope, receive, send)
        except REDIS_DOWN:
            logger.warning("channel layer unavailable: socket closed")

    async def connect(self) -> None:
        await self.accept()  # Accept first so the close code reaches the browser.
        WEBSOCKETS_OPEN.inc()
        self.counted = True
        progress.remember_receiver_loop()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        user = user_from_access_token((query.get("token") or [""])[0])
        if user is None:
            await self.close(code=4401)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            if "video_id" in kwargs:
                video = await selectors.video_get_for_user(user=user, video_id=int(kwargs["video_id"]))
                self.group = progress.video_group(video.pk)
                snapshot = await selectors.video_snapshot(video_id=video.pk)
            else:
                project = await selectors.project_get_for_user(user=user, project_id=int(kwargs["project_id"]))
                self.group = progress.project_group(project.pk)
                snapshot = {"project_id": project.pk, "videos": await selectors.project_snapshot(project_id=project.pk)}
        except NotFound:
            await self.close(code=4404)
            return
        try:
            if await _change_slots(user.id, 1) > MAX_SOCKETS_PER_USER:
                await _change_slots(user.id, -1)
                self.group = None
                await self.close(code=4429)
                return
            self.user_id = user.id
            await self.channel_layer.group_add(self.group, self.channel_name)
        except REDIS_DOWN:
            await self.close(code=1013)  # Try Again Later: the client reconnects and gets its snapshot then
            return
        await self.send_json({"type": "snapshot", **snapshot})
        self.idle_task = asyncio.ensure_future(self._idle_watchdog())

    async def _idle_watchdog(self) -> None:
        self.last_seen = asyncio.get_running_loop().time()
        while True:
            remaining = self.last_seen + IDLE_TIMEOUT_S - asyncio.get_running_loop().time()
            if remaining <= 0:
                await self.close(code=4408)
                return
            await asyncio.sleep(remaining)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > MAX_MESSAGE_BYTES:
            await self.close(code=1009)
            return
        self.last_seen = asyncio.get_running_loop().time()
        await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def video_progress(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])

    async def disconnect(self, code: int) -> None:
        if self.counted:
            WEBSOCKETS_OPEN.dec()
            self.counted = False
        if self.idle_task is not None:
            self.idle_task.cancel()
        with contextlib.suppress(*REDIS_DOWN):  # a group or slot left in Redis expires on its own
            if self.group is not None:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            if self.user_id is not None:
                await _change_slots(self.user_id, -1)
        self.user_id = None
