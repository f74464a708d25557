"""Deterministic synthetic videos (a white box moving on a known path) and broken files for vision tests."""

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

_SEED = 20240601


@dataclass(frozen=True)
class GroundTruth:
    """Where the box is in one frame, clipped to the frame; `fully_visible` when no part was clipped."""

    frame: int
    x: int
    y: int
    w: int
    h: int
    fully_visible: bool


def _start(size: int, extent: int, speed: int, frames: int, enter: bool) -> int:
    """Start just outside the entry edge (clean first frames for MOG2), else centre the path."""
    if enter and speed > 0:
        return -extent
    if enter and speed < 0:
        return size
    return (size - extent) // 2 - speed * frames // 2


def _background(width: int, height: int, textured: bool) -> np.ndarray:
    if not textured:
        return np.zeros((height, width, 3), np.uint8)
    # Static dim noise: a camera-like bitrate (~150 KB per 720p MJPG frame) on a still constant background.
    return np.random.default_rng(_SEED).integers(0, 32, (height, width, 3), dtype=np.uint8)


def make_moving_box_video(
    path: str | Path,
    *,
    frames: int = 60,
    fps: float = 25.0,
    width: int = 320,
    height: int = 240,
    box: tuple[int, int] = (40, 30),
    speed: tuple[int, int] = (4, 2),
    fourcc: str = "mp4v",
    enter_from_outside: bool = True,
    textured: bool = False,
) -> list[GroundTruth]:
    """Write a white filled box moving linearly; return its analytic box for every frame it is visible in."""
    (bw, bh), (vx, vy) = box, speed
    enter_x = enter_from_outside and vx != 0
    enter_y = enter_from_outside and vx == 0
    x0 = _start(width, bw, vx, frames, enter_x)
    y0 = _start(height, bh, vy, frames, enter_y)
    background = _background(width, height, textured)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {fourcc} video to {path}")
    truth: list[GroundTruth] = []
    try:
        for index in range(frames):
            x, y = x0 + vx * index, y0 + vy * index
            frame = background.copy()
            cv2.rectangle(frame, (x, y), (x + bw - 1, y + bh - 1), (255, 255, 255), thickness=cv2.FILLED)
            writer.write(frame)
            left, top = max(x, 0), max(y, 0)
            right, bottom = min(x + bw, width), min(y + bh, height)
            if right > left and bottom > top:
                whole = (left, top, right, bottom) == (x, y, x + bw, y + bh)
                truth.append(GroundTruth(index, left, top, right - left, bottom - top, whole))
    finally:
        writer.release()
    return truth


def make_moving_box_avi(path: str | Path, **options: object) -> list[GroundTruth]:
    """The same moving box in an AVI container with Motion-JPEG frames."""
    return make_moving_box_video(path, fourcc="MJPG", **options)  # type: ignore[arg-type]


def make_corrupt_file(path: str | Path, size: int = 64 * 1024) -> Path:
    """Write `size` seeded random bytes: no container header any demuxer recognises."""
    data = random.Random(_SEED).randbytes(size)
    Path(path).write_bytes(data)
    return Path(path)


def make_truncated_video(src: str | Path, dst: str | Path, keep_fraction: float) -> Path:
    """Copy the first `keep_fraction` of a valid video's bytes, as an interrupted upload would leave it."""
    if not 0 <= keep_fraction <= 1:
        raise ValueError("keep_fraction must be within [0, 1]")
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(dst)
