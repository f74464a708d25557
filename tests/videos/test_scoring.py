"""videos.scoring: greedy matching, metrics, AP, PR curve, per-label report, min_confidence, timeline, compare."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videos import scoring
from videos.scoring import Metrics, Timeline, matching


def box(x: float, y: float = 0.0, w: float = 10.0, h: float = 10.0) -> list[float]:
    return [x, y, w, h]


def run(dets, gts, threshold=0.5):
    """Match `dets` [(frame, label, conf, box)] against `gts` [(frame, label, box)]."""
    return scoring.match(
        np.array([d[0] for d in dets], dtype=np.int64),
        np.array([d[1] for d in dets]),
        np.array([d[2] for d in dets], dtype=np.float64),
        np.array([d[3] for d in dets], dtype=np.float64).reshape(-1, 4),
        np.array([g[0] for g in gts], dtype=np.int64),
        np.array([g[1] for g in gts]),
        np.array([g[2] for g in gts], dtype=np.float64).reshape(-1, 4),
        threshold,
    )


ZERO = Metrics(tp=0, fp=0, fn=0, precision=0.0, recall=0.0, f1=0.0, mean_iou=0.0)


# IoU --------------------------------------------------------------------------------------------------------


def test_iou_of_10px_boxes_shifted_by_5px_is_one_third():
    # Intersection 5x10 = 50, union 100 + 100 - 50 = 150.
    assert scoring.iou_xywh([box(0)], [box(5)]).tolist() == [[1 / 3]]


def test_iou_matrix_uses_continuous_areas():
    a = [[0, 0, 10, 10], [0, 0, 1, 1], [0, 0, 0, 0]]
    b = [[0, 0, 10, 10], [2.5, 2.5, 5, 5], [10, 0, 10, 10], [1, 0, 1, 1], [0, 0, 0, 0]]
    assert scoring.iou_xywh(a, b).tolist() == [
        # itself; 25 inside 100; touching edges; 1 inside 100; empty box
        [1.0, 0.25, 0.0, 1 / 100, 0.0],
        # 1 inside 100; disjoint; disjoint; adjacent 1 px boxes share no area (no +1 pixel); empty box
        [1 / 100, 0.0, 0.0, 0.0, 0.0],
        # an empty box overlaps nothing, and two empty boxes have an empty union: 0, not NaN
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ]


# Matching ---------------------------------------------------------------------------------------------------


# Knobs of the implementation, so that every path (vectorised rounds or the final loop, group-wide pairs or
# x windows, one or many pair chunks) is checked on the same scenes.
PATHS = [
    {"_SMALL_ROUND": 0, "_WINDOW_FROM": 0, "_PAIR_CHUNK": 1},
    {"_SMALL_ROUND": 10**9, "_WINDOW_FROM": 10**9, "_PAIR_CHUNK": 1 << 20},
    {"_SMALL_ROUND": 10**9, "_WINDOW_FROM": 0, "_PAIR_CHUNK": 1 << 20},
    {"_SMALL_ROUND": 2, "_WINDOW_FROM": 0, "_PAIR_CHUNK": 7},
]


def test_perfect_detections_are_all_true_positives():
    gts = [(0, "car", box(0)), (0, "car", box(40)), (0, "person", box(0)), (3, "car", box(7, 7, 20, 30))]
    dets = [(f, label, 0.9 - i / 10, b) for i, (f, label, b) in enumerate(gts)]
    result = run(dets, gts)
    assert result.is_tp.tolist() == [True] * 4
    assert result.iou.tolist() == [1.0] * 4
    assert result.gt_matched.tolist() == [True] * 4
    assert scoring.metrics(result) == Metrics(tp=4, fp=0, fn=0, precision=1.0, recall=1.0, f1=1.0, mean_iou=1.0)
    assert scoring.average_precision([d[2] for d in dets], result.is_tp, 4) == 1.0


def test_shift_below_threshold_is_a_false_positive_and_a_false_negative():
    result = run([(0, "car", 0.9, box(5))], [(0, "car", box(0))])  # IoU 1/3 < 0.5
    assert result.is_tp.tolist() == [False]
    assert result.iou.tolist() == [1 / 3]  # an FP keeps its best IoU, for display
    assert result.gt_matched.tolist() == [False]
    assert scoring.metrics(result) == Metrics(tp=0, fp=1, fn=1, precision=0.0, recall=0.0, f1=0.0, mean_iou=0.0)


def test_shift_above_threshold_is_a_true_positive_with_its_iou():
    # Shift 2: intersection 8x10 = 80, union 200 - 80 = 120, IoU 2/3.
    result = run([(0, "car", 0.9, box(2))], [(0, "car", box(0))])
    assert result.is_tp.tolist() == [True]
    assert result.iou.tolist() == [2 / 3]
    assert scoring.metrics(result) == Metrics(tp=1, fp=0, fn=0, precision=1.0, recall=1.0, f1=1.0, mean_iou=2 / 3)


def test_iou_equal_to_the_threshold_matches():
    assert run([(0, "car", 0.9, box(5))], [(0, "car", box(0))], threshold=1 / 3).is_tp.tolist() == [True]
    # A 10x5 box inside a 10x10 one: IoU 50/100, exactly 0.5.
    assert run([(0, "car", 0.9, box(0, h=5))], [(0, "car", box(0))], threshold=0.5).is_tp.tolist() == [True]


def test_two_detections_on_one_box_the_more_confident_one_wins():
    # Input order puts the less confident one first: confidence decides, not order.
    result = run([(0, "car", 0.6, box(0)), (0, "car", 0.9, box(1))], [(0, "car", box(0))])
    assert result.is_tp.tolist() == [False, True]
    assert result.iou.tolist() == [1.0, 9 / 11]  # shift 1: 90 / 110
    assert scoring.metrics(result) == Metrics(tp=1, fp=1, fn=0, precision=0.5, recall=1.0, f1=2 / 3, mean_iou=9 / 11)


def test_wrong_label_is_a_false_positive_and_a_false_negative():
    result = run([(0, "car", 0.9, box(0))], [(0, "person", box(0))])
    assert result.is_tp.tolist() == [False]
    assert result.iou.tolist() == [0.0]  # no box of its label in the frame
    assert result.gt_matched.tolist() == [False]
    assert scoring.metrics(result) == Metrics(tp=0, fp=1, fn=1, precision=0.0, recall=0.0, f1=0.0, mean_iou=0.0)


def test_boxes_of_other_frames_never_match():
    result = run([(1, "car", 0.9, box(0)), (4, "car", 0.8, box(0))], [(2, "car", box(0)), (4, "car", box(0))])
    assert result.is_tp.tolist() == [False, True]
    assert result.gt_matched.tolist() == [False, True]


def test_no_detections_at_all_leaves_every_box_a_false_negative():
    result = run([], [(0, "car", box(0)), (1, "car", box(0)), (1, "person", box(5))])
    assert result.is_tp.tolist() == []
    assert result.iou.tolist() == []
    assert result.gt_matched.tolist() == [False, False, False]
    assert scoring.metrics(result) == Metrics(tp=0, fp=0, fn=3, precision=0.0, recall=0.0, f1=0.0, mean_iou=0.0)
    assert scoring.average_precision([], [], 3) == 0.0


def test_no_ground_truth_at_all_makes_every_detection_a_false_positive():
    result = run([(0, "car", 0.9, box(0)), (1, "person", 0.4, box(3))], [])
    assert result.is_tp.tolist() == [False, False]
    assert result.iou.tolist() == [0.0, 0.0]
    assert result.gt_matched.tolist() == []
    assert scoring.metrics(result) == Metrics(tp=0, fp=2, fn=0, precision=0.0, recall=0.0, f1=0.0, mean_iou=0.0)
    assert scoring.average_precision([0.9, 0.4], result.is_tp, 0) == 0.0


def test_nothing_at_all_scores_zero():
    result = run([], [])
    assert scoring.metrics(result) == ZERO


def test_greedy_higher_confidence_takes_the_box_a_lower_one_fits_better():
    # A (0.9) overlaps G1 by shift 2 (IoU 2/3); B (0.8) by shift 1 (IoU 9/11): A goes first and takes it.
    result = run([(0, "car", 0.8, box(1)), (0, "car", 0.9, box(2))], [(0, "car", box(0))])
    assert result.is_tp.tolist() == [False, True]
    assert result.iou.tolist() == [9 / 11, 2 / 3]


def test_greedy_is_not_an_optimal_assignment():
    # G1 at x=0, G2 at x=4. A (0.9, x=1): G1 9/11 (shift 1), G2 7/13 (shift 3) -> takes G1.
    # B (0.8, x=-1): G1 9/11 but taken, G2 1/3 (shift 5) < 0.5 -> FP; G2 is left a FN, although
    # A->G2, B->G1 would have made two TPs.
    result = run([(0, "car", 0.9, box(1)), (0, "car", 0.8, box(-1))], [(0, "car", box(0)), (0, "car", box(4))])
    assert result.is_tp.tolist() == [True, False]
    assert result.iou.tolist() == [9 / 11, 9 / 11]
    assert result.gt_matched.tolist() == [True, False]


def test_detection_takes_its_highest_iou_box_then_the_next_falls_back():
    # G1 x=0, G2 x=3. A (0.9, x=3): G2 1.0, G1 7/13. B (0.8, x=3): G2 taken, so G1 at 7/13 >= 0.5.
    result = run([(0, "car", 0.8, box(3)), (0, "car", 0.9, box(3))], [(0, "car", box(0)), (0, "car", box(3))])
    assert result.is_tp.tolist() == [True, True]
    assert result.iou.tolist() == [7 / 13, 1.0]
    assert result.gt_matched.tolist() == [True, True]


@pytest.mark.parametrize("knobs", PATHS)
def test_equal_iou_with_two_boxes_takes_the_first_box_in_input_order(knobs):
    # A (0.9, x=2) is shifted by 2 from both boxes (x=0 and x=4): IoU 2/3 each. B (0.8, x=4) fits only
    # the box at x=4 (the other at 3/7 < 0.5), so B is a TP exactly when A took the box at x=0.
    dets = [(0, "car", 0.9, box(2)), (0, "car", 0.8, box(4))]
    with mock.patch.multiple(matching, **knobs):
        result = run(dets, [(0, "car", box(0)), (0, "car", box(4))])
        assert (result.is_tp.tolist(), result.gt_matched.tolist()) == ([True, True], [True, True])
        result = run(dets, [(0, "car", box(4)), (0, "car", box(0))])
        assert (result.is_tp.tolist(), result.gt_matched.tolist()) == ([True, False], [True, False])
        assert run(dets[:1], [(0, "car", box(4)), (0, "car", box(0))]).gt_matched.tolist() == [True, False]


def test_equal_confidence_is_broken_by_detection_input_order():
    result = run([(0, "car", 0.5, box(1)), (0, "car", 0.5, box(0))], [(0, "car", box(0))])
    assert result.is_tp.tolist() == [True, False]


def test_integer_labels_match_like_strings():
    result = scoring.match([0, 0], [7, 3], [0.9, 0.8], [box(0), box(0)], [0], [3], [box(0)], 0.5)
    assert result.is_tp.tolist() == [False, True]


def test_mismatched_lengths_and_thresholds_outside_0_1_are_refused():
    with pytest.raises(ValueError, match="one row per detection"):
        scoring.match([0, 0], ["car"], [0.9], [box(0)], [0], ["car"], [box(0)], 0.5)
    with pytest.raises(ValueError, match="one row per ground-truth box"):
        scoring.match([0], ["car"], [0.9], [box(0)], [0, 1], ["car"], [box(0)], 0.5)
    for threshold in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="iou_threshold"):
            scoring.match([0], ["car"], [0.9], [box(0)], [0], ["car"], [box(0)], threshold)


# Metrics and AP ---------------------------------------------------------------------------------------------


def test_summarize_counts_and_rates():
    m = scoring.summarize([True, False, True, False], [0.5, 0.1, 1.0, 0.0], n_gt=5)
    assert m == Metrics(tp=2, fp=2, fn=3, precision=0.5, recall=0.4, f1=4 / 9, mean_iou=0.75)
    assert m.as_dict() == {
        "tp": 2,
        "fp": 2,
        "fn": 3,
        "precision": 0.5,
        "recall": 0.4,
        "f1": 4 / 9,
        "mean_iou": 0.75,
    }
    with pytest.raises(ValueError, match="exceed"):
        scoring.summarize([True, True], [1.0, 1.0], n_gt=1)


def test_average_precision_small_hand_computed_example():
    # 3 boxes; ranked TP FP TP FP TP:
    #   precision 1   1/2  2/3  1/2  3/5      envelope 1  2/3  2/3  3/5  3/5
    #   recall    1/3 1/3  2/3  2/3  1
    # AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45.
    ap = scoring.average_precision([0.5, 0.6, 0.9, 0.8, 0.7], [True, False, True, False, True], 3)
    assert ap == pytest.approx(34 / 45, rel=1e-15)


def test_average_precision_of_a_perfect_ranking_is_one():
    assert scoring.average_precision([0.9, 0.8, 0.7, 0.1], [True, True, True, False], 3) == 1.0


def test_average_precision_with_boxes_never_found():
    # Recall stops at 1/2; the envelope is 0 beyond it.
    assert scoring.average_precision([0.9, 0.2], [True, False], 2) == 0.5


def test_average_precision_textbook_example():
    # R. Padilla, "Object-Detection-Metrics" (README): 7 images, 15 boxes, 24 detections; all-point AP 24.56 %.
    # The envelope steps at recall 1/15 (precision 1), 2/15 (2/3), 6/15 (6/14) and 7/15 (7/23), so
    # AP = (1 + 2/3 + 4 * 3/7 + 7/23) / 15 = 0.245687.
    ranked = [
        ("R", 0.95, True), ("Y", 0.95, False), ("J", 0.91, True), ("A", 0.88, False), ("U", 0.84, False),
        ("C", 0.80, False), ("M", 0.78, False), ("F", 0.74, False), ("D", 0.71, False), ("B", 0.70, True),
        ("H", 0.67, False), ("P", 0.62, True), ("E", 0.54, True), ("X", 0.48, True), ("N", 0.45, False),
        ("T", 0.45, False), ("K", 0.44, False), ("Q", 0.44, False), ("V", 0.43, False), ("I", 0.38, False),
        ("L", 0.35, False), ("S", 0.23, False), ("G", 0.18, True), ("O", 0.14, False),
    ]  # fmt: skip
    ap = scoring.average_precision([c for _, c, _ in ranked], [t for _, _, t in ranked], 15)
    assert ap == pytest.approx((1 + 2 / 3 + 12 / 7 + 7 / 23) / 15, rel=1e-12)
    assert round(ap * 100, 2) == 24.57  # the README's 24.56 % truncates its rounded precisions


def test_average_precision_without_ground_truth_or_detections_is_zero():
    assert scoring.average_precision([0.9], [False], 0) == 0.0
    assert scoring.average_precision([], [], 4) == 0.0


def voc_ap(conf, is_tp, n_gt):
    """py-faster-rcnn's voc_eval / voc_ap (use_07_metric=False), transcribed, with a stable sort."""
    tp = np.asarray(is_tp, dtype=float)[np.argsort(-np.asarray(conf), kind="stable")]
    fp = 1 - tp
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / float(n_gt)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@settings(max_examples=200, deadline=None)
@given(
    ranked=st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=40),
    missed=st.integers(0, 5),
)
def test_average_precision_equals_the_voc_devkit(ranked, missed):
    conf = [c / 6 for c, _ in ranked]
    is_tp = [t for _, t in ranked]
    n_gt = sum(is_tp) + missed
    if n_gt:
        assert scoring.average_precision(conf, is_tp, n_gt) == pytest.approx(voc_ap(conf, is_tp, n_gt), abs=1e-12)


def test_pr_curve_has_one_point_per_distinct_confidence():
    points = scoring.pr_curve([0.8, 0.9, 0.7, 0.8], [True, True, False, False], 4)
    assert points == [
        {"confidence": 0.9, "precision": 1.0, "recall": 0.25},
        {"confidence": 0.8, "precision": 2 / 3, "recall": 0.5},
        {"confidence": 0.7, "precision": 0.5, "recall": 0.5},
    ]
    assert scoring.pr_curve([], [], 3) == []


def test_pr_curve_is_downsampled_keeping_both_ends():
    conf = np.linspace(1, 0.001, 1000)
    points = scoring.pr_curve(conf, np.arange(1000) % 2 == 0, 600, max_points=11)
    assert len(points) == 11
    assert points[0] == {"confidence": 1.0, "precision": 1.0, "recall": 1 / 600}
    assert points[-1] == {"confidence": 0.001, "precision": 0.5, "recall": 500 / 600}
    assert [p["confidence"] for p in points] == sorted((p["confidence"] for p in points), reverse=True)


# Per label, report, min_confidence --------------------------------------------------------------------------

DET_LABEL = ["car", "person", "car"]
DET_CONF = [0.9, 0.7, 0.5]
IS_TP = [True, True, False]
IOU = [0.8, 1.0, 0.2]
GT_LABEL = ["car", "person", "car", "bike"]


def test_per_label_covers_labels_of_detections_and_ground_truth_sorted():
    out = scoring.per_label(DET_LABEL, DET_CONF, IS_TP, IOU, GT_LABEL)
    assert list(out) == ["bike", "car", "person"]
    assert out["bike"] == {**ZERO.as_dict(), "fn": 1, "ap": 0.0}
    assert out["car"] == {
        "tp": 1, "fp": 1, "fn": 1, "precision": 0.5, "recall": 0.5, "f1": 0.5, "mean_iou": 0.8, "ap": 0.5,
    }  # fmt: skip
    assert out["person"] == {
        "tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "mean_iou": 1.0, "ap": 1.0,
    }  # fmt: skip


def test_report_at_min_confidence_drops_less_confident_detections():
    out = scoring.report(DET_LABEL, DET_CONF, IS_TP, IOU, GT_LABEL, min_confidence=0.6)
    assert out == {
        "min_confidence": 0.6,
        "tp": 2,
        "fp": 0,
        "fn": 2,
        "precision": 1.0,
        "recall": 0.5,
        "f1": 2 / 3,
        "mean_iou": 0.9,
        "ap": 0.5,
        "pr_curve": [
            {"confidence": 0.9, "precision": 1.0, "recall": 0.25},
            {"confidence": 0.7, "precision": 1.0, "recall": 0.5},
        ],
        "per_label": {
            "bike": {**ZERO.as_dict(), "fn": 1, "ap": 0.0},
            "car": {
                "tp": 1,
                "fp": 0,
                "fn": 1,
                "precision": 1.0,
                "recall": 0.5,
                "f1": 2 / 3,
                "mean_iou": 0.8,
                "ap": 0.5,
            },
            "person": {
                "tp": 1,
                "fp": 0,
                "fn": 0,
                "precision": 1.0,
                "recall": 1.0,
                "f1": 1.0,
                "mean_iou": 1.0,
                "ap": 1.0,
            },
        },
    }
    assert scoring.report(DET_LABEL, DET_CONF, IS_TP, IOU, GT_LABEL)["fp"] == 1


def test_filter_min_confidence_keeps_confidences_at_or_above():
    conf, label = scoring.filter_min_confidence(0.7, [0.9, 0.7, 0.5], ["a", "b", "c"])
    assert conf.tolist() == [0.9, 0.7]
    assert label.tolist() == ["a", "b"]


# Timeline and compare ---------------------------------------------------------------------------------------


def test_timeline_counts_per_frame_in_frame_order_skipping_empty_frames():
    t = scoring.timeline(
        det_frame=[7, 0, 2],
        is_tp=[False, True, False],
        gt_frame=[2, 5, 0],
        gt_matched=[False, False, True],
    )
    assert t.frame.tolist() == [0, 2, 5, 7]
    assert t.tp.tolist() == [1, 0, 0, 0]
    assert t.fp.tolist() == [0, 1, 0, 1]
    assert t.fn.tolist() == [0, 1, 1, 0]
    assert list(t.rows())[1] == {"frame": 2, "tp": 0, "fp": 1, "fn": 1}
    assert scoring.timeline([], [], [], []).frame.tolist() == []


def timeline_of(rows):
    frame, tp, fp, fn = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    return Timeline(frame=frame, tp=tp, fp=fp, fn=fn)


def test_compare_returns_frames_where_exactly_one_session_is_right():
    a = timeline_of([(0, 1, 0, 0), (1, 0, 1, 0), (2, 1, 0, 0), (4, 0, 1, 1)])
    b = timeline_of([(0, 0, 0, 1), (1, 1, 0, 0), (3, 0, 1, 0), (4, 0, 0, 2)])
    # 0: a right, b misses a box. 1: b right. 2: only a has it, right (b has nothing there, right too).
    # 3: b has an FP where a has nothing. 4: both wrong.
    diff = scoring.compare(a, b)
    assert diff.frame.tolist() == [0, 1, 3]
    assert diff.right.tolist() == ["a", "b", "a"]
    assert list(diff.rows()) == [{"frame": 0, "right": "a"}, {"frame": 1, "right": "b"}, {"frame": 3, "right": "a"}]
    assert scoring.compare(a, a).frame.tolist() == []


# Properties -------------------------------------------------------------------------------------------------


def reference_match(dets, gts, threshold):
    """The rule, one pair at a time: per detection in descending confidence (stable), the unmatched box of its
    frame and label with the highest IoU >= threshold, the first such box on ties."""

    def iou(a, b):
        ax, ay, aw, ah = a
        bx, by, bw, bh = b
        iw = max(min(ax + aw, bx + bw) - max(ax, bx), 0.0)
        ih = max(min(ay + ah, by + bh) - max(ay, by), 0.0)
        inter = iw * ih
        union = aw * ah + bw * bh - inter
        return inter / union if union > 0 else 0.0

    is_tp, ious, matched = [False] * len(dets), [0.0] * len(dets), [False] * len(gts)
    for i in sorted(range(len(dets)), key=lambda i: -dets[i][2]):
        frame, label, _, b = dets[i]
        same = [j for j, g in enumerate(gts) if g[0] == frame and g[1] == label]
        ious[i] = max((iou(b, gts[j][2]) for j in same), default=0.0)
        best, best_iou = None, -1.0
        for j in same:
            v = iou(b, gts[j][2])
            if not matched[j] and v >= threshold and v > best_iou:
                best, best_iou = j, v
        if best is not None:
            matched[best], is_tp[i], ious[i] = True, True, best_iou
    return is_tp, ious, matched


@st.composite
def scenes(draw):
    """Small frames crowded with integer boxes: overlaps, equal IoUs and equal confidences are common."""
    frames = st.integers(0, draw(st.integers(0, 2)))
    labels = st.sampled_from(draw(st.sampled_from([["car"], ["car", "person"], [0, 1]])))
    xywh = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 12), st.integers(0, 12))
    boxes = xywh.map(lambda b: [float(v) for v in b])
    dets = draw(st.lists(st.tuples(frames, labels, st.integers(0, 4).map(lambda c: c / 4), boxes), max_size=40))
    gts = draw(st.lists(st.tuples(frames, labels, boxes), max_size=20))
    return dets, gts, draw(st.sampled_from([0.1, 1 / 3, 0.5, 0.7, 1.0]))


@settings(max_examples=300, deadline=None)
@given(scene=scenes())
def test_match_equals_the_pairwise_reference(scene):
    dets, gts, threshold = scene
    expected = reference_match(dets, gts, threshold)
    for knobs in PATHS:
        with mock.patch.multiple(matching, **knobs):
            result = run(dets, gts, threshold)
        assert (result.is_tp.tolist(), result.iou.tolist(), result.gt_matched.tolist()) == expected


@settings(max_examples=200, deadline=None)
@given(scene=scenes(), cut=st.integers(0, 5).map(lambda c: c / 4))
def test_min_confidence_on_stored_results_equals_rematching_the_kept_detections(scene, cut):
    dets, gts, threshold = scene
    stored = run(dets, gts, threshold)
    conf = [d[2] for d in dets]
    labels = np.array([d[1] for d in dets])
    gt_labels = np.array([g[1] for g in gts])
    kept = [d for d in dets if d[2] >= cut]
    rematched = run(kept, gts, threshold)

    _, is_tp, iou = scoring.filter_min_confidence(cut, conf, stored.is_tp, stored.iou)
    assert is_tp.tolist() == rematched.is_tp.tolist()
    assert iou.tolist() == rematched.iou.tolist()
    from_stored = scoring.report(labels, conf, stored.is_tp, stored.iou, gt_labels, min_confidence=cut)
    fresh = scoring.report(
        labels[[d[2] >= cut for d in dets]], [d[2] for d in kept], rematched.is_tp, rematched.iou, gt_labels
    )
    assert from_stored == {**fresh, "min_confidence": cut}
    assert from_stored["fn"] == len(gts) - from_stored["tp"] == int((~rematched.gt_matched).sum())


@settings(max_examples=100, deadline=None)
@given(scene=scenes())
def test_timeline_totals_equal_the_overall_counts(scene):
    dets, gts, threshold = scene
    result = run(dets, gts, threshold)
    t = scoring.timeline([d[0] for d in dets], result.is_tp, [g[0] for g in gts], result.gt_matched)
    totals = scoring.metrics(result)
    assert (int(t.tp.sum()), int(t.fp.sum()), int(t.fn.sum())) == (totals.tp, totals.fp, totals.fn)
    assert t.frame.tolist() == sorted({d[0] for d in dets} | {g[0] for g in gts})
