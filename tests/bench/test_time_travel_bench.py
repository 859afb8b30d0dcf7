"""The time-travel benchmark runs end to end on a small database and reports what its
goals need: whole-process times of history, diff and query, what history opened, and the
baselines they are compared with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_time_travel_bench_measures_every_goal(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench.time_travel", "--rows", "3000", "--changes", "300",
                          "--incrementals", "7", "--rounds", "1", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((tmp_path / "time-travel-results.json").read_text())
    assert [p["n"] for p in results["points"]] == list(range(1, 9))
    for name in ("history_cold", "history_warm", "diff", "read_five", "query_cold", "query_cached",
                 "query_itself", "restore_plus_query"):
        assert len(results["figures"][name]) == 1 and results["figures"][name][0] > 0, name
    goals = {g["name"]: g for g in results["goals"]}
    opened = next(g for name, g in goals.items() if name.startswith("history: incrementals opened"))
    assert 0 <= opened["value"] <= 1, opened  # beyond those that change the row; fingerprints may add one
    assert results["history_versions"] >= 2  # its row in the full backup, then the update
    assert all(set(g) == {"name", "value", "goal", "ok"} for g in results["goals"])
