"""Print the chaos suite's figures (bench/results/chaos.json, written by `pytest -m chaos`) as a Markdown table."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.report import RESULTS, table  # noqa: E402

if __name__ == "__main__":
    if not RESULTS.exists():
        sys.exit(f"{RESULTS} does not exist: run `make chaos` (or pytest -m chaos) first")
    figures = json.loads(RESULTS.read_text())
    print(table(figures))
    sys.exit(0 if all(f["ok"] for f in figures.values()) else 1)
