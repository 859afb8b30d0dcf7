"""Where the hot standby's follower keeps its state (position, lag, whether it runs),
read by ``status`` and by ``promote``; written atomically beside the standby file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from trade_stream.errors import BadInputError
from trade_stream.sqlite.database import DatabaseService


def standby_target(settings: Any, to: str | None) -> DatabaseService:
    url = to or settings.standby.url
    if not url:
        raise BadInputError("give --to URL or set [standby] url")
    return DatabaseService(url)


def state_path(target: DatabaseService) -> Path:
    return target.path.absolute().with_name(f".{target.path.name}.tradevault-follow.json")


def standby_state(url: str) -> dict[str, Any]:
    """What the follower last wrote (position, lag, whether it is running), for status."""
    path = state_path(DatabaseService(url))
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"url": url, "following": False, "error": "no follower state (is `tradevault follow` running?)"}
    state["url"] = url
    state["age_seconds"] = round(time.time() - float(state.get("updated", 0)), 1)
    return state


def write_state(path: Path, state: dict[str, Any]) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(state))
    os.replace(temp, path)
