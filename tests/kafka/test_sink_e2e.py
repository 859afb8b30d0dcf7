"""The Kafka sink end to end against a real broker (tansu): a trading workload, full and
incremental backups (so events live both in stored segments and in the change log), a
schema change, a primary-key change, deletes; a broker killed and restarted; restore
from the topics equal to the source by digest; ``kafka check``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from restore.kafka_replay import restore_from_kafka
from tests.kafka.kafka_helpers import (
    DEMO_KEYS,
    assert_per_key_order,
    consume,
    digest,
    event_seqs,
    kafka_cli,
    tradevault,
)
from trade_stream.errors import BadInputError
from trade_stream.kafka import codec as codec
from trade_stream.kafka.check import check_topics
from trade_stream.kafka.client import Publisher
from trade_stream.kafka.sink import KafkaSink
from trade_stream.sqlite.capture import SqliteCapture
from trade_stream.sqlite.database import DatabaseService
from tradevault.workload import TradingWorkload, create_database

TABLES = list(DEMO_KEYS)


def last_seq(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return SqliteCapture.last_seq(conn)
    finally:
        conn.close()


def pending_log(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return SqliteCapture.pending(conn)[0]
    finally:
        conn.close()


def restored_equals_source(config, harness, tmp_path: Path, keys=None) -> None:
    target = tmp_path / "from-kafka.sqlite"
    result = restore_from_kafka(config, harness.store.source, DatabaseService(f"sqlite:///{target}"),
                                store=harness.store)
    assert result.last_seq == last_seq(harness.db_path)
    assert result.rows == sum(result.tables.values()) > 0
    assert digest(target, keys) == digest(harness.db_path, keys)
    with pytest.raises(BadInputError):  # a non-empty target needs force
        restore_from_kafka(config, harness.store.source, DatabaseService(f"sqlite:///{target}"))
    restore_from_kafka(config, harness.store.source, DatabaseService(f"sqlite:///{target}"), force=True)


def test_round_trip_through_segments_log_schema_and_key_changes(harness, broker, tmp_path):
    harness.trade(150)
    full = harness.engine.full()
    harness.trade(150)
    config = broker.config()
    sink = KafkaSink(config, harness.store, harness.source)
    try:
        first = sink.sync_once()
        assert first.ok and first.bootstrapped, first
        assert first.to_seq == last_seq(harness.db_path)

        # The sink falls behind the backups: these events are pruned from the change log
        # into stored segments before it runs again.
        harness.trade(200)
        harness.engine.incremental()
        harness.trade(200)
        harness.engine.incremental()
        conn = harness.workload.conn
        moved = conn.execute("SELECT min(id) FROM pairlocks").fetchone()[0]
        conn.execute("UPDATE pairlocks SET id = id + 100000 WHERE id = ?", (moved,))  # primary key change
        conn.execute("ALTER TABLE pairlocks ADD COLUMN note TEXT DEFAULT 'n/a'")
        harness.engine.incremental()  # resync: SCHEMA + SNAPSHOT events for pairlocks, stored
        harness.trade(150)  # ... and these stay in the live change log
        assert pending_log(harness.db_path) > 0

        second = sink.sync_once()
        assert second.ok, second
        assert not second.bootstrapped
        assert (second.from_seq, second.to_seq) == (first.to_seq, last_seq(harness.db_path))
        assert second.behind == 0 and sink.lag()["behind_events"] == 0
        assert sink.sync_once().published == 0  # nothing new
    finally:
        sink.close()

    seen = consume(config, harness.store.source, TABLES)
    assert_per_key_order(seen)
    assert event_seqs(seen, full.last_seq) == set(range(full.last_seq + 1, second.to_seq + 1))

    # The moved pairlock: delete + tombstone under the old key, the row under the new one.
    old_key, new_key = codec.encode_key([moved]), codec.encode_key([moved + 100000])
    pairlocks = codec.topic_name(config.topic_prefix, harness.store.source, "pairlocks")
    old = [s.record for s in seen if s.topic == pairlocks and s.record.key == old_key]
    assert [r.op for r in old[-2:]] == ["delete", "tombstone"]
    new = [s.record for s in seen if s.topic == pairlocks and s.record.key == new_key]
    assert new[0].op == "update" and new[0].seq == old[-1].seq
    # The schema change is in the schema topic, followed by a snapshot of the table.
    schema_records = [s.record for s in seen if s.record.op == "schema" and s.record.seq > full.last_seq]
    assert [json.loads(codec.schema_key("pairlocks"))] == [codec.decode_key(r.key) for r in schema_records]
    assert "note" in [c["name"] for c in schema_records[0].table_schema["columns"]]

    report = check_topics(config, harness.source, harness.store.source)
    assert report.ok, report.to_json()
    restored_equals_source(config, harness, tmp_path)


def test_broker_killed_and_restarted_mid_stream(harness, own_broker, tmp_path):
    harness.trade(100)
    full = harness.engine.full()
    harness.trade(100)
    config = own_broker.config(timeout=20.0)
    sink = KafkaSink(config, harness.store, harness.source)
    try:
        assert sink.sync_once().ok
        harness.trade(100)
        before = sink.sync_once()
        assert before.ok
        life1 = consume(config, harness.store.source, TABLES)
        assert event_seqs(life1, full.last_seq) == set(range(full.last_seq + 1, before.to_seq + 1))

        own_broker.kill()
        harness.trade(150)
        stored = harness.engine.incremental()  # backups go on while the broker is down
        assert stored.count > 0
        down = sink.sync_once(timeout=3)
        assert not down.ok and down.error
        assert down.to_seq == before.to_seq and sink.checkpoint().seq == before.to_seq
        assert sink.lag()["behind_events"] == last_seq(harness.db_path) - before.to_seq
        harness.trade(150)
        harness.engine.incremental()
        harness.trade(60)

        own_broker.start()  # memory storage: the broker comes back empty
        after = sink.sync_once()
        assert after.ok, after
        assert after.to_seq == last_seq(harness.db_path)
        assert after.bootstrapped and any("gone" in w for w in after.warnings)
    finally:
        sink.close()

    life2 = consume(config, harness.store.source, TABLES)
    assert_per_key_order(life1)
    assert_per_key_order(life2)
    # Every event since the full backup arrived, in order, with no gap.
    assert event_seqs(life2, full.last_seq) == set(range(full.last_seq + 1, after.to_seq + 1))
    assert check_topics(config, harness.source, harness.store.source).ok
    restored_equals_source(config, harness, tmp_path)


def test_network_outage_resumes_from_the_checkpoint_through_stored_segments(harness, proxied_broker, tmp_path):
    broker, proxy = proxied_broker
    harness.trade(80)
    full = harness.engine.full()
    config = broker.config(timeout=20.0)
    sink = KafkaSink(config, harness.store, harness.source)
    try:
        assert sink.sync_once().ok
        harness.trade(80)
        before = sink.sync_once()
        assert before.ok and not before.bootstrapped

        proxy.stop()  # the broker keeps running with its data; nobody can reach it
        harness.trade(120)
        assert harness.engine.incremental().count > 0  # stored and pruned meanwhile
        down = sink.sync_once(timeout=3)
        assert not down.ok and sink.checkpoint().seq == before.to_seq
        harness.trade(120)
        harness.engine.incremental()
        harness.trade(40)

        proxy.start()
        after = sink.sync_once()
        assert after.ok, after
        assert not after.bootstrapped and not after.warnings
        assert (after.from_seq, after.to_seq) == (before.to_seq, last_seq(harness.db_path))
        assert after.published == after.to_seq - before.to_seq
    finally:
        sink.close()
    seen = consume(config, harness.store.source, TABLES)
    assert_per_key_order(seen)
    assert event_seqs(seen, full.last_seq) == set(range(full.last_seq + 1, after.to_seq + 1))
    assert check_topics(config, harness.source, harness.store.source).ok
    restored_equals_source(config, harness, tmp_path)


def test_kafka_check_cli_detects_a_difference(broker, tmp_path):
    db_path = tmp_path / "bot.sqlite"
    create_database(db_path)
    workload = TradingWorkload(db_path, seed=3)
    config = broker.config()
    (tmp_path / "tradevault.toml").write_text(
        f'[database]\nurl = "sqlite:///{db_path}"\n\n[[locations]]\nname = "local"\n'
        f'url = "file://{tmp_path / "backups"}"\n\n[kafka]\nbootstrap_servers = "{config.bootstrap_servers}"\n'
        f'topic_prefix = "{config.topic_prefix}"\n', encoding="utf-8")
    try:
        workload.run(120)
        assert tradevault("backup", "full", "-c", "tradevault.toml", cwd=tmp_path).returncode == 0
        workload.run(80)
    finally:
        workload.close()

    synced = kafka_cli("sync", "-c", "tradevault.toml", "--json", cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["last_seq"] == last_seq(db_path)
    good = kafka_cli("check", "-c", "tradevault.toml", "--json", cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert json.loads(good.stdout)["ok"] is True

    # Tamper with the topic: a tombstone for a trade that exists, a trade that does not,
    # and another value for a third one (seq = the latest, so they win the fold).
    conn = sqlite3.connect(db_path)
    ids = [r[0] for r in conn.execute("SELECT id FROM trades ORDER BY id LIMIT 2")]
    columns = [r[1] for r in conn.execute("PRAGMA table_info(trades)")]
    changed = list(conn.execute("SELECT * FROM trades WHERE id = ?", (ids[1],)).fetchone())
    conn.close()
    seq = last_seq(db_path)
    changed[columns.index("pair")] = "CHANGED/USDT"
    extra = list(changed)
    extra[0] = 10**9
    topic = codec.topic_name(config.topic_prefix, db_path.stem, "trades")

    async def tamper() -> None:
        publisher = Publisher(config)
        await publisher.start()
        try:
            futures = [
                await publisher.send(topic, codec.encode_key([ids[0]]), None, codec.headers(seq, codec.TOMBSTONE), 0),
                await publisher.send(topic, codec.encode_key([10**9]), codec.encode_row_value(
                    seq, seq, 0, "insert", "trades", columns, extra), codec.headers(seq, "insert"), 0),
                await publisher.send(topic, codec.encode_key([ids[1]]), codec.encode_row_value(
                    seq, seq, 0, "update", "trades", columns, changed), codec.headers(seq, "update"), 0),
            ]
            await asyncio.gather(*futures)
        finally:
            await publisher.stop()

    asyncio.run(tamper())
    bad = kafka_cli("check", "-c", "tradevault.toml", "--json", "--no-sync", cwd=tmp_path)
    assert bad.returncode == 3, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    trades = report["tables"]["trades"]
    assert (report["ok"], trades["missing"], trades["extra"], trades["different"]) == (False, 1, 1, 1)
    human = kafka_cli("check", "-c", "tradevault.toml", "--no-sync", cwd=tmp_path)
    assert human.returncode == 3 and "differ" in human.stderr


def test_sync_reports_an_unreachable_broker_without_raising(harness, tmp_path):
    harness.trade(20)
    harness.engine.full()
    from tests.kafka.conftest import free_port
    from trade_stream.kafka.config import KafkaConfig

    sink = KafkaSink(KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", timeout=5.0),
                     harness.store, harness.source, state_dir=tmp_path / "state")
    try:
        result = sink.sync_once(timeout=3)
    finally:
        sink.close()
    assert not result.ok and "Kafka at" in result.error
    assert sink.checkpoint().seq == 0 and sink.checkpoint().last_error
