"""Greedy IoU matching of detections to ground truth (PASCAL VOC / COCO rule), vectorised with NumPy."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Candidate (detection, ground truth) pairs are built per chunk of about this many pairs, which bounds memory
# (~100 bytes per pair while IoUs are computed) when a crowded frame pairs thousands of boxes with thousands.
_PAIR_CHUNK = 1 << 20
# A greedy round handles the k-th detection of every group at once; once fewer detections than this are left
# per round, NumPy's per-call overhead costs more than a plain loop over the remaining pairs.
_SMALL_ROUND = 32
# Pairing each detection only with the boxes it may overlap (`_x_windows`) costs a sort and two searches;
# measured, it pays from about this many boxes per detection on average (the benchmark has ~2).
_WINDOW_FROM = 16


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Outcome of `match`, aligned with its inputs.

    is_tp: per detection (input order), True when matched to a ground-truth box.
    iou: per detection; for a TP the IoU with its matched box, for an FP the best IoU with any ground-truth box
        of the same frame and label (0.0 when there is none); it may reach the threshold when that box was
        taken by a higher-confidence detection.
    gt_matched: per ground-truth box (input order), True when some detection matched it.
    """

    is_tp: BoolArray
    iou: FloatArray
    gt_matched: BoolArray


def iou_xywh(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """IoU of every box of `a` (N, 4) with every box of `b` (M, 4), as an (N, M) array.

    Boxes are x, y, w, h in pixels; areas are continuous (no +1 pixel); a pair whose union is empty has IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return _iou(a.T[:, :, None], b.T[:, None, :])


def match(
    det_frame: ArrayLike,
    det_label: ArrayLike,
    det_conf: ArrayLike,
    det_box: ArrayLike,
    gt_frame: ArrayLike,
    gt_label: ArrayLike,
    gt_box: ArrayLike,
    iou_threshold: float,
) -> MatchResult:
    """Match detections to ground truth by the PASCAL VOC / COCO greedy rule.

    Per (frame, label), detections in descending confidence (ties: input order) each take the still unmatched
    ground-truth box of highest IoU >= `iou_threshold` (ties: lowest ground-truth input index). Labels may be
    of any one hashable type, the same for detections and ground truth; frames are integers; w, h >= 0.
    """
    d_frame, d_label, conf, d_box = _detections(det_frame, det_label, det_conf, det_box)
    g_frame = np.asarray(gt_frame, dtype=np.int64).ravel()
    g_label = np.asarray(gt_label).ravel()
    g_box = np.asarray(gt_box, dtype=np.float64).reshape(-1, 4)
    if not g_frame.size == g_label.size == g_box.shape[0]:
        raise ValueError("gt_frame, gt_label and gt_box must have one row per ground-truth box")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError("iou_threshold must be in (0, 1]")
    n, m = conf.size, g_frame.size
    det_key, gt_key = _group_keys(d_frame, d_label, g_frame, g_label)
    cand_det, cand_gt, cand_iou, best_iou = _candidates(det_key, d_box, gt_key, g_box, float(iou_threshold))

    # Fast path: a detection none of whose candidate boxes is a candidate of another detection takes its best
    # candidate whatever the order; only the others need the sequential greedy pass (measured: ~20% faster).
    shared_pair = np.bincount(cand_gt, minlength=m)[cand_gt] > 1
    det_shared = np.zeros(n, dtype=bool)
    det_shared[cand_det[shared_pair]] = True
    simple, rest = np.flatnonzero(~det_shared[cand_det]), np.flatnonzero(det_shared[cand_det])
    won = np.concatenate(
        [
            simple[_best_per_det(cand_det[simple], cand_gt[simple], cand_iou[simple])],
            rest[_greedy(cand_det[rest], cand_gt[rest], cand_iou[rest], det_key, conf, m)],
        ]
    )
    is_tp = np.zeros(n, dtype=bool)
    is_tp[cand_det[won]] = True
    iou = best_iou.copy()
    iou[cand_det[won]] = cand_iou[won]
    gt_matched = np.zeros(m, dtype=bool)
    gt_matched[cand_gt[won]] = True
    return MatchResult(is_tp=is_tp, iou=iou, gt_matched=gt_matched)


def _iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Elementwise IoU of boxes given as stacked x, y, w, h arrays (broadcasting)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = np.maximum(np.minimum(ax + aw, bx + bw) - np.maximum(ax, bx), 0.0)
    ih = np.maximum(np.minimum(ay + ah, by + bh) - np.maximum(ay, by), 0.0)
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _detections(
    frame: ArrayLike, label: ArrayLike, conf: ArrayLike, box: ArrayLike
) -> tuple[IntArray, NDArray[Any], FloatArray, FloatArray]:
    d_frame = np.asarray(frame, dtype=np.int64).ravel()
    d_label = np.asarray(label).ravel()
    d_conf = np.asarray(conf, dtype=np.float64).ravel()
    d_box = np.asarray(box, dtype=np.float64).reshape(-1, 4)
    if not d_frame.size == d_label.size == d_conf.size == d_box.shape[0]:
        raise ValueError("det_frame, det_label, det_conf and det_box must have one row per detection")
    return d_frame, d_label, d_conf, d_box


def factorize(a: NDArray[Any], b: NDArray[Any]) -> tuple[IntArray, list[Hashable]]:
    """Integer codes for the labels of `a` then `b`, and the label of each code."""
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        uniques, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
        return codes.astype(np.int64, copy=False), uniques.tolist()
    # Strings and objects: a dict is several times faster than np.unique's sort of strings.
    lookup: dict[Hashable, int] = {}
    values = itertools.chain(a.tolist(), b.tolist())
    codes = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values), dtype=np.int64, count=a.size + b.size)
    return codes, list(lookup)


def _group_keys(
    det_frame: IntArray, det_label: NDArray[Any], gt_frame: IntArray, gt_label: NDArray[Any]
) -> tuple[IntArray, IntArray]:
    """One int64 key per (frame, label), for detections and ground truth alike."""
    label_codes, labels = factorize(det_label, gt_label)
    frames = np.concatenate([det_frame, gt_frame])
    if frames.size == 0:
        return frames[: det_frame.size], frames[det_frame.size :]
    low, high = int(frames.min()), int(frames.max())
    if (high - low + 1) * len(labels) < 2**62:
        frames = frames - low
    else:
        frames = np.unique(frames, return_inverse=True)[1].astype(np.int64)
    keys = frames * len(labels) + label_codes
    return keys[: det_frame.size], keys[det_frame.size :]


def _candidates(
    det_key: IntArray, det_box: FloatArray, gt_key: IntArray, gt_box: FloatArray, threshold: float
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Pairs of one group with IoU >= threshold, grouped by ascending detection; and each detection's best IoU.

    Each detection is paired with the ground truth of its group, or in crowded groups only with the boxes
    that may overlap it (see `_x_windows`): the others have IoU 0, below any threshold.
    """
    n = det_key.size
    best = np.zeros(n)
    if n == 0 or gt_key.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), best
    det_cols, gt_cols = np.ascontiguousarray(det_box.T), np.ascontiguousarray(gt_box.T)
    gt_order = np.argsort(gt_key, kind="stable")
    lo = np.searchsorted(gt_key[gt_order], det_key, side="left")
    hi = np.searchsorted(gt_key[gt_order], det_key, side="right")
    if int((hi - lo).sum()) > _WINDOW_FROM * n:
        gt_order, lo, hi = _x_windows(det_key, det_cols[0], det_cols[2], gt_key, gt_cols[0], gt_cols[2])
    counts = hi - lo
    ends = np.cumsum(counts)
    parts: list[tuple[IntArray, IntArray, FloatArray]] = []
    start = 0
    while start < n:
        done = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, done + _PAIR_CHUNK, side="right")), start + 1)
        c = counts[start:stop]
        total = int(ends[stop - 1]) - done
        if total:
            offsets = np.cumsum(c) - c
            pair_det = np.repeat(np.arange(start, stop), c)
            pair_gt = gt_order[np.arange(total) + np.repeat(lo[start:stop] - offsets, c)]
            iou = _iou(det_cols[:, pair_det], gt_cols[:, pair_gt])
            has = c > 0
            best[start:stop][has] = np.maximum.reduceat(iou, offsets[has])
            keep = iou >= threshold
            parts.append((pair_det[keep], pair_gt[keep], iou[keep]))
        start = stop
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), best
    det, gt, iou = (np.concatenate(p) for p in zip(*parts, strict=True))
    return det, gt, iou, best


def _x_windows(
    det_key: IntArray, dx: FloatArray, dw: FloatArray, gt_key: IntArray, gx: FloatArray, gw: FloatArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Ground truth sorted by (group, x), and per detection the slice [lo, hi) of it that may overlap it.

    A box overlapping detection d starts within (dx - widest, dx + dw), widest being the widest box of the
    group; laying the groups end to end on one axis lets one searchsorted find every slice, which is then
    clipped to the group, with a 1 px margin for rounding. This keeps crowded frames from costing
    detections x boxes. Without a safe axis (huge coordinates), the slice is the whole group.
    """
    order = np.lexsort((gx, gt_key))
    keys = gt_key[order]
    group_lo = np.searchsorted(keys, det_key, side="left")
    group_hi = np.searchsorted(keys, det_key, side="right")
    new_group = np.r_[True, keys[1:] != keys[:-1]]
    rank = np.cumsum(new_group) - 1
    x0, span = gx.min(), gx.max() - gx.min() + 1.0
    if not rank[-1] * span < 2.0**40:
        return order, group_lo, group_hi
    axis = rank * span + (gx[order] - x0)
    widest = np.maximum.reduceat(gw[order], np.flatnonzero(new_group))
    group = rank[np.minimum(group_lo, keys.size - 1)]  # meaningless where the group has no box: clipped away
    start = group * span + (dx - x0)
    lo = np.clip(np.searchsorted(axis, start - widest[group] - 1.0, side="left"), group_lo, group_hi)
    hi = np.clip(np.searchsorted(axis, start + dw + 1.0, side="right"), lo, group_hi)
    return order, lo, hi


def _best_per_det(pair_det: IntArray, pair_gt: IntArray, pair_iou: FloatArray) -> IntArray:
    """Per detection, the pair of highest IoU (ties: lowest ground-truth index) among pairs grouped by
    detection; detections whose best IoU is negative (unusable) get none."""
    if pair_det.size == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, pair_det[1:] != pair_det[:-1]])
    sizes = np.diff(np.r_[starts, pair_det.size])
    top = pair_iou == np.repeat(np.maximum.reduceat(pair_iou, starts), sizes)
    lowest = np.minimum.reduceat(np.where(top, pair_gt, np.iinfo(np.int64).max), starts)
    chosen = np.flatnonzero(top & (pair_gt == np.repeat(lowest, sizes)))
    return chosen[pair_iou[chosen] >= 0]


def _greedy(
    pair_det: IntArray, pair_gt: IntArray, pair_iou: FloatArray, det_key: IntArray, conf: FloatArray, n_gt: int
) -> IntArray:
    """Indices of the pairs the greedy rule picks, among candidate pairs grouped by detection.

    Round k takes the k-th detection (in confidence order) of every group at once: a ground-truth box belongs
    to one group, so the detections of one round never compete for it.
    """
    if pair_det.size == 0:
        return np.zeros(0, np.int64)
    dets = pair_det[np.r_[True, pair_det[1:] != pair_det[:-1]]]
    by_group = dets[np.lexsort((-conf[dets], det_key[dets]))]  # lexsort is stable: ties keep input order
    keys = det_key[by_group]
    new_group = np.r_[True, keys[1:] != keys[:-1]]
    rank = np.arange(dets.size) - np.maximum.accumulate(np.where(new_group, np.arange(dets.size), 0))
    position = np.zeros(conf.size, dtype=np.int64)
    position[by_group[np.argsort(rank, kind="stable")]] = np.arange(dets.size)
    order = np.argsort(position[pair_det], kind="stable")
    pair_det, pair_gt, pair_iou = pair_det[order], pair_gt[order], pair_iou[order]
    pair_start = np.r_[0, np.cumsum(np.bincount(position[pair_det], minlength=dets.size))].tolist()
    taken = np.zeros(n_gt, dtype=bool)
    picked = []
    for d0, d1 in itertools.pairwise(np.r_[0, np.cumsum(np.bincount(rank))].tolist()):
        p0, p1 = pair_start[d0], pair_start[d1]
        if d1 - d0 < _SMALL_ROUND:
            picked.append(p0 + _greedy_loop(pair_det[p0:], pair_gt[p0:], pair_iou[p0:], taken))
            break
        usable = np.where(taken[pair_gt[p0:p1]], -1.0, pair_iou[p0:p1])
        chosen = p0 + _best_per_det(pair_det[p0:p1], pair_gt[p0:p1], usable)
        taken[pair_gt[chosen]] = True
        picked.append(chosen)
    return order[np.concatenate(picked)]


def _greedy_loop(pair_det: IntArray, pair_gt: IntArray, pair_iou: FloatArray, taken: BoolArray) -> IntArray:
    """`_greedy` one detection at a time, for the last rounds; pairs in round order."""
    taken_gts = set(pair_gt[taken[pair_gt]].tolist())
    dets, gts, ious = pair_det.tolist(), pair_gt.tolist(), pair_iou.tolist()
    picked = []
    i, n = 0, len(dets)
    while i < n:
        det, best = dets[i], -1
        while i < n and dets[i] == det:
            if gts[i] not in taken_gts and (
                best < 0 or ious[i] > ious[best] or (ious[i] == ious[best] and gts[i] < gts[best])
            ):
                best = i
            i += 1
        if best >= 0:
            taken_gts.add(gts[best])
            picked.append(best)
    return np.array(picked, dtype=np.int64)
