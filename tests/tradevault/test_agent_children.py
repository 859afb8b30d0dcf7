"""The agent's consolidation runs in a child process. SIGKILL of the agent left that child
running, still writing to the store beside the agent's next start (a crash campaign's
``verify`` caught it: "checkpoint missing or unreadable (head.json names it)"). The child
now dies with its parent."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARENT = f"""
import multiprocessing, os, sys, time
sys.path.insert(0, {str(ROOT)!r})
from tests.tradevault.child_probe import sleep_tied
if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=sleep_tied, args=(os.getpid(),))
    child.start()
    print(child.pid, flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie no one reaped yet is dead too


def test_a_child_dies_with_its_killed_parent():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child is up and tied (or finds its parent gone)
    assert _alive(child)
    parent.kill()
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not _alive(child)
    finally:
        if _alive(child):
            subprocess.run(["kill", "-9", str(child)])
