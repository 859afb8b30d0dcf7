"""A private schema where a PostgreSQL restore builds its tables over several connections,
moved into the source's schema (``public``, or the one the backup recorded: the *home*
schema) in one short transaction at the end.

Why: loading and indexing spread over connections use more than one server process (one
backend does one statement at a time), and the target's home schema stays exactly
as it was until the last step. Each connection commits its own work inside the private
schema; only ``publish`` touches the home schema (creating it when the target lacks
it): with ``force`` it drops the old tables, then
moves the new ones in (with their indexes, constraints and owned sequences), all in one
transaction. A failure anywhere before that drops the private schema and leaves the
target as it was. A process killed mid-restore leaves its schema behind (a copy of the
tables loaded so far): each restore holds an advisory lock named after its schema for as
long as it runs, and the next restore into that database drops every such schema whose
lock it can take (its owner is gone), so a retried restore does not pile up copies.

Every connection resolves unqualified names in the private schema first, then in the
home schema, as the source's sessions resolved them in it (types and functions the
tables use); statements that must name the home schema (dropping the old tables) say so
explicitly.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from typing import Any, Callable, Sequence

from trade_stream.errors import BadInputError
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.schema import quote_ident

Job = Callable[[Any], None]
PREFIX = "tradevault_restore_"
_LOCK_KEY = "hashtextextended(%s, 0)"  # the advisory lock named after a private schema
log = logging.getLogger(__name__)


def connections_for(tables: int) -> int:
    """Connections worth opening: one per core (each drives one server process), at most
    four, never more than there are tables to share out."""
    return max(1, min(4, os.cpu_count() or 1, tables))


class Staging:
    """The private schema and its connections (``conns[0]`` is the main one); use as a
    context manager: leaving it without ``publish`` having succeeded drops the schema."""

    def __init__(self, target: PostgresDatabase, connections: int, home: str = "public") -> None:
        self.target = target
        self.home = home
        self.name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        self.count = connections
        self.conns: list[Any] = []
        self.published = False
        self._threads: list[threading.Thread] = []
        self._owner: Any = None  # holds the schema's advisory lock while the restore runs

    def __enter__(self) -> "Staging":
        import psycopg

        self._owner = self.target.connect()
        try:
            drop_abandoned(self._owner)
            self._owner.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})", (self.name,))
            self._owner.execute(f"CREATE SCHEMA {quote_ident(self.name)}")
        except psycopg.errors.InsufficientPrivilege as exc:
            self._owner.close()
            raise BadInputError(f"restore target {self.target.safe_url()}: cannot create the restore's private "
                                f"schema ({str(exc).splitlines()[0]}); the restoring role needs CREATE on the "
                                "database") from None
        except BaseException:
            self._owner.close()
            raise
        try:
            for _ in range(self.count):
                conn = self.target.connect(autocommit=False)
                self.conns.append(conn)
                for statement in self.session():
                    conn.execute(statement)
                conn.commit()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def session(self) -> list[str]:
        """What puts a connection into the restore (each of ours, and a worker process's):
        names resolved in the private schema first."""
        # nothing is kept before publish: its commit (synchronous) flushes the WAL of every
        # commit before it, so theirs need not wait for their own flush
        return [f"SET search_path = {quote_ident(self.name)}, {quote_ident(self.home)}", "SET synchronous_commit = off"]

    def __exit__(self, *exc: Any) -> None:
        if any(thread.is_alive() for thread in self._threads):  # leaving on an error
            for conn in self.conns:
                try:
                    conn.cancel()  # what a connection is running stops at once
                except Exception:  # noqa: BLE001 - best effort
                    pass
        for thread in self._threads:
            thread.join()
        for conn in self.conns:
            try:
                conn.rollback()
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is closed anyway
                pass
        self.conns = []
        try:
            if not self.published:
                self._owner.execute(f"DROP SCHEMA IF EXISTS {quote_ident(self.name)} CASCADE")
        finally:
            self._owner.close()  # and with it the advisory lock

    def run(self, groups: Sequence[Sequence[Job]]) -> None:
        """Run each group of jobs on its own connection (group i on ``conns[i]``), the
        groups side by side, each group's jobs in order; every connection commits when its
        group is done. The first error is raised once all groups have stopped."""
        self.start(groups)()

    def start(self, groups: Sequence[Sequence[Job]], first: int = 0) -> Callable[[], None]:
        """``run`` in the background, group i on ``conns[first + i]``: returns the function
        that waits for the groups and raises the first error."""
        errors: list[BaseException] = []

        def work(conn: Any, jobs: Sequence[Job]) -> None:
            try:
                for job in jobs:
                    job(conn)
                conn.commit()
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(conn, jobs), name=f"tradevault-restore-{i}")
                   for i, (conn, jobs) in enumerate(zip(self.conns[first:], groups)) if jobs]
        for thread in threads:
            thread.start()
        self._threads.extend(threads)

        def wait() -> None:
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]

        return wait

    def publish(self, tables: list[str], force: bool, types: Sequence[str] = (),
                after: Callable[[Any], None] | None = None, last: Callable[[Any], None] | None = None) -> None:
        """Move the restored tables, the ``types`` they use, the functions and the text search
        objects into the home schema in one transaction (dropping the old ones of those
        names first with ``force``), run ``after`` (views, triggers: what names the tables
        there), drop the then empty private schema and run ``last`` (event triggers: after
        every DDL statement of the restore)."""
        conn = self.conns[0]
        conn.rollback()
        conn.execute("SET LOCAL synchronous_commit = on")
        home = quote_ident(self.home)
        if self.home != "public":
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {home}")
        if force:
            for name in PostgresDatabase.schema_tables(conn, self.home):
                conn.execute(f"DROP TABLE IF EXISTS {home}.{quote_ident(name)} CASCADE")
        schema = quote_ident(self.name)
        for name in types:  # the types first: the tables' columns follow them by oid
            taken = conn.execute("SELECT to_regtype(%s)::oid", (f"{home}.{quote_ident(name)}",)).fetchone()[0]
            self._into_home(conn, "type", name, taken is not None, force)
        for (name,) in conn.execute(  # the collations the tables' columns use
            "SELECT collname FROM pg_collation WHERE collnamespace = %s::regnamespace", (self.name,),
        ).fetchall():
            taken = conn.execute("SELECT 1 FROM pg_collation WHERE collnamespace = %s::regnamespace"
                                 " AND collname = %s", (home, name)).fetchone()
            self._into_home(conn, "collation", name, taken is not None, force)
        for name in conn.execute(  # what a range type does not take along: its multirange...
            "SELECT typname FROM pg_type WHERE typnamespace = %s::regnamespace AND typtype = 'm'", (self.name,),
        ).fetchall():
            conn.execute(f"ALTER TYPE {schema}.{quote_ident(name[0])} SET SCHEMA {home}")
        for function, name, arguments, taken in conn.execute(  # ...range constructors; the source's functions
            "SELECT p.oid::regprocedure::text, p.proname, pg_get_function_identity_arguments(p.oid),"
            " (SELECT q.oid::regprocedure::text FROM pg_proc q WHERE q.pronamespace = %s::regnamespace"
            "  AND q.proname = p.proname AND q.proargtypes = p.proargtypes)"
            " FROM pg_proc p WHERE p.pronamespace = %s::regnamespace", (home, self.name),
        ).fetchall():
            if taken is not None:
                if not force:
                    raise BadInputError(f"restore target already has a function {name}({arguments}) in "
                                        f"{self.home} (use --force to replace it)")
                # (IF EXISTS: an earlier one's CASCADE may have taken it, an aggregate with its function)
                conn.execute(f"DROP ROUTINE IF EXISTS {home}.{quote_ident(name)}({arguments}) CASCADE")
            conn.execute(f"ALTER ROUTINE {function} SET SCHEMA {home}")  # (ROUTINE: procedures too)
        for kind, catalog, column, space in (("text search dictionary", "pg_ts_dict", "dictname", "dictnamespace"),
                                             ("text search configuration", "pg_ts_config", "cfgname", "cfgnamespace")):
            for (name,) in conn.execute(f"SELECT {column} FROM {catalog} WHERE {space} = %s::regnamespace",
                                        (self.name,)).fetchall():
                taken = conn.execute(f"SELECT 1 FROM {catalog} WHERE {space} = %s::regnamespace AND {column} = %s",
                                     (home, name)).fetchone()
                self._into_home(conn, kind, name, taken is not None, force)
        for name, arguments, taken in conn.execute(  # operators: named by symbol and argument types
            "SELECT o.oprname, format('%%s, %%s', CASE WHEN o.oprleft = 0 THEN 'NONE'"
            " ELSE format_type(o.oprleft, NULL) END, format_type(o.oprright, NULL)),"
            " EXISTS (SELECT 1 FROM pg_operator h WHERE h.oprnamespace = %s::regnamespace"
            "  AND h.oprname = o.oprname AND h.oprleft = o.oprleft AND h.oprright = o.oprright)"
            " FROM pg_operator o WHERE o.oprnamespace = %s::regnamespace", (home, self.name),
        ).fetchall():
            if taken:
                if not force:
                    raise BadInputError(f"restore target already has an operator {name}({arguments}) in "
                                        f"{self.home} (use --force to replace it)")
                conn.execute(f"DROP OPERATOR IF EXISTS {home}.{name}({arguments}) CASCADE")
            conn.execute(f"ALTER OPERATOR {schema}.{name}({arguments}) SET SCHEMA {home}")
        for name in tables:
            conn.execute(f"ALTER TABLE {schema}.{quote_ident(name)} RESET (autovacuum_enabled)")
            conn.execute(f"ALTER TABLE {schema}.{quote_ident(name)} SET SCHEMA {home}")
        for (sequence,) in conn.execute(  # the sequences no table took along (no column owns them)
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'S'", (self.name,),
        ).fetchall():
            taken = conn.execute("SELECT to_regclass(%s)", (f"{home}.{quote_ident(sequence)}",)).fetchone()[0]
            self._into_home(conn, "sequence", sequence, taken is not None, force)
        if after is not None:
            conn.execute(f"SET LOCAL search_path = {home}")
            after(conn)
        conn.execute(f"DROP SCHEMA {schema}")
        if last is not None:
            last(conn)
        conn.commit()
        self.published = True

    def _into_home(self, conn: Any, kind: str, name: str, taken: bool, force: bool) -> None:
        """Move the private schema's ``kind`` (type, collation, sequence, text search
        dictionary or configuration) ``name`` into
        the home schema; one of that name there already (``taken``) is dropped first with
        ``force``, else bad input."""
        home = quote_ident(self.home)
        if taken:
            if not force:
                raise BadInputError(f"restore target already has a {kind} {name!r} in {self.home} "
                                    "(use --force to replace it)")
            conn.execute(f"DROP {kind.upper()} {home}.{quote_ident(name)} CASCADE")
        conn.execute(f"ALTER {kind.upper()} {quote_ident(self.name)}.{quote_ident(name)} SET SCHEMA {home}")


def share_out(sizes: dict[str, int], groups: int) -> list[list[str]]:
    """Names split into ``groups`` lists of about equal total size (largest first, each to
    the lightest group so far), for work that takes time in proportion to size."""
    shares: list[list[str]] = [[] for _ in range(groups)]
    totals = [0] * groups
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        lightest = totals.index(min(totals))
        shares[lightest].append(name)
        totals[lightest] += sizes[name]
    return shares


def drop_abandoned(conn: Any) -> list[str]:
    """Drop the private schemas of restores that are gone (their advisory lock is free);
    those of running restores stay. Returns the names dropped."""
    import psycopg

    dropped = []
    names = [row[0] for row in conn.execute(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) ORDER BY 1", (PREFIX,)).fetchall()]
    for name in names:
        if conn.execute(f"SELECT pg_try_advisory_lock({_LOCK_KEY})", (name,)).fetchone()[0]:
            try:
                conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(name)} CASCADE")
                dropped.append(name)
            except psycopg.Error as exc:  # e.g. another role's: not ours to drop
                log.warning("left schema %s of an interrupted restore: %s", name, str(exc).splitlines()[0])
            finally:
                conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", (name,))
    if dropped:
        log.warning("dropped %s, left by restores that were interrupted", ", ".join(dropped))
    return dropped

