"""What a file's header says (pure rules): SQLite by its magic string, binary by a NUL in
the first 8 KiB unless wide text or an allow-listed config type, and the protected
database's paths. Headers come from real SQLite files, not hand-written bytes."""

from __future__ import annotations

import sqlite3

import pytest

from config_vcs.content import (
    HEADER_BYTES,
    content_reason,
    is_binary,
    is_sqlite,
    is_sqlite_companion,
    sidecar_base,
)
from config_vcs.protected import ProtectedFiles
from config_vcs.reasons import BINARY, SQLITE, TOO_LARGE

MiB = 1024 * 1024


def _head(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEADER_BYTES)


@pytest.fixture
def live_wal_database(tmp_path):
    """A WAL-mode database with an open writer: the -wal and -shm files exist."""
    path = tmp_path / "anything.cfg"  # the name says nothing: the header must
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    yield path
    conn.close()


def test_a_sqlite_database_is_recognised_by_its_header_whatever_its_name(live_wal_database):
    assert is_sqlite(_head(live_wal_database))
    assert content_reason("anything.cfg", _head(live_wal_database), 4096, MiB) == SQLITE


def test_a_write_ahead_log_is_recognised_by_its_own_magic(live_wal_database):
    wal = live_wal_database.with_name(live_wal_database.name + "-wal")
    assert wal.stat().st_size > 0
    assert is_sqlite_companion(_head(wal)) and not is_sqlite(_head(wal))
    assert content_reason(wal.name, _head(wal), wal.stat().st_size, MiB) == SQLITE


def test_a_database_larger_than_the_limit_is_still_named_a_database(live_wal_database):
    assert content_reason("x", _head(live_wal_database), 50 * MiB, MiB) == SQLITE


@pytest.mark.parametrize("name, data, reason", [
    ("config.json", b'{"stake": 10}', None),
    ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", BINARY),
    ("model.bin", bytes(range(200, 256)) + b"\x00", BINARY),
    ("late-nul.txt", b"a" * HEADER_BYTES + b"\x00", None),  # only the first 8 KiB count
    ("client.p12", b"\x30\x82\x00\x00", None),  # allow-listed binary config types
    ("CA.DER", b"\x30\x82\x00\x00", None),
    ("secrets.json.age", b"age\x00", None),
    ("utf16.json", "{\"a\": 1}".encode("utf-16"), None),  # wide text has a byte-order mark
])
def test_binary_rule(name, data, reason):
    assert content_reason(name, data[:HEADER_BYTES], len(data), MiB) == reason
    assert is_binary(name, data[:HEADER_BYTES]) == (reason == BINARY)


def test_size_limit_is_a_strict_upper_bound():
    assert content_reason("a.json", b"{}", MiB, MiB) is None
    assert content_reason("a.json", b"{}", MiB + 1, MiB) == TOO_LARGE


@pytest.mark.parametrize("name, base", [
    ("tradesv3.sqlite-wal", "tradesv3.sqlite"), ("x.db-shm", "x.db"), ("db-journal", "db"),
    ("config.json", None), ("-wal", None),
])
def test_sidecar_base(name, base):
    assert sidecar_base(name) == base


def test_protected_files_cover_the_database_and_its_companions_through_links(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    protected = ProtectedFiles([tmp_path / "link" / "tradesv3.sqlite"])
    for suffix in ("", "-wal", "-shm", "-journal"):
        assert protected.contains(str(real / f"tradesv3.sqlite{suffix}"))
    assert not protected.contains(str(real / "tradesv3.sqlite.bak"))
    assert protected.below(tmp_path / "link") == [
        "tradesv3.sqlite", "tradesv3.sqlite-journal", "tradesv3.sqlite-shm", "tradesv3.sqlite-wal"]
    assert protected.below(tmp_path / "elsewhere") == []
    assert not ProtectedFiles([]) and not ProtectedFiles([""])
