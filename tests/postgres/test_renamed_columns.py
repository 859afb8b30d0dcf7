"""``ALTER TABLE ... RENAME COLUMN`` (Alembic's ``alter_column(new_column_name=...)``)
between two incrementals. The changes written after it name the column by its new name,
which the known description lacks, so until the table's resynchronisation their values
of that column were NULL (an insert) or the previous value (an update): every restore
point in between gave wrong values with exit 0, and a key column renamed gave deletes
without a key. Backup headers now record each column's number (``attnums``): a column
renamed keeps it, and the decoder reads the new name as the known one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.postgres.pg_helpers import engine, execute, fetch, make_store, restore
from trade_stream.storage.stored_objects import events_of

pytestmark = pytest.mark.xdist_group("postgres")


def _rows(url: str) -> list[tuple]:
    return fetch(url, "SELECT * FROM orders ORDER BY 1")


def test_every_point_after_a_column_rename_holds_the_source_values(pg, work_dir):
    src = pg.new("src")
    execute(src, "CREATE TABLE orders (id int PRIMARY KEY, amt numeric NOT NULL, note text)",
            "INSERT INTO orders VALUES (1, 1, 'a')")
    store = make_store(work_dir)
    engine(src, store).full()
    states = []  # the source after each change, in stream order
    for statement in ["INSERT INTO orders VALUES (2, 2, 'b')",
                      "ALTER TABLE orders RENAME COLUMN amt TO amount",
                      "INSERT INTO orders VALUES (3, 3, 'c')",
                      "UPDATE orders SET amount = 7 WHERE id = 2",
                      "ALTER TABLE orders RENAME COLUMN id TO order_id",
                      "UPDATE orders SET note = 'x' WHERE order_id = 3",
                      "DELETE FROM orders WHERE order_id = 1",
                      "UPDATE orders SET order_id = 20 WHERE order_id = 2"]:
        execute(src, statement)
        if not statement.startswith("ALTER"):
            states.append(_rows(src))
    result = engine(src, store).incremental()
    assert not any("left out" in w for w in result.warnings)
    changes = [e for batch in events_of(store, store.entries()[-1]) for e in batch if e.op != "schema"]
    for event, state in zip(changes, states):
        dst = pg.new("dst")
        restored = restore(store, dst, seq=event.seq)
        assert _rows(dst) == state, event
        assert restored.notes == []
    assert _rows(dst) == [(3, Decimal(3), "x"), (20, Decimal(7), "b")]


def test_key_columns_swapping_names_leave_the_capture_running(pg, work_dir):
    """Two columns that swap names cannot be read by number (a change of either time would
    read alike): their changes are left out and the table read again, where before a
    delete's old key under the other name stopped every incremental for good."""
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, "CREATE TABLE orders (id int PRIMARY KEY, alt int NOT NULL)",
            "INSERT INTO orders SELECT g, -g FROM generate_series(1, 3) g")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, "ALTER TABLE orders RENAME COLUMN id TO tmp", "ALTER TABLE orders RENAME COLUMN alt TO id",
            "ALTER TABLE orders RENAME COLUMN tmp TO alt",
            "INSERT INTO orders (alt, id) VALUES (4, -4)", "DELETE FROM orders WHERE alt = 1",
            "UPDATE orders SET id = 0 WHERE alt = 2")
    result = engine(src, store).incremental()
    assert any("'orders' changed its columns" in w for w in result.warnings)
    execute(src, "DELETE FROM orders WHERE alt = 3")
    engine(src, store).incremental()
    restore(store, dst)
    assert _rows(dst) == _rows(src) == [(2, 0), (4, -4)]  # (alt, id): the key is alt now
