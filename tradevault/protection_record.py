"""What this machine knows it protected: the evidence that tells a lost database or config
history from a first run.

On disk a fresh install and a disaster look alike (no database file, no ``.git``).
``recover`` and ``run`` refuse to start the bot only when something shows that protection
existed; this record, kept in the agent's state directory, is that evidence when the
locations and remotes cannot be reached. It is written when a full backup is stored and
when a watched directory gets its first commit, and never shrinks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tradevault.agent_state import write_private_json

RECORD_FILE = "protected.json"


@dataclass
class ProtectionRecord:
    """``backups``: source name -> first/last time a full backup was stored (UTC ISO);
    ``config``: absolute directory -> when its history was first seen."""

    backups: dict[str, dict[str, str]] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)

    def has_backups(self, source: str) -> bool:
        return source in self.backups

    def config_dirs(self) -> list[Path]:
        return [Path(p) for p in self.config]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load(state_dir: Path) -> ProtectionRecord:
    """The record, empty when there is none (a first run) or it cannot be read."""
    try:
        data: dict[str, Any] = json.loads((state_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ProtectionRecord()
    return ProtectionRecord(backups=dict(data.get("backups") or {}), config=dict(data.get("config") or {}))


def _save(state_dir: Path, record: ProtectionRecord) -> None:
    write_private_json(state_dir / RECORD_FILE, {"backups": record.backups, "config": record.config})


def note_backup(state_dir: Path, source: str, url: str) -> None:
    """A full backup of ``source`` is stored: from now on its absence is a loss."""
    record = load(state_dir)
    now = _now()
    entry = record.backups.setdefault(source, {"url": url, "first_full": now})
    entry["last_full"] = now
    _save(state_dir, record)


def note_config(state_dir: Path, directories: Iterable[Path]) -> None:
    """These watched directories have history (a commit); written only when one is new."""
    record = load(state_dir)
    new = [str(Path(d).absolute()) for d in directories if str(Path(d).absolute()) not in record.config]
    if not new:
        return
    for directory in new:
        record.config[directory] = _now()
    _save(state_dir, record)
