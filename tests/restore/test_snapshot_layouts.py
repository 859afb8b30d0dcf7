"""Full snapshots are stored in sized frames and restored by several threads; snapshots
stored before that (one zstd stream) restore the same way they always did."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import msgspec
import pytest

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from trade_stream import object_format
from trade_stream.errors import IntegrityError
from trade_stream.manifest import decode_entry, encode_entry, seal
from trade_stream.object_format import BODY_SIZED_FRAMES, BODY_STREAM, ObjectReader, ObjectWriter
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore


@pytest.fixture(autouse=True)
def small_frames(monkeypatch) -> None:
    monkeypatch.setattr(object_format, "FRAME_SIZE", 32 << 10)  # a small database, many frames


def _source(tmp_path: Path) -> tuple[Path, BackupStore]:
    path = tmp_path / "bot.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT, amount REAL, note BLOB)")
        conn.executemany("INSERT INTO trades VALUES (?, ?, ?, ?)",
                         [(i, f"P{i % 37}/USDT", i * 0.25, bytes([i % 256]) * (i % 50)) for i in range(1, 5001)])
    conn.close()
    store = BackupStore("bot", [open_location("local", f"file://{tmp_path / 'backups'}")])
    BackupEngine(DatabaseService(f"sqlite:///{path}"), store, work_dir=str(tmp_path)).full()
    return path, store


def _rows(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM trades ORDER BY id").fetchall()
    finally:
        conn.close()


def _restore(store: BackupStore, target: Path):
    plan = plan_restore(store.entries(), Target(seq=None, ts=None))
    return restore_sqlite(store, plan, DatabaseService(f"sqlite:///{target}"))


def _object_path(tmp_path: Path) -> Path:
    return tmp_path / "backups" / "bot" / "objects" / "0000000001-full.tvo"


def test_full_snapshots_are_stored_in_several_frames_and_restore_exactly(tmp_path: Path) -> None:
    source, store = _source(tmp_path)
    with open(_object_path(tmp_path), "rb") as handle:
        reader = ObjectReader(handle, _object_path(tmp_path).stat().st_size)
        assert reader.header.body == BODY_SIZED_FRAMES
        assert len(list(reader.frames())) > 3
    result = _restore(store, tmp_path / "restored.sqlite")
    assert result.events == 0 and result.tables == {"trades": 5000}
    assert _rows(tmp_path / "restored.sqlite") == _rows(source)


def _rewrite_as_stream(tmp_path: Path) -> None:
    """The stored full as an older tradevault wrote it (one stream), manifest re-sealed
    (and no head: older versions wrote none that carried entries)."""
    path = _object_path(tmp_path)
    with open(path, "rb") as handle:
        reader = ObjectReader(handle, path.stat().st_size)
        plain = b"".join(bytes(c) for c in reader.body_chunks())
        reader.check_trailer()
        header = msgspec.structs.replace(reader.header, body=BODY_STREAM)
    buffer = io.BytesIO()
    writer = ObjectWriter(buffer, header)
    writer.write(plain)
    size, sha = writer.finish()
    path.write_bytes(buffer.getvalue())
    entry_path = tmp_path / "backups" / "bot" / "manifest" / "0000000001.json"
    entry = decode_entry(entry_path.read_bytes(), "1")
    entry_path.write_bytes(encode_entry(seal(msgspec.structs.replace(entry, bytes=size, sha256=sha), None)))
    (tmp_path / "backups" / "bot" / "head.json").unlink()


def test_a_full_stored_as_one_stream_still_restores(tmp_path: Path) -> None:
    source, store = _source(tmp_path)
    _rewrite_as_stream(tmp_path)
    with open(_object_path(tmp_path), "rb") as handle:
        assert ObjectReader(handle, _object_path(tmp_path).stat().st_size).header.body == BODY_STREAM
    result = _restore(store, tmp_path / "restored.sqlite")
    assert result.tables == {"trades": 5000}
    assert _rows(tmp_path / "restored.sqlite") == _rows(source)


def test_a_damaged_frame_stops_the_restore_and_leaves_no_target(tmp_path: Path) -> None:
    _, store = _source(tmp_path)
    path = _object_path(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    target = tmp_path / "restored.sqlite"
    with pytest.raises(IntegrityError, match="no intact copy"):
        _restore(store, target)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if "tradevault-restore" in p.name] == []
