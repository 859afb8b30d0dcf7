"""Helpers of the Kafka tests: read back every record, digests, the CLI."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from trade_stream.kafka import codec as codec
from trade_stream.kafka.client import scan
from trade_stream.kafka.config import KafkaConfig
from trade_stream.sqlite.digest import database_digest

DEMO_KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}


@dataclass(frozen=True)
class Seen:
    topic: str
    partition: int
    offset: int
    record: codec.Record


def consume(config: KafkaConfig, source: str, tables: list[str]) -> list[Seen]:
    """Every record of the schema topic and the tables' topics, partitions in offset order."""
    topics = [codec.schema_topic_name(config.topic_prefix, source)]
    topics += [codec.topic_name(config.topic_prefix, source, t) for t in tables]
    seen: list[Seen] = []

    def on_record(topic, partition, offset, key, value, headers) -> None:
        seen.append(Seen(topic, partition, offset, codec.decode_record(key, value, headers)))

    asyncio.run(scan(config, topics, on_record, timeout=30))
    return seen


def assert_per_key_order(seen: list[Seen]) -> None:
    """Within a partition, the seqs of one key never go back (the same key always lands in
    the same partition, so this is the per-key order)."""
    last: dict[tuple[str, bytes], tuple[int, int]] = {}
    for s in seen:
        k = (s.topic, s.record.key)
        if k in last:
            partition, seq = last[k]
            assert partition == s.partition, f"key {s.record.key!r} in two partitions of {s.topic}"
            assert s.record.seq >= seq, f"{s.topic} key {s.record.key!r}: seq {s.record.seq} after {seq}"
        last[k] = (s.partition, s.record.seq)


def event_seqs(seen: list[Seen], above: int) -> set[int]:
    return {s.record.seq for s in seen if s.record.seq > above}


def digest(path: Path, keys: dict[str, list[str]] | None = None) -> dict[str, str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return database_digest(conn, keys or DEMO_KEYS)
    finally:
        conn.close()


@functools.cache
def _kafka_command() -> tuple[str, ...]:
    """``tradevault kafka`` when the sub-app is registered in the CLI, else the module."""
    script = Path(sys.executable).parent / "tradevault"
    if script.exists():
        probe = subprocess.run([str(script), "kafka", "--help"], capture_output=True, text=True)
        if probe.returncode == 0:
            return (str(script), "kafka")
    return (sys.executable, "-m", "tradevault.cli", "kafka")


def kafka_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEVAULT_")}
    return subprocess.run([*_kafka_command(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def tradevault(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEVAULT_")}
    script = Path(sys.executable).parent / "tradevault"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "tradevault.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
