"""Owners and privileges come back: the application's own role owns its tables again and
keeps writing, a reporting role reads what it was granted and no more, and the tables the
application creates after the restore follow its default privileges. Before, a restore
made by the administrator gave back tables only the administrator could use ("permission
denied for table trades" for the application)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tests.postgres.pg_helpers import connect, engine, execute, make_store, restore
from tests.postgres.test_schema_fidelity import same_schema
from trade_stream.postgres.privileges import acl_statements, default_privileges

pytestmark = pytest.mark.xdist_group("postgres")


class Base(DeclarativeBase):
    pass


class Trade(Base):
    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(sa.Identity(), primary_key=True)
    pair: Mapped[str] = mapped_column(sa.String(25))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(18, 8))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)  # serial: a sequence the column owns
    trade_id: Mapped[int] = mapped_column(sa.ForeignKey("trades.id"))
    secret: Mapped[str | None] = mapped_column(sa.Text)


def _as(url: str, role: str) -> str:
    return url.replace("postgres@", f"{role}@")


@pytest.fixture
def roles(pg):
    suffix = uuid.uuid4().hex[:6]
    app, reader = f"tv_app_{suffix}", f"tv_reader_{suffix}"
    admin = pg.new("roles")
    execute(admin, f"CREATE ROLE {app} LOGIN", f"CREATE ROLE {reader} LOGIN")
    yield app, reader
    for name in pg.names:  # roles belong to the cluster: what they own goes first, database by database
        execute(pg.cluster.url(name), f"DROP OWNED BY {app}", f"DROP OWNED BY {reader}")
    execute(admin, f"DROP ROLE {app}", f"DROP ROLE {reader}")


def _application_schema(src: str, app: str, reader: str) -> None:
    execute(src, f"GRANT CREATE ON SCHEMA public TO {app}")
    Base.metadata.create_all(sa.create_engine(_as(src, app)))  # the application's migrations, as itself
    execute(_as(src, app),
            f"GRANT SELECT ON trades TO {reader}",
            f"GRANT SELECT (id, trade_id) ON orders TO {reader}",
            f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {reader}",
            "CREATE VIEW open_trades AS SELECT id, pair FROM trades",
            "CREATE STATISTICS trades_pair_amount (dependencies) ON pair, amount FROM trades",
            f"GRANT SELECT ON open_trades TO {reader}",
            "CREATE FUNCTION trade_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM trades'",
            "REVOKE EXECUTE ON FUNCTION trade_count() FROM PUBLIC",
            f"GRANT EXECUTE ON FUNCTION trade_count() TO {reader}",
            # a procedure: restoring one failed whole ("tidy() is not a function": ALTER FUNCTION)
            "CREATE PROCEDURE tidy() LANGUAGE sql AS 'DELETE FROM orders WHERE trade_id IS NULL'",
            "COMMENT ON PROCEDURE tidy() IS 'the nightly clean-up'",
            "REVOKE EXECUTE ON PROCEDURE tidy() FROM PUBLIC",
            f"GRANT EXECUTE ON PROCEDURE tidy() TO {reader}",
            # aggregates (the server prints no definition of one) and a view over them: a
            # restore failed whole ('function first(numeric) does not exist')
            "CREATE FUNCTION first_step(anyelement, anyelement) RETURNS anyelement"
            " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT $1'",
            "CREATE AGGREGATE first(anyelement) (SFUNC = first_step, STYPE = anyelement, PARALLEL = SAFE)",
            "CREATE FUNCTION vwap_step(numeric[], numeric, numeric) RETURNS numeric[] LANGUAGE sql IMMUTABLE"
            " AS 'SELECT ARRAY[$1[1] + $2 * $3, $1[2] + $3]'",
            "CREATE FUNCTION vwap_final(numeric[]) RETURNS numeric LANGUAGE sql IMMUTABLE"
            " AS 'SELECT $1[1] / NULLIF($1[2], 0)'",
            "CREATE AGGREGATE vwap(price numeric, qty numeric) (SFUNC = vwap_step, STYPE = numeric[],"
            " FINALFUNC = vwap_final, INITCOND = '{0,0}')",
            "COMMENT ON AGGREGATE vwap(numeric, numeric) IS 'volume-weighted average price'",
            "CREATE VIEW pair_stats AS SELECT pair, first(amount ORDER BY id) AS opening,"
            " vwap(amount, amount) AS weighted FROM trades GROUP BY pair",
            f"GRANT SELECT ON pair_stats TO {reader}",
            "CREATE TEXT SEARCH CONFIGURATION notes_english (COPY = english)",
            "CREATE OPERATOR ~= (FUNCTION = numeric_eq, LEFTARG = numeric, RIGHTARG = numeric)",
            "INSERT INTO trades (pair, amount) VALUES ('BTC/USDT', 1.5)",
            "INSERT INTO orders (trade_id, secret) VALUES (1, 'api key')")


def test_the_application_role_owns_its_tables_again_and_keeps_writing(pg, work_dir, roles):
    app, reader = roles
    src, dst = pg.new("src"), pg.new("dst")
    _application_schema(src, app, reader)
    store = make_store(work_dir)
    engine(src, store).full()  # backed up and restored by the administrator (postgres)
    execute(_as(src, app), "INSERT INTO trades (pair, amount) VALUES ('ETH/USDT', 2)")
    engine(src, store).incremental()
    result = restore(store, dst)
    assert not [n for n in result.notes if "privilege" in n], result.notes

    theirs = same_schema(dst, src, owners=True)
    assert any(f"OWNER TO {app}" in s for s in theirs)  # the comparison covers owners and grants

    with Session(sa.create_engine(_as(dst, app))) as session:  # the application, as itself
        session.add(Trade(pair="SOL/USDT", amount=Decimal("3")))
        session.add(Order(trade_id=1, secret="x"))
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(Trade)) == 3
    execute(_as(dst, app), "CREATE TABLE fills (id int PRIMARY KEY)")  # a later migration
    reading = connect(_as(dst, reader))
    assert reading.execute("SELECT count(*) FROM trades").fetchone()[0] == 3
    assert reading.execute("SELECT count(*) FROM fills").fetchone()[0] == 0  # default privileges
    assert reading.execute("SELECT id, trade_id FROM orders ORDER BY id").fetchall() == [(1, 1), (2, 1)]
    assert reading.execute("SELECT trade_count()").fetchone()[0] == 3
    execute(_as(dst, app), "CALL tidy()")
    stats = "SELECT pair, opening, round(weighted, 6) FROM pair_stats WHERE pair <> 'SOL/USDT' ORDER BY pair"
    assert reading.execute(stats).fetchall() == connect(_as(src, reader)).execute(stats).fetchall()
    assert reading.execute(stats).fetchall()[0] == ("BTC/USDT", Decimal("1.5"), Decimal("1.5"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reading.execute("SELECT secret FROM orders")


def test_a_restoring_role_that_may_not_hand_tables_over_says_so(pg, work_dir, roles):
    """Only a superuser or a member of the owner may make it the owner: the restore goes
    on, the tables are the restoring role's, and the notes say what was not run."""
    app, reader = roles
    src = pg.new("src")
    _application_schema(src, app, reader)
    store = make_store(work_dir)
    engine(src, store).full()
    restorer = f"tv_restorer_{uuid.uuid4().hex[:6]}"
    admin = pg.new("admin")
    execute(admin, f"CREATE ROLE {restorer} LOGIN")
    dst = pg.new("dst")
    execute(dst, f"ALTER DATABASE {dst.rsplit('/', 1)[1]} OWNER TO {restorer}",
            f"ALTER SCHEMA public OWNER TO {restorer}")
    try:
        result = restore(store, _as(dst, restorer))
        assert (f'table trades: 1 of its owner and privilege statement(s) not run (first: ALTER TABLE "trades" '
                f'OWNER TO "{app}": must be member of role "{app}")') in result.notes
        assert connect(dst).execute("SELECT tableowner FROM pg_tables WHERE tablename = 'trades'").fetchone()[0] \
            == restorer
        assert connect(dst).execute("SELECT count(*) FROM trades").fetchone()[0] == 1
    finally:
        for name in pg.names:
            execute(pg.cluster.url(name), f"REASSIGN OWNED BY {restorer} TO postgres", f"DROP OWNED BY {restorer}")
        execute(admin, f"DROP ROLE {restorer}")


# -- the statements alone ------------------------------------------------------------------------

def test_an_acl_becomes_pg_dumps_revokes_then_grants():
    acl = [("app", "SELECT", False), ("app", "INSERT", False), ("reader", "SELECT", True), ("", "SELECT", False)]
    assert acl_statements('TABLE "t"', "app", acl, {"secret": [("reader", "SELECT", False)]}) == [
        'REVOKE ALL ON TABLE "t" FROM PUBLIC',
        'REVOKE ALL ON TABLE "t" FROM "app"',
        'GRANT SELECT ON TABLE "t" TO PUBLIC',
        'GRANT SELECT, INSERT ON TABLE "t" TO "app"',
        'GRANT SELECT ON TABLE "t" TO "reader" WITH GRANT OPTION',
        'GRANT SELECT ("secret") ON TABLE "t" TO "reader"',
    ]
    assert acl_statements('TABLE "t"', "app", None) == []  # the defaults: the owner alone says it


def test_default_privileges_in_a_schema_add_and_global_ones_replace():
    assert default_privileges("app", "r", [("reader", "SELECT", False)], in_schema="public") == [
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app" IN SCHEMA public GRANT SELECT ON TABLES TO "reader"']
    assert default_privileges("app", "r", [("reader", "SELECT", False)], in_schema=None)[:2] == [
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app" REVOKE ALL ON TABLES FROM PUBLIC',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "app" REVOKE ALL ON TABLES FROM "app"']


def test_a_role_the_target_lacks_is_noted_and_the_rest_given_back(pg, work_dir, roles):
    """Restored into a cluster that has no such role: the statements that name it are
    noted, the others (the application's grant on a sequence to a role that exists) run."""
    app, reader = roles
    gone = f"tv_gone_{uuid.uuid4().hex[:6]}"
    src, dst = pg.new("src"), pg.new("dst")
    execute(src, f"CREATE ROLE {gone}", "CREATE TABLE fills (id serial PRIMARY KEY, px numeric)",
            f"GRANT SELECT ON fills TO {gone}", f"GRANT INSERT, SELECT ON fills TO {app}",
            f"GRANT USAGE ON SEQUENCE fills_id_seq TO {app}")
    store = make_store(work_dir)
    engine(src, store).full()
    execute(src, f"REVOKE ALL ON fills FROM {gone}", f"DROP ROLE {gone}")  # the cluster has it no more
    result = restore(store, dst)
    assert any(n.startswith("table fills: 1 of its owner and privilege statement(s) not run")
               and f'role "{gone}" does not exist' in n for n in result.notes), result.notes
    execute(_as(dst, app), "INSERT INTO fills (px) VALUES (1.5)")  # its grants, the sequence's too
    assert connect(_as(dst, app)).execute("SELECT id FROM fills").fetchall() == [(1,)]
