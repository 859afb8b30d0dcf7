"""Full and incremental backups of a PostgreSQL source (mirrors ``trade_stream/sqlite/backup.py``).

Full: a logical snapshot (codec ``pgcopy-binary``) read with COPY (binary) inside a
REPEATABLE READ, read-only transaction that uses a snapshot exported by a replication
slot: the capture slot itself at install, a temporary slot afterwards. The snapshot is
exactly the database at the slot's consistent point L, so its seq is
``lsn.snapshot_seq(L)``: above every event of a transaction committed at or
before L, below every later one. Only ACCESS SHARE locks are taken: writers never wait.

Incremental: the slot's changes after the chain's position, decoded window by window into
a spool first (the object header names its last seq; memory stays bounded whatever the
size of a transaction), then stored; the slot is advanced only after the
manifest entry is published in every location. When the catalog shows a table added,
dropped or altered since the chain's position, the incremental stops at a temporary
slot's consistent point L and ends with SCHEMA + SNAPSHOT events for those tables read in
L's snapshot (seqs ``resync_base(L) + i``). Row counts per table follow the events.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Collection, Sequence

from trade_stream import manifest as mf
from trade_stream.errors import BadInputError
from trade_stream.events import DELETE, INSERT, SCHEMA, SNAPSHOT, UPDATE, ChangeEvent
from trade_stream.gc_pause import cyclic_gc_paused
from trade_stream.key_index import KeyIndexBuilder, key_bytes
from trade_stream.manifest import chain_end, chain_position
from trade_stream.object_format import BODY_SIZED_FRAMES, CODEC_EVENTS, CODEC_PGCOPY, ObjectWriter
from trade_stream.postgres.capture import ExportedSnapshot, PostgresCapture, slot_name_for
from trade_stream.postgres.catalog import database_objects, sequence_positions
from trade_stream.postgres.database import PostgresDatabase, same_description, same_rows
from trade_stream.postgres.lsn import resync_base, snapshot_seq
from trade_stream.postgres.snapshot_rows import CHUNK_BYTES, encode_copy_chunk
from trade_stream.postgres.special_numbers import SpecialNulls, key_text, lookup_sql, special_condition
from trade_stream.postgres.stored_images import RowImages, stored_images
from trade_stream.postgres.types import TEXT_OID, travels_as_text, type_oid
from trade_stream.postgres.wal2json import StreamDecoder, UnchangedValuesMissing
from trade_stream.progress import Progress, no_progress
from trade_stream.publish import BackupResult, Publisher
from trade_stream.schema import DatabaseSchema, TableSchema, quote_ident
from trade_stream.segments import encode_chunk
from trade_stream.storage.store import BackupStore
from trade_stream.storage.stored_objects import header_of

BODY_WORKERS = 2  # threads compressing an incremental's body while it is decoded
SERVER_NOW_US = "SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint"


def copies_as_text(table: TableSchema) -> bool:
    """A table with a column of a type that travels as text is copied in text format."""
    return any(travels_as_text(c.declared) for c in table.columns)


def copy_raw(conn: Any, table: TableSchema, write: Callable[[bytes], Any]) -> int:
    """The table's COPY stream (binary, or text: ``copies_as_text``), as ``pgcopy-binary``
    chunks; returns its bytes."""
    cols = ", ".join(quote_ident(c) for c in table.column_names)
    form = "TEXT" if copies_as_text(table) else "BINARY"
    size = 0
    with conn.cursor() as cursor:
        with cursor.copy(f"COPY {quote_ident(table.name)} ({cols}) TO STDOUT (FORMAT {form})") as copy:
            buffer = bytearray()
            for data in copy:
                buffer += data
                if len(buffer) >= CHUNK_BYTES:
                    write(encode_copy_chunk(table.name, bytes(buffer)))
                    size += len(buffer)
                    buffer.clear()
            write(encode_copy_chunk(table.name, bytes(buffer)))
            size += len(buffer)
    return size


def copy_rows(conn: Any, table: TableSchema, consume: Callable[[list[tuple]], None], batch: int = 5000, *,
              select: str = "", params: Sequence[Any] | None = None) -> int:
    """Every row of ``table`` through COPY, as the stream's values, in batches; returns
    the row count. ``select``: a query of some of its rows instead, each led by a text
    column (``special_numbers.lookup_sql``), with its ``params``."""
    cols = ", ".join(quote_ident(c) for c in table.column_names)
    form = "TEXT" if copies_as_text(table) else "BINARY"
    count = 0
    source = f"({select})" if select else f"{quote_ident(table.name)} ({cols})"
    with conn.cursor() as cursor:
        with cursor.copy(f"COPY {source} TO STDOUT (FORMAT {form})", params) as copy:
            copy.set_types([TEXT_OID] * bool(select) + [type_oid(c.declared) for c in table.columns])
            rows: list[tuple] = []
            for row in copy.rows():
                rows.append(row)
                if len(rows) >= batch:
                    consume(rows)
                    count += len(rows)
                    rows = []
            if rows:
                consume(rows)
                count += len(rows)
    return count


def end_schema(store: BackupStore, entry: mf.ManifestEntry) -> tuple[DatabaseSchema, dict[str, Any]]:
    """The tables as the stream knows them after ``entry``, and the header's extra: their
    oids (``relids``) and columns' numbers (``attnums``), absent from objects stored
    before tradevault kept them. Read from its header only."""
    header = header_of(store, entry)
    data = header.extra.get("end_schema") if entry.kind == mf.INCREMENTAL else None
    return DatabaseSchema.from_dict(data if data is not None else header.schema), header.extra


class PostgresBackupEngine:
    def __init__(
        self,
        db: PostgresDatabase,
        store: BackupStore,
        *,
        work_dir: str = "",
        level: int = 3,
        threads: int = -1,
        progress: Progress = no_progress,
        annotate: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.publisher = Publisher(store, f"{db.dialect}:{store.source}:{db.url_text}", level=level,
                                   threads=threads, annotate=annotate)
        self.warnings = self.publisher.warnings
        self.exclusive = self.publisher.exclusive
        self.capture = PostgresCapture(db, slot_name_for(store.source))
        self.work_dir = work_dir or None
        self.progress = progress

    # -- full ----------------------------------------------------------------------------------
    def full(self) -> BackupResult:
        with self.exclusive():
            return self._full()

    @property
    def database_identity(self) -> str:
        """The database a full backup records it was taken from (``Publisher.shared_chain``)."""
        url = self.db.url
        return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"

    def _full(self) -> BackupResult:
        started = time.perf_counter()
        conn = self.db.connect()
        try:
            self.capture.check_usable(conn)
            selection = self.db.select(conn)  # raises on a bad include list
            # raises on unsupported types: nothing changed yet
            self.db.reflect(conn, selection.tables, require_identity=False)
            self.db.check_row_security(conn, selection.tables)
            for name in self.db.identify_keyless(conn, selection.tables):
                self.warnings.append(f"table {name!r} had REPLICA IDENTITY NOTHING, under which its deletes leave"
                                     " no trace in the change stream: tradevault set it back")
            self.warnings.extend(selection.warnings + self.db.reach_warnings(conn, selection.tables))
            caught_up, entries = self.store.catch_up_for_write()
            shared = self.publisher.shared_chain(entries, self.database_identity)
            if shared:
                self.warnings.append(shared)
            installed = self.capture.is_installed(conn)
            if installed:
                capture_id = self.capture.meta(conn)["capture_id"]
            else:
                capture_id = self.capture.new_capture_id()
                self.capture.drop_slot(conn)  # a stale slot of ours: its position is unknown
                self.capture.write_meta(conn, capture_id)
            try:
                with self.capture.exported_snapshot(temporary=installed) as snapshot:
                    result = self._snapshot(snapshot, selection.tables, capture_id, entries)
            except BaseException:
                if not installed and not self.capture.slot_info(conn).exists:
                    self.capture.uninstall(conn)  # the slot could not be made: leave nothing behind
                raise
        finally:
            conn.close()
        result.seconds = round(time.perf_counter() - started, 3)
        result.warnings = self.warnings
        result.catch_up = caught_up
        return result

    def _snapshot(self, snapshot: ExportedSnapshot, tables: list[str], capture_id: str,
                  entries: list[mf.ManifestEntry]) -> BackupResult:
        reader = self.db.connect()
        try:
            self.capture.use_snapshot(reader, snapshot)
            if tables:
                names = ", ".join(quote_ident(t) for t in tables)
                reader.execute(f"LOCK TABLE {names} IN ACCESS SHARE MODE")  # no DDL under our feet
            schema = DatabaseSchema(dialect="postgresql", tables=self.db.reflect(reader, tables).tables,
                                    objects=database_objects(reader))
            snapshot_ts = reader.execute(SERVER_NOW_US).fetchone()[0]
            seq = snapshot_seq(snapshot.lsn)
            n = entries[-1].n + 1 if entries else 1
            key = mf.object_key(n, mf.FULL)
            # The header must name the row counts before the rows: count first (same
            # snapshot, cheap next to the COPY), so the header is exact.
            counts = PostgresDatabase.row_counts(reader, tables)
            extra: dict[str, Any] = {"tables": counts, "lsn": snapshot.lsn, "database": self.database_identity,
                                     "sequences": sequence_positions(reader),
                                     "relids": PostgresDatabase.relation_ids(reader, tables),
                                     "attnums": PostgresDatabase.column_numbers(reader, tables)}
            text_tables = [t.name for t in schema.tables if copies_as_text(t)]
            if text_tables:
                extra["text_tables"] = text_tables
            header = self.publisher.header(
                mf.FULL, CODEC_PGCOPY, seq, seq, schema.to_dict(), capture_id, snapshot_ts, snapshot_ts,
                sum(counts.values()), extra,
            )

            def write_body(writer: ObjectWriter) -> None:
                done = 0
                for table in schema.tables:
                    done += copy_raw(reader, table, writer.write)
                    self.progress("copy", done, None)

            stored_object = self.publisher.store_object(key, header, write_body)
            reader.execute("COMMIT")
        finally:
            reader.close()
        entry, stored = self.publisher.publish_entry(
            stored_object, entries[-1] if entries else None,
            n=n, kind=mf.FULL, object=key, capture_id=capture_id, after_seq=seq, first_seq=seq, last_seq=seq,
            first_ts=snapshot_ts, last_ts=snapshot_ts, count=sum(counts.values()),
            schema_hash=schema.schema_hash(), tables=counts,
        )
        return BackupResult.of(entry, stored)

    # -- incremental ---------------------------------------------------------------------------
    def incremental(self, commit_points: Collection[int] = ()) -> BackupResult:
        """``commit_points`` are not needed: every event carries its transaction's xid."""
        with self.exclusive(), cyclic_gc_paused():
            return self._incremental()

    def _incremental(self) -> BackupResult:
        started = time.perf_counter()
        conn = self.db.connect()
        try:
            if not self.capture.is_installed(conn):
                raise BadInputError("change capture is not installed yet: run `tradevault backup full` first")
            selection = self.db.select(conn)
            self.warnings.extend(selection.warnings)
            caught_up, entries = self.store.catch_up_for_write()
            covered = chain_position(entries)
            if covered is None:
                raise BadInputError("no full backup yet: run `tradevault backup full` first")
            capture_id = self.capture.meta(conn)["capture_id"]
            self.publisher.require_capture(entries, capture_id, self.database_identity)
            try:
                result = self._seal(conn, entries, covered, capture_id, selection.tables)
            except UnchangedValuesMissing:  # rare: read the stream again, those values found first
                result = self._seal(conn, entries, covered, capture_id, selection.tables, fill=True)
        finally:
            conn.close()
        result.seconds = round(time.perf_counter() - started, 3)
        result.warnings = self.warnings
        result.catch_up = caught_up
        return result

    def _seal(self, conn: Any, entries: list[mf.ManifestEntry], covered: int, capture_id: str,
              tables: list[str], fill: bool = False) -> BackupResult:
        """``fill``: an update of the stream leaves out a value that only the stored rows
        hold (``_fill_unchanged``)."""
        locations = [loc.name for loc in self.store.locations]
        end = chain_end(entries)
        assert end is not None
        known, known_extra = end_schema(self.store, end)
        counts = dict(end.tables)
        repaired = self.db.identify_keyless(conn, tables)  # a keyless table created since: before its resync
        upto = self.capture.flush_wal(conn)
        current = self.db.reflect(conn, tables)
        current_ids = PostgresDatabase.relation_ids(conn, tables)
        current_numbers = PostgresDatabase.column_numbers(conn, tables)
        replaced = _replaced_tables(known_extra.get("relids"), current_ids) | set(repaired)
        renamed = _renamed_columns(known_extra.get("attnums"), current_numbers, replaced)
        changed = _changed_tables(known, current, replaced)
        stats = _Stats(known.tables)
        decoder = StreamDecoder(known.tables, after_seq=covered, replaced=replaced, renamed=renamed,
                                home=self.db.schema)
        end_tables = {t.name: t for t in known.tables}
        end_tables.update(_described_tables(known, current, changed))
        advance_to: int | None = None
        with self.publisher.body_ahead(self.work_dir, BODY_WORKERS) as body:
            if changed:
                with self.capture.exported_snapshot(temporary=True) as snapshot:
                    upto = snapshot.lsn
                    self._spool_stream(conn, decoder, upto, body, stats, counts, entries if fill else None)
                    seq = self._spool_special(conn, decoder, resync_base(upto), body, stats, counts, changed)
                    self._spool_resync(snapshot, changed, body, stats, counts, end_tables, seq)
                advance_to = upto
            else:
                self._spool_stream(conn, decoder, upto, body, stats, counts, entries if fill else None)
                advance_to = decoder.last_commit_lsn
                if advance_to is not None:
                    self._spool_special(conn, decoder, resync_base(advance_to), body, stats, counts, ())
            body.finish()
            for name in sorted(decoder.changed - set(changed)):
                self.warnings.append(f"table {name!r} changed while sealing: resynchronised by the next backup")
            for name in repaired:
                self.warnings.append(
                    f"table {name!r} had REPLICA IDENTITY NOTHING, under which its deletes leave no trace in the"
                    " change stream: tradevault set it back, left its changes since the last backup out and read"
                    " its rows again (restore points before this backup's end show the table as the previous"
                    " backup left it)")
            for name, count in sorted(decoder.left_out.items()):
                if name in repaired:
                    continue
                if name in replaced:
                    self.warnings.append(
                        f"table {name!r} was dropped or renamed, and created again under its name: its {count:,}"
                        " change(s) before its resynchronisation are left out, as the stream cannot tell the old"
                        " table's from the new one's; the resynchronisation gives its rows back, and restore points"
                        " before it show the table as the previous backup left it")
                    continue
                self.warnings.append(
                    f"table {name!r} changed its columns: {count:,} change(s) of it before its resynchronisation"
                    " do not fit the columns known until then (a type changed, or a table without a primary key"
                    " lost a column) and are left out; the resynchronisation gives its rows back, and restore"
                    " points before it show the table without those changes")
            if stats.count == 0:
                if advance_to is not None:
                    self.capture.advance(conn, advance_to)  # only unprotected changes: nothing to keep
                return BackupResult(mf.INCREMENTAL, None, None, covered, 0, 0, 0.0, locations,
                                    skipped="no changes since the last backup")
            new_schema = DatabaseSchema(dialect="postgresql",
                                        tables=sorted(end_tables.values(), key=lambda t: t.name),
                                        objects=database_objects(conn))
            n = entries[-1].n + 1
            key = mf.object_key(n, mf.INCREMENTAL)
            header = self.publisher.header(
                mf.INCREMENTAL, CODEC_EVENTS, covered, stats.last_seq, known.to_dict(), capture_id,
                stats.first_ts, stats.last_ts, stats.count,
                {"end_schema": new_schema.to_dict(), "end_lsn": advance_to,
                 "sequences": sequence_positions(conn), "keys": stats.keys.to_header(),
                 "relids": {name: oid for name, oid in current_ids.items() if name in end_tables},
                 "attnums": {name: cols for name, cols in current_numbers.items() if name in end_tables}},
                body=BODY_SIZED_FRAMES,
            )
            stored_object = body.store(key, header)
        entry, stored = self.publisher.publish_entry(
            stored_object, entries[-1],
            n=n, kind=mf.INCREMENTAL, object=key, capture_id=capture_id, after_seq=covered,
            first_seq=stats.first_seq or stats.last_seq, last_seq=stats.last_seq, first_ts=stats.first_ts,
            last_ts=stats.last_ts, count=stats.count, schema_hash=known.schema_hash(), tables=counts,
        )
        if len(stored) == len(self.store.locations) and advance_to is not None:
            # Only what every location holds is confirmed; a crash before this line makes
            # the next incremental re-read these changes and drop them (seq <= its position).
            self.capture.advance(conn, advance_to)
        return BackupResult.of(entry, stored)

    def _spool_stream(self, conn: Any, decoder: StreamDecoder, upto: int, body: Any, stats: "_Stats",
                      counts: dict[str, int], fill_from: list[mf.ManifestEntry] | None = None) -> None:
        reader = self.db.connect(autocommit=False)
        images = None
        try:
            if fill_from is not None:
                images = self._fill_unchanged(reader, decoder, upto, fill_from)
            for batch in self.capture.read(reader, decoder, upto):
                body.write(encode_chunk(batch, plain=True))  # the decoder made wire values
                stats.add(batch, counts)
                self.progress("seal", stats.count, None)
        finally:
            reader.close()
            if images is not None:
                images.close()

    def _fill_unchanged(self, reader: Any, decoder: StreamDecoder, upto: int, entries: list[mf.ManifestEntry],
                        ) -> RowImages:
        """Give ``decoder`` the stored rows of every key that an update of the stream up to
        ``upto`` leaves a TOASTed value out of (wal2json sends only the values an update
        changed, when they are TOASTed): a first read of the stream names the keys, the
        store gives their rows (``stored_images``); the decoder fills each left-out value from
        the latest row it knows (a change earlier in the stream, else the stored one)."""
        tables = [codec.table for codec in decoder.codecs.values()]
        scan = StreamDecoder(tables, after_seq=decoder.after_seq, replaced=decoder.replaced,
                             renamed=decoder.renamed, home=decoder.home)
        images = RowImages()
        scan.collect_into(images)
        for _ in self.capture.read(reader, scan, upto):
            self.progress("seal", 0, None)
        reader.rollback()
        stored_images(self.store, entries, images, {t.name: t for t in tables})
        decoder.fill_from(images)
        for name, count in sorted(images.counts.items()):
            self.warnings.append(
                f"table {name!r}: {count:,} update(s) left large (TOASTed) values out of the change stream;"
                f" they were filled from earlier changes and the stored rows, at the cost of two more reads of the"
                f" stream (ALTER TABLE {quote_ident(name)} REPLICA IDENTITY FULL makes the server send them)")
        return images

    def _spool_special(self, conn: Any, decoder: StreamDecoder, seq: int, body: Any, stats: "_Stats",
                       counts: dict[str, int], resynced: Collection[str]) -> int:
        """Store again, as updates from ``seq`` on, the rows whose NaN or ±Infinity the
        stream printed as null (trade_stream.postgres.special_numbers); warn of those that
        cannot be told apart. Returns the next seq."""
        nulls: SpecialNulls = decoder.special_nulls
        if not nulls.noted and not nulls.unchecked:
            return seq
        doubtful = dict(nulls.unchecked)
        corrected: dict[str, int] = {}
        ts = conn.execute(SERVER_NOW_US).fetchone()[0]
        tx = seq  # the rows as read now: one state, one transaction (see _spool_resync)
        for name in sorted(set(nulls.keys) | set(doubtful)):
            if name in resynced:
                doubtful.pop(name, None)  # read whole at the incremental's end anyway
                continue
            table = decoder.codecs[name].table
            if name in doubtful:  # keyless, or past the keys noted: a table holding none has only NULLs
                held = f"SELECT EXISTS (SELECT 1 FROM {quote_ident(name)} WHERE {special_condition(table)})"
                if not conn.execute(held).fetchone()[0]:
                    doubtful.pop(name)
            noted = list(nulls.keys.get(name, {}).items())
            key_idx = table.key_indexes()
            for start in range(0, len(noted), 1000):
                part = dict(noted[start:start + 1000])
                arrays = [[key_text(key[i]) for key, _ in part.values()] for i in range(len(key_idx))]
                found: list[tuple] = []
                copy_rows(conn, table, found.extend, select=lookup_sql(table), params=arrays)
                batch = []
                for xmin, *values in found:
                    key = [values[i] for i in key_idx]
                    if part[key_bytes(key)][1] != int(xmin):
                        doubtful[name] = doubtful.get(name, 0) + 1  # changed again since, or in a savepoint
                        continue
                    batch.append(ChangeEvent(seq, tx, ts, name, UPDATE, key, values))
                    seq += 1
                if batch:
                    body.write(encode_chunk(batch))
                    stats.add(batch, counts)
                    corrected[name] = corrected.get(name, 0) + len(batch)
        for name, count in sorted(corrected.items()):
            self.warnings.append(
                f"table {name!r}: {count:,} row(s) hold NaN or ±Infinity, which wal2json writes as null: they were"
                " read back from the table and stored as they are at the end of this incremental (restore points"
                " before it show NULL)")
        for name, count in sorted(doubtful.items()):
            self.warnings.append(
                f"table {name!r}: {count:,} change(s) may have written NaN or ±Infinity, which wal2json writes as"
                " null, and cannot be checked against the table (no primary key, changed again since, written in"
                " a savepoint, or too many): restores may show NULL for them")
        return seq

    def _spool_resync(self, snapshot: ExportedSnapshot, changed: dict[str, TableSchema | None], body: Any,
                      stats: "_Stats", counts: dict[str, int], end_tables: dict[str, TableSchema],
                      seq: int) -> None:
        reader = self.db.connect()
        # The tables as one snapshot shows them: one state of the database, so one
        # transaction (``tx``), which a restore point never splits (a point inside would
        # show a table recreated with part of its rows).
        tx = seq
        try:
            self.capture.use_snapshot(reader, snapshot)
            ts = reader.execute(SERVER_NOW_US).fetchone()[0]
            present = set(PostgresDatabase.user_tables(reader))
            for name in sorted(changed):
                table = PostgresDatabase.table_schema(reader, name) if name in present and changed[name] else None
                event = ChangeEvent(seq, tx, ts, name, SCHEMA, table_schema=table.to_dict() if table else None)
                body.write(encode_chunk([event]))
                stats.add([event], counts)
                seq += 1
                if table is None:
                    end_tables.pop(name, None)
                    continue
                end_tables[name] = table
                key_idx = table.key_indexes()

                def consume(rows: list[tuple], name: str = name, key_idx: list[int] = key_idx) -> None:
                    nonlocal seq
                    batch = []
                    for row in rows:
                        values = list(row)
                        batch.append(ChangeEvent(seq, tx, ts, name, SNAPSHOT, [values[i] for i in key_idx], values))
                        seq += 1
                    body.write(encode_chunk(batch))
                    stats.add(batch, counts)

                copy_rows(reader, table, consume)
            reader.execute("COMMIT")
        finally:
            reader.close()


def _replaced_tables(known: dict[str, int] | None, current: dict[str, int]) -> set[str]:
    """Tables whose name now belongs to another table than the stream's position knew."""
    if known is None:
        return set()
    return {name for name, oid in current.items() if name in known and known[name] != oid}


def _renamed_columns(known: dict[str, dict[str, int]] | None, current: dict[str, dict[str, int]],
                     replaced: Collection[str]) -> dict[str, dict[str, str]]:
    """By table, the columns renamed since the stream's position: new name -> known name
    (the same ``attnum`` under another name). Not a new name that was a known column's
    too (two columns swapping names): a change of either time would read alike."""
    renamed: dict[str, dict[str, str]] = {}
    for table, columns in (known or {}).items():
        if table in replaced or table not in current:
            continue
        names = {number: name for name, number in current[table].items()}
        pairs = {names[number]: name for name, number in columns.items()
                 if names.get(number, name) != name and names[number] not in columns}
        if pairs:
            renamed[table] = pairs
    return renamed


def _described_tables(known: DatabaseSchema, current: DatabaseSchema,
                      changed: Collection[str]) -> dict[str, TableSchema]:
    """Tables whose description changed in what a restore builds after the data only (an
    index, a constraint, a default, an enum label): the new description is recorded, the
    rows need not be read again."""
    before = {t.name: t for t in known.tables}
    return {t.name: t for t in current.tables
            if t.name in before and t.name not in changed and not same_description(before[t.name], t)}


def _changed_tables(known: DatabaseSchema, current: DatabaseSchema,
                    replaced: Collection[str] = ()) -> dict[str, TableSchema | None]:
    """Tables to resynchronise: new, altered (``same_rows``: columns, types, NOT NULL, key),
    replaced by another of the same name, or dropped (None)."""
    before = {t.name: t for t in known.tables}
    now = {t.name: t for t in current.tables}
    changed: dict[str, TableSchema | None] = {}
    for name, table in now.items():
        if name not in before or name in replaced or not same_rows(before[name], table):
            changed[name] = table
    for name in before.keys() - now.keys():
        changed[name] = None
    return changed


class _Stats:
    """What the header and manifest entry say about the events spooled: counts, bounds,
    and the key index (``trade_stream.key_index``)."""

    def __init__(self, tables: list[TableSchema]) -> None:
        self.keys = KeyIndexBuilder(tables)
        self.count = 0
        self.first_seq: int | None = None
        self.last_seq = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def add(self, batch: list[ChangeEvent], counts: dict[str, int]) -> None:
        if not batch:
            return
        if self.first_seq is None:
            self.first_seq, self.first_ts = batch[0].seq, batch[0].ts
        self.last_seq, self.last_ts = batch[-1].seq, batch[-1].ts
        self.count += len(batch)
        self.keys.add(batch)
        for event in batch:
            op = event.op
            if op == INSERT or op == SNAPSHOT:
                counts[event.table] = counts.get(event.table, 0) + 1
            elif op == DELETE:
                counts[event.table] = counts.get(event.table, 0) - 1
            elif op == SCHEMA:
                if event.table_schema is None:
                    counts.pop(event.table, None)
                else:
                    counts[event.table] = 0
