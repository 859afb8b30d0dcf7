"""Time travel on a PostgreSQL source, end to end through the command: ``history`` of a row,
``diff`` between two backup points and ``query`` at a point, checked against the source
itself as it was at each backup (read by the test when the backup was taken).

The schema is an application's: SQLAlchemy declarative models (an identity ``bigint`` key,
a ``Numeric(18, 8)``, a ``String(25)``, a ``DateTime(timezone=True)``, an ``Enum``, a
composite key, a table without a primary key), written through the application's own
session in several transactions. The chain: a full backup, five incrementals merged by
``backup compact``, an ``ALTER TABLE trades ADD COLUMN`` (the next incremental
resynchronises the table), and more incrementals after it; one trade is deleted and then
inserted again under its key.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.cli_harness import ConfiguredCli, Result
from tests.services import PgDatabases

pytestmark = pytest.mark.xdist_group("postgres")

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Trade(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))
    side: Mapped[str] = mapped_column(sa.Enum("buy", "sell", name="trade_side"))
    opened_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    is_open: Mapped[bool] = mapped_column(default=True)


class Balance(Base):
    __tablename__ = "balances"
    exchange: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    asset: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    free: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))


class Log(Base):
    __tablename__ = "log"
    __mapper_args__ = {"primary_key": ["at", "message"]}  # the ORM needs one; the table has none
    at: Mapped[int] = mapped_column()
    message: Mapped[str] = mapped_column(sa.Text)


KEYS = {"trades": ["id"], "balances": ["exchange", "asset"]}  # log: no primary key
DECIMALS = ("amount", "free")
TIMES = ("opened_at",)


# -- the model -----------------------------------------------------------------------------------
def state_of(engine: sa.Engine) -> dict[str, Any]:
    """Every row of every keyed table by key, and the keyless table as a multiset."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table, key in KEYS.items():
            rows = [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
            out[table] = {tuple(r[k] for k in key): r for r in rows}
        out["log"] = Counter((r.at, r.message) for r in conn.execute(sa.text("SELECT at, message FROM log")))
    return out


def plain(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A row (from the source, or from a JSON document) in comparable form: decimals as
    Decimal (by value), timestamps as aware datetimes."""
    if row is None:
        return None
    out = {}
    for name, value in row.items():
        if value is not None and name in DECIMALS:
            value = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
        elif isinstance(value, str) and name in TIMES:
            value = dt.datetime.fromisoformat(value)
        out[name] = value
    return out


@dataclass
class Chain(ConfiguredCli):
    src: str
    seqs: list[int] = field(default_factory=list)  # full, then every incremental (last_seq)
    states: dict[int, dict] = field(default_factory=dict)  # seq -> the source then
    written: dict[int, dict[str, set]] = field(default_factory=dict)  # seq -> keys written since the point before
    history_of_7: list[list[Any]] = field(default_factory=list)  # [op, row, index in seqs of its backup]
    merged: list[int] = field(default_factory=list)  # n of the entries compaction replaced
    engine: sa.Engine | None = None


@pytest.fixture(scope="module")
def chain(pg_cluster) -> Iterator[Chain]:
    """The module's source and chain, built once (the module-scoped counterpart of the
    ``pg`` and ``work_dir`` fixtures: a fresh database, dropped afterwards, and a private
    directory)."""
    dbs = PgDatabases(pg_cluster)
    root = Path(tempfile.mkdtemp(prefix="tradevault-pgtest-"))
    try:
        yield _build_chain(dbs.new("src"), root)
    finally:
        dbs.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _build_chain(src: str, root: Path) -> Chain:
    config = root / "tradevault.toml"
    (root / "work").mkdir()
    config.write_text(
        f'work_dir = "{root / "work"}"\n\n'
        f'[database]\nurl = "{src}"\nname = "pgsrc"\n\n'
        f'[[locations]]\nname = "local"\nurl = "file://{root / "backups"}"\n\n'
        f'[agent]\nstate_dir = "{root / "state"}"\n\n[config_vcs]\npaths = []\n\n'
        '[schedule]\nincremental = "30s"\ncompact = ["2m"]\n'  # 4 incrementals make one
    )
    engine = sa.create_engine(src)
    Base.metadata.create_all(engine)
    chain = Chain(root=root, config=config, src=src, engine=engine)
    touched: dict[str, set] = {"trades": set(), "balances": set()}

    def trade7() -> dict[str, Any]:
        return state_of(engine)["trades"][(7,)]

    with Session(engine) as session, session.begin():
        session.add_all([Trade(pair=f"P{i}/USDT", amount=Decimal(i), side="buy", opened_at=T0 + dt.timedelta(hours=i))
                         for i in range(1, 21)])
        session.add_all([Balance(exchange=e, asset=a, free=Decimal("100")) for e in ("binance", "kraken")
                         for a in ("BTC", "ETH", "USDT")])
    with Session(engine) as session, session.begin():  # two equal rows in the keyless table
        session.execute(sa.insert(Log), [{"at": 0, "message": "tick"}, {"at": 0, "message": "tick"}])
    assert sorted(state_of(engine)["trades"]) == [(i,) for i in range(1, 21)]  # the identity gave 1..20
    chain.history_of_7.append(["snapshot", trade7(), 0])
    full = chain.ok("backup", "full", "--json").json()
    chain.seqs.append(full["last_seq"])
    chain.states[full["last_seq"]] = state_of(engine)
    chain.written[full["last_seq"]] = {t: set() for t in touched}

    def backup() -> None:
        seq = chain.ok("backup", "incremental", "--json").json()["last_seq"]
        assert seq > chain.seqs[-1]
        chain.seqs.append(seq)
        chain.states[seq] = state_of(engine)
        chain.written[seq] = {t: set(keys) for t, keys in touched.items()}
        for keys in touched.values():
            keys.clear()
        for version in chain.history_of_7:
            if version[2] is None:
                version[2] = len(chain.seqs) - 1

    # incremental 1
    with Session(engine) as session, session.begin():
        session.get(Trade, 7).amount = Decimal("12.5")
        session.get(Trade, 8).amount += 1
        touched["trades"] |= {(7,), (8,)}
    chain.history_of_7.append(["update", trade7(), None])
    with Session(engine) as session, session.begin():
        new = Trade(pair="NEW/USDT", amount=Decimal("0.001"), side="sell", opened_at=T0)
        session.add(new)
        session.flush()
        assert new.id == 21
        session.get(Balance, ("kraken", "ETH")).free += Decimal("0.25")
        session.add(Log(at=1, message="step 1"))
        touched["trades"].add((21,))
        touched["balances"].add(("kraken", "ETH"))
    backup()
    # incremental 2
    with Session(engine) as session, session.begin():
        trade = session.get(Trade, 7)
        trade.side, trade.amount = "sell", Decimal("13.25")
        touched["trades"].add((7,))
    chain.history_of_7.append(["update", trade7(), None])
    with Session(engine) as session, session.begin():
        session.delete(session.get(Trade, 3))
        touched["trades"].add((3,))
    with Session(engine) as session, session.begin():  # a keyless row changes
        session.execute(sa.text("UPDATE log SET message = 'tick!' WHERE message = 'step 1'"))
    backup()
    # incremental 3: trade 12 and binance/BTC change only here
    with Session(engine) as session, session.begin():
        session.get(Trade, 12).amount = Decimal("99.12345678")
        session.get(Balance, ("binance", "BTC")).free = Decimal("0.5")
        session.add_all([Trade(pair="SOL/USDT", amount=Decimal("2.2"), side="buy", opened_at=T0),
                         Trade(pair="ADA/USDT", amount=Decimal("3.3"), side="buy", opened_at=T0)])
        touched["trades"] |= {(12,), (22,), (23,)}
        touched["balances"].add(("binance", "BTC"))
    backup()
    # incremental 4: trade 7 goes; trade 24 comes and goes inside it; one of two equal log rows goes
    with Session(engine) as session, session.begin():
        session.delete(session.get(Trade, 7))
        touched["trades"].add((7,))
    chain.history_of_7.append(["delete", None, None])
    with Session(engine) as session, session.begin():
        session.add(Trade(pair="TMP/USDT", amount=Decimal("1"), side="buy", opened_at=T0))
    with Session(engine) as session, session.begin():
        session.delete(session.get(Trade, 24))
        touched["trades"].add((24,))
    with Session(engine) as session, session.begin():
        session.execute(sa.text("DELETE FROM log WHERE ctid = (SELECT ctid FROM log WHERE message = 'tick' LIMIT 1)"))
    backup()
    # incremental 5: trade 7 comes back under its key
    with Session(engine) as session, session.begin():
        session.add(Trade(id=7, pair="XRP/USDT", amount=Decimal("7.5"), side="buy",
                          opened_at=dt.datetime(2026, 3, 5, 17, 45, 1, 250000, tzinfo=UTC), is_open=False))
        touched["trades"].add((7,))
    chain.history_of_7.append(["insert", trade7(), None])
    with Session(engine) as session, session.begin():
        session.get(Trade, 8).amount += 1
        touched["trades"].add((8,))
    backup()
    compacted = chain.ok("backup", "compact", "--json").json()
    assert compacted["merged"], compacted
    chain.merged = [n for merged in compacted["merged"] for n in merged["replaces"]]
    assert len(chain.merged) == 5, compacted  # incrementals 1..5 are one object now
    # incremental 6: the application's next migration; the table is resynchronised
    with Session(engine) as session, session.begin():
        session.execute(sa.text("ALTER TABLE trades ADD COLUMN strategy varchar(40) DEFAULT 'none'"))
    touched["trades"] |= set(state_of(engine)["trades"])  # every row restated
    chain.history_of_7.append(["update", trade7(), None])
    backup()
    # incremental 7
    with Session(engine) as session, session.begin():
        session.execute(sa.text("UPDATE trades SET strategy = 'grid', amount = amount + 1 WHERE id = 7"))
        session.get(Balance, ("kraken", "ETH")).free -= Decimal("1.125")
        session.add(Log(at=7, message="step 7"))
        touched["trades"].add((7,))
        touched["balances"].add(("kraken", "ETH"))
    chain.history_of_7.append(["update", trade7(), None])
    backup()
    # incremental 8: trade 25 exists only from here
    with Session(engine) as session, session.begin():
        new = Trade(pair="DOT/USDT", amount=Decimal("5.05"), side="sell", opened_at=T0)
        session.add(new)
        session.flush()
        assert new.id == 25
        session.get(Trade, 8).is_open = False
        touched["trades"] |= {(8,), (25,)}
    backup()
    assert all(v[2] is not None for v in chain.history_of_7)
    engine.dispose()
    return chain


# -- history -------------------------------------------------------------------------------------
def _history(chain: Chain, *args: str) -> tuple[list[dict], Result]:
    result = chain.ok("history", *args, "--json")
    return result.json(), result


def _stats(result: Result) -> tuple[int, int, int]:
    found = re.search(r"opened (\d+) of (\d+) incremental\(s\) \(the key index ruled out (\d+)\)", result.err)
    assert found, result.err
    opened, total, skipped = map(int, found.groups())
    assert opened + skipped == total, result.err
    return opened, total, skipped


def _in_backup(chain: Chain, seq: int, index: int) -> bool:
    """``seq`` is a change stored by the backup ``chain.seqs[index]`` (the full's own seq for 0)."""
    if index == 0:
        return seq == chain.seqs[0]
    return chain.seqs[index - 1] < seq <= chain.seqs[index]


def test_history_of_a_trade_follows_its_updates_delete_reinsert_and_new_column(chain: Chain) -> None:
    versions, _ = _history(chain, "trades", "--key", "id=7")
    got = [(v["op"], plain(v["row"])) for v in versions]
    want = [(op, plain(row)) for op, row, _ in chain.history_of_7]
    assert got == want, "\n".join(map(str, got))
    for version, (_, _, index) in zip(versions, chain.history_of_7):
        assert _in_backup(chain, version["seq"], index), (version, index, chain.seqs)
    assert [v["seq"] for v in versions] == sorted(v["seq"] for v in versions)
    # exact decimals as strings with their scale (the change stream keeps numeric's text)
    assert versions[1]["row"]["amount"] == "12.50000000" and versions[2]["row"]["amount"] == "13.25000000"
    assert versions[1]["row"]["opened_at"] == "2026-03-02T16:30:00+00:00"
    assert versions[3]["row"] is None
    assert versions[4]["row"]["opened_at"] == "2026-03-05T17:45:01.250000+00:00"
    assert "strategy" not in versions[4]["row"]  # before the migration
    assert versions[5]["row"]["strategy"] == "none" and versions[6]["row"]["strategy"] == "grid"
    assert versions[6]["row"]["amount"] == "8.50000000"


def test_history_of_a_composite_key_row(chain: Chain) -> None:
    versions, _ = _history(chain, "balances", "--key", "exchange=kraken", "--key", "asset=ETH")
    got = [(v["op"], plain(v["row"])["free"]) for v in versions]
    assert got == [("snapshot", Decimal("100")), ("update", Decimal("100.25")), ("update", Decimal("99.125"))]
    assert versions[1]["row"] == {"exchange": "kraken", "asset": "ETH", "free": "100.25000000"}
    # the full backup's row (read back from its SQLite copy) keeps numeric's scale too
    assert versions[0]["row"]["free"] == "100.00000000"
    assert versions[0]["seq"] == chain.seqs[0] and _in_backup(chain, versions[1]["seq"], 1)
    assert _in_backup(chain, versions[2]["seq"], 7)


def test_history_of_a_keyless_row_follows_rows_with_those_values(chain: Chain) -> None:
    logged, _ = _history(chain, "log", "--key", "message=step 1")
    assert [(v["op"], v["row"]) for v in logged] == [("insert", {"at": 1, "message": "step 1"}),
                                                     ("update", {"at": 1, "message": "tick!"})]
    ticks, _ = _history(chain, "log", "--key", "message=tick")  # two equal rows, one deleted
    assert [(v["op"], v["row"]) for v in ticks] == [("snapshot", {"at": 0, "message": "tick"}),
                                                    ("snapshot", {"at": 0, "message": "tick"}),
                                                    ("delete", None)]
    assert _in_backup(chain, ticks[2]["seq"], 4)
    by_other_column, _ = _history(chain, "log", "--key", "at=7")
    assert [(v["op"], v["row"]) for v in by_other_column] == [("insert", {"at": 7, "message": "step 7"})]


def test_history_of_a_row_touched_once_opens_only_what_its_key_index_may_hold(chain: Chain) -> None:
    versions, result = _history(chain, "trades", "--key", "id=25")  # inserted by the last incremental only
    assert [(v["op"], v["row"]["pair"]) for v in versions] == [("insert", "DOT/USDT")]
    assert _in_backup(chain, versions[0]["seq"], len(chain.seqs) - 1)
    opened, total, skipped = _stats(result)
    # the last, and the one whose new column recreated trades (a row it no longer holds has
    # no event there: any row's history reads it)
    assert total >= 3 and skipped >= 1 and opened == 2, result.err
    # changed in incremental 3 only (merged by the compaction); the other objects are ruled out
    versions, result = _history(chain, "balances", "--key", "exchange=binance", "--key", "asset=BTC")
    assert [(v["op"], plain(v["row"])["free"]) for v in versions] == [("snapshot", Decimal("100")),
                                                                      ("update", Decimal("0.5"))]
    opened, total, skipped = _stats(result)
    assert skipped >= 1 and opened == 1, result.err


# -- diff ----------------------------------------------------------------------------------------
def _model_diff(chain: Chain, a: int, b: int, tables: tuple[str, ...] = ("trades", "balances", "log")) -> dict:
    """Inserted: keys at b, not at a; deleted: at a, not at b; updated: at both and written in
    between. The keyless table: rows in and rows out (a multiset)."""
    out = {}
    for table in tables:
        before, after = chain.states[a][table], chain.states[b][table]
        if table == "log":
            counts = {"inserted": sum((after - before).values()), "updated": 0,
                      "deleted": sum((before - after).values())}
        else:
            written = {k for seq in chain.seqs if a < seq <= b for k in chain.written[seq][table]}
            counts = {"inserted": len(after.keys() - before.keys()),
                      "updated": len({k for k in before.keys() & after.keys() if k in written}),
                      "deleted": len(before.keys() - after.keys())}
        if any(counts.values()):
            out[table] = counts
    return out


def _counts(got: dict) -> dict:
    return {t: {k: c[k] for k in ("inserted", "updated", "deleted")} for t, c in got["tables"].items()
            if any(c[k] for k in ("inserted", "updated", "deleted"))}


@pytest.mark.parametrize("a, b", [(0, 8), (1, 3), (3, 5), (4, 7), (6, 8)])
def test_diff_counts_between_backup_points_equal_the_model(chain: Chain, a: int, b: int) -> None:
    # points 1..4 are inside the object the compaction merged: the diff cuts it at them
    seq_a, seq_b = chain.seqs[a], chain.seqs[b]
    got = chain.ok("diff", "--from-seq", str(seq_a), "--to-seq", str(seq_b), "--json").json()
    assert (got["from_seq"], got["to_seq"]) == (seq_a, seq_b)
    assert _counts(got) == _model_diff(chain, seq_a, seq_b), (a, b, got)
    if a < 6 <= b:  # the window holds the migration
        assert got["tables"]["trades"].get("schema_changed") is True, got


@pytest.mark.parametrize("a, b", [(1, 5), (3, 7), (0, 8)])
def test_diff_rows_carry_the_rows_at_both_points(chain: Chain, a: int, b: int) -> None:
    seq_a, seq_b = chain.seqs[a], chain.seqs[b]
    got = chain.ok("diff", "--from-seq", str(seq_a), "--to-seq", str(seq_b), "--rows", "--json").json()
    assert _counts(got) == _model_diff(chain, seq_a, seq_b)
    for table, key in KEYS.items():
        before, after = chain.states[seq_a][table], chain.states[seq_b][table]
        rows = got["tables"].get(table, {}).get("rows", [])
        by_op: dict[str, set] = {"inserted": set(), "updated": set(), "deleted": set()}
        for row in rows:
            k = tuple(row["key"][c] for c in key)
            by_op[row["op"]].add(k)
            assert plain(row["before"]) == plain(before.get(k)), (table, row, before.get(k))
            assert plain(row["after"]) == plain(after.get(k)), (table, row, after.get(k))
        assert by_op["inserted"] == after.keys() - before.keys(), table
        assert by_op["deleted"] == before.keys() - after.keys(), table
        assert len(by_op["updated"]) == _model_diff(chain, seq_a, seq_b).get(table, {}).get("updated", 0), table
    logged = got["tables"].get("log", {}).get("rows", [])
    ins = Counter((r["after"]["at"], r["after"]["message"]) for r in logged if r["op"] == "inserted")
    outs = Counter((r["before"]["at"], r["before"]["message"]) for r in logged if r["op"] == "deleted")
    log_a, log_b = chain.states[seq_a]["log"], chain.states[seq_b]["log"]
    assert (ins, outs) == (log_b - log_a, log_a - log_b)


def test_verify_deep_finds_every_key_index_true_to_its_events(chain: Chain) -> None:
    report = chain.ok("verify", "--deep", "--json").json()
    assert report["ok"], report["problems"]


def test_diff_of_one_table_shows_only_that_table(chain: Chain) -> None:
    seq_a, seq_b = chain.seqs[0], chain.seqs[8]
    got = chain.ok("diff", "--from-seq", str(seq_a), "--to-seq", str(seq_b), "--table", "balances",
                   "--json").json()
    assert list(got["tables"]) == ["balances"]
    assert _counts(got) == _model_diff(chain, seq_a, seq_b, ("balances",)) == {
        "balances": {"inserted": 0, "updated": 2, "deleted": 0}}
    both = chain.ok("diff", "--from-seq", str(seq_a), "--to-seq", str(seq_b), "--table", "balances",
                    "--table", "log", "--json").json()
    assert sorted(both["tables"]) == ["balances", "log"]
    assert _counts(both) == _model_diff(chain, seq_a, seq_b, ("balances", "log"))


# -- query ---------------------------------------------------------------------------------------
def test_query_at_a_point_equals_a_restore_of_that_point(chain: Chain) -> None:
    sql = "SELECT id, pair, amount, side, opened_at, is_open FROM trades ORDER BY id"
    for index in (0, 3, 8):  # the full backup, inside the compacted object, the newest point
        seq = chain.seqs[index]
        result = chain.ok("query", "--seq", str(seq), sql, "--json")
        got = result.json()
        assert f"at seq {seq} " in result.err, result.err
        restored = chain.restored_rows(seq, sql)
        assert [tuple(r.values()) for r in got] == restored, seq
        state = chain.states[seq]["trades"]
        assert len(got) == len(state) == len(restored)
        for row in got:  # and the values are the source's at that point
            source = state[(row["id"],)]
            assert plain(row)["amount"] == source["amount"], (row, source)
            assert plain(row)["opened_at"] == source["opened_at"], (row, source)
            assert (row["pair"], row["side"], bool(row["is_open"])) == (source["pair"], source["side"],
                                                                         source["is_open"])
    log = chain.ok("query", "--seq", str(chain.seqs[8]), "SELECT at, message FROM log", "--json").json()
    assert Counter((r["at"], r["message"]) for r in log) == chain.states[chain.seqs[8]]["log"]
    strategy = chain.ok("query", "--seq", str(chain.seqs[8]), "SELECT strategy FROM trades WHERE id = 7",
                        "--json").json()
    assert strategy == [{"strategy": "grid"}]


@pytest.mark.parametrize("index", [2, 8], ids=["inside-the-chain", "the-newest-point"])
def test_a_second_query_at_the_same_point_is_answered_from_the_cache(chain: Chain, index: int) -> None:
    # a seq names one state for good: the stored chain never changes what it holds up to it,
    # and later backups only add changes after it (even at the newest point)
    seq = chain.seqs[index]
    chain.ok("query", "--seq", str(seq), "SELECT 1 AS one", "--json")
    again = chain.ok("query", "--seq", str(seq), "SELECT count(*) AS n FROM trades", "--json")
    assert "cached" in again.err, str(again)
    assert again.json() == [{"n": len(chain.states[seq]["trades"])}]
    assert list((chain.root / "work" / "time-travel").glob("*/*.sqlite"))  # the cache is in the work dir


@pytest.mark.parametrize("sql", [
    "INSERT INTO trades (id, pair, amount, side, opened_at, is_open) VALUES (999, 'X', 1, 'buy', '2026-01-01', 1)",
    "UPDATE trades SET amount = 0",
    "DELETE FROM trades",
    "ATTACH DATABASE 'elsewhere.sqlite' AS other",
    "PRAGMA user_version = 1",
])
def test_query_refuses_anything_that_writes(chain: Chain, sql: str) -> None:
    engine = sa.create_engine(chain.src)
    try:
        source = state_of(engine)
        result = chain.tv("query", "--seq", str(chain.seqs[5]), sql)
        assert result.rc == 2 and "refused" in result.err and len(result.err.strip().splitlines()) == 1, str(result)
        assert state_of(engine) == source == chain.states[chain.seqs[-1]]
    finally:
        engine.dispose()
    assert not (chain.root / "elsewhere.sqlite").exists()
    cached = chain.ok("query", "--seq", str(chain.seqs[5]), "SELECT count(*) AS n FROM trades", "--json").json()
    assert cached == [{"n": len(chain.states[chain.seqs[5]]["trades"])}]


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["history", "nope", "--key", "id=1"], "no table 'nope'"),
    (["history", "trades", "--key", "nope=1"], "no column 'nope'"),
    (["history", "balances", "--key", "exchange=kraken"], "primary key"),
    (["history", "balances", "--key", "exchange=kraken", "--key", "free=100"], "primary key"),
    (["history", "trades", "--key", "id=seven"], "not a valid"),
])
def test_bad_time_travel_input_is_a_one_line_error(chain: Chain, args: list[str], message: str) -> None:
    result = chain.tv(*args)
    assert result.rc == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, str(result)


def test_diff_from_a_time_inside_an_object_starts_at_that_committed_point(chain: Chain) -> None:
    """A PostgreSQL object holds several transactions: a time between two of them resolves
    (by reading that object) to the end of the earlier one, as the same seq does."""
    versions, _ = _history(chain, "trades", "--key", "id=7")
    inside = [v for v in versions if v["op"] != "snapshot" and v["commit_seq"] not in chain.seqs]
    assert inside, versions
    point = inside[0]
    by_time = chain.ok("diff", "--from", point["time"], "--rows", "--json").json()
    by_seq = chain.ok("diff", "--from-seq", str(point["commit_seq"]), "--rows", "--json").json()
    assert by_time == by_seq and by_time["from_seq"] == point["commit_seq"]
    assert by_time["to_seq"] == chain.seqs[-1]
