"""Smoke test of the benchmark's CLI contract: `python -m bench --rows N --out DIR`.

Checks the shape of DIR/results.json and that DIR/RESULTS.md exists; it deliberately does
not assert that any performance goal is met (that is what the benchmark reports). A tiny
database and a reduced scenario list keep it fast (the full list is what `python -m bench`
runs by default).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (shutil.which("sqlite3") and shutil.which("zstd")),
                    reason="the benchmark needs the sqlite3 and zstd tools (apt-get install sqlite3 zstd)")
def test_bench_writes_results_with_contract_shape(tmp_path: Path) -> None:
    out = tmp_path / "bench-out"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--rows", "2000", "--quick", "--skip-restic",
         "--scenarios", "startup,incremental,restore,latency", "--latency-tx", "100", "--out", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    results = json.loads((out / "results.json").read_text())
    assert results["rows"] == 2000
    # what a scenario needs is added: incremental and restore need the full backups
    assert results["scenarios"] == ["full", "startup", "incremental", "restore", "latency"]
    assert not results["measurements"]["scenarios"]["errors"]
    assert isinstance(results["measurements"], dict) and results["measurements"]
    assert isinstance(results["machine"], dict) and results["machine"]
    assert isinstance(results["command"], str) and "python -m bench" in results["command"]
    assert "--rows 2000" in results["command"]

    goals = results["goals"]
    assert isinstance(goals, list) and goals
    for goal in goals:
        assert isinstance(goal, dict)
        assert {"name", "value", "goal", "ok"} <= goal.keys(), goal
        assert isinstance(goal["name"], str) and goal["name"]
        assert isinstance(goal["ok"], bool)
        assert isinstance(goal["value"], (int, float, bool))
    names = " | ".join(g["name"] for g in goals)
    for topic in ("full backup time", "full backup size", "incremental", "restore", "memory", "latency",
                  "tradevault --version", "backups list"):
        assert topic in names, f"no goal about {topic!r}: {names}"
    equal = next(g for g in goals if g["name"] == "restore equals source (digest)")
    assert isinstance(equal["value"], bool)

    md = (out / "RESULTS.md").read_text()
    assert "python -m bench" in md
    for goal in goals:
        assert goal["name"] in md
    # the scratch databases are removed unless --keep
    assert not (out / "bench-work").exists()


def test_bench_rejects_bad_usage(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--rows", "5"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2


def test_bench_rejects_unknown_scenario(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--rows", "1000", "--scenarios", "full,nope",
                           "--out", str(tmp_path / "o")], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "nope" in proc.stderr


def test_bench_scenario_dependencies() -> None:
    from bench.core import resolve_scenarios

    assert resolve_scenarios(["pitr"]) == ("full", "incremental", "pitr")
    assert resolve_scenarios(["config", "latency"]) == ("latency", "config")
