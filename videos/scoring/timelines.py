"""Per-frame TP/FP/FN timelines of scored detections, and the frames where two sessions differ."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from videos.scoring.matching import BoolArray, IntArray


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per-frame counts, frames ascending: only frames holding a detection or a ground-truth box."""

    frame: IntArray
    tp: IntArray
    fp: IntArray
    fn: IntArray

    def rows(self) -> Iterator[dict[str, int]]:
        """Yield `{frame, tp, fp, fn}` dicts of Python ints, in frame order."""
        for frame, tp, fp, fn in zip(
            self.frame.tolist(), self.tp.tolist(), self.fp.tolist(), self.fn.tolist(), strict=True
        ):
            yield {"frame": frame, "tp": tp, "fp": fp, "fn": fn}


@dataclass(frozen=True, slots=True)
class FrameDiff:
    """Frames (ascending) where exactly one of two sessions is right, and which one ("a" or "b")."""

    frame: IntArray
    right: NDArray[np.str_]

    def rows(self) -> Iterator[dict[str, int | str]]:
        """Yield `{frame, right}` dicts, in frame order."""
        for frame, right in zip(self.frame.tolist(), self.right.tolist(), strict=True):
            yield {"frame": frame, "right": right}


def timeline(det_frame: ArrayLike, is_tp: ArrayLike, gt_frame: ArrayLike, gt_matched: ArrayLike) -> Timeline:
    """TP, FP and FN per frame, for frames holding a detection or a ground-truth box, in frame order."""
    det_frame = np.asarray(det_frame, dtype=np.int64).ravel()
    is_tp = np.asarray(is_tp, dtype=bool).ravel()
    gt_matched = np.asarray(gt_matched, dtype=bool).ravel()
    frames, inverse = np.unique(
        np.concatenate([det_frame, np.asarray(gt_frame, dtype=np.int64).ravel()]), return_inverse=True
    )
    det_at, gt_at = inverse[: det_frame.size], inverse[det_frame.size :]
    return Timeline(
        frame=frames,
        tp=np.bincount(det_at[is_tp], minlength=frames.size),
        fp=np.bincount(det_at[~is_tp], minlength=frames.size),
        fn=np.bincount(gt_at[~gt_matched], minlength=frames.size),
    )


def compare(a: Timeline, b: Timeline) -> FrameDiff:
    """Frames where exactly one of two timelines is right (no FP and no FN), with which one.

    A frame missing from a timeline has nothing to get wrong there, so it counts as right.
    """
    frames = np.union1d(a.frame, b.frame)
    a_right, b_right = _right_at(a, frames), _right_at(b, frames)
    differ = a_right != b_right
    return FrameDiff(frame=frames[differ], right=np.where(a_right[differ], "a", "b"))


def _right_at(t: Timeline, frames: IntArray) -> BoolArray:
    right = np.ones(frames.size, dtype=bool)
    right[np.searchsorted(frames, t.frame)] = (t.fp == 0) & (t.fn == 0)
    return right
