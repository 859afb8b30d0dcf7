"""Time travel on a SQLite source, end to end through the command: ``history`` of a row,
``diff`` between two points and ``query`` at a point, checked against the database
itself as it was at each backup (read by the test when the backup was taken).

The schema is an application's: SQLAlchemy declarative models (an integer key, a
``String(25)``, a ``Numeric``, a composite key, a table without a primary key), written
through the application's own session. The chain has a full backup, incrementals, a
compaction (``backup compact`` merges four of them), a schema change of the traded table
(``ALTER TABLE ... ADD COLUMN``), and a row deleted then inserted again under its key.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.cli_harness import ConfiguredCli, Result

pytestmark = pytest.mark.xdist_group("time-travel-sqlite")  # one chain, built once


class Base(DeclarativeBase):
    pass


class Trade(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    amount: Mapped[float] = mapped_column(sa.Float)
    is_open: Mapped[bool] = mapped_column(default=True)


class Balance(Base):
    __tablename__ = "balances"
    exchange: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    asset: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    free: Mapped[int]


class Log(Base):
    __tablename__ = "log"
    __table_args__ = {"sqlite_autoincrement": False}
    __mapper_args__ = {"primary_key": ["at", "message"]}  # the ORM needs one; the table has none
    at: Mapped[int] = mapped_column()
    message: Mapped[str] = mapped_column(sa.Text)


TABLES = {"trades": ["id"], "balances": ["exchange", "asset"], "log": ["at", "message"]}


def state_of(db: Path) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Every row of every table, by key (the whole row for the keyless table)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        out = {}
        for table, key in TABLES.items():
            rows = [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
            out[table] = {tuple(r[k] for k in key): r for r in rows}
        return out
    finally:
        conn.close()


@dataclass
class Chain(ConfiguredCli):
    db: Path
    states: dict[int, dict] = field(default_factory=dict)  # seq -> the database then
    written: dict[int, dict[str, set]] = field(default_factory=dict)  # seq -> keys written since the backup before
    history_of_7: list[tuple[str, dict | None]] = field(default_factory=list)  # (op, row) of trade 7
    seqs: list[int] = field(default_factory=list)
    times: dict[int, str] = field(default_factory=dict)  # seq -> a moment after it, before the next change


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Chain:
    root = tmp_path_factory.mktemp("time-travel")
    db = root / "bot.sqlite"
    config = root / "tradevault.toml"
    config.write_text(f'work_dir = "{root / "work"}"\n\n[database]\nurl = "sqlite:///{db}"\n\n'
                      f'[[locations]]\nname = "local"\nurl = "file://{root / "backups"}"\n\n'
                      '[schedule]\nincremental = "30s"\ncompact = ["2m"]\n')
    (root / "work").mkdir()
    engine = sa.create_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)
    chain = Chain(root=root, config=config, db=db)
    rng = random.Random(7)
    touched: dict[str, set] = {t: set() for t in TABLES}
    with Session(engine) as session:
        session.add_all([Trade(id=i, pair=f"P{i}/USDT", amount=float(i)) for i in range(1, 201)])
        session.add_all([Balance(exchange=e, asset=a, free=100) for e in ("binance", "kraken")
                         for a in ("BTC", "ETH", "USDT")])
        session.add(Log(at=0, message="started"))
        session.commit()
    chain.history_of_7.append(("snapshot", state_of(db)["trades"][(7,)]))
    full = chain.ok("backup", "full", "--json").json()
    chain.seqs.append(full["last_seq"])
    chain.times[full["last_seq"]] = dt.datetime.now(dt.timezone.utc).isoformat()
    chain.states[full["last_seq"]] = state_of(db)
    chain.written[full["last_seq"]] = {t: set() for t in TABLES}

    def backup() -> None:
        seq = chain.ok("backup", "incremental", "--json").json()["last_seq"]
        chain.seqs.append(seq)
        chain.times[seq] = dt.datetime.now(dt.timezone.utc).isoformat()
        chain.states[seq] = state_of(db)
        chain.written[seq] = {t: set(keys) for t, keys in touched.items()}
        for keys in touched.values():
            keys.clear()

    def step(i: int) -> None:
        with Session(engine) as session:
            for _ in range(5):
                trade = session.get(Trade, rng.randint(8, 200))
                if trade is not None:
                    trade.amount += 1
                    touched["trades"].add((trade.id,))
            new_id = 1000 + i
            session.add(Trade(id=new_id, pair="NEW/USDT", amount=1.0))
            touched["trades"].add((new_id,))
            balance = session.get(Balance, ("kraken", "ETH"))
            balance.free += 1
            touched["balances"].add(("kraken", "ETH"))
            session.add(Log(at=i, message=f"step {i}"))
            touched["log"].add((i, f"step {i}"))
            if i in (1, 5):  # trade 7 changes only in these steps
                trade = session.get(Trade, 7)
                trade.amount += 10
                touched["trades"].add((7,))
            session.commit()
        if i in (1, 5):
            chain.history_of_7.append(("update", state_of(db)["trades"][(7,)]))

    for i in range(6):
        step(i)
        backup()
    compacted = chain.ok("backup", "compact", "--json").json()
    assert compacted["merged"], compacted
    with Session(engine) as session:  # trade 7 goes, then comes back under its key
        session.delete(session.get(Trade, 7))
        session.delete(session.get(Trade, 1000))
        touched["trades"] |= {(7,), (1000,)}
        session.commit()
    chain.history_of_7.append(("delete", None))
    backup()
    with Session(engine) as session:
        session.add(Trade(id=7, pair="XRP/USDT", amount=7.5, is_open=False))
        touched["trades"].add((7,))
        session.commit()
    chain.history_of_7.append(("insert", state_of(db)["trades"][(7,)]))
    backup()
    conn = sqlite3.connect(db)  # the application's next migration
    conn.execute("ALTER TABLE trades ADD COLUMN strategy VARCHAR(40) DEFAULT 'none'")
    conn.commit()
    conn.close()
    backup()
    with Session(engine) as session:
        session.execute(sa.text("UPDATE trades SET strategy = 'grid', amount = amount + 1 WHERE id = 7"))
        touched["trades"].add((7,))
        session.commit()
    chain.history_of_7.append(("update", state_of(db)["trades"][(7,)]))
    step(6)
    backup()
    return chain


def _history(chain: Chain, *args: str) -> tuple[list[dict], Result]:
    result = chain.ok("history", *args, "--json")
    return result.json(), result


def test_history_of_a_row_follows_it_across_compaction_delete_reinsert_and_a_new_column(chain: Chain) -> None:
    versions, _ = _history(chain, "trades", "--key", "id=7")
    got = [(v["op"], v["row"]) for v in versions]
    # a schema change restates the row with its new column: the history shows it as an
    # update (with the column's default), then the application's own update
    want = [(op, row) for op, row in chain.history_of_7]
    restated = [g for g in got if g[1] is not None and g[1].get("strategy") == "none"]
    assert [g for g in got if g not in restated] == want, got
    assert all(op == "update" for op, _ in restated)
    assert [v["seq"] for v in versions] == sorted(v["seq"] for v in versions)
    assert versions[0]["seq"] == chain.seqs[0] and versions[-1]["row"]["strategy"] == "grid"


def test_history_opens_only_the_objects_whose_key_index_may_hold_the_row(chain: Chain) -> None:
    # inserted in step 3 only (then restated with the new column, like every row)
    versions, result = _history(chain, "trades", "--key", "id=1003")
    assert [(v["op"], v["row"].get("strategy")) for v in versions] == [("insert", None), ("update", "none")]
    found = re.search(r"opened (\d+) of (\d+) incremental\(s\) \(the key index ruled out (\d+)\)", result.err)
    assert found, result.err
    opened, total, skipped = map(int, found.groups())
    assert total >= 4 and opened + skipped == total and opened <= 3, result.err


def test_history_of_a_composite_key_and_of_a_keyless_row(chain: Chain) -> None:
    versions, _ = _history(chain, "balances", "--key", "exchange=kraken", "--key", "asset=ETH")
    assert [v["row"]["free"] for v in versions] == list(range(100, 108))
    assert versions[0]["op"] == "snapshot" and {v["op"] for v in versions[1:]} == {"update"}
    logged, _ = _history(chain, "log", "--key", "message=step 3")
    assert [(v["op"], v["row"]) for v in logged] == [("insert", {"at": 3, "message": "step 3"})]


def test_history_between_two_times_starts_with_the_row_as_it_was(chain: Chain) -> None:
    versions, _ = _history(chain, "trades", "--key", "id=7")
    later, _ = _history(chain, "trades", "--key", "id=7", "--from", versions[2]["time"])
    assert later == versions[2:] or later == versions[1:], (later, versions)
    until, _ = _history(chain, "trades", "--key", "id=7", "--to", versions[1]["time"])
    assert until == versions[:2]


def _model_diff(chain: Chain, a: int, b: int) -> dict[str, dict[str, int]]:
    """Inserted: rows at b, not at a; deleted: at a, not at b; updated: at both, and written
    in between or different (a new column restates every row)."""
    out = {}
    for table in TABLES:
        before, after = chain.states[a][table], chain.states[b][table]
        written = {k for seq in chain.seqs if a < seq <= b for k in chain.written[seq][table]}
        written |= {k for k in before.keys() & after.keys() if before[k] != after[k]}
        counts = {"inserted": len(after.keys() - before.keys()), "deleted": len(before.keys() - after.keys()),
                  "updated": 0 if table == "log" else len({k for k in before.keys() & after.keys() if k in written})}
        if any(counts.values()):
            out[table] = counts
    return out


def test_diff_counts_equal_the_model_between_backup_points(chain: Chain) -> None:
    pairs = [(chain.seqs[0], chain.seqs[-1]), (chain.seqs[1], chain.seqs[4]), (chain.seqs[6], chain.seqs[8])]
    for a, b in pairs:
        got = chain.ok("diff", "--from-seq", str(a), "--to-seq", str(b), "--json").json()
        assert (got["from_seq"], got["to_seq"]) == (a, b)
        counts = {t: {k: c[k] for k in ("inserted", "updated", "deleted")} for t, c in got["tables"].items()
                  if any(c[k] for k in ("inserted", "updated", "deleted"))}
        assert counts == _model_diff(chain, a, b), (a, b)


def test_diff_between_two_times_equals_diff_between_their_seqs(chain: Chain) -> None:
    a, b = chain.seqs[2], chain.seqs[8]
    by_time = chain.ok("diff", "--from", chain.times[a], "--to", chain.times[b], "--json").json()
    by_seq = chain.ok("diff", "--from-seq", str(a), "--to-seq", str(b), "--json").json()
    assert by_time == by_seq and (by_time["from_seq"], by_time["to_seq"]) == (a, b)
    inside = chain.ok("diff", "--from", chain.times[a], "--to", chain.times[b], "--table", "balances", "--rows",
                      "--json").json()
    key = ("kraken", "ETH")
    want = chain.states[b]["balances"][key]["free"] - chain.states[a]["balances"][key]["free"]
    assert [r["after"]["free"] - r["before"]["free"] for r in inside["tables"]["balances"]["rows"]] == [want]
    assert want > 0


def test_diff_rows_carry_before_and_after_images(chain: Chain) -> None:
    a, b = chain.seqs[1], chain.seqs[3]
    got = chain.ok("diff", "--from-seq", str(a), "--to-seq", str(b), "--rows", "--table", "trades", "--json").json()
    assert list(got["tables"]) == ["trades"]
    rows = got["tables"]["trades"]["rows"]
    before, after = chain.states[a]["trades"], chain.states[b]["trades"]
    for row in rows:
        key = (row["key"]["id"],)
        assert row["before"] == before.get(key) and row["after"] == after.get(key), row
    assert {(r["key"]["id"],) for r in rows if r["op"] == "inserted"} == after.keys() - before.keys()


def test_diff_of_a_row_inserted_and_deleted_inside_the_window_counts_nowhere(chain: Chain) -> None:
    a, b = chain.seqs[0], chain.seqs[7]  # trade 1000 came in step 0 and went before seqs[7]
    got = chain.ok("diff", "--from-seq", str(a), "--to-seq", str(b), "--rows", "--json").json()
    keys = {r["key"]["id"] for r in got["tables"]["trades"]["rows"]}
    assert 1000 not in keys and 1001 in keys


def test_query_at_a_point_equals_a_restore_of_that_point(chain: Chain) -> None:
    sql = "SELECT id, pair, amount, is_open FROM trades ORDER BY id"
    for seq in (chain.seqs[0], chain.seqs[3], chain.seqs[-2]):
        got = chain.ok("query", "--seq", str(seq), sql, "--json").json()
        assert [tuple(r.values()) for r in got] == chain.restored_rows(seq, sql), seq
    again = chain.ok("query", "--seq", str(chain.seqs[3]), "SELECT count(*) AS n FROM trades", "--json")
    assert "cached" in again.err and again.json() == [{"n": len(chain.states[chain.seqs[3]]["trades"])}]


def test_query_at_a_time_answers_the_last_committed_point_before_it(chain: Chain) -> None:
    versions, _ = _history(chain, "trades", "--key", "id=7")
    deleted = next(v for v in versions if v["op"] == "delete")
    got = chain.ok("query", "--at", deleted["time"], "SELECT count(*) AS n FROM trades WHERE id = 7", "--json")
    assert got.json() == [{"n": 0}] and f"at seq {deleted['commit_seq']}" in got.err
    before = chain.ok("query", "--seq", str(deleted["seq"] - 1), "SELECT count(*) AS n FROM trades WHERE id = 7",
                      "--json")
    assert before.json() == [{"n": 1}]


@pytest.mark.parametrize("sql", [
    "INSERT INTO trades (id, pair, amount, is_open) VALUES (99999, 'X', 1, 1)",
    "UPDATE trades SET amount = 0",
    "DELETE FROM trades",
    "ATTACH DATABASE 'elsewhere.sqlite' AS other",
    "PRAGMA user_version = 5",
    "DROP TABLE trades",
])
def test_query_refuses_anything_that_writes(chain: Chain, sql: str) -> None:
    source = state_of(chain.db)
    result = chain.tv("query", "--seq", str(chain.seqs[2]), sql)
    assert result.rc == 2 and "refused" in result.err and len(result.err.strip().splitlines()) == 1, str(result)
    assert state_of(chain.db) == source and not (chain.root / "elsewhere.sqlite").exists()
    cached = chain.ok("query", "--seq", str(chain.seqs[2]), "SELECT count(*) AS n FROM trades", "--json").json()
    assert cached == [{"n": len(chain.states[chain.seqs[2]]["trades"])}]


@pytest.mark.parametrize("args, message", [
    (["history", "nope", "--key", "id=1"], "no table 'nope'"),
    (["history", "trades", "--key", "nope=1"], "no column 'nope'"),
    (["history", "balances", "--key", "exchange=kraken"], "primary key"),
    (["history", "trades", "--key", "id"], "COLUMN=VALUE"),
    (["query", "--seq", "1", "--at", "2026-01-01", "SELECT 1"], "--at TIME or --seq N"),
    (["query", "--seq", "999999", "SELECT 1"], "beyond the newest"),
    (["diff", "--from-seq", "999999"], "beyond the newest"),
    (["diff", "--from-seq", "1", "--table", "nope"], "no such table"),
])
def test_bad_time_travel_input_is_a_one_line_error(chain: Chain, args: list[str], message: str) -> None:
    result = chain.tv(*args)
    assert result.rc == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, str(result)


def test_verify_deep_finds_every_key_index_true_to_its_events(chain: Chain) -> None:
    report = chain.ok("verify", "--deep", "--json").json()
    assert report["ok"], report["problems"]


def test_status_says_how_far_back_history_goes(chain: Chain) -> None:
    info = chain.ok("status", "--json").json()["history"]
    assert info["oldest_point"]["seq"] == chain.seqs[0] == info["every_instant_since"]["seq"]
    assert "history" in chain.ok("status").out


def test_the_point_cache_keeps_the_four_points_used_last(chain: Chain) -> None:
    for seq in chain.seqs[:6]:
        chain.ok("query", "--seq", str(seq), "SELECT 1")
    cached = sorted(p.name for p in (chain.root / "work" / "time-travel").rglob("*.sqlite"))
    assert len(cached) == 4 and all(not name.startswith(".") for name in cached), cached
    assert any(name.endswith(f"-{chain.seqs[5]}.sqlite") for name in cached)
    assert not any(name.endswith(f"-{chain.seqs[0]}.sqlite") for name in cached)
    for points in (chain.root / "work" / "time-travel").rglob("points.json"):
        points.unlink()  # a file named by its seq still answers that seq
    again = chain.ok("query", "--seq", str(chain.seqs[5]), "SELECT 1")
    assert "cached" in again.err and f"at seq {chain.seqs[5]} (" in again.err, again.err


def test_time_travel_reads_the_next_location_when_a_copy_is_damaged(cli, workdir: Path) -> None:
    """history, diff and query read each object from the first location whose copy is
    intact: a damaged incremental and a lost full backup in the first location change
    nothing in their answers."""
    setup = cli.new_setup(workdir / "two", location_names=("first", "second"))
    setup.workload(40, seed=21)
    setup.ok("backup", "full")
    seqs = []
    for i in range(3):
        setup.workload(15, seed=22 + i)
        seqs.append(setup.ok("backup", "incremental", "--json").json()["last_seq"])
    conn = sqlite3.connect(setup.db)
    trade_id = conn.execute("SELECT max(id) FROM trades").fetchone()[0]
    conn.close()
    asked = {
        "history": ["history", "trades", "--key", f"id={trade_id}", "--json"],
        "diff": ["diff", "--from-seq", "0", "--to-seq", str(seqs[1]), "--rows", "--json"],
        "query": ["query", "--seq", str(seqs[1]), "SELECT count(*) AS n, sum(id) AS s FROM trades", "--json"],
    }
    before = {name: setup.ok(*args).json() for name, args in asked.items()}
    shutil.rmtree(setup.root / "work" / "time-travel")  # the cache would answer without reading
    damaged = setup.object_path(3, "incremental", "first")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    setup.object_path(1, "full", "first").unlink()
    after = {name: setup.ok(*args).json() for name, args in asked.items()}
    assert after == before and before["history"] and before["diff"]["tables"]


def test_history_of_a_table_created_inside_the_newest_incremental(cli, workdir: Path) -> None:
    """A table no object header describes yet (created inside the newest incremental) is
    found through that incremental's own SCHEMA event."""
    setup = cli.new_setup(workdir / "new-table")
    setup.workload(20, seed=31)
    setup.ok("backup", "full")
    setup.workload(5, seed=32)
    setup.ok("backup", "incremental")
    conn = sqlite3.connect(setup.db)
    conn.execute("CREATE TABLE signals (id INTEGER PRIMARY KEY, pair VARCHAR(20), strength REAL)")
    conn.execute("INSERT INTO signals VALUES (1, 'BTC/USDT', 0.5)")
    conn.commit()
    conn.execute("UPDATE signals SET strength = 0.75 WHERE id = 1")
    conn.commit()
    conn.close()
    setup.ok("backup", "incremental")
    versions = setup.ok("history", "signals", "--key", "id=1", "--json").json()
    # SQLite capture starts on a new table at the next backup, with its rows as they are
    # then (a resynchronisation): the row's history begins there, as an insert
    assert [(v["op"], v["row"]["strength"]) for v in versions] == [("insert", 0.75)], versions
    assert setup.tv("history", "signals", "--key", "nope=1").rc == 2



def test_diff_across_a_table_rebuilt_by_a_migration_sees_what_it_deleted(cli, workdir: Path) -> None:
    """A freqtrade-style migration renames ``positions`` away, creates it again without a
    column and copies the rows back; the bot then deletes a position before the next backup.
    The rebuilt table reaches the stream as SCHEMA + a SNAPSHOT of each row it holds, so
    the deleted position is in no event: ``diff`` counted it nowhere, and after an earlier
    resynchronisation in the window, as updated with the columns it no longer has."""
    setup = cli.new_setup(workdir / "rebuilt")
    conn = sqlite3.connect(setup.db, isolation_level=None)
    conn.execute("CREATE TABLE positions (id INTEGER PRIMARY KEY, pair TEXT, amount REAL, note TEXT)")
    conn.executemany("INSERT INTO positions VALUES (?, ?, ?, 'n')", [(i, f"P{i}", i * 1.5) for i in range(1, 6)])
    setup.ok("backup", "full")
    conn.execute("ALTER TABLE positions RENAME COLUMN amount TO qty")  # a resync in the window
    setup.ok("backup", "incremental")
    conn.executescript("BEGIN; ALTER TABLE positions RENAME TO positions_old;"
                       " CREATE TABLE positions (id INTEGER PRIMARY KEY, pair TEXT, qty REAL);"
                       " INSERT INTO positions SELECT id, pair, qty FROM positions_old;"
                       " DROP TABLE positions_old; COMMIT;")
    conn.execute("DELETE FROM positions WHERE id = 3")
    conn.execute("UPDATE positions SET qty = 99 WHERE id = 2")
    conn.close()
    setup.ok("backup", "incremental")
    found = setup.ok("diff", "--from-seq", "0", "--rows", "--json").json()["tables"]["positions"]
    assert (found["inserted"], found["updated"], found["deleted"], found["schema_changed"]) == (0, 4, 1, True)
    changes = {r["key"]["id"]: (r["op"], r["after"]) for r in found["rows"]}
    assert changes[3] == ("deleted", None)
    assert changes[2] == ("updated", {"id": 2, "pair": "P2", "qty": 99.0})
    # history too: the rebuild's incremental holds no event of position 3 (its key index
    # rules it out), yet it is where the row went
    gone = setup.ok("history", "positions", "--key", "id=3", "--json").json()
    assert [v["op"] for v in gone] == ["snapshot", "update", "delete"], gone
    kept = setup.ok("history", "positions", "--key", "id=2", "--json").json()
    assert [v["op"] for v in kept] == ["snapshot", "update", "update"] and kept[-1]["row"]["qty"] == 99.0, kept
