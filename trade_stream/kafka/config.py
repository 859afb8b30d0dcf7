"""Settings of the Kafka sink, independent of how they are loaded.

``from_settings`` reads any object with the attributes of ``[kafka]`` (the composition
root's KafkaSettings) and falls back to the defaults here for fields it does not have
yet, so trade_stream never imports tradevault.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = ""  # empty: the sink is off
    topic_prefix: str = "tradevault"
    partitions: int = 1  # per table topic; one key always maps to one partition
    replication_factor: int = 1  # -1: the broker's default
    compression: str = "lz4"  # none | gzip | snappy | lz4 | zstd
    linger_ms: int = 5
    batch_bytes: int = 512 * 1024  # records are grouped per partition up to this size
    max_request_bytes: int = 8 * 1024 * 1024
    chunk_events: int = 20000  # events published between two checkpoints
    timeout: float = 30.0  # seconds one sync (or one restore read) may take at most
    state_dir: str = ""  # where the checkpoint file lives; empty: next to the database
    client_id: str = "tradevault"
    sync_interval: float = 1.0  # the agent's pause between two syncs

    @property
    def enabled(self) -> bool:
        return bool(self.bootstrap_servers.strip())

    @property
    def compression_type(self) -> str | None:
        return None if self.compression in ("", "none") else self.compression

    def validate(self) -> "KafkaConfig":
        from trade_stream.errors import BadInputError

        if self.compression not in COMPRESSIONS and self.compression != "":
            raise BadInputError(f"[kafka] compression must be one of {', '.join(COMPRESSIONS)}")
        if self.partitions < 1:
            raise BadInputError("[kafka] partitions must be at least 1")
        if self.replication_factor == 0 or self.replication_factor < -1:
            raise BadInputError("[kafka] replication_factor must be positive (or -1: broker default)")
        if not self.topic_prefix or any(c not in _TOPIC_CHARS for c in self.topic_prefix):
            raise BadInputError("[kafka] topic_prefix may only use letters, digits, '.', '_' and '-'")
        return self

    @staticmethod
    def from_settings(section: Any, **overrides: Any) -> "KafkaConfig":
        """From a ``[kafka]`` settings object (missing attributes keep their defaults)."""
        values: dict[str, Any] = {}
        for f in fields(KafkaConfig):
            if hasattr(section, f.name):
                values[f.name] = getattr(section, f.name)
        values.update(overrides)
        if isinstance(values.get("state_dir"), Path):
            values["state_dir"] = str(values["state_dir"])
        return KafkaConfig(**values).validate()


_TOPIC_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
