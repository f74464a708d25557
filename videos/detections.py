"""Detection ingest: parse a JSON array or JSON Lines body, validate every row, insert in bulk (COPY on PostgreSQL)."""

import math
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Annotated, Any

import msgspec
import numpy as np
import orjson

from config.bulk import bulk_insert_arrays
from config.errors import ValidationFailed
from videos.models import DetectionEvent

MAX_ROWS = 100_000
MAX_BODY_BYTES = 64 * 1024 * 1024
COLUMNS = ("frame", "timestamp_ms", "label", "confidence", "x", "y", "w", "h")
INT32_MAX = 2**31 - 1  # frame and timestamp_ms are PostgreSQL `integer` columns
_row_values = itemgetter(*COLUMNS)


@dataclass(frozen=True)
class Detections:
    """Validated rows as columns: NumPy arrays for the numbers, a list for the labels."""

    frame: np.ndarray
    timestamp_ms: np.ndarray
    label: list[str]
    confidence: np.ndarray
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


class _Row(msgspec.Struct, gc=False):
    """One detection as the typed decoder checks it: every rule of `_check_row` except those needing the
    video (frame count, frame size) and finiteness (a JSON number never decodes to inf or NaN here)."""

    frame: Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
    timestamp_ms: Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)]
    x: Annotated[float, msgspec.Meta(ge=0)]
    y: Annotated[float, msgspec.Meta(ge=0)]
    w: Annotated[float, msgspec.Meta(gt=0)]
    h: Annotated[float, msgspec.Meta(gt=0)]


_decode_array = msgspec.json.Decoder(list[_Row]).decode
_decode_row = msgspec.json.Decoder(_Row).decode
_INTEGERS = ("frame", "timestamp_ms")


def _bad(row: int, field: str | None, message: str) -> ValidationFailed:
    return ValidationFailed(f"Row {row}: {message}", details={"row": row, "field": field})


def read_body(
    body: bytes, *, jsonl: bool, width: int | None, height: int | None, frame_count: int | None
) -> Detections:
    """Parse and validate a JSON array or JSON Lines body into columns; the first bad row raises, naming it.

    A typed decoder (msgspec) parses and checks types and ranges in one C pass; the frame rules run
    vectorised on the columns. When either refuses the body, the reference path (`parse_body`, then
    `validate_rows`) runs to name the first bad row and field exactly as before; it also has the last word
    where the typed decoder is stricter (a key repeated in one object: orjson keeps the last value)."""
    rows = _decode(body, jsonl=jsonl)
    if rows is not None and 1 <= len(rows) <= MAX_ROWS:
        columns = _struct_columns(rows)
        del rows
        if _in_range(columns, width=width, height=height, frame_count=frame_count):
            return columns
    return validate_rows(parse_body(body, jsonl=jsonl), width=width, height=height, frame_count=frame_count)


def _decode(body: bytes, *, jsonl: bool) -> list[_Row] | None:
    """The typed rows, or None when the body or a row is malformed or out of range."""
    try:
        if not jsonl:
            return _decode_array(body)
        rows: list[_Row] = []
        view, start, size, find, append = memoryview(body), 0, len(body), body.find, rows.append
        while start < size and len(rows) <= MAX_ROWS:
            end = find(b"\n", start)
            end = size if end < 0 else end
            line = view[start:end]
            start = end + 1
            try:
                append(_decode_row(line))
            except msgspec.DecodeError:
                if line.tobytes().strip():  # blank lines are skipped, as in `_parse_lines`
                    return None
        return rows
    except msgspec.DecodeError:  # malformed, or (its subclass ValidationError) a wrong type or range
        return None


def _struct_columns(rows: list[_Row]) -> Detections:
    n = len(rows)
    arrays = {
        name: np.fromiter(map(attrgetter(name), rows), np.int64 if name in _INTEGERS else np.float64, count=n)
        for name in COLUMNS
        if name != "label"
    }
    return Detections(label=list(map(attrgetter("label"), rows)), **arrays)


def parse_body(body: bytes, *, jsonl: bool) -> list[Any]:
    """Decode the body into a list of row objects (the only full copy of the data we build)."""
    if jsonl:
        return _parse_lines(body)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed("The body is not valid JSON.", details={"row": None, "field": None}) from exc
    if not isinstance(data, list):
        raise ValidationFailed(
            "Send a JSON array of detections (or application/jsonl).", details={"row": None, "field": None}
        )
    return data


def _parse_lines(body: bytes) -> list[Any]:
    """One object per line; blank lines skipped. Lines are parsed from views of the body, not copies."""
    rows: list[Any] = []
    view, start, size = memoryview(body), 0, len(body)
    while start < size and len(rows) <= MAX_ROWS:
        end = body.find(b"\n", start)
        end = size if end < 0 else end
        line = view[start:end]
        start = end + 1
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            if line.tobytes().strip():
                raise _bad(len(rows), None, "not valid JSON.") from exc
    return rows


def validate_rows(rows: list[Any], *, width: int | None, height: int | None, frame_count: int | None) -> Detections:
    """Check every row and return them as columns, emptying `rows`; the first bad row raises, naming it.

    The checks run column-wise (C-level type scans, NumPy range checks); only when they find a problem does
    the per-row check run, to name the first bad row and field exactly."""
    if not rows:
        raise ValidationFailed("Send at least one detection.", details={"row": None, "field": None})
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"At most {MAX_ROWS} detections per request.", details={"count": len(rows)})
    columns = _columns(rows)
    if columns is None or not _in_range(columns, width=width, height=height, frame_count=frame_count):
        for i, raw in enumerate(rows):
            _check_row(i, raw, width=width, height=height, frame_count=frame_count)
        raise AssertionError("the column checks and the row checks disagree")  # pragma: no cover
    rows.clear()  # the columns now hold the data: free the parsed objects early
    return columns


def _columns(rows: list[Any]) -> Detections | None:
    """The rows as typed columns, or None if a row is not an object, lacks a field or has a wrong type."""
    try:
        values = {name: list(map(itemgetter(name), rows)) for name in COLUMNS}
    except (KeyError, TypeError):  # a missing field, or a row that is not an object
        return None
    # Exact types, so bool (a subclass of int) is refused; JSON numbers decode to int or float only.
    wanted = {"frame": {int}, "timestamp_ms": {int}, "label": {str}}
    if not all(set(map(type, column)) <= wanted.get(name, {int, float}) for name, column in values.items()):
        return None
    try:
        arrays = {
            name: np.array(column, dtype=np.int64 if name in wanted else np.float64)
            for name, column in values.items()
            if name != "label"
        }
    except OverflowError:  # an integer beyond int64/float64: the row check names it
        return None
    return Detections(label=values["label"], **arrays)


def _in_range(d: Detections, *, width: int | None, height: int | None, frame_count: int | None) -> bool:
    """Every range rule of `_check_row`, vectorised."""
    # PostgreSQL text cannot hold NUL: refuse it here (400 naming the row) rather than fail in COPY (500).
    labels_ok = min(map(len, d.label)) >= 1 and max(map(len, d.label)) <= 64 and "\x00" not in "".join(d.label)
    frame_limit = min(frame_count, INT32_MAX + 1) if frame_count is not None else INT32_MAX + 1
    floats = np.stack([d.confidence, d.x, d.y, d.w, d.h])
    checks = [
        (d.frame >= 0) & (d.frame < frame_limit),
        (d.timestamp_ms >= 0) & (d.timestamp_ms <= INT32_MAX),
        np.isfinite(floats).all(axis=0),
        (d.confidence >= 0) & (d.confidence <= 1),
        (d.x >= 0) & (d.y >= 0) & (d.w > 0) & (d.h > 0),
    ]
    if width is not None:
        checks.append(d.x + d.w <= width)
    if height is not None:
        checks.append(d.y + d.h <= height)
    return labels_ok and all(bool(c.all()) for c in checks)


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT32_MAX


def _check_row(i: int, raw: Any, *, width: int | None, height: int | None, frame_count: int | None) -> None:
    """The reference check of one row: raises naming the row and its first bad field."""
    if not isinstance(raw, dict):
        raise _bad(i, None, "each detection must be an object.")
    frame, ts, label, conf = raw.get("frame"), raw.get("timestamp_ms"), raw.get("label"), raw.get("confidence")
    if not _integer(frame):
        raise _bad(i, "frame", "frame must be a non-negative integer.")
    if frame_count is not None and frame >= frame_count:
        raise _bad(i, "frame", f"frame must be below the video's {frame_count} frames.")
    if not _integer(ts):
        raise _bad(i, "timestamp_ms", "timestamp_ms must be a non-negative integer.")
    if not isinstance(label, str) or not 1 <= len(label) <= 64 or "\x00" in label:
        raise _bad(i, "label", "label must be a string of 1 to 64 characters without NUL.")
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


def insert_rows(*, session_id: int, video_id: int, rows: Detections) -> None:
    """Insert validated rows in the caller's transaction: one binary COPY laid out by NumPy on PostgreSQL,
    batched INSERTs elsewhere. Rows keep the body's order, so ids follow it."""
    n = len(rows)
    bulk_insert_arrays(
        DetectionEvent,
        {
            "test_session_id": np.full(n, session_id, dtype=np.int64),
            "video_id": np.full(n, video_id, dtype=np.int64),
            **{name: getattr(rows, name) for name in COLUMNS},
        },
    )
