"""A PostgreSQL restore builds its tables in a private schema over several connections and
publishes them into ``public`` in one transaction: a failed restore leaves the target (and
no private schema) behind, a forced one replaces the old tables with working keys, indexes
and sequences, and tables no event touches are finished while the others replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from restore.postgres import replay as replay_postgres
from restore.postgres.staging import Staging
from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from trade_stream.errors import IntegrityError

pytestmark = pytest.mark.xdist_group("postgres")


def _private_schemas(url: str) -> list[str]:
    conn = connect(url)
    try:
        return [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tradevault_restore_%'").fetchall()]
    finally:
        conn.close()


def _source(pg, work_dir: Path) -> tuple[str, object]:
    src = pg.new("src")
    execute(src,
            "CREATE TABLE a (id bigserial PRIMARY KEY, v text NOT NULL, n numeric)",
            "CREATE INDEX a_v ON a (v)",
            "CREATE TABLE b (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, w text UNIQUE)",
            "INSERT INTO a (v, n) SELECT 'row ' || g, g FROM generate_series(1, 3000) g",
            "INSERT INTO b (w) SELECT 'b' || g FROM generate_series(1, 500) g")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE a SET v = v || ' changed' WHERE id <= 2500", "DELETE FROM a WHERE id > 2900",
            "INSERT INTO a (v, n) VALUES ('late', 1)")
    engine(src, store).incremental()
    return src, store


def test_a_forced_restore_replaces_the_tables_with_working_keys_indexes_and_sequences(pg, work_dir):
    src, store = _source(pg, work_dir)
    dst = pg.new("dst")
    execute(dst, "CREATE TABLE a (x int)", "INSERT INTO a VALUES (1)", "CREATE TABLE stale (y int)")
    restore(store, dst, force=True)
    assert digest(dst, {"a": ["id"], "b": ["id"]}) == digest(src, {"a": ["id"], "b": ["id"]})
    assert _private_schemas(dst) == []
    conn = connect(dst)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]
        assert tables == ["a", "b"]
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        assert {"a_pkey", "a_v", "b_pkey", "b_w_key"} <= indexes
        assert conn.execute("INSERT INTO a (v) VALUES ('next') RETURNING id").fetchone()[0] == 3002
        assert conn.execute("INSERT INTO b (w) VALUES ('next') RETURNING id").fetchone()[0] == 501
        with pytest.raises(Exception, match="duplicate key"):
            conn.execute("INSERT INTO b (w) VALUES ('b1')")
    finally:
        conn.close()


def test_a_failed_restore_leaves_the_target_as_it_was_and_no_private_schema(pg, work_dir, monkeypatch):
    _, store = _source(pg, work_dir)
    dst = pg.new("dst")
    execute(dst, "CREATE TABLE a (x int)", "INSERT INTO a VALUES (7)")

    def diverge(self, table):  # as if the replay had found a missing row when settling
        raise IntegrityError("replay diverged from the source: update/delete of 1 missing row(s) "
                             f"in table {table.name!r}")

    monkeypatch.setattr("restore.postgres.gathered_changes.GatheredChanges.settle", diverge)
    with pytest.raises(IntegrityError, match="missing row"):
        restore(store, dst, force=True)
    conn = connect(dst)
    try:
        assert conn.execute("SELECT x FROM public.a").fetchall() == [(7,)]
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 1
    finally:
        conn.close()
    assert _private_schemas(dst) == []


def test_tables_no_event_touches_are_finished_on_another_connection_during_the_replay(pg, work_dir, monkeypatch):
    src, store = _source(pg, work_dir)
    dst = pg.new("dst")
    monkeypatch.setattr(replay_postgres, "connections_for", lambda tables: 2)
    started: list[tuple[int, list[int]]] = []
    original = Staging.start

    def spy(self, groups, first=0):
        started.append((first, [len(group) for group in groups]))
        return original(self, groups, first)

    monkeypatch.setattr(Staging, "start", spy)
    restore(store, dst, force=False)
    assert digest(dst, {"a": ["id"], "b": ["id"]}) == digest(src, {"a": ["id"], "b": ["id"]})
    # loading on the two connections beside the main one (which gathers the events
    # meanwhile), then table b on another connection while a replays, then table a after
    # the replay
    assert started == [(1, [1, 1]), (1, [1, 0]), (0, [1, 0, 0])]


def _source_for_gathering(pg, work_dir: Path) -> tuple[str, object]:
    """A full backup, then an incremental whose first run is a gatherable update run."""
    src = pg.new("src")
    execute(src, "CREATE TABLE a (id bigint PRIMARY KEY, v text, n numeric)",
            "CREATE TABLE b (id int PRIMARY KEY, w text)",
            "INSERT INTO a SELECT g, 'row', g FROM generate_series(1, 3000) g",
            "INSERT INTO b SELECT g, 'b' FROM generate_series(1, 500) g")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "UPDATE a SET v = 'changed', n = n / 7 WHERE id <= 2500")
    engine(src, store).incremental()
    return src, store


def test_the_main_connection_gathers_the_events_while_the_other_connections_load(pg, work_dir, monkeypatch):
    """The update run of the incremental is gathered (gathered_changes) before any load has
    finished: each load here waits until it has been, so a replay that waited for the
    loads first would never gather, and the restore would stall."""
    import threading

    from restore.postgres.gathered_changes import GatheredChanges

    src, store = _source_for_gathering(pg, work_dir)
    dst = pg.new("dst")
    gathered = threading.Event()
    seen: list[bool] = []
    add, copy_tables = GatheredChanges.add, replay_postgres._copy_tables

    def gather(self, *args, **kwargs):
        add(self, *args, **kwargs)
        gathered.set()

    def load(*args, **kwargs):
        copy_tables(*args, **kwargs)
        seen.append(gathered.wait(timeout=30))

    monkeypatch.setattr(GatheredChanges, "add", gather)
    monkeypatch.setattr(replay_postgres, "_copy_tables", load)
    restore(store, dst, force=False)
    assert seen and all(seen)
    assert digest(dst, {"a": ["id"], "b": ["id"]}) == digest(src, {"a": ["id"], "b": ["id"]})


def test_gathered_keys_past_the_limit_during_the_loads_are_settled_once_their_table_is_loaded(
        pg, work_dir, monkeypatch):
    """Past SETTLE_KEYS the gathered runs are applied at once, which needs the table: that
    settle waits for the table's load instead of finding it missing. Each load here,
    having begun (inside its transaction), waits until a settle has begun, and a second
    more, before it goes on to commit."""
    import threading
    import time

    from restore.postgres import gathered_changes

    src, store = _source_for_gathering(pg, work_dir)
    dst = pg.new("dst")
    settling = threading.Event()
    held = set()
    settle, start_loading = gathered_changes.GatheredChanges.settle, replay_postgres.start_loading

    def begin_settle(self, table):
        settling.set()
        settle(self, table)

    def start(staging, store, entry, schema, progress, notes, first=0):
        def hold(stage, done, total):
            progress(stage, done, total)
            if threading.get_ident() not in held:
                held.add(threading.get_ident())
                assert settling.wait(timeout=30)
                time.sleep(1)  # a settle that did not wait would run its DELETE meanwhile

        return start_loading(staging, store, entry, schema, hold, notes, first)

    monkeypatch.setattr(gathered_changes, "SETTLE_KEYS", 1000)
    monkeypatch.setattr(gathered_changes.GatheredChanges, "settle", begin_settle)
    monkeypatch.setattr(replay_postgres, "start_loading", start)
    restore(store, dst, force=False)
    assert digest(dst, {"a": ["id"], "b": ["id"]}) == digest(src, {"a": ["id"], "b": ["id"]})


def _damage(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_full_backup_damaged_in_one_location_restores_from_the_other(pg, work_dir):
    """The damage is found midway through the rows (past the first 4 MiB sent to the server):
    the rows already loaded from that copy are rolled back before the next copy loads."""
    src = pg.new("src")
    execute(src, "CREATE TABLE c (id int PRIMARY KEY, t text)",
            "INSERT INTO c SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 90000) g")
    store = make_store(work_dir)
    full = engine(src, store).full()
    assert full.bytes > 2 << 20
    _damage(next((work_dir / "loc1").rglob(store.entries()[0].object)), 0.9)
    dst = pg.new("dst")
    restore(store, dst, force=False)
    assert digest(dst, {"c": ["id"]}) == digest(src, {"c": ["id"]})

    _damage(next((work_dir / "loc2").rglob(store.entries()[0].object)), 0.9)
    again = pg.new("again")
    with pytest.raises(IntegrityError, match="no intact copy"):
        restore(store, again, force=False)
    conn = connect(again)
    try:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
    finally:
        conn.close()
    assert _private_schemas(again) == []


def test_a_role_that_cannot_create_the_private_schema_gets_a_clear_error(pg, work_dir):
    from trade_stream.errors import BadInputError

    _, store = _source(pg, work_dir)
    dst = pg.new("dst")
    name = dst.rsplit("/", 1)[1]
    execute(dst, "DROP ROLE IF EXISTS tv_restricted", "CREATE ROLE tv_restricted LOGIN",
            f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC', "GRANT CREATE ON SCHEMA public TO tv_restricted")
    restricted = dst.replace("://postgres@", "://tv_restricted@")
    assert restricted != dst
    with pytest.raises(BadInputError, match="needs CREATE on the database"):
        restore(store, restricted, force=False)
    execute(dst, "REVOKE CREATE ON SCHEMA public FROM tv_restricted", "DROP ROLE tv_restricted")


def test_a_restore_drops_the_schemas_of_interrupted_restores_but_not_of_running_ones(pg, work_dir):
    """A killed restore leaves its private schema (a copy of what it had loaded); the next
    restore into that database drops it, unless its owner still holds its advisory lock."""
    src, store = _source(pg, work_dir)
    dst = pg.new("dst")
    execute(dst, "CREATE SCHEMA tradevault_restore_1_dead", "CREATE TABLE tradevault_restore_1_dead.a (x int)",
            "INSERT INTO tradevault_restore_1_dead.a SELECT generate_series(1, 100)",
            "CREATE SCHEMA tradevault_restore_2_live")
    running = connect(dst)  # a restore still at work holds the lock named after its schema
    try:
        running.execute("SELECT pg_advisory_lock(hashtextextended('tradevault_restore_2_live', 0))")
        restore(store, dst, force=False)
        assert _private_schemas(dst) == ["tradevault_restore_2_live"]
    finally:
        running.close()
    assert digest(dst, {"a": ["id"], "b": ["id"]}) == digest(src, {"a": ["id"], "b": ["id"]})
    restore(store, dst, force=True)  # the lock is free now
    assert _private_schemas(dst) == []
