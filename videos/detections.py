"""Detection ingest: parse a JSON array or JSON Lines body, validate every row, insert in bulk (COPY on PostgreSQL)."""

import math
from collections.abc import Sequence
from typing import Any

import orjson

from config.bulk import bulk_insert
from config.errors import ValidationFailed
from videos.models import DetectionEvent

MAX_ROWS = 100_000
MAX_BODY_BYTES = 64 * 1024 * 1024
COLUMNS = ("frame", "timestamp_ms", "label", "confidence", "x", "y", "w", "h")
Row = tuple[int, int, str, float, float, float, float, float]


def _bad(row: int, field: str | None, message: str) -> ValidationFailed:
    return ValidationFailed(f"Row {row}: {message}", details={"row": row, "field": field})


def parse_body(body: bytes, *, jsonl: bool) -> list[Any]:
    """Decode the body into a list of row objects (the only full copy of the data we build)."""
    if jsonl:
        rows: list[Any] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise _bad(len(rows), None, "not valid JSON.") from exc
        return rows
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed("The body is not valid JSON.", details={"row": None, "field": None}) from exc
    if not isinstance(data, list):
        raise ValidationFailed(
            "Send a JSON array of detections (or application/jsonl).", details={"row": None, "field": None}
        )
    return data


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_rows(rows: list[Any], *, width: int | None, height: int | None, frame_count: int | None) -> None:
    """Check every row in place (each dict becomes a typed tuple); the first bad row raises, naming it."""
    if not rows:
        raise ValidationFailed("Send at least one detection.", details={"row": None, "field": None})
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"At most {MAX_ROWS} detections per request.", details={"count": len(rows)})
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            raise _bad(i, None, "each detection must be an object.")
        frame, ts, label, conf = raw.get("frame"), raw.get("timestamp_ms"), raw.get("label"), raw.get("confidence")
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
            raise _bad(i, "frame", "frame must be a non-negative integer.")
        if frame_count is not None and frame >= frame_count:
            raise _bad(i, "frame", f"frame must be below the video's {frame_count} frames.")
        if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
            raise _bad(i, "timestamp_ms", "timestamp_ms must be a non-negative integer.")
        if not isinstance(label, str) or not 1 <= len(label) <= 64:
            raise _bad(i, "label", "label must be a string of 1 to 64 characters.")
        if not _number(conf) or not 0.0 <= conf <= 1.0:
            raise _bad(i, "confidence", "confidence must be a number in [0, 1].")
        box = []
        for field in ("x", "y", "w", "h"):
            value = raw.get(field)
            if not _number(value) or value < 0 or (field in ("w", "h") and value == 0):
                raise _bad(i, field, f"{field} must be a non-negative number (w and h positive).")
            box.append(float(value))
        x, y, w, h = box
        if width is not None and x + w > width:
            raise _bad(i, "w", f"the box must lie inside the {width} px wide frame.")
        if height is not None and y + h > height:
            raise _bad(i, "h", f"the box must lie inside the {height} px high frame.")
        rows[i] = (frame, ts, label, float(conf), x, y, w, h)


def insert_rows(*, session_id: int, video_id: int, rows: Sequence[Row]) -> None:
    """Insert validated rows in the caller's transaction: one COPY on PostgreSQL, batched INSERTs elsewhere."""
    bulk_insert(
        DetectionEvent, ("test_session_id", "video_id", *COLUMNS), ((session_id, video_id, *row) for row in rows)
    )
