"""OpenCV video probing, thumbnails and MOG2 motion ground truth, run under CPU/memory/time limits; no ORM."""

import contextlib
import ctypes
import functools
import math
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import cv2
import numpy as np

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")

MAX_SIDE = 16_384
MAX_FRAME_COUNT = 10_000_000
MAX_FPS = 1_000.0
PROGRESS_INTERVAL_S = 0.25
# MOG2 and the morphology cost O(pixels) on top of decoding. On 1280x720 MJPG, analysing 640 px wide took
# ~10 instead of 21-24 CPU ms per frame (bench/bench_vision.py), and box edges stayed within 1 px of the
# analytic ones (0 px at 640 wide, up to 1 px at full size; tests/media.py's textured moving box).
ANALYSIS_WIDTH = 640
_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
# Dramatiq delivers its TimeLimitExceeded between bytecodes, so the parent never blocks longer than this.
_POLL_SLICE_S = 0.2
_REAP_TIMEOUT_S = 5.0
_CPU_GRACE_S = 2
_M_ARENA_MAX = -8


class VideoProcessingError(Exception):
    """Processing a video failed; the message is readable by the video's owner."""


class VideoUnreadable(VideoProcessingError):
    """The file is not a video OpenCV can decode (missing, corrupt, empty or with absurd properties)."""


@dataclass(frozen=True)
class VideoMeta:
    """Container properties of a video; duration_s is frame_count / fps."""

    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class Box:
    """One labelled box in a 0-based frame, in pixels of the original frame."""

    frame: int
    timestamp_ms: int
    label: str
    x: int
    y: int
    w: int
    h: int


def _fourcc(code: float) -> str:
    value = int(code)
    text = value.to_bytes(4, "little", signed=False).decode("latin-1").strip("\x00 ") if 0 <= value < 2**32 else ""
    return text if text.isprintable() and text else "unknown"


def _meta(cap: cv2.VideoCapture) -> VideoMeta:
    fps = cap.get(cv2.CAP_PROP_FPS)
    frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if not math.isfinite(fps) or not 0 < fps <= MAX_FPS:
        raise VideoUnreadable(f"the video reports an invalid frame rate ({fps:g} fps)")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise VideoUnreadable(f"the video reports invalid dimensions ({width}x{height})")
    if frame_count <= 0:
        raise VideoUnreadable("the video contains no frames")
    if frame_count > MAX_FRAME_COUNT:
        raise VideoUnreadable(f"the video reports too many frames ({frame_count})")
    codec = _fourcc(cap.get(cv2.CAP_PROP_FOURCC))
    return VideoMeta(fps, frame_count, frame_count / fps, width, height, codec)


def _known_container(path: str) -> bool:
    """MP4/MOV, WebM/MKV or AVI by magic bytes, as uploads are sniffed.

    Defence in depth: FFmpeg's playlist demuxers (HLS, concat) open the files a playlist names, so a
    playlist that slipped in could make a thumbnail of another tenant's video.
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


@contextlib.contextmanager
def _opened(path: str) -> Iterator[tuple[cv2.VideoCapture, VideoMeta]]:
    """Open `path` with FFmpeg, validate its container properties and always release the capture."""
    if not os.path.isfile(path):
        raise VideoUnreadable("the video file does not exist")
    if not _known_container(path):
        raise VideoUnreadable("the file is not a video format that can be read")
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise VideoUnreadable("the file is not a video format that can be read")
        yield cap, _meta(cap)
    finally:
        cap.release()


def probe(path: str) -> VideoMeta:
    """Read fps, frame count, duration, size and codec from the container, without decoding the stream."""
    with _opened(path) as (_, meta):
        return meta


def thumbnail_jpeg(path: str, *, max_width: int = 320, at_fraction: float = 0.1, quality: int = 80) -> bytes:
    """Encode the frame at `at_fraction` of the video (the first frame if seeking fails) as a JPEG."""
    if max_width <= 0 or not 0 <= at_fraction <= 1:
        raise ValueError("max_width must be positive and at_fraction within [0, 1]")
    with _opened(path) as (cap, meta):
        target = min(int(meta.frame_count * at_fraction), meta.frame_count - 1)
        cap.set(cv2.CAP_PROP_POS_FRAMES, target)
        ok, frame = cap.read()
        if not ok and target > 0:
            # Seeking needs an index that damaged files lack; the first frame still makes a thumbnail.
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
        if not ok:
            raise VideoUnreadable("no frame of the video could be decoded")
    height, width = frame.shape[:2]
    if width > max_width:
        size = (max_width, max(1, round(height * max_width / width)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoProcessingError("the thumbnail could not be encoded")
    return encoded.tobytes()


def _sampled_frames(cap: cv2.VideoCapture, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, BGR frame) for every `stride`-th frame until the stream ends or stops decoding.

    Skipped frames are only grab()bed: the codec still decodes them (later frames reference them) but
    the YUV-to-BGR conversion happens for sampled frames only.
    """
    index = 0
    while cap.grab():
        if index % stride == 0:
            ok, frame = cap.retrieve()
            if not ok:
                return
            yield index, frame
        index += 1


def _throttled(on_progress: ProgressCallback | None, interval_s: float) -> Callable[[int, int, bool], None]:
    """Wrap `on_progress` so it runs at most once per `interval_s`, plus a final call that always runs."""
    last = -math.inf

    def report(done: int, total: int, final: bool) -> None:
        nonlocal last
        now = time.monotonic()
        if on_progress is not None and (final or now - last >= interval_s):
            last = now
            on_progress(done, total)

    return report


def detect_motion(
    path: str,
    *,
    stride: int = 1,
    min_area: int = 64,
    on_progress: ProgressCallback | None = None,
) -> list[Box]:
    """Find moving regions with MOG2 background subtraction; one `motion` box per blob per sampled frame.

    Only sampled frames feed MOG2, so its background adapts per sample, not per frame: with a stride the
    model learns over a proportionally longer time, which suits static cameras, and skipped frames are
    never converted to BGR. The first sampled frame initialises the background and yields no boxes. A
    truncated file yields the boxes of the frames that decoded; VideoUnreadable if none did.
    """
    if stride < 1 or min_area < 1:
        raise ValueError("stride and min_area must be at least 1")
    report = _throttled(on_progress, PROGRESS_INTERVAL_S)
    boxes: list[Box] = []
    with _opened(path) as (cap, meta):
        scale = min(1.0, ANALYSIS_WIDTH / meta.width)
        small_area = max(1.0, min_area * scale * scale)
        subtractor = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
        decoded = 0
        for index, frame in _sampled_frames(cap, stride):
            if scale < 1.0:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            mask = subtractor.apply(frame)
            decoded += 1
            if decoded > 1:
                boxes.extend(_mask_boxes(mask, index, meta, scale, small_area, min_area))
            report(min(index + 1, meta.frame_count), meta.frame_count, False)
        done = min(int(cap.get(cv2.CAP_PROP_POS_FRAMES)), meta.frame_count)
    if decoded == 0:
        raise VideoUnreadable("no frame of the video could be decoded")
    report(done, meta.frame_count, True)
    return boxes


def _mask_boxes(
    mask: np.ndarray, index: int, meta: VideoMeta, scale: float, small_area: float, min_area: int
) -> Iterator[Box]:
    """Boxes around the foreground blobs of one MOG2 mask, in original-frame pixels."""
    # Binary whatever MOG2 emits (shadows, if ever enabled, come out as 127); open drops speckle, close
    # fills holes so one object stays one contour.
    _, mask = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _KERNEL)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    timestamp_ms = round(index * 1000 / meta.fps)
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if w * h < small_area:
            continue
        if scale < 1.0:
            left, top = round(x / scale), round(y / scale)
            right, bottom = min(round((x + w) / scale), meta.width), min(round((y + h) / scale), meta.height)
            x, y, w, h = left, top, right - left, bottom - top
            if w * h < min_area:
                continue
        yield Box(index, timestamp_ms, "motion", x, y, w, h)


def _limit_malloc_arenas() -> None:
    """Cap glibc malloc arenas: each reserves 64 MB of the address space RLIMIT_AS counts.

    Measured on detect_motion at 720p with 16 OpenCV threads: VmPeak 1.49 GB uncapped, 0.51 GB capped,
    the same 72 MB resident either way; without the cap a many-core host trips a 1 GB limit for nothing.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 2)


def _set_limit(kind: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(kind, (soft, hard))


def _child_main(
    conn: Connection,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    relay_progress: bool,
    cpu_seconds: int,
    memory_bytes: int,
) -> None:
    _limit_malloc_arenas()
    # SIGXCPU at the soft limit ends the process; the hard limit's SIGKILL backs it up.
    _set_limit(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + _CPU_GRACE_S)
    _set_limit(resource.RLIMIT_AS, memory_bytes, memory_bytes)

    def forward(done: int, total: int) -> None:
        conn.send(("progress", done, total))

    try:
        result = func(*args, on_progress=forward) if relay_progress else func(*args)
    except VideoUnreadable as exc:
        conn.send(("unreadable", str(exc)))
    except MemoryError:
        conn.send(("memory", ""))
    except cv2.error as exc:
        out_of_memory = "Insufficient memory" in str(exc) or "Failed to allocate" in str(exc)
        conn.send(("memory", "") if out_of_memory else ("error", f"OpenCV error: {exc.err}"))
    except Exception as exc:  # noqa: BLE001 - any failure crosses the pipe as text; the parent raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    else:
        conn.send(("ok", result))
    conn.close()


def _outcome(message: tuple[Any, ...] | None, exitcode: int | None, cpu_seconds: int, memory_bytes: int) -> Any:
    """The child's result, or the error its last message (None: it died without one) and exit code mean."""
    if message is None:
        if exitcode is not None and exitcode < 0:
            if -exitcode == signal.SIGXCPU:
                raise VideoProcessingError(f"decoder exceeded its CPU limit ({cpu_seconds} s)")
            raise VideoProcessingError(f"decoder crashed (signal {-exitcode}, {signal.Signals(-exitcode).name})")
        raise VideoProcessingError(f"decoder exited unexpectedly (exit code {exitcode})")
    kind, payload = message
    if kind == "ok":
        return payload
    if kind == "unreadable":
        raise VideoUnreadable(payload)
    if kind == "memory":
        raise VideoProcessingError(f"decoder ran out of memory (limit {memory_bytes / 2**20:.0f} MB)")
    raise VideoProcessingError(f"decoder failed: {payload}")


def _await_outcome(
    receiver: Connection, wall_seconds: float, on_progress: ProgressCallback | None
) -> tuple[Any, ...] | None:
    """Relay progress until the child's final message (None on EOF); VideoProcessingError past the deadline."""
    deadline = time.monotonic() + wall_seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if not receiver.poll(min(remaining, _POLL_SLICE_S)):
            continue
        try:
            kind, *payload = receiver.recv()
        except EOFError:
            return None
        if kind != "progress":
            return kind, *payload
        if on_progress is not None:
            on_progress(*payload)
    raise VideoProcessingError(f"decoder exceeded its time limit ({wall_seconds:g} s)")


@functools.cache
def _context() -> multiprocessing.context.ForkServerContext:
    """Forkserver: children fork from a clean single-threaded server, not from a threaded worker.

    Forking a Dramatiq worker would copy locks held by its other threads (logging, DB and Redis clients,
    OpenCV's pool) into the child. The server preloads this module; a child then costs ~10 ms plus
    re-running the parent's __main__ script as multiprocessing does (~70 ms under a dramatiq-like main,
    measured), against ~6 ms for a plain fork: nothing next to decoding a video.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def run_limited(
    func: Callable[..., T],
    *args: Any,
    cpu_seconds: int,
    memory_bytes: int,
    wall_seconds: float,
    on_progress: ProgressCallback | None = None,
) -> T:
    """Run `func(*args)` in a child process under CPU, address-space and wall-clock limits.

    Dramatiq's time limit cannot interrupt native OpenCV code, a separate process can be killed. Given an
    `on_progress`, func also gets `on_progress=` and its calls are relayed to it in this process. Raises
    VideoUnreadable as func raised it, else VideoProcessingError when the child fails, exceeds a limit or
    dies; the child is always reaped. func and args must pickle (module-level functions, partials).
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(sender, func, args, on_progress is not None, cpu_seconds, memory_bytes),
        name="vision-limited",
        daemon=True,
    )
    with receiver:
        with sender:
            child.start()  # the child has its own end: closing ours lets recv() see EOF if it dies
        try:
            message = _await_outcome(receiver, wall_seconds, on_progress)
            child.join(_REAP_TIMEOUT_S)
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            exitcode = child.exitcode
            child.close()
    return _outcome(message, exitcode, cpu_seconds, memory_bytes)  # type: ignore[no-any-return]


def detect_motion_limited(
    path: str,
    *,
    stride: int = 1,
    min_area: int = 64,
    cpu_seconds: int,
    memory_bytes: int,
    wall_seconds: float,
    on_progress: ProgressCallback | None = None,
) -> list[Box]:
    """detect_motion in a child process under run_limited's CPU, memory and wall-clock limits."""
    func = functools.partial(detect_motion, stride=stride, min_area=min_area)
    return run_limited(
        func,
        path,
        cpu_seconds=cpu_seconds,
        memory_bytes=memory_bytes,
        wall_seconds=wall_seconds,
        on_progress=on_progress,
    )
