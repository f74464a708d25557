"""Benchmark videos.scoring: match + summarize + average_precision on 500 000 detections over 1 000 frames."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videos import scoring

N_DETECTIONS = 500_000
N_FRAMES = 1_000
IOU_THRESHOLD = 0.5
REPEATS = 3
RESULTS = Path(__file__).resolve().parent / "results" / "scoring.json"


def make_session(seed: int = 0) -> dict[str, np.ndarray]:
    """A synthetic session: per (frame, label) 1-3 ground-truth boxes and 2-5 detections.

    About 80% of detections are one of the group's boxes with a few percent of position/size jitter (several
    may land on one box, as from a detector without strict NMS), the rest are boxes anywhere in a 1920x1080
    frame; confidences are higher for the former. Labels are strings, as loaded from the database.
    """
    rng = np.random.default_rng(seed)
    det_counts = rng.integers(2, 6, size=N_DETECTIONS // 2)
    n_groups = int(np.searchsorted(np.cumsum(det_counts), N_DETECTIONS)) + 1
    det_counts = det_counts[:n_groups]
    det_counts[-1] -= det_counts.sum() - N_DETECTIONS
    gt_counts = rng.integers(1, 4, size=n_groups)
    n_labels = -(-n_groups // N_FRAMES)
    labels = np.array([f"class_{i:03d}" for i in range(n_labels)])
    group_frame, group_label = np.arange(n_groups) % N_FRAMES, labels[np.arange(n_groups) // N_FRAMES]

    gt_group = np.repeat(np.arange(n_groups), gt_counts)
    gt_wh = rng.uniform(20, 300, size=(gt_group.size, 2))
    gt_xy = rng.uniform(0, 1, size=(gt_group.size, 2)) * ([1920, 1080] - gt_wh)
    gt_box = np.hstack([gt_xy, gt_wh])

    det_group = np.repeat(np.arange(n_groups), det_counts)
    gt_first = np.cumsum(gt_counts) - gt_counts
    target = gt_first[det_group] + (rng.random(N_DETECTIONS) * gt_counts[det_group]).astype(np.int64)
    on_target = rng.random(N_DETECTIONS) < 0.8
    base = gt_box[target]
    jitter_xy = base[:, :2] + rng.normal(0, 0.08, size=(N_DETECTIONS, 2)) * base[:, 2:]
    jitter_wh = base[:, 2:] * np.exp(rng.normal(0, 0.1, size=(N_DETECTIONS, 2)))
    stray_wh = rng.uniform(20, 300, size=(N_DETECTIONS, 2))
    stray_xy = rng.uniform(0, 1, size=(N_DETECTIONS, 2)) * ([1920, 1080] - stray_wh)
    det_box = np.where(on_target[:, None], np.hstack([jitter_xy, jitter_wh]), np.hstack([stray_xy, stray_wh]))
    det_conf = np.where(on_target, rng.beta(5, 2, N_DETECTIONS), rng.beta(2, 5, N_DETECTIONS)).round(4)
    return {
        "det_frame": group_frame[det_group],
        "det_label": group_label[det_group],
        "det_conf": det_conf,
        "det_box": det_box,
        "gt_frame": group_frame[gt_group],
        "gt_label": group_label[gt_group],
        "gt_box": gt_box,
    }


def score(session: dict[str, np.ndarray]) -> tuple[scoring.Metrics, float]:
    """The timed work: match, totals and AP."""
    result = scoring.match(**session, iou_threshold=IOU_THRESHOLD)
    totals = scoring.summarize(result.is_tp, result.iou, result.gt_matched.size)
    return totals, scoring.average_precision(session["det_conf"], result.is_tp, result.gt_matched.size)


def main() -> None:
    session = make_session()
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        totals, ap = score(session)
        timings.append(time.perf_counter() - started)
    median = statistics.median(timings)
    out: dict[str, Any] = {
        "benchmark": "match + summarize + average_precision",
        "detections": N_DETECTIONS,
        "ground_truth": int(session["gt_frame"].size),
        "frames": N_FRAMES,
        "labels": int(np.unique(session["det_label"]).size),
        "iou_threshold": IOU_THRESHOLD,
        "repeats": REPEATS,
        "seconds": [round(t, 4) for t in timings],
        "median_s": round(median, 4),
        "detections_per_s": round(N_DETECTIONS / median),
        "metrics": totals.as_dict(),
        "ap": ap,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"{N_DETECTIONS} detections in {median:.3f} s (median of {REPEATS}): {out['detections_per_s']:,} detections/s"
    )
    print(f"metrics {out['metrics']} ap={ap:.4f} -> {RESULTS}")


if __name__ == "__main__":
    main()
