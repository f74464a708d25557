"""Metrics of scored detections: counts and rates, average precision, PR curve, per-label report."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from videos.scoring.matching import MatchResult, factorize


@dataclass(frozen=True, slots=True)
class Metrics:
    """Counts and rates of one scoring; rates are 0.0 when undefined."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mean_iou: float

    def as_dict(self) -> dict[str, int | float]:
        """The metrics as a plain dict, ready for JSON."""
        return asdict(self)


def summarize(is_tp: ArrayLike, iou: ArrayLike, n_gt: int) -> Metrics:
    """Metrics of scored detections against `n_gt` ground-truth boxes (FN = n_gt - TP)."""
    is_tp = np.asarray(is_tp, dtype=bool).ravel()
    iou = np.asarray(iou, dtype=np.float64).ravel()
    tp = int(np.count_nonzero(is_tp))
    fp, fn = is_tp.size - tp, int(n_gt) - tp
    if fn < 0:
        raise ValueError(f"{tp} true positives exceed n_gt={n_gt}")
    return Metrics(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        # The harmonic mean of precision and recall, in counts so that it is exact.
        f1=2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        mean_iou=float(iou[is_tp].mean()) if tp else 0.0,
    )


def metrics(result: MatchResult) -> Metrics:
    """Metrics of a `match` result over all its detections and ground-truth boxes."""
    return summarize(result.is_tp, result.iou, result.gt_matched.size)


def average_precision(conf: ArrayLike, is_tp: ArrayLike, n_gt: int) -> float:
    """All-point interpolated AP (VOC 2010+): area under the monotone precision envelope over recall.

    Detections are ranked by descending confidence, ties in input order. 0.0 when `n_gt` is 0 (recall is
    undefined) or there are no detections. COCO's AP samples the same envelope at 101 recall points instead.
    """
    conf = np.asarray(conf, dtype=np.float64).ravel()
    if n_gt <= 0 or conf.size == 0:
        return 0.0
    tp = np.asarray(is_tp, dtype=bool).ravel()[np.argsort(-conf, kind="stable")]
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, tp.size + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    # Recall grows by 1/n_gt at each TP; beyond the last recall reached the envelope is 0.
    return float(envelope[tp].sum() / n_gt)


def pr_curve(conf: ArrayLike, is_tp: ArrayLike, n_gt: int, max_points: int = 101) -> list[dict[str, float]]:
    """Precision and recall when keeping detections at or above each confidence, from high to low confidence.

    Precision is the raw (not interpolated) value; recall is 0.0 when `n_gt` is 0. At most `max_points`
    points, evenly spaced over the distinct confidences and always including the lowest.
    """
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    conf = np.asarray(conf, dtype=np.float64).ravel()
    if conf.size == 0:
        return []
    order = np.argsort(-conf, kind="stable")
    conf = conf[order]
    ctp = np.cumsum(np.asarray(is_tp, dtype=bool).ravel()[order])
    last = np.flatnonzero(np.r_[conf[1:] != conf[:-1], True])
    if last.size > max_points:
        last = last[np.unique(np.linspace(0, last.size - 1, max_points).round().astype(np.int64))]
    precision = ctp[last] / (last + 1)
    recall = ctp[last] / n_gt if n_gt > 0 else np.zeros(last.size)
    return [
        {"confidence": c, "precision": p, "recall": r}
        for c, p, r in zip(conf[last].tolist(), precision.tolist(), recall.tolist(), strict=True)
    ]


def per_label(
    det_label: ArrayLike, conf: ArrayLike, is_tp: ArrayLike, iou: ArrayLike, gt_label: ArrayLike
) -> dict[Hashable, dict[str, int | float]]:
    """Metrics and AP per label, for every label of a detection or a ground-truth box, labels sorted."""
    det_label, gt_label = np.asarray(det_label).ravel(), np.asarray(gt_label).ravel()
    conf = np.asarray(conf, dtype=np.float64).ravel()
    is_tp = np.asarray(is_tp, dtype=bool).ravel()
    iou = np.asarray(iou, dtype=np.float64).ravel()
    codes, labels = factorize(det_label, gt_label)
    det_code, n_gt = codes[: det_label.size], np.bincount(codes[det_label.size :], minlength=len(labels))
    order = np.argsort(det_code, kind="stable")  # stable: confidence ties keep input order within a label
    bounds = np.searchsorted(det_code[order], np.arange(len(labels) + 1))
    out: dict[Hashable, dict[str, int | float]] = {}
    for code in sorted(range(len(labels)), key=labels.__getitem__):
        rows = order[bounds[code] : bounds[code + 1]]
        out[labels[code]] = {
            **summarize(is_tp[rows], iou[rows], int(n_gt[code])).as_dict(),
            "ap": average_precision(conf[rows], is_tp[rows], int(n_gt[code])),
        }
    return out


def filter_min_confidence(min_confidence: float, det_conf: ArrayLike, *det_arrays: ArrayLike) -> list[NDArray[Any]]:
    """`det_conf` and each per-detection array, keeping detections with confidence >= `min_confidence`.

    Greedy matching visits detections in descending confidence, so dropping every detection below a
    confidence leaves the matches of the others unchanged: stored is_tp / iou filtered this way equal a fresh
    `match` of the kept detections, with FN = n_gt - TP.
    """
    conf = np.asarray(det_conf, dtype=np.float64).ravel()
    keep = conf >= min_confidence
    return [conf[keep], *(np.asarray(a)[keep] for a in det_arrays)]


def report(
    det_label: ArrayLike,
    det_conf: ArrayLike,
    is_tp: ArrayLike,
    iou: ArrayLike,
    gt_label: ArrayLike,
    *,
    min_confidence: float = 0.0,
    max_points: int = 101,
) -> dict[str, Any]:
    """Totals, AP, PR curve and per-label figures of stored scores, for detections at or above `min_confidence`.

    Exact without re-matching (see `filter_min_confidence`); `ap` is at the IoU threshold of the stored scores.
    """
    conf, label, tp, tp_iou = filter_min_confidence(min_confidence, det_conf, det_label, is_tp, iou)
    n_gt = np.asarray(gt_label).size
    return {
        "min_confidence": float(min_confidence),
        **summarize(tp, tp_iou, n_gt).as_dict(),
        "ap": average_precision(conf, tp, n_gt),
        "pr_curve": pr_curve(conf, tp, n_gt, max_points),
        "per_label": per_label(label, conf, tp, tp_iou, gt_label),
    }
