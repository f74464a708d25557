"""WebSocket progress: auth and access close codes, snapshot, live progress through the real channel layer."""

import asyncio
import threading

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application
from tests.conftest import tokens_for
from tests.factories import UserFactory
from videos import consumers, progress
from videos.models import Project, Video
from videos.progress import publish_video

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"origin", b"http://localhost")]


@pytest.fixture
def setup_video(db):
    owner = UserFactory()
    project = Project.objects.create(owner=owner, name="p")
    video = Video.objects.create(
        project=project,
        original_name="a.mp4",
        file="videos/a.mp4",
        size_bytes=1,
        content_type="video/mp4",
        sha256="0" * 64,
    )
    return owner, project, video


def _communicator(path: str, token: str | None = None, origin=ORIGIN) -> WebsocketCommunicator:
    query = f"?token={token}" if token else ""
    return WebsocketCommunicator(application, f"{path}{query}", headers=origin)


async def _closed_with(communicator: WebsocketCommunicator) -> int:
    connected, _ = await communicator.connect()
    assert connected
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message["code"]


async def test_missing_or_bad_token_closes_4401(setup_video):
    _, _, video = setup_video
    assert await _closed_with(_communicator(f"/ws/videos/{video.pk}/")) == 4401
    assert await _closed_with(_communicator(f"/ws/videos/{video.pk}/", "garbage")) == 4401


async def test_foreign_or_unknown_video_closes_4404(setup_video):
    _, _, video = setup_video
    stranger = await sync_to_async(UserFactory)()
    token = (await sync_to_async(tokens_for)(stranger))["access"]
    assert await _closed_with(_communicator(f"/ws/videos/{video.pk}/", token)) == 4404
    assert await _closed_with(_communicator("/ws/videos/999999/", token)) == 4404
    assert await _closed_with(_communicator("/ws/projects/999999/", token)) == 4404


async def test_bad_origin_is_refused(setup_video):
    owner, _, video = setup_video
    token = (await sync_to_async(tokens_for)(owner))["access"]
    communicator = _communicator(f"/ws/videos/{video.pk}/", token, origin=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


async def test_snapshot_then_progress_then_final_status(setup_video):
    owner, project, video = setup_video
    token = (await sync_to_async(tokens_for)(owner))["access"]
    video_socket = _communicator(f"/ws/videos/{video.pk}/", token)
    project_socket = _communicator(f"/ws/projects/{project.pk}/", token)
    assert (await video_socket.connect())[0] and (await project_socket.connect())[0]
    snapshot = await video_socket.receive_json_from(timeout=5)
    assert {k: snapshot[k] for k in ("type", "video_id", "status", "stage", "progress")} == {
        "type": "snapshot",
        "video_id": video.pk,
        "status": "queued",
        "stage": "queued",
        "progress": 0,
    }
    project_snapshot = await project_socket.receive_json_from(timeout=5)
    assert project_snapshot["type"] == "snapshot"
    assert [v["video_id"] for v in project_snapshot["videos"]] == [video.pk]

    await sync_to_async(Video.objects.filter(pk=video.pk).update)(
        status="processing", stage="ground_truth", progress=40
    )
    await sync_to_async(publish_video)(video.pk)
    for socket in (video_socket, project_socket):
        message = await socket.receive_json_from(timeout=5)
        assert {k: message[k] for k in ("type", "video_id", "status", "stage", "progress")} == {
            "type": "progress",
            "video_id": video.pk,
            "status": "processing",
            "stage": "ground_truth",
            "progress": 40,
        }
        assert message["at"]

    await sync_to_async(Video.objects.filter(pk=video.pk).update)(status="failed", stage="failed", error="bad file")
    await sync_to_async(publish_video)(video.pk)
    final = await video_socket.receive_json_from(timeout=5)
    assert (final["status"], final["error"]) == ("failed", "bad file")
    await video_socket.disconnect()
    await project_socket.disconnect()


async def test_ping_pong_and_oversized_message_closes_1009(setup_video):
    owner, _, video = setup_video
    token = (await sync_to_async(tokens_for)(owner))["access"]
    socket = _communicator(f"/ws/videos/{video.pk}/", token)
    await socket.connect()
    await socket.receive_json_from(timeout=5)
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    await socket.send_to(text_data="x" * (consumers.MAX_MESSAGE_BYTES + 1))
    message = await socket.receive_output(timeout=5)
    assert (message["type"], message["code"]) == ("websocket.close", 1009)


async def test_idle_socket_is_closed(setup_video, monkeypatch):
    owner, _, video = setup_video
    monkeypatch.setattr(consumers, "IDLE_TIMEOUT_S", 0.3)
    token = (await sync_to_async(tokens_for)(owner))["access"]
    socket = _communicator(f"/ws/videos/{video.pk}/", token)
    await socket.connect()
    await socket.receive_json_from(timeout=5)
    message = await socket.receive_output(timeout=5)
    assert (message["type"], message["code"]) == ("websocket.close", 4408)


async def test_per_user_socket_cap(setup_video, monkeypatch):
    owner, _, video = setup_video
    monkeypatch.setattr(consumers, "MAX_SOCKETS_PER_USER", 2)
    token = (await sync_to_async(tokens_for)(owner))["access"]
    open_sockets = []
    for _ in range(2):
        socket = _communicator(f"/ws/videos/{video.pk}/", token)
        await socket.connect()
        assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"
        open_sockets.append(socket)
    assert await _closed_with(_communicator(f"/ws/videos/{video.pk}/", token)) == 4429
    await open_sockets[0].disconnect()
    socket = _communicator(f"/ws/videos/{video.pk}/", token)
    await socket.connect()
    assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"
    for s in (open_sockets[1], socket):
        await s.disconnect()


async def test_scoring_progress_reaches_the_video_socket(setup_video):
    from videos import processing
    from videos.models import ProcessingJob, TestSession

    owner, _, video = setup_video
    await sync_to_async(Video.objects.filter(pk=video.pk).update)(status="completed", width=100, height=100)
    session = await sync_to_async(TestSession.objects.create)(video=video, model_name="m", status="scoring")
    job = await sync_to_async(ProcessingJob.objects.create)(video=video, test_session=session, kind="score")
    token = (await sync_to_async(tokens_for)(owner))["access"]
    socket = _communicator(f"/ws/videos/{video.pk}/", token)
    await socket.connect()
    await socket.receive_json_from(timeout=5)
    await sync_to_async(processing.score_session_job)(job_id=job.pk)
    messages = [await socket.receive_json_from(timeout=5) for _ in range(4)]
    assert [(m["type"], m["session_id"], m["status"], m["progress"]) for m in messages] == [
        ("session", session.pk, "scoring", 0),
        ("session", session.pk, "scoring", 30),
        ("session", session.pk, "scoring", 70),
        ("session", session.pk, "completed", 100),
    ]
    await socket.disconnect()


@pytest.mark.skipif(
    "channels_redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"], reason="the Redis layer (CI) only"
)
async def test_publishers_reuse_one_loop_and_its_redis_connections():
    """Sync publishers (workers) send through one long-lived loop: `async_to_sync` started a loop, and so a
    Redis connection, per message. 20 messages to two groups arrive in order over at most a couple of new
    connections (40 before)."""
    # A receiver of its own: the shared layer's receive locks belong to the loop of the test that made them.
    layer = type(get_channel_layer())(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    channel = await layer.new_channel()
    await layer.group_add(progress.video_group(1), channel)
    server = redis.Redis.from_url(settings.REDIS_URL)
    before = server.info("stats")["total_connections_received"]

    def publish() -> None:  # as a worker does: a plain thread, no event loop of its own
        for i in range(20):
            progress.publish_session(video_id=1, project_id=2, session_id=3, status="scoring", progress=i)

    worker = threading.Thread(target=publish)
    worker.start()
    await asyncio.to_thread(worker.join)
    opened = server.info("stats")["total_connections_received"] - before
    received = [(await layer.receive(channel))["payload"]["progress"] for _ in range(20)]
    await layer.group_discard(progress.video_group(1), channel)
    await layer.close_pools()
    assert received == list(range(20))
    assert opened <= 3, opened
