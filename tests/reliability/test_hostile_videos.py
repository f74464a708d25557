"""Hostile videos through a real worker under strace: every case ends, decoders stay capped, no foreign reads."""

import contextlib
import random
import struct
import threading
from pathlib import Path

import pytest
from django.db.models import F, Max

from tests.media import make_moving_box_video
from tests.reliability import report
from tests.reliability.conftest import CHAOS_SCALE, add_video, needs_services
from tests.reliability.procs import descendants, status_kb, wait_until
from videos.models import ProcessingJob, Video

pytestmark = [needs_services, pytest.mark.django_db(transaction=True)]

DECODE_MEMORY_MB = 512
DECODE_WALL_S = 20
SEED = 20260602


def _patch(data: bytearray, at: int, fmt: str, *values: int) -> None:
    struct.pack_into(fmt, data, at, *values)


def _avi_declaring(avi: bytes, *, size: tuple[int, int] | None = None, frames: int | None = None) -> bytes:
    """Rewrite an AVI's main and stream headers (avih, strh, strf) to declare another size or frame count."""
    data = bytearray(avi)
    avih, strh, strf = (data.find(tag) + 8 for tag in (b"avih", b"strh", b"strf"))
    if size:
        _patch(data, avih + 32, "<II", *size)
        _patch(data, strf + 4, "<ii", *size)
    if frames is not None:
        _patch(data, avih + 16, "<I", frames)
        _patch(data, strh + 32, "<I", frames)
    return bytes(data)


def _mp4_boxes(mp4: bytes) -> list[tuple[bytes, bytes]]:
    boxes, at = [], 0
    while at + 8 <= len(mp4):
        size, kind = struct.unpack_from(">I4s", mp4, at)
        boxes.append((kind, mp4[at : at + size]))
        at += size
    return boxes


def _mp4_declaring_size(mp4: bytes, width: int, height: int) -> bytes:
    data = bytearray(mp4)
    tkhd = data.find(b"tkhd") + 4
    tkhd_end = tkhd - 8 + struct.unpack_from(">I", data, tkhd - 8)[0]
    _patch(data, tkhd_end - 8, ">II", width << 16, height << 16)
    entry = data.find(b"mp4v", data.find(b"stsd")) + 4 + 24
    _patch(data, entry, ">HH", width, height)
    return bytes(data)


def hostile_cases(avi: bytes, mp4: bytes, canary: Path) -> dict[str, bytes]:
    """≥ 50 damaged, lying or foreign-reading files, all starting like a video the sniffer would accept."""
    rng = random.Random(SEED)
    points = int(20 * CHAOS_SCALE)
    cases: dict[str, bytes] = {}
    for name, data in (("avi", avi), ("mp4", mp4)):
        for i in range(1, points + 1):
            cut = int(len(data) * i / (points + 1))
            cases[f"{name} truncated at {cut}/{len(data)}"] = data[:cut]
        for keep in (16, 512, 4096):
            cases[f"{name} header {keep} B + garbage"] = data[:keep] + rng.randbytes(256 * 1024)
        cases[f"{name} garbage in the middle"] = data[:2048] + rng.randbytes(len(data) // 2) + data[-2048:]
    for magic in (b"\x00\x00\x00\x18ftypmp42", b"\x1a\x45\xdf\xa3", b"RIFF\x00\x10\x00\x00AVI "):
        cases[f"random bytes after magic {magic[:8]!r}"] = magic + rng.randbytes(512 * 1024)
    cases["avi declaring 65535x65535"] = _avi_declaring(avi, size=(65535, 65535))
    cases["avi declaring 16384x16384"] = _avi_declaring(avi, size=(16384, 16384))
    cases["avi declaring 10^7 frames"] = _avi_declaring(avi, frames=10_000_000)
    cases["avi declaring 2^32-1 frames"] = _avi_declaring(avi, frames=2**32 - 1)
    cases["mp4 declaring 65535x65535"] = _mp4_declaring_size(mp4, 65535, 65535)
    boxes = _mp4_boxes(mp4)
    cases["mp4 with an empty moov"] = b"".join(b"\x00\x00\x00\x08moov" if k == b"moov" else box for k, box in boxes)
    cases["mp4 without moov"] = b"".join(box for k, box in boxes if k != b"moov")
    target = str(canary)
    cases["renamed HLS playlist"] = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n".encode()
    cases["renamed ffconcat"] = f"ffconcat version 1.0\nfile '{target}'\n".encode()
    cases["playlist behind an ftyp box"] = b"\x00\x00\x00\x18ftypmp42" + f"\n#EXTM3U\n#EXTINF:10,\n{target}\n".encode()
    cases["playlist behind EBML magic"] = b"\x1a\x45\xdf\xa3" + f"\nffconcat version 1.0\nfile '{target}'\n".encode()
    cases["empty file"] = b""
    cases["one byte"] = b"\x00"
    return cases


class DecoderPeak:
    """Peak RSS (VmHWM) of the worker's decoder children: forkserver children, sampled every 20 ms."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid, self.peak_kb, self.children = root_pid, 0, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in descendants(self.root_pid):
                with contextlib.suppress(OSError):
                    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                    if b"forkserver" in Path(f"/proc/{parent}/cmdline").read_bytes():
                        self.children.add(pid)
                        self.peak_kb = max(self.peak_kb, status_kb(pid, "VmHWM"))

    def __enter__(self) -> "DecoderPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_hostile_videos_end_capped_without_foreign_reads(project, start_worker, tmp_path, log_dir, media_root):
    sources = tmp_path / "sources"
    sources.mkdir()
    make_moving_box_video(sources / "ok.avi", frames=24, width=160, height=120, fourcc="MJPG")
    make_moving_box_video(sources / "ok.mp4", frames=24, width=160, height=120, fourcc="mp4v")
    canary = tmp_path / "canary-secret.avi"
    make_moving_box_video(canary, frames=24, width=160, height=120, fourcc="MJPG")
    cases = hostile_cases((sources / "ok.avi").read_bytes(), (sources / "ok.mp4").read_bytes(), canary)
    assert len(cases) >= 50

    trace = log_dir / "strace.txt"
    wrap = ("strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=open,openat,openat2", "-o", str(trace))
    env = {"DECODE_MEMORY_BYTES": str(DECODE_MEMORY_MB * 2**20), "DECODE_WALL_S": str(DECODE_WALL_S)}
    worker = start_worker(wrap=wrap, threads=2, **env)
    videos = {}
    with DecoderPeak(worker.pid) as peak:
        for index, (name, data) in enumerate(cases.items()):
            path = tmp_path / "cases" / f"{index:03d}{'.avi' if 'avi' in name else '.mp4'}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            videos[name] = add_video(project, path)
        ids = [v.pk for v in videos.values()]
        deadline = 60 + len(cases) * 3 * DECODE_WALL_S / 2
        wait_until(
            lambda: not Video.objects.filter(pk__in=ids).exclude(status__in=["completed", "failed"]).exists(),
            deadline,
            "every hostile video to finish",
            0.2,
        )
    outcomes = dict(Video.objects.filter(pk__in=ids).values_list("pk", "status"))
    jobs = ProcessingJob.objects.filter(video_id__in=ids)
    longest = jobs.annotate(took=F("finished_at") - F("started_at")).aggregate(m=Max("took"))["m"]
    worker.stop()
    opened = trace.read_text(errors="replace")
    foreign_reads = opened.count(str(canary)) + opened.count(canary.name)
    completed = sum(1 for s in outcomes.values() if s == "completed")
    assert len(outcomes) == len(cases)
    assert set(outcomes.values()) <= {"completed", "failed"}
    assert all(j.attempts == 1 for j in jobs), [(j.video_id, j.attempts) for j in jobs if j.attempts != 1]
    failed_errors = set(Video.objects.filter(pk__in=ids, status="failed").values_list("error", flat=True))
    assert all(e and "Traceback" not in e for e in failed_errors)
    assert peak.children, "no decoder child was observed"
    assert peak.peak_kb < DECODE_MEMORY_MB * 1024
    assert opened.count(str(media_root)) >= len(cases)  # the trace saw every case's own file being opened
    assert foreign_reads == 0
    report.record(
        "hostile_videos",
        item=8,
        scenario=f"{len(cases)} hostile videos (truncated, garbage, 65535², 10⁷ frames, empty moov, playlists)",
        figure=(
            f"100 % ended ({completed} completed, {len(cases) - completed} failed, 1 attempt each), "
            f"longest job {longest.total_seconds():.1f} s, decoder peak RSS {peak.peak_kb / 1024:.0f} MB "
            f"(cap {DECODE_MEMORY_MB} MB address space), 0 opens of the canary file (strace)"
        ),
        goal="100 % failed/completed in time, RSS under cap, 0 foreign reads",
        ok=True,
        errors=sorted(failed_errors),
        decoder_children_seen=len(peak.children),
    )
