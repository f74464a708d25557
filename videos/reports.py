"""Session reports from stored results: metrics at any confidence, per-frame timeline, comparison, COCO export."""

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from config.errors import Conflict
from config.renderers import dumps
from videos import scoring
from videos.models import DetectionEvent, GroundTruthBox, TestSession, Video

EXPORT_BATCH = 2000


def _require_completed(session: TestSession) -> None:
    if session.status != TestSession.Status.COMPLETED:
        raise Conflict("The session has not been scored yet.", details={"status": session.status})


def _stored(session: TestSession) -> dict[str, np.ndarray]:
    rows = list(
        DetectionEvent.objects.filter(test_session_id=session.pk).values_list(
            "frame", "label", "confidence", "result__validation_result", "result__iou"
        )
    )
    gt = list(GroundTruthBox.objects.filter(video_id=session.video_id).values_list("frame", "label"))
    return {
        "frame": np.array([r[0] for r in rows], dtype=np.int64),
        "label": np.array([r[1] for r in rows], dtype=object),
        "conf": np.array([r[2] for r in rows], dtype=np.float64),
        "is_tp": np.array([r[3] == "TP" for r in rows], dtype=bool),
        "iou": np.array([r[4] or 0.0 for r in rows], dtype=np.float64),
        "gt_frame": np.array([g[0] for g in gt], dtype=np.int64),
        "gt_label": np.array([g[1] for g in gt], dtype=object),
    }


def session_report(*, session: TestSession, min_confidence: float = 0.0) -> dict[str, Any]:
    """Totals, AP at the session's IoU threshold, PR curve and per-label figures, recomputed exactly
    for detections at or above `min_confidence` from the stored matches (no re-run)."""
    _require_completed(session)
    data = _stored(session)
    figures = scoring.report(
        data["label"], data["conf"], data["is_tp"], data["iou"], data["gt_label"], min_confidence=min_confidence
    )
    figures["ap50"] = figures.pop("ap")
    figures["per_label"] = {str(k): v for k, v in figures["per_label"].items()}
    return {"session_id": session.pk, "iou_threshold": session.iou_threshold, **figures}


def _timeline(session: TestSession, data: dict[str, np.ndarray] | None = None) -> scoring.Timeline:
    data = data or _stored(session)
    # Each TP matched exactly one box of its frame, so a frame's unmatched boxes are its boxes minus its TPs.
    gt_frame = np.sort(data["gt_frame"])
    _, first = np.unique(gt_frame, return_index=True)
    rank = np.arange(gt_frame.size) - np.repeat(first, np.diff(np.append(first, gt_frame.size)))
    tp_frames, tp_counts = np.unique(data["frame"][data["is_tp"]], return_counts=True)
    tp_at = np.zeros(gt_frame.size, dtype=np.int64)
    if tp_frames.size and gt_frame.size:
        pos = np.searchsorted(tp_frames, gt_frame)
        hit = (pos < tp_frames.size) & (tp_frames[np.minimum(pos, tp_frames.size - 1)] == gt_frame)
        tp_at[hit] = tp_counts[pos[hit]]
    return scoring.timeline(data["frame"], data["is_tp"], gt_frame, rank < tp_at)


def session_timeline(*, session: TestSession) -> list[dict[str, int]]:
    """Per-frame TP/FP/FN in frame order, for frames with a detection or a ground-truth box."""
    _require_completed(session)
    t = _timeline(session)
    return [
        {"frame": f, "tp": a, "fp": b, "fn": c}
        for f, a, b, c in zip(t.frame.tolist(), t.tp.tolist(), t.fp.tolist(), t.fn.tolist(), strict=True)
    ]


COMPARE_MAX_FRAMES = 5000


def sessions_compare(*, video: Video, a: TestSession, b: TestSession) -> dict[str, Any]:
    """Two scored sessions on one video: their totals side by side, and frames where exactly one is right."""
    for session in (a, b):
        if session.video_id != video.pk:
            raise Conflict("Both sessions must belong to this video.", details={"session_id": session.pk})
        _require_completed(session)
    diff = scoring.compare(_timeline(a), _timeline(b))
    frames = [{"frame": f, "right": r} for f, r in zip(diff.frame.tolist(), diff.right.tolist(), strict=True)]
    return {
        "video_id": video.pk,
        "a": _totals(a),
        "b": _totals(b),
        "frames_differing": len(frames),
        "frames": frames[:COMPARE_MAX_FRAMES],
    }


def _totals(session: TestSession) -> dict[str, Any]:
    fields = ("tp", "fp", "fn", "precision", "recall", "f1", "mean_iou")
    return {"session_id": session.pk, "model_name": session.model_name, **{f: getattr(session, f) for f in fields}}


async def _rows(queryset: QuerySet[Any]) -> AsyncIterator[tuple[Any, ...]]:
    """values_list rows (id first) in id order, one short keyset query per batch: no cursor held open."""
    last = 0
    while True:
        batch = await sync_to_async(list)(queryset.filter(id__gt=last).order_by("id")[:EXPORT_BATCH])
        for row in batch:
            yield row
        if len(batch) < EXPORT_BATCH:
            return
        last = batch[-1][0]


async def coco_export(session: TestSession, video: Video) -> AsyncIterator[bytes]:
    """The session as one COCO JSON document, streamed: images (frames), categories, annotations (ground
    truth) and detections (COCO results: image_id, category_id, bbox, score)."""
    gt = GroundTruthBox.objects.filter(video_id=video.pk)
    det = DetectionEvent.objects.filter(test_session_id=session.pk)
    labels = sorted(
        set(await sync_to_async(list)(gt.values_list("label", flat=True).distinct()))
        | set(await sync_to_async(list)(det.values_list("label", flat=True).distinct()))
    )
    category = {label: i + 1 for i, label in enumerate(labels)}
    header = {
        "info": {"description": f"Framewise test session {session.pk}", "model_name": session.model_name},
        "categories": [{"id": i, "name": label} for label, i in category.items()],
    }
    yield dumps(header)[:-1] + b',"images":['
    frame_count = video.frame_count or 0
    for start in range(0, frame_count, EXPORT_BATCH):
        chunk = [
            {"id": f, "file_name": f"frame_{f:06d}", "width": video.width, "height": video.height, "frame": f}
            for f in range(start, min(start + EXPORT_BATCH, frame_count))
        ]
        yield (b"," if start else b"") + dumps(chunk)[1:-1]
    yield b'],"annotations":['
    gt_rows = gt.values_list("id", "frame", "label", "x", "y", "w", "h")
    async for part in _joined(
        {"id": pk, "image_id": frame, "category_id": category[label], "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
        async for pk, frame, label, x, y, w, h in _rows(gt_rows)
    ):
        yield part
    yield b'],"detections":['
    fields = ("id", "frame", "label", "confidence", "x", "y", "w", "h", "result__validation_result", "result__iou")
    async for part in _joined(
        {
            "id": pk,
            "image_id": frame,
            "category_id": category[label],
            "bbox": [x, y, w, h],
            "score": conf,
            "validation_result": result,
            "iou": iou,
        }
        async for pk, frame, label, conf, x, y, w, h, result, iou in _rows(
            det.order_by("frame", "id").values_list(*fields)
        )
    ):
        yield part
    yield b"]}"


async def _joined(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Comma-joined JSON objects in chunks of EXPORT_BATCH (a list body without its brackets)."""
    batch: list[bytes] = []
    first = True
    async for item in items:
        batch.append(dumps(item))
        if len(batch) >= EXPORT_BATCH:
            yield (b"" if first else b",") + b",".join(batch)
            batch, first = [], False
    if batch:
        yield (b"" if first else b",") + b",".join(batch)
