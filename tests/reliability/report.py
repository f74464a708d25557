"""The chaos suite's figures: collected by tests, merged into bench/results/chaos.json, printed as a table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "chaos.json"

# Figures recorded during this pytest session: key → {item, scenario, figure, goal, ok, data}.
collected: dict[str, dict[str, Any]] = {}


def record(key: str, *, item: int, scenario: str, figure: str, goal: str, ok: bool, **data: Any) -> None:
    collected[key] = {
        "item": item,
        "scenario": scenario,
        "figure": figure,
        "goal": goal,
        "ok": ok,
        "data": data,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def save() -> None:
    """Merge this session's figures into the results file (a partial run keeps the other figures)."""
    if not collected:
        return
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged.update(collected)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")


def table(figures: dict[str, dict[str, Any]]) -> str:
    """A Markdown table, by issue item."""
    rows = ["| # | scenario | figure | goal | met |", "|---|---|---|---|---|"]
    for fig in sorted(figures.values(), key=lambda f: (f["item"], f["scenario"])):
        met = "yes" if fig["ok"] else "**no**"
        rows.append(f"| {fig['item']} | {fig['scenario']} | {fig['figure']} | {fig['goal']} | {met} |")
    return "\n".join(rows)
