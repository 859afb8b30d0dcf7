"""The running agent's state file: what ``status`` shows while the agent runs.

Written atomically (temp + fsync + rename) after every job and every few seconds;
``read_live_state`` only trusts it while the process that wrote it is alive.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATE_FILE = "agent.json"


def write_private_json(final: Path, data: dict[str, Any]) -> None:
    """Atomically replace ``final`` (mode 0600: state files name hosts and paths)."""
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = final.with_name(f".{final.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, final)


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    write_private_json(state_dir / STATE_FILE, state)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stored_evidence(state_dir: Path, source: str) -> list[Any]:
    """What the agent's state file says it stored last (a full or an incremental: entry
    number, seq, time), as a witness for ``restore.evidence``; whether or not the agent
    still runs, since a stopped agent's last word still counts."""
    from restore.evidence import Evidence

    try:
        state = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(state, dict) or state.get("source") != source:
        return []
    stored = state.get("stored") or {}
    if not (isinstance(stored.get("n"), int) and isinstance(stored.get("last_seq"), int)):
        return []
    return [Evidence("the agent's state file", seq=stored["last_seq"], n=stored["n"],
                     ts=int(float(stored.get("at") or 0) * 1e6) or None)]


def read_live_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(int(state.get("pid", 0))) or state.get("stopped"):
        return None
    state["age_seconds"] = round(time.time() - float(state.get("updated", 0)), 1)
    return state
