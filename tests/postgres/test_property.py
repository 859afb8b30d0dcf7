"""Property: random transactions, backed up (full + incrementals), restored into
PostgreSQL at random transaction boundaries, equal the source as it was at each one."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.postgres.pg_helpers import connect, digest, engine, make_store, restore
from trade_stream.manifest import INCREMENTAL
from trade_stream.storage.stored_objects import events_of

pytestmark = pytest.mark.xdist_group("postgres")

TABLES = {"acct": ["id"], "fills": ["pair", "n"]}
KEYS = st.integers(min_value=1, max_value=6)
VALUES = st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False, places=4,
                                          min_value=-10**8, max_value=10**8))
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
OPS = st.one_of(
    st.tuples(st.just("upsert"), KEYS, VALUES, FLOATS, TEXT),
    st.tuples(st.just("delete"), KEYS),
    st.tuples(st.just("move"), KEYS, KEYS),
    st.tuples(st.just("fill"), st.sampled_from(["BTC/USDT", "ETH/USDT"]), st.integers(0, 3), FLOATS),
)
TRANSACTIONS = st.lists(st.lists(OPS, min_size=1, max_size=4), min_size=1, max_size=8)


def _apply(conn, op) -> None:
    kind = op[0]
    if kind == "upsert":
        _, key, amount, rate, note = op
        conn.execute("INSERT INTO acct VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                     " amount = excluded.amount, rate = excluded.rate, note = excluded.note",
                     (key, amount, rate, note))
    elif kind == "delete":
        conn.execute("DELETE FROM acct WHERE id = %s", (op[1],))
    elif kind == "move":
        conn.execute("UPDATE acct SET id = %s WHERE id = %s AND NOT EXISTS (SELECT 1 FROM acct WHERE id = %s)",
                     (op[2], op[1], op[2]))
    else:
        _, pair, n, price = op
        conn.execute("INSERT INTO fills VALUES (%s, %s, %s) ON CONFLICT (pair, n) DO UPDATE SET price = %s",
                     (pair, n, price, price))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(before=TRANSACTIONS, after=TRANSACTIONS, split=st.integers(0, 8), picks=st.lists(st.integers(0, 99),
                                                                                          min_size=2, max_size=2))
def test_random_transactions_restore_at_random_points(pg, work_dir, before, after, split, picks):
    src, dst = pg.new("src"), pg.new("dst")
    conn = connect(src)
    conn.execute("CREATE TABLE acct (id int PRIMARY KEY, amount numeric(14,4), rate double precision, note text)")
    conn.execute("CREATE TABLE fills (pair text, n int, price double precision, PRIMARY KEY (pair, n))")
    for tx in before:
        with conn.transaction():
            for op in tx:
                _apply(conn, op)
    # each example's database its own source name: slot names are the server's, and the
    # examples' databases all live until the test ends
    name = src.rsplit("/", 1)[-1]
    store = make_store(work_dir / f"store-{name}", source=name)
    full = engine(src, store).full()
    states: dict[int, dict[str, str]] = {full.last_seq: digest(src, TABLES)}
    xids = []
    for i, tx in enumerate(after):
        with conn.transaction():
            xids.append(conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0] & 0xFFFFFFFF)
            for op in tx:
                _apply(conn, op)
        states_key = len(xids)
        states[-states_key] = digest(src, TABLES)  # placeholder until the tx's seq is known
        if i == split:
            engine(src, store).incremental()
    engine(src, store).incremental()
    conn.close()
    last_seq_of_tx: dict[int, int] = {}
    for entry in store.entries():
        if entry.kind == INCREMENTAL:
            for batch in events_of(store, entry):
                for event in batch:
                    last_seq_of_tx[event.tx] = event.seq
    points = [full.last_seq]
    for n, xid in enumerate(xids, start=1):
        state = states.pop(-n)
        if xid in last_seq_of_tx:  # a transaction that changed nothing has no events
            states[last_seq_of_tx[xid]] = state
            points.append(last_seq_of_tx[xid])
    for pick in sorted({points[p % len(points)] for p in picks}):
        restore(store, dst, seq=pick)
        assert digest(dst, TABLES) == states[pick], f"restore at seq {pick} differs"
