"""Replay a plan into a PostgreSQL database, atomically.

The tables are built in a private schema (restore.postgres.staging) over one connection per core:
the tables shared out between the connections, each creates its tables without keys and
bulk-loads the full backup's rows with ``COPY ... FREEZE`` in the same transaction (rows
written frozen: the scans, joins and key builds after it check no row's visibility);
meanwhile a main connection of its own reads, decodes and folds the incremental events
and gathers what needs no table yet (gathered_changes), then applies the rest once the
loads are committed; then primary keys, indexes, defaults and sequences added and row
counts checked against what the backups say, the tables again shared out.
Only then are the tables moved into ``public``, in one transaction (with ``force``, the
old tables are dropped in that same transaction): a failure at any point (including a
corrupt object found while reading it) drops the private schema and leaves the target as
it was.

The full backup may be a PostgreSQL logical snapshot (``pgcopy-binary``) or a SQLite
physical one (``sqlite-file``: tables and values mapped by ``type_mapping``, see
``restore.postgres.from_sqlite``). A SQLite backup's incrementals are not replayed here:
the SQLite restore makes the plan's point in a private file first (``point_file``: the
events mean what they meant to SQLite), and that file is loaded as a full one.

A restore of some tables (``Plan.tables``) creates and loads only those; a foreign key
into a table left out cannot exist in PostgreSQL, so it is not created, and views that
read a table left out are not either: each is noted.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from contextlib import ExitStack
from itertools import chain
from typing import Any, Callable

import msgspec

from restore.descriptions import described, latest_descriptions
from restore.latest import LatestPoint
from restore.planner import Plan
from restore.postgres.apply import (
    PostgresApplier,
    add_foreign_keys,
    build_keys,
    constrain_domains,
    create_table,
    create_type_definitions,
    create_types,
    finish_keyed,
    identities_always,
    set_sequences,
    surplus_labels,
    try_indexes,
    type_definitions_of,
)
from restore.postgres.copy_rows import copy_statement
from restore.postgres.database_objects import (
    after_publish,
    create_event_triggers,
    create_extensions,
    create_functions,
    create_operators_and_casts,
    create_sequences,
    create_text_search,
    function_types,
)
from restore.postgres.from_sqlite import Migration, Point, point_file
from restore.postgres.sqlite_load import LoadWorkers, load_snapshot, worker_count
from restore.postgres.staging import Staging, connections_for, share_out
from restore.read_ahead import ReadAhead
from restore.relaxed import changing_constraints, changing_domains, relaxed, split_domain
from restore.replay import RestoreResult, compare_counts, finished, replay_events, steps_ahead
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.manifest import ManifestEntry
from trade_stream.object_format import CODEC_PGCOPY, ObjectReader
from trade_stream.postgres.catalog import home_schema, partitioned_names
from trade_stream.postgres.database import PostgresDatabase
from trade_stream.postgres.snapshot_rows import decode_copy_chunks
from trade_stream.progress import Progress, no_progress
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import schema_of


def check_pg_target(target: PostgresDatabase, force: bool, home: str = "public") -> None:
    """Bad input when the schema the tables go to (``home``) has tables, without ``force``."""
    if not target.is_empty(home) and not force:
        where = "" if home == "public" else f" (schema {home})"
        raise BadInputError(f"restore target {target.safe_url()} is not empty{where} (use --force to replace it)")


def create_unindexed(conn: Any, table: TableSchema) -> list[str]:
    """A table to bulk-load, its key built afterwards; no autovacuum until ``publish``
    (which resets it): one that starts on a freshly loaded table would hold up moving it
    for a deadlock_timeout (1 s) before it gives way. Returns ``create_table``'s notes."""
    return create_table(conn, table, with_key=False, autovacuum=False)


def start_loading(staging: Staging, store: BackupStore, entry: ManifestEntry, schema: DatabaseSchema,
                  progress: Progress, notes: dict[str, list[str]], first: int = 0) -> Callable[[], None]:
    """Create the tables (without keys or indexes) and stream a ``pgcopy-binary`` snapshot into them, the
    tables shared out between the connections from ``conns[first]`` on: each reads the
    object (verified) and sends its tables' bytes unchanged into ``COPY ... FROM STDIN
    (FORMAT BINARY, FREEZE)``. Returns once every connection has begun its first COPY (or
    stopped) — a connection whose tables come later in the object first reads past the
    others, which is quicker while no other Python work competes for the interpreter —
    with the function that waits for the loads to end. ``notes``: each table's
    ``create_table`` notes, by table."""
    sizes = {t.name: (entry.tables or {}).get(t.name, 0) for t in schema.tables}
    groups = [names for names in share_out(sizes, len(staging.conns) - first) if names]
    begun = [threading.Event() for _ in groups]
    lock = threading.Lock()
    done = [0]

    def loaded(count: int) -> None:
        with lock:
            done[0] += count
            progress("load", done[0], None)

    wait = staging.start([[lambda conn, names=names, begun=begun: _load_tables(conn, store, entry, schema, set(names),
                                                                              loaded, begun, notes)]
                          for names, begun in zip(groups, begun)], first=first)
    for event in begun:
        event.wait()
    return wait


def _load_tables(conn: Any, store: BackupStore, entry: ManifestEntry, schema: DatabaseSchema, names: set[str],
                 loaded: Callable[[int], None], begun: threading.Event, notes: dict[str, list[str]]) -> None:
    tables = {t.name: t for t in schema.tables}
    try:
        store.read_object(entry, lambda reader: _copy_tables(conn, reader, tables, names, loaded, begun, notes))
    finally:
        begun.set()


def _copy_tables(conn: Any, reader: ObjectReader, tables: dict[str, TableSchema], names: set[str],
                 loaded: Callable[[int], None], begun: threading.Event, notes: dict[str, list[str]]) -> None:
    """One copy of the object: the tables in ``names`` created, their rows COPYed in, the
    others read past. Inside a (sub)transaction, which FREEZE requires to be the one that
    created the table: a copy found damaged midway is rolled back, tables included, and
    the next one starts afresh."""
    if reader.header.codec != CODEC_PGCOPY:
        raise IntegrityError(f"{reader.name}: unexpected codec {reader.header.codec!r}")
    text_tables = set(reader.header.extra.get("text_tables", ()))
    recorded = {t["name"] for t in reader.header.schema.get("tables", ())}  # some may be left out of ``tables``
    current, copy = "", None
    with conn.transaction(), ExitStack() as stack:
        for name in sorted(names):
            notes[name] = create_unindexed(conn, tables[name])  # by name: a retried copy says it again
        for name, data in decode_copy_chunks(reader.body_chunks(4 << 20, reuse=True), reader.name):
            table = tables.get(name)
            if table is None and name not in recorded:
                raise IntegrityError(f"{reader.name}: rows for unknown table {name!r}")
            if table is None or name not in names:
                continue
            if name != current:
                stack.close()
                cursor = stack.enter_context(conn.cursor())
                statement = copy_statement(quote_ident(name), table.column_names, name not in text_tables, freeze=True)
                copy = stack.enter_context(cursor.copy(statement))
                current = name
                begun.set()
            copy.write(data)
            loaded(len(data))


def restore_postgres(store: BackupStore, plan: Plan, target: PostgresDatabase, *, force: bool = False,
                     progress: Progress = no_progress) -> RestoreResult:
    started = time.perf_counter()
    source = DatabaseSchema.from_dict(schema_of(store, plan.full))
    check_pg_target(target, force, home_schema(source.objects))
    with ExitStack() as stack:
        migration, point, workers = None, None, LoadWorkers(0)
        if source.dialect != "postgresql":
            rows = plan.full.tables or {}
            chosen = sum(n for name, n in rows.items() if plan.keeps(name)) if rows else plan.full.count
            workers = stack.enter_context(LoadWorkers(worker_count(chosen)))
            point = stack.enter_context(point_file(store, plan, source, progress))
            migration = Migration.read(point.path, point.source, plan.tables)
        return _restore(store, plan, target, source, migration, point, workers, force, progress, started)


def _restore(store: BackupStore, plan: Plan, target: PostgresDatabase, source: DatabaseSchema,
             migration: Migration | None, point: Point | None, workers: LoadWorkers, force: bool,
             progress: Progress, started: float) -> RestoreResult:
    """``point``: a SQLite source's file to load (``migration`` maps it), holding the
    plan's point (its events replayed already) or the full backup's."""
    replayed = point.replayed if point is not None else None
    events = plan if replayed is None else dataclasses.replace(plan, incrementals=[])
    schema = plan.chosen(source) if migration is None else migration.schema
    logical = migration is None
    # with events to replay, the main connection loads nothing: it gathers them meanwhile
    aside = int(logical and bool(plan.incrementals))
    # a SQLite snapshot is loaded by worker processes: the main connection replays, and
    # every other one finishes tables (keys, sequences, counts) once the load is over
    with Staging(target, connections_for(len(schema.tables)) + (aside if logical else 1),
                 home_schema(source.objects)) as staging:
        main = staging.conns[0]
        # batched updates/deletes join a VALUES list with the table: always through the
        # primary key's index (a hash join would scan the whole table for every batch)
        main.execute("SET enable_hashjoin = off")
        main.execute("SET enable_mergejoin = off")
        # a bulk statement's cost estimate can cross jit_above_cost: compiling then costs
        # more per statement than it saves on these scans
        main.execute("SET jit = off")
        # the types as the latest point has them (an enum's labels added by incrementals
        # included: events using a new label come before the resync that records it), the
        # functions (a default or a check may call one); committed below, before any
        # connection creates a table
        latest = LatestPoint.read(store, plan, source)
        relax = changing_constraints(latest.table_sources) if logical else set()
        newest = latest_descriptions(latest.table_sources) if logical else {}
        if newest:  # finished as the plan's latest description has them (restore.descriptions)
            schema = msgspec.structs.replace(schema, tables=[described(t, newest) for t in schema.tables])
        domains = {name: split_domain(ddl) for name, ddl in changing_domains(latest.table_sources).items()}
        if relax:  # replayed without the NOT NULL and CHECKs that change (restore.relaxed)
            schema = msgspec.structs.replace(schema, tables=[relaxed(t) if t.name in relax else t
                                                             for t in schema.tables])
        objects = latest.objects if migration is None else []  # a SQLite source's views: the migration's
        create_extensions(main, objects)
        # each description's types, in their order (an enum gains its later labels)
        descriptions = [[t for t in tables if plan.keeps(t.name)] for tables in latest.table_sources]
        calling: list[str] = []  # what of the domains calls a function: added once the functions exist
        for tables in descriptions:
            create_types(main, tables, {n: head for n, (head, _) in domains.items()}, calling)
        label_notes = surplus_labels(main, descriptions[-1])
        create_sequences(main, objects, latest.sequences)
        create_type_definitions(main, function_types(objects), deferred=calling)
        waiting = create_functions(main, objects)  # those that name a table's row type: after_publish
        for statement in calling:
            main.execute(statement)
        create_text_search(main, objects)
        waiting += create_operators_and_casts(main, objects)
        created: dict[str, list[str]] = {}  # create_table's notes, by table
        if not logical:
            for table in schema.tables:
                created[table.name] = create_unindexed(main, table)
        main.commit()
        # Keys and indexes are built after the events that can do without them (see
        # PostgresApplier.keys_pending): big runs join the heap by hashing, once.
        applier = PostgresApplier(main, schema, keys_pending={t.name for t in schema.tables}, relax=relax,
                                  latest=newest)
        positions = latest.sequences if migration is None else migration.positions(latest.sequences)
        finishing = _Finishing(staging, schema, applier, (replayed or plan.full).tables or {}, positions)
        # the incrementals are read, decoded and folded while the server loads the full
        touched: set[str] = set()
        try:
            loads = (start_loading(staging, store, plan.full, schema, progress, created, first=aside)
                     if logical else None)
            with cyclic_gc_paused(), steps_ahead(store, events, applier, touched) as steps:
                if loads is None:
                    assert point is not None
                    load_snapshot(staging, workers, point.path, (replayed or plan.full).tables or {}, schema,
                                  progress)
                    main.commit()
                elif aside:
                    applier.load_elsewhere(loads)
                else:
                    loads()
                finishing.when_read(steps, touched, loads if aside else None)
                result = replay_events(store, events, applier, progress, steps)
                if replayed is not None:
                    result = dataclasses.replace(replayed, notes=[])
                applier.loaded()
        except BaseException:
            finishing.wait(raise_error=False)  # the replay's error is the one to report
            raise
        applier.settle()
        # the replay is over: validating foreign keys joins whole tables, by hashing
        main.execute("RESET enable_hashjoin")
        main.execute("RESET enable_mergejoin")
        main.commit()
        result.tables = finishing.rest(result.tables)
        settled = migration.settle_generated(main, point.path) if migration is not None and point is not None else []
        domain_notes = constrain_domains(main, {name: actions for name, (_, actions) in domains.items()})
        result.rows = sum(result.tables.values())
        identities_always(main, applier.tables.values())
        notes = try_indexes(main, applier.tables.values())
        later = partitioned_names(objects)  # keys into a partitioned table: once it exists (after_publish)
        notes += add_foreign_keys(main, applier.tables.values(), None if plan.tables is None else set(applier.tables),
                                  referencing=lambda parent: parent not in later)
        main.commit()
        tables = list(applier.tables.values())

        def after(conn: Any) -> None:
            notes.extend(after_publish(conn, objects, tables, partial=plan.tables is not None, functions=waiting))
            if migration is not None:
                migration.create_views(conn, latest.objects if latest.objects_known else None)

        # every type created: one no restored table uses any more (its column dropped since the
        # full backup) still exists in the source, and was created here all the same
        staging.publish(sorted(applier.tables), force,
                        list(dict.fromkeys(d["name"] for d in type_definitions_of([*tables, *chain(*descriptions)])
                                           + function_types(objects) if d["kind"] not in ("extension", "collation"))),
                        after=after, last=lambda conn: notes.extend(create_event_triggers(conn, objects)))
    result.notes = ((migration.notes if migration is not None else []) + [n for ns in created.values() for n in ns]
                    + settled + label_notes + finishing.notes + applier.notes + domain_notes + notes)
    return finished(result, target.safe_url(), plan, started)


class _Finishing:
    """Keys and indexes of the tables loaded without them (and of those a schema change
    recreated), sequences and row counts, the tables shared out between the connections.
    The tables the events leave alone are finished on the other connections while the
    main one replays, once every incremental has been read (``when_read``); the rest after
    the replay (``rest``)."""

    def __init__(self, staging: Staging, schema: DatabaseSchema, applier: PostgresApplier,
                 sizes: dict[str, int], sequences: dict[str, list[Any]]) -> None:
        self.sequences = sequences
        self.staging = staging
        self.original = {t.name: t for t in schema.tables}
        self.applier = applier
        self.sizes = sizes
        self.counts: dict[str, int] = {}
        self.notes: list[str] = []  # finish_table's
        self._touched: set[str] = set()
        self._watcher: threading.Thread | None = None
        self._error: BaseException | None = None

    def _finish(self, conn: Any, table: TableSchema, keys_pending: bool) -> None:
        if keys_pending:
            self.notes += build_keys(conn, table)
        elif table.name in self.applier.unfinished:
            self.notes += finish_keyed(conn, table)
        set_sequences(conn, table, self.sequences)
        self.counts.update(PostgresDatabase.row_counts(conn, [table.name]))

    def _groups(self, names: list[str], connections: int) -> list[list[Callable[[Any], None]]]:
        tables = {name: self.applier.tables[name] for name in names}
        pending = {name for name in names if name in self.applier.keys_pending}
        shares = share_out({name: self.sizes.get(name, 0) for name in names}, connections)
        return [[lambda conn, t=tables[name], k=name in pending: self._finish(conn, t, k) for name in share]
                for share in shares]

    def when_read(self, steps: ReadAhead, touched: set[str], loads: Callable[[], None] | None = None) -> None:
        """``loads``: waits for the loads still running on the other connections."""
        if len(self.staging.conns) < 2:
            return
        self._touched = touched

        def watch() -> None:
            if not steps.wait_finished():  # stopped early or failed: the replay says why
                return
            untouched = [name for name in self.original if name not in touched]
            try:
                if loads is not None:
                    loads()
                self.staging.start(self._groups(untouched, len(self.staging.conns) - 1), first=1)()
            except BaseException as exc:  # noqa: BLE001 - raised by wait()
                self._error = exc

        self._watcher = threading.Thread(target=watch, name="tradevault-restore-finish", daemon=True)
        self._watcher.start()

    def wait(self, raise_error: bool = True) -> None:
        if self._watcher is not None:
            self._watcher.join()
        if self._error is not None and raise_error:
            raise self._error

    def rest(self, expected: dict[str, int] | None) -> dict[str, int]:
        """Finish the tables not finished yet (on the main connection alone while the
        others still finish the untouched tables, else on all); the row counts of all,
        checked against ``expected`` (what the backups recorded)."""
        if self._watcher is not None and self._watcher.is_alive():  # it has the other connections
            self.staging.run(self._groups([name for name in self.applier.tables if name in self._touched], 1))
        self.wait()
        left = [name for name in self.applier.tables if name not in self.counts]  # counted = finished
        self.staging.run(self._groups(left, len(self.staging.conns)))
        return compare_counts(dict(sorted(self.counts.items())), expected)
