"""Column-wise ingest validation against the row reference, bulk column I/O, and the scores' results table."""

import numpy as np
import orjson
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from config.bulk import bulk_insert_arrays, fetch_arrays, fetch_grouped_arrays
from config.errors import ValidationFailed
from tests.videos.test_sessions import DETECTIONS, det, video  # noqa: F401 - the `video` fixture
from videos import detections, processing, scoring
from videos.models import DetectionEvent, DetectionResult, GroundTruthBox, ProcessingJob, TestSession, Video

pytestmark = pytest.mark.django_db
FRAME = {"width": 100, "height": 100, "frame_count": 10}


def _first_error(rows: list, **frame) -> dict | None:
    """The reference: the row checks in order; the details of the first failure, or None."""
    for i, raw in enumerate(rows):
        try:
            detections._check_row(i, raw, **frame)
        except ValidationFailed as exc:
            return exc.details
    return None


_value = st.one_of(
    st.integers(-5, 120),
    st.floats(-1, 120, allow_nan=False),
    st.sampled_from([True, False, None, "", "car", "x" * 65, 2**63, 2**31, 1e308, [], {}]),
)
_BASE = det(1, "car", 0.5, 10, 10)
_row = st.one_of(
    st.just(_BASE),
    st.builds(lambda k, v: {**_BASE, k: v}, st.sampled_from(detections.COLUMNS), _value),
    st.builds(lambda k: {f: v for f, v in _BASE.items() if f != k}, st.sampled_from(detections.COLUMNS)),
    st.sampled_from([5, "row", [1, 2], None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_row, min_size=1, max_size=6))
def test_column_checks_name_the_same_first_bad_row_as_the_row_reference(rows):
    expected = _first_error(rows, **FRAME)
    try:
        columns = detections.validate_rows(list(rows), **FRAME)
    except ValidationFailed as exc:
        assert exc.details == expected
    else:
        assert expected is None
        assert columns.frame.tolist() == [r["frame"] for r in rows]
        assert columns.label == [r["label"] for r in rows]
        assert columns.w.tolist() == [float(r["w"]) for r in rows]


def _read(body: bytes, *, jsonl: bool) -> tuple[dict | None, list | None]:
    """read_body's outcome: (error details, None) or (None, the rows as dicts)."""
    try:
        d = detections.read_body(body, jsonl=jsonl, **FRAME)
    except ValidationFailed as exc:
        return exc.details, None
    values = [d.frame.tolist(), d.timestamp_ms.tolist(), d.label] + [getattr(d, c).tolist() for c in "xywh"]
    values.insert(3, d.confidence.tolist())
    return None, [dict(zip(detections.COLUMNS, row, strict=True)) for row in zip(*values, strict=True)]


@settings(max_examples=300, deadline=None)
@given(st.lists(_row, min_size=1, max_size=6), st.booleans())
def test_typed_decoding_gives_the_row_reference_outcome(rows, jsonl):
    body = b"\n".join(map(orjson.dumps, rows)) if jsonl else orjson.dumps(rows)
    error, got = _read(body, jsonl=jsonl)
    assert error == _first_error(rows, **FRAME)
    if error is None:
        assert got == [{c: r[c] for c in detections.COLUMNS} for r in rows]


@pytest.mark.parametrize("jsonl", [False, True])
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a repeated key: the last value counts (orjson), though the typed decoder refuses the first
        (
            b'{"frame": -1, "frame": 2, "timestamp_ms": 0, "label": "a", "confidence": 1, "x": 0, "y": 0, '
            b'"w": 1, "h": 1}',
            None,
        ),
        (
            b'{"frame": 2, "frame": -1, "timestamp_ms": 0, "label": "a", "confidence": 1, "x": 0, "y": 0, '
            b'"w": 1, "h": 1}',
            {"row": 0, "field": "frame"},
        ),
        (
            b'{"frame": 2, "timestamp_ms": 0, "label": "a", "confidence": 1, "x": 1e400, "y": 0, "w": 1, "h": 1}',
            {"row": None, "field": None},
        ),
        (
            b'{"frame": 2, "timestamp_ms": 0, "label": "' + "\U0001d4b3".encode() * 65 + b'", "confidence": 1, '
            b'"x": 0, "y": 0, "w": 1, "h": 1}',
            {"row": 0, "field": "label"},
        ),
        (
            b'{"frame": 2, "timestamp_ms": 0, "label": "a", "confidence": 1, "x": 0, "y": 0, "w": -0.0, "h": 1}',
            {"row": 0, "field": "w"},
        ),
    ],
)
def test_typed_decoding_edges_match_the_reference(body, expected, jsonl):
    if jsonl:
        expected = {"row": 0, "field": None} if expected == {"row": None, "field": None} else expected
    else:
        body = b"[" + body + b"]"
    assert _read(body, jsonl=jsonl)[0] == expected


def test_jsonl_line_holding_two_objects_or_half_an_object_is_refused():
    one = orjson.dumps(DETECTIONS[0])
    assert _read(one + b" " + one, jsonl=True)[0] == {"row": 0, "field": None}
    assert _read(one[:20] + b"\n" + one[20:], jsonl=True)[0] == {"row": 0, "field": None}


@pytest.mark.parametrize(
    ("rows", "row", "field"),
    [
        ([DETECTIONS[0], {**DETECTIONS[1], "label": 5}, DETECTIONS[2], {**DETECTIONS[3], "x": 95}], 1, "label"),
        ([DETECTIONS[0], DETECTIONS[1], {**DETECTIONS[2], "frame": 10}, {**DETECTIONS[3], "w": "7"}], 2, "frame"),
        ([DETECTIONS[0], 7, DETECTIONS[1]], 1, None),
        ([DETECTIONS[0], {k: v for k, v in DETECTIONS[1].items() if k != "h"}], 1, "h"),
        ([DETECTIONS[0], {**DETECTIONS[1], "frame": 2**63}], 1, "frame"),
        ([DETECTIONS[0], {**DETECTIONS[1], "timestamp_ms": 2**31}], 1, "timestamp_ms"),
        ([{**DETECTIONS[0], "confidence": True}], 0, "confidence"),
    ],
)
def test_api_names_the_first_bad_row_and_inserts_nothing(owner_api, video, rows, row, field):  # noqa: F811
    session = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "m"}, format="json").json()
    response = owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", rows, format="json")
    assert (response.status_code, response.json()["details"]) == (400, {"row": row, "field": field})
    assert DetectionEvent.objects.count() == 0


def test_jsonl_blank_lines_and_crlf_give_the_json_rows():
    body = b"\r\n".join(orjson.dumps(d) for d in DETECTIONS[:2]) + b"\r\n  \n" + orjson.dumps(DETECTIONS[2])
    assert detections.parse_body(body, jsonl=True) == DETECTIONS[:3]
    assert _read(body, jsonl=True) == _read(orjson.dumps(DETECTIONS[:3]), jsonl=False)


def test_jsonl_stops_reading_past_the_row_limit(monkeypatch):
    monkeypatch.setattr(detections, "MAX_ROWS", 2)
    rows = detections.parse_body(b"{}\n" * 10, jsonl=True)
    assert len(rows) == 3
    with pytest.raises(ValidationFailed):
        detections.validate_rows(rows, **FRAME)


def test_fetch_arrays_round_trips_bulk_insert_arrays(video):  # noqa: F811
    boxes = GroundTruthBox.objects.filter(video=video)
    got = fetch_arrays(boxes.order_by("id"), ("id", "frame", "label", "x", "w"))
    assert got["frame"].dtype == np.int64 and got["x"].dtype == np.int64
    expected = list(boxes.order_by("id").values_list("frame", "label", "x", "w"))
    columns = (got["frame"].tolist(), got["label"].tolist(), got["x"].tolist(), got["w"].tolist())
    assert list(zip(*columns, strict=True)) == expected
    empty = fetch_arrays(boxes.filter(frame=999), ("id", "label", "x"))
    assert [a.size for a in empty.values()] == [0, 0, 0]

    session = TestSession.objects.create(video=video, model_name="m")
    detection = DetectionEvent.objects.create(
        test_session=session, video=video, frame=0, timestamp_ms=0, label="car", confidence=0.5, x=0, y=0, w=1, h=1
    )
    bulk_insert_arrays(
        DetectionResult,
        {
            "detection_id": np.array([detection.pk]),
            "test_session_id": np.array([session.pk]),
            "validation_result": np.array([b"TP"]),
            "iou": np.array([0.25]),
        },
    )
    assert list(DetectionResult.objects.values_list("detection_id", "validation_result", "iou")) == [
        (detection.pk, "TP", 0.25)
    ]


def test_text_columns_of_any_length_round_trip_through_bulk_insert_arrays(video):  # noqa: F811
    session = TestSession.objects.create(video=video, model_name="m")
    labels = ["car", "a", "x" * 64, "bus", "Kraftfahrzeug-Anhänger ✓", "car", "\U0001d4b3" * 3]
    n = len(labels)
    bulk_insert_arrays(
        DetectionEvent,
        {
            "test_session_id": np.full(n, session.pk),
            "video_id": np.full(n, video.pk),
            "frame": np.arange(n),
            "timestamp_ms": np.arange(n) * 40,
            "label": labels,
            **{c: np.linspace(0.0, 1.0, n) for c in ("confidence", "x", "y", "w", "h")},
        },
    )
    rows = DetectionEvent.objects.filter(test_session=session).order_by("id")
    assert list(rows.values_list("frame", "timestamp_ms", "label", "h")) == [
        (i, i * 40, label, h)
        for i, (label, h) in enumerate(zip(labels, np.linspace(0.0, 1.0, n).tolist(), strict=True))
    ]


def _scored_session(owner_api, video):  # noqa: F811
    session = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "m"}, format="json").json()
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", DETECTIONS, format="json")
    before = owner_api.get(f"/api/v1/test-sessions/{session['id']}/detections").json()["results"]
    assert {(d["validation_result"], d["iou"]) for d in before} == {(None, None)}
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/complete")
    processing.score_session_job(job_id=ProcessingJob.objects.get(test_session_id=session["id"]).pk)
    return session["id"]


def test_scores_are_served_from_the_results_table(owner_api, video):  # noqa: F811
    sid = _scored_session(owner_api, video)
    page = owner_api.get(f"/api/v1/test-sessions/{sid}/detections").json()["results"]
    assert [d["validation_result"] for d in page] == ["TP", "FP", "FP", "FP", "FP"]
    assert page[2]["iou"] == pytest.approx(50 / 150)
    by_video = owner_api.get(f"/api/v1/videos/{video.pk}/detections").json()["results"]
    assert by_video == page


def test_scoring_again_replaces_the_results(owner_api, video):  # noqa: F811
    sid = _scored_session(owner_api, video)
    ids = np.array(DetectionEvent.objects.filter(test_session_id=sid).order_by("id").values_list("id", flat=True))
    is_tp, iou = np.array([False, True, False, True, False]), np.linspace(0, 1, 5)
    processing.write_back_results(sid, ids[::-1].copy(), is_tp[::-1].copy(), iou[::-1].copy())
    stored = list(
        DetectionResult.objects.order_by("detection_id").values_list("detection_id", "validation_result", "iou")
    )
    assert stored == [
        (pk, "TP" if tp else "FP", v) for pk, tp, v in zip(ids.tolist(), is_tp.tolist(), iou.tolist(), strict=True)
    ]


def test_deleting_the_video_removes_detections_and_results(owner_api, video):  # noqa: F811
    _scored_session(owner_api, video)
    assert DetectionResult.objects.count() == 5
    assert owner_api.delete(f"/api/v1/videos/{video.pk}").status_code == 204
    assert (DetectionEvent.objects.count(), DetectionResult.objects.count()) == (0, 0)


def test_a_first_scoring_writes_its_results_without_deleting(owner_api, video):  # noqa: F811
    session = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "m"}, format="json").json()
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", DETECTIONS, format="json")
    ids = np.array(DetectionEvent.objects.filter(test_session_id=session["id"]).values_list("id", flat=True))
    with CaptureQueriesContext(connection) as queries:
        processing.write_back_results(session["id"], ids, np.ones(ids.size, dtype=bool), np.full(ids.size, 0.5))
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("DELETE")]
    assert DetectionResult.objects.filter(test_session_id=session["id"]).count() == ids.size


# Distinct to the byte: case, a trailing space, composed vs decomposed é, and characters beyond the BMP.
LABELS = ["car", "Car", "car ", "caf\u00e9", "cafe\u0301", "Kraftfahrzeug-Anhänger ✓", "\U0001d4b3" * 3]
LABELS += [f"label-{i}" for i in range(200)]


def test_fetch_grouped_arrays_gives_each_row_the_code_of_its_value(video):  # noqa: F811
    rng = np.random.default_rng(3)
    labels = [LABELS[i] for i in rng.integers(0, len(LABELS), 2000)]
    GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video=video, frame=i % 10, timestamp_ms=0, label=label, x=i, y=0, w=1, h=1)
        for i, label in enumerate(labels)
    )
    boxes = GroundTruthBox.objects.filter(video=video)
    with transaction.atomic():
        values, codes, got = fetch_grouped_arrays(boxes, "label", ("id", "frame", "x"))
        assert _planner_settings() == ["on", "on"]  # the caller's transaction keeps its plans
    assert len(values) == len(set(values)) == len(set(labels) | {"car", "person"})
    labelled = [values[c] for c in codes.tolist()]
    rows = zip(got["id"].tolist(), labelled, got["frame"].tolist(), got["x"].tolist(), strict=True)
    assert sorted(rows) == list(boxes.order_by("id").values_list("id", "label", "frame", "x"))
    assert got["x"].dtype == np.int64 and codes.dtype == np.int64
    values, codes, got = fetch_grouped_arrays(boxes.filter(frame=99), "label", ("id", "x"))
    assert (values, codes.size, got["id"].size, got["x"].size) == ([], 0, 0, 0)


def _planner_settings() -> list[str]:
    if connection.vendor != "postgresql":
        return ["on", "on"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_sort'), current_setting('enable_seqscan')")
        return list(cursor.fetchone())


def test_scoring_stores_what_matching_the_label_strings_gives(owner_api, video):  # noqa: F811
    """Labels reach the matcher as codes shared by detections and ground truth, including labels that only
    one side has; the stored results and totals are those of matching the strings themselves."""
    rng = np.random.default_rng(4)
    gt_labels, det_labels = [*LABELS[:5], "only in ground truth"], [*LABELS[2:], "only in detections"]
    GroundTruthBox.objects.bulk_create(
        GroundTruthBox(video=video, frame=f, timestamp_ms=0, label=gt_labels[k], x=x, y=y, w=20, h=20)
        for f, k, x, y in zip(*(rng.integers(0, n, 400).tolist() for n in (10, 6, 80, 80)), strict=True)
    )
    gts = list(GroundTruthBox.objects.filter(video=video).order_by("id").values_list("frame", "label", "x", "y"))
    rows = []
    for i in range(3000):
        frame, label, x, y = gts[i % len(gts)]
        if i % 3 == 0:  # another label, often one the ground truth lacks
            label = det_labels[int(rng.integers(len(det_labels)))]
        x, y = np.clip(np.array([x, y]) + rng.normal(0, 3, 2), 0, 80).tolist()
        rows.append(det(frame, label, float(rng.choice([0.5, 0.75, rng.random()])), x, y, 20, 20))
    session = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "m"}, format="json").json()
    assert owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", rows, format="json").status_code == 201
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/complete")
    processing.score_session_job(job_id=ProcessingJob.objects.get(test_session_id=session["id"]).pk)

    dets = DetectionEvent.objects.filter(test_session_id=session["id"]).order_by("id")
    d = list(zip(*dets.values_list("frame", "label", "confidence", "x", "y", "w", "h"), strict=True))
    boxes = GroundTruthBox.objects.filter(video=video).order_by("id")
    g = list(zip(*boxes.values_list("frame", "label", "x", "y", "w", "h"), strict=True))
    d_box, g_box = np.array(d[3:]).T, np.array(g[2:], dtype=float).T
    expected = scoring.match(d[0], np.array(d[1]), d[2], d_box, g[0], np.array(g[1]), g_box, 0.5)
    assert 0 < expected.is_tp.sum() < len(rows)
    results = zip(expected.is_tp.tolist(), expected.iou.tolist(), strict=True)
    assert list(dets.values_list("result__validation_result", "result__iou")) == [
        ("TP" if tp else "FP", iou) for tp, iou in results
    ]
    totals = scoring.metrics(expected)
    got = TestSession.objects.get(pk=session["id"])
    assert (got.tp, got.fp, got.fn, got.precision, got.recall, got.f1, got.mean_iou) == (
        totals.tp,
        totals.fp,
        totals.fn,
        totals.precision,
        totals.recall,
        totals.f1,
        totals.mean_iou,
    )


def _first_seen_ranks(codes: np.ndarray) -> np.ndarray:
    """Codes renumbered by first appearance: equal for two labellings that group the rows alike."""
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the two-connection load runs on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_a_scoring_outside_a_transaction_loads_its_detections_in_two_halves_as_in_one(video):  # noqa: F811
    """Workers load a session's detections in two halves at once (split at the video's middle, the later half
    on a second connection). Labels only one half has, or only the detections have, are coded consistently:
    the arrays equal those of the one-piece load a transaction falls back to."""
    Video.objects.filter(pk=video.pk).update(duration_s=1.0)  # 10 frames at 10 fps: the split is at 500 ms
    video.refresh_from_db()
    session = TestSession.objects.create(video=video, model_name="m", status=TestSession.Status.SCORING)
    labels = ["car", "person", "both"]  # and, in one half each, "only early" and "only late"
    DetectionEvent.objects.bulk_create(
        DetectionEvent(
            test_session=session,
            video=video,
            frame=i % 10,
            timestamp_ms=(i % 10) * 100,
            label=("only early" if i % 10 < 5 else "only late") if i % 4 == 0 else labels[i % 3],
            confidence=(i % 7) / 7,
            x=i % 50,
            y=i % 30,
            w=5,
            h=5,
        )
        for i in range(400)
    )
    assert processing._load_split_ms(video) == 500
    gt, det = processing._load_scoring_inputs(session, video)
    with transaction.atomic():
        assert processing._load_split_ms(video) is None
        gt_one, det_one = processing._load_scoring_inputs(session, video)
    for name in ("id", "frame", "x", "y", "w", "h", "label"):
        assert np.array_equal(gt[name], gt_one[name]), name
    for name in ("id", "frame", "confidence", "x", "y", "w", "h"):
        assert np.array_equal(det[name], det_one[name]), name
    ground_truth_labels = det_one["label"] < 2  # "car" and "person": codes the ground truth fixes
    assert np.array_equal(det["label"][ground_truth_labels], det_one["label"][ground_truth_labels])
    assert np.array_equal(_first_seen_ranks(det["label"]), _first_seen_ranks(det_one["label"]))
    assert det["id"].size == 400 and len(set(det["label"].tolist())) == 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is a PostgreSQL setting")
@pytest.mark.django_db(transaction=True)
def test_only_the_scoring_transaction_commits_without_waiting_for_the_disk(owner_api, video):  # noqa: F811
    session = owner_api.post(f"/api/v1/videos/{video.pk}/test-sessions", {"model_name": "m"}, format="json").json()
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/detections", DETECTIONS, format="json")
    owner_api.post(f"/api/v1/test-sessions/{session['id']}/complete")
    with CaptureQueriesContext(connection) as queries:
        processing.score_session_job(job_id=ProcessingJob.objects.get(test_session_id=session["id"]).pk)
    statements = [q["sql"] for q in queries.captured_queries]
    relaxed = statements.index("SET LOCAL synchronous_commit = off")
    completed = next(i for i, s in enumerate(statements) if s.startswith('UPDATE "videos_testsession"'))
    assert statements[relaxed - 1] == "BEGIN" and relaxed < completed  # the write transaction's first statement
    assert TestSession.objects.get(pk=session["id"]).status == "completed"
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)  # local to that transaction
