"""The Kafka sink's progress: the last seq the broker confirmed, in a small JSON file.

Kept apart from the backup store and from the trading database on purpose: the sink
must never write to the trading database, and segment backups must never wait for it.
The file is replaced atomically (temp file, fsync, rename, fsync of the directory), so
after a crash it holds either the previous or the new position, both of which are safe
(at worst some events are published twice; readers keep the last seq per key).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trade_stream.durable import write_atomically

FORMAT = 1


@dataclass
class Checkpoint:
    source: str
    topic_prefix: str
    capture_id: str = ""
    seq: int = 0  # every event with seq <= this is confirmed by the broker
    bootstrap_seq: int = 0  # seq of the full backup the topics were (re)built from
    topics: list[str] = field(default_factory=list)  # topics created by the sink
    updated_at: int = 0  # microseconds UTC of the last confirmed progress
    last_error: str = ""
    last_attempt: int = 0
    published_total: int = 0
    format: int = FORMAT

    @property
    def started(self) -> bool:
        """True once a bootstrap was confirmed (the topics hold a full state)."""
        return bool(self.capture_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_path(state_dir: Path, source: str, topic_prefix: str) -> Path:
    """One file per (source, topic prefix): a new prefix means new topics, a new start."""
    return state_dir / f"tradevault-kafka-{source}.{topic_prefix}.json"


def load(path: Path, source: str, topic_prefix: str) -> Checkpoint:
    """The saved checkpoint, or a fresh one when there is none (or it is for other topics)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Checkpoint(source, topic_prefix)
    except (OSError, ValueError) as exc:
        raise OSError(f"unreadable Kafka checkpoint {path}: {exc}") from None
    if data.get("format") != FORMAT or data.get("source") != source or data.get("topic_prefix") != topic_prefix:
        return Checkpoint(source, topic_prefix)
    known = {k: v for k, v in data.items() if k in Checkpoint.__dataclass_fields__}
    return Checkpoint(**known)


def save(path: Path, checkpoint: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(checkpoint.to_json(), indent=1, sort_keys=True).encode("utf-8"))


def now_us() -> int:
    return time.time_ns() // 1000
