"""The capture slot's restart point follows its confirmed position after a burst of WAL,
so later incrementals do not re-read the burst and the server does not keep its WAL."""

from __future__ import annotations

import pytest

from tests.postgres.pg_helpers import connect, digest, engine, execute, make_store, restore
from trade_stream.postgres import capture as capture_postgres
from trade_stream.postgres.capture import PostgresCapture, slot_name_for
from trade_stream.postgres.database import PostgresDatabase

pytestmark = pytest.mark.xdist_group("postgres")

BURST_ROWS = 100_000  # about 20 MB of WAL each


def _restart_lag(url: str) -> int:
    conn = connect(url)
    try:
        info = PostgresCapture(PostgresDatabase(url), slot_name_for("src")).slot_info(conn)
        assert info.exists and info.confirmed_lsn is not None and info.restart_lsn is not None
        return info.confirmed_lsn - info.restart_lsn
    finally:
        conn.close()


@pytest.mark.parametrize("protected_changes", [True, False])
def test_restart_point_catches_up_after_a_bulk_load_elsewhere_in_the_cluster(
        pg, pg_cluster, work_dir, monkeypatch, protected_changes):
    monkeypatch.setattr(capture_postgres, "RESTART_LAG_LIMIT", 1 << 20)
    src, other, dst = pg.new("src"), pg.new("other"), pg.new("dst")
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    store = make_store(work_dir)
    engine(src, store).full()
    # two bursts in another database, each followed by a checkpoint (which logs the
    # running-transactions record a slot's restart point can move to)
    for burst in range(2):
        execute(other, f"CREATE TABLE big{burst} AS SELECT g AS id, repeat('x', 150) AS pad"
                       f" FROM generate_series(1, {BURST_ROWS}) g")
        with pg_cluster.admin() as admin:
            admin.execute("CHECKPOINT")
    if protected_changes:
        execute(src, "INSERT INTO t VALUES (2, 'b')")
    result = engine(src, store).incremental()
    assert (result.count == 1) if protected_changes else bool(result.skipped)
    # one advance alone leaves the restart point at the first checkpoint, before the
    # second burst (more than 15 MB behind)
    assert _restart_lag(src) < 1 << 20
    execute(src, "UPDATE t SET v = 'a2' WHERE id = 1")
    assert engine(src, store).incremental().count == 1
    restore(store, dst)
    assert digest(dst, {"t": ["id"]}) == digest(src, {"t": ["id"]})
