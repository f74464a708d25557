"""Detection scoring (NumPy, no ORM): greedy IoU matching, metrics, average precision, timelines."""

from videos.scoring.matching import MatchResult, iou_xywh, match
from videos.scoring.metrics import (
    Metrics,
    average_precision,
    filter_min_confidence,
    metrics,
    per_label,
    pr_curve,
    report,
    summarize,
)
from videos.scoring.timelines import FrameDiff, Timeline, compare, timeline

__all__ = [
    "FrameDiff",
    "MatchResult",
    "Metrics",
    "Timeline",
    "average_precision",
    "compare",
    "filter_min_confidence",
    "iou_xywh",
    "match",
    "metrics",
    "per_label",
    "pr_curve",
    "report",
    "summarize",
    "timeline",
]
