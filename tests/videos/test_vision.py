"""vision on synthetic videos: container metadata, thumbnails, MOG2 boxes against the analytic path, limits."""

import multiprocessing
import os
import signal
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media import (
    GroundTruth,
    make_corrupt_file,
    make_moving_box_avi,
    make_moving_box_video,
    make_truncated_video,
)
from videos import vision
from videos.vision import (
    Box,
    VideoMeta,
    VideoProcessingError,
    VideoUnreadable,
    detect_motion,
    detect_motion_limited,
    probe,
    run_limited,
    thumbnail_jpeg,
)

MB = 2**20
LIMITS = {"cpu_seconds": 20, "memory_bytes": 1024 * MB, "wall_seconds": 20.0}


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[GroundTruth]]:
    path = tmp_path_factory.mktemp("media") / "box.mp4"
    return str(path), make_moving_box_video(path)


@pytest.fixture(scope="module")
def avi(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[GroundTruth]]:
    path = tmp_path_factory.mktemp("media") / "box.avi"
    return str(path), make_moving_box_avi(path)


def _iou(box: Box, truth: GroundTruth) -> float:
    width = min(box.x + box.w, truth.x + truth.w) - max(box.x, truth.x)
    height = min(box.y + box.h, truth.y + truth.h) - max(box.y, truth.y)
    overlap = max(0, width) * max(0, height)
    return overlap / (box.w * box.h + truth.w * truth.h - overlap)


def _median_iou(boxes: list[Box], truth: list[GroundTruth], stride: int) -> float:
    """Best IoU per sampled frame where the box is whole and MOG2 is past its first (background) frame."""
    by_frame: dict[int, list[Box]] = {}
    for box in boxes:
        by_frame.setdefault(box.frame, []).append(box)
    scores = [
        max((_iou(box, item) for box in by_frame.get(item.frame, [])), default=0.0)
        for item in truth
        if item.fully_visible and item.frame % stride == 0 and item.frame > 0
    ]
    assert len(scores) >= 10
    return statistics.median(scores)


def _zombie_children() -> list[int]:
    zombies = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            zombies.append(int(stat.parent.name))
    return zombies


# Children of run_limited: module-level so the forkserver child can import them by name.
def _echo(value: int, *, on_progress) -> tuple[int, int]:
    for done in (1, 2, 3):
        on_progress(done, 3)
    return value * 2, os.getpid()


def _burn_cpu() -> None:
    while True:
        pass


def _allocate(size: int) -> int:
    return len(bytearray(size))


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def _unreadable() -> None:
    raise VideoUnreadable("the video contains no frames")


def _fail() -> None:
    raise ValueError("bad stride")


@pytest.mark.parametrize(("container", "codec"), [("mp4", "FMP4"), ("avi", "MJPG")])
def test_probe_reports_written_metadata(container: str, codec: str, request: pytest.FixtureRequest) -> None:
    # OpenCV names MPEG-4 Part 2 by FFmpeg's RIFF tag FMP4, whatever tag ("mp4v") the writer was given.
    path, _ = request.getfixturevalue(container)

    assert probe(path) == VideoMeta(fps=25.0, frame_count=60, duration_s=2.4, width=320, height=240, codec=codec)


def test_video_without_frames_is_unreadable(tmp_path: Path) -> None:
    make_moving_box_avi(tmp_path / "empty.avi", frames=0)

    with pytest.raises(VideoUnreadable, match=r"^the video contains no frames$"):
        probe(str(tmp_path / "empty.avi"))


class _FakeCapture:
    """Container properties as a damaged or hostile file could report them."""

    def __init__(self, **overrides: float) -> None:
        self.props = {
            cv2.CAP_PROP_FPS: 25.0,
            cv2.CAP_PROP_FRAME_COUNT: 60.0,
            cv2.CAP_PROP_FRAME_WIDTH: 320.0,
            cv2.CAP_PROP_FRAME_HEIGHT: 240.0,
            cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter.fourcc(*"MJPG")),
        }
        self.props.update({getattr(cv2, f"CAP_PROP_{name.upper()}"): value for name, value in overrides.items()})

    def get(self, prop: int) -> float:
        return self.props[prop]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fps": 0.0}, r"invalid frame rate \(0 fps\)"),
        ({"fps": float("nan")}, r"invalid frame rate \(nan fps\)"),
        ({"fps": 90_000.0}, r"invalid frame rate \(90000 fps\)"),
        ({"frame_width": 16_385.0}, r"invalid dimensions \(16385x240\)"),
        ({"frame_height": 0.0}, r"invalid dimensions \(320x0\)"),
        ({"frame_count": 0.0}, r"contains no frames"),
        ({"frame_count": -1.0}, r"contains no frames"),
        ({"frame_count": 10_000_001.0}, r"too many frames \(10000001\)"),
    ],
)
def test_absurd_container_properties_are_unreadable(overrides: dict[str, float], message: str) -> None:
    with pytest.raises(VideoUnreadable, match=message):
        vision._meta(_FakeCapture(**overrides))


def test_unprintable_fourcc_is_reported_as_unknown() -> None:
    assert vision._meta(_FakeCapture(fourcc=0.0)).codec == "unknown"


@pytest.mark.parametrize("container", ["mp4", "avi"])
def test_thumbnail_is_a_jpeg_no_wider_than_asked(container: str, request: pytest.FixtureRequest) -> None:
    path, _ = request.getfixturevalue(container)

    data = thumbnail_jpeg(path, max_width=160)

    assert data[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3)


def test_thumbnail_keeps_small_frames_at_their_size(mp4: tuple[str, list[GroundTruth]]) -> None:
    data = thumbnail_jpeg(mp4[0], max_width=640, at_fraction=1.0)

    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("container", ["mp4", "avi"])
def test_detect_motion_boxes_follow_the_moving_box(container: str, stride: int, request: pytest.FixtureRequest) -> None:
    path, truth = request.getfixturevalue(container)

    boxes = detect_motion(path, stride=stride)

    assert _median_iou(boxes, truth, stride) >= 0.5
    assert {box.label for box in boxes} == {"motion"}
    assert all(box.frame % stride == 0 and box.timestamp_ms == box.frame * 40 for box in boxes)
    assert all(box.w * box.h >= 64 for box in boxes)


def test_detect_motion_on_large_frames_scales_boxes_back(tmp_path: Path) -> None:
    path = tmp_path / "large.avi"
    truth = make_moving_box_avi(path, width=1280, height=720, box=(160, 120), speed=(16, 8), frames=40, textured=True)

    boxes = detect_motion(str(path))

    assert _median_iou(boxes, truth, 1) >= 0.9
    assert all(box.x + box.w <= 1280 and box.y + box.h <= 720 for box in boxes)


def test_detect_motion_throttles_progress_to_first_and_final_call_within_an_interval(
    mp4: tuple[str, list[GroundTruth]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vision, "PROGRESS_INTERVAL_S", 3600.0)
    calls: list[tuple[int, int]] = []

    detect_motion(mp4[0], on_progress=lambda done, total: calls.append((done, total)))

    assert calls == [(1, 60), (60, 60)]


def test_detect_motion_reports_every_sampled_frame_without_throttle(
    mp4: tuple[str, list[GroundTruth]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vision, "PROGRESS_INTERVAL_S", 0.0)
    calls: list[tuple[int, int]] = []

    detect_motion(mp4[0], stride=2, on_progress=lambda done, total: calls.append((done, total)))

    assert calls == [(index + 1, 60) for index in range(0, 60, 2)] + [(60, 60)]


def test_detect_motion_ignores_blobs_smaller_than_min_area(mp4: tuple[str, list[GroundTruth]]) -> None:
    assert detect_motion(mp4[0], min_area=40 * 30 + 1) == []


@pytest.mark.parametrize("func", [probe, thumbnail_jpeg, detect_motion])
def test_corrupt_file_is_unreadable(func, tmp_path: Path) -> None:
    path = make_corrupt_file(tmp_path / "corrupt.mp4", 64 * 1024)

    with pytest.raises(VideoUnreadable, match="not a video format"):
        func(str(path))


def test_playlist_disguised_as_mp4_is_unreadable_and_opens_nothing(
    avi: tuple[str, list[GroundTruth]], tmp_path: Path
) -> None:
    # FFmpeg's HLS demuxer would decode the named file: another tenant's video, were the path theirs.
    playlist = tmp_path / "upload.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{avi[0]}\n#EXT-X-ENDLIST\n")

    for func in (probe, thumbnail_jpeg, detect_motion):
        with pytest.raises(VideoUnreadable, match="not a video format"):
            func(str(playlist))


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(VideoUnreadable, match="does not exist"):
        probe(str(tmp_path / "missing.mp4"))


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9])
@pytest.mark.parametrize("container", ["mp4", "avi"])
def test_truncated_video_yields_decoded_boxes_or_unreadable(
    container: str, keep: float, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # OpenCV's MP4 writer puts the index (moov) last, so any cut MP4 is unreadable; a cut AVI still decodes.
    path, _ = request.getfixturevalue(container)
    truncated = make_truncated_video(path, tmp_path / f"cut.{container}", keep)

    try:
        boxes = detect_motion(str(truncated))
    except VideoUnreadable as exc:
        assert str(exc) in {"the file is not a video format that can be read", "no frame of the video could be decoded"}
    else:
        # The frame the cut runs through may decode half-garbled; every frame before it is intact.
        last = max(box.frame for box in boxes)
        assert {box for box in boxes if box.frame < last} <= set(detect_motion(path))


def test_truncated_avi_keeps_the_frames_before_the_cut(avi: tuple[str, list[GroundTruth]], tmp_path: Path) -> None:
    truncated = make_truncated_video(avi[0], tmp_path / "cut.avi", 0.5)

    boxes = detect_motion(str(truncated))

    assert 0 < len(boxes) < len(detect_motion(avi[0]))
    assert set(boxes) <= set(detect_motion(avi[0]))


def test_run_limited_returns_the_result_and_relays_progress_in_the_parent() -> None:
    calls: list[tuple[int, int, int]] = []

    result, child_pid = run_limited(_echo, 21, **LIMITS, on_progress=lambda *call: calls.append((*call, os.getpid())))

    assert result == 42
    assert child_pid != os.getpid()
    assert calls == [(1, 3, os.getpid()), (2, 3, os.getpid()), (3, 3, os.getpid())]


def test_detect_motion_limited_matches_in_process_detection(mp4: tuple[str, list[GroundTruth]]) -> None:
    calls: list[tuple[int, int]] = []

    boxes = detect_motion_limited(mp4[0], stride=2, **LIMITS, on_progress=lambda *call: calls.append(call))

    assert boxes == detect_motion(mp4[0], stride=2)
    assert calls[-1] == (60, 60)


def test_run_limited_calls_functions_without_progress_when_none_is_given(
    avi: tuple[str, list[GroundTruth]],
) -> None:
    assert run_limited(probe, avi[0], **LIMITS) == probe(avi[0])
    assert run_limited(thumbnail_jpeg, avi[0], **LIMITS) == thumbnail_jpeg(avi[0])


def test_detect_motion_limited_reraises_unreadable(tmp_path: Path) -> None:
    path = make_corrupt_file(tmp_path / "corrupt.avi")

    with pytest.raises(VideoUnreadable, match="not a video format"):
        detect_motion_limited(str(path), **LIMITS)


def test_unreadable_raised_in_the_child_keeps_its_message() -> None:
    with pytest.raises(VideoUnreadable, match=r"^the video contains no frames$"):
        run_limited(_unreadable, **LIMITS)


def test_other_child_exceptions_become_processing_errors() -> None:
    with pytest.raises(VideoProcessingError, match=r"^decoder failed: ValueError: bad stride$") as caught:
        run_limited(_fail, **LIMITS)
    assert not isinstance(caught.value, VideoUnreadable)


def test_busy_loop_is_killed_by_the_cpu_limit() -> None:
    started = time.monotonic()

    with pytest.raises(VideoProcessingError, match=r"^decoder exceeded its CPU limit \(1 s\)$"):
        run_limited(_burn_cpu, cpu_seconds=1, memory_bytes=1024 * MB, wall_seconds=20)
    assert time.monotonic() - started < 5


def test_huge_allocation_fails_with_the_memory_limit() -> None:
    with pytest.raises(VideoProcessingError, match=r"^decoder ran out of memory \(limit 1024 MB\)$"):
        run_limited(_allocate, 2048 * MB, cpu_seconds=10, memory_bytes=1024 * MB, wall_seconds=20)


def test_allocation_within_the_memory_limit_succeeds() -> None:
    assert run_limited(_allocate, 100 * MB, cpu_seconds=10, memory_bytes=1024 * MB, wall_seconds=20) == 100 * MB


def test_sleeping_past_the_wall_clock_limit_is_killed() -> None:
    started = time.monotonic()

    with pytest.raises(VideoProcessingError, match=r"^decoder exceeded its time limit \(0.5 s\)$"):
        run_limited(_sleep, 30, cpu_seconds=10, memory_bytes=1024 * MB, wall_seconds=0.5)
    assert time.monotonic() - started < 5


def test_segfault_is_reported_as_a_crash() -> None:
    with pytest.raises(VideoProcessingError, match=r"^decoder crashed \(signal 11, SIGSEGV\)$"):
        run_limited(_segfault, **LIMITS)


def test_parent_exception_in_progress_callback_still_reaps_the_child() -> None:
    def explode(done: int, total: int) -> None:
        raise RuntimeError("consumer went away")

    with pytest.raises(RuntimeError, match="consumer went away"):
        run_limited(_echo, 1, **LIMITS, on_progress=explode)
    assert multiprocessing.active_children() == []


def test_no_child_processes_remain() -> None:
    # Children that crashed or raised, plus every earlier run_limited in this session, are all reaped.
    for func in (_segfault, _unreadable):
        with pytest.raises(VideoProcessingError):
            run_limited(func, **LIMITS)

    assert multiprocessing.active_children() == []
    assert _zombie_children() == []
