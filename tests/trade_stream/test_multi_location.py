"""Several locations at once: fan-out, a location that is down, fallback on corruption,
and encryption at rest — against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from restore.verify import verify_store
from tests.conftest import DEMO_KEYS
from trade_stream.errors import BadInputError, IntegrityError
from trade_stream.sqlite.backup import BackupEngine
from trade_stream.sqlite.database import DatabaseService
from trade_stream.sqlite.digest import database_digest
from trade_stream.storage.encryption import Cipher
from trade_stream.storage.locations import open_location
from trade_stream.storage.store import BackupStore
from tradevault.workload import TradingWorkload, create_database

pytestmark = pytest.mark.xdist_group("s3")


def _digest(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return database_digest(conn, DEMO_KEYS)
    finally:
        conn.close()


class Source:
    def __init__(self, root: Path, locations, *, cipher: Cipher | None = None, min_locations: int = 0):
        self.root = root
        self.path = root / "tradesv3.sqlite"
        if not self.path.exists():
            create_database(self.path)
        self.workload = TradingWorkload(self.path, seed=3)
        self.store = BackupStore("tradesv3", locations, cipher=cipher or Cipher(), min_locations=min_locations)
        self.engine = BackupEngine(DatabaseService(f"sqlite:///{self.path}"), self.store)

    def restore(self, name: str, store: BackupStore | None = None) -> Path:
        store = store or self.store
        target = self.root / name
        restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{target}"))
        return target


def test_every_object_goes_to_file_and_s3_and_restores_from_either(tmp_path, s3_location_options):
    url, options = s3_location_options
    file_loc = open_location("disk", f"file://{tmp_path / 'disk'}")
    s3_loc = open_location("s3", url, **options)
    src = Source(tmp_path, [file_loc, s3_loc])
    src.workload.run(200)
    full = src.engine.full()
    src.workload.run(100)
    incr = src.engine.incremental()
    assert full.locations == ["disk", "s3"] and incr.locations == ["disk", "s3"]
    for only in (file_loc, s3_loc):
        alone = BackupStore("tradesv3", [only])
        assert [e.n for e in alone.entries()] == [1, 2]
        assert _digest(src.restore(f"from-{only.name}.sqlite", alone)) == _digest(src.path)
    assert verify_store(src.store, deep=True).ok


def test_a_location_that_is_down_is_left_behind_and_catches_up(tmp_path):
    from tests.services import SeaweedS3

    server = SeaweedS3(tmp_path / "weed")
    server.start()
    try:
        server.create_bucket("tv-outage")
        options = {"endpoint_url": server.endpoint, "region": "us-east-1",
                   "access_key_id": "tradevault", "secret_access_key": "tradevault-secret"}
        s3_loc = open_location("s3", "s3://tv-outage/b", **options)
        disk = open_location("disk", f"file://{tmp_path / 'disk'}")
        src = Source(tmp_path, [disk, s3_loc], min_locations=1)
        src.workload.run(100)
        src.engine.full()
        server.stop()
        src.workload.run(100)
        result = src.engine.incremental()
        assert result.locations == ["disk"]
        assert any("s3 is behind" in w for w in result.warnings)
        oldest = sqlite3.connect(src.path).execute("SELECT min(seq) FROM _tradevault_changes").fetchone()[0]
        assert oldest <= result.first_seq  # not pruned while a location is behind
        report = verify_store(src.store)
        assert not report.ok and {p["location"] for p in report.problems} == {"s3"}
        server.start()
        src.workload.run(50)
        src.engine.warnings.clear()
        result = src.engine.incremental()
        assert result.locations == ["disk", "s3"]
        assert verify_store(src.store).ok
        assert [e.n for e in BackupStore("tradesv3", [s3_loc]).entries()] == [1, 2, 3]
    finally:
        server.stop()


def test_a_corrupt_copy_falls_back_to_the_next_location_and_two_fail(tmp_path):
    one = open_location("one", f"file://{tmp_path / 'one'}")
    two = open_location("two", f"file://{tmp_path / 'two'}")
    src = Source(tmp_path, [one, two])
    src.workload.run(150)
    src.engine.full()
    src.workload.run(150)
    src.engine.incremental()
    for root in (tmp_path / "one",):
        for obj in (root / "tradesv3" / "objects").iterdir():
            data = bytearray(obj.read_bytes())
            data[len(data) // 2] ^= 0x40
            obj.write_bytes(bytes(data))
    assert _digest(src.restore("fallback.sqlite")) == _digest(src.path)
    report = verify_store(src.store)
    assert {p["location"] for p in report.problems} == {"one"}
    segment = sorted((tmp_path / "two" / "tradesv3" / "objects").iterdir())[-1]
    data = bytearray(segment.read_bytes())
    data[-50] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"objects/0000000002-incremental.tvo: no intact copy.*one.*two"):
        src.restore("never.sqlite")
    assert not (tmp_path / "never.sqlite").exists()


def test_encrypted_backups_restore_with_the_key_and_verify_without_it(tmp_path):
    from pyrage import x25519

    identity = x25519.Identity.generate()
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"# test key\n{identity}\n")
    disk = open_location("disk", f"file://{tmp_path / 'disk'}")
    writer = Source(tmp_path, [disk], cipher=Cipher([str(identity.to_public())]))  # write-only host
    writer.workload.run(150)
    writer.engine.full()
    writer.workload.run(150)
    writer.engine.incremental()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "disk" / "tradesv3" / "objects").iterdir())
    assert b"SampleStrategy" not in stored and b"TVAULT" not in stored  # nothing readable at rest
    assert verify_store(writer.store).ok  # checksums of the ciphertext: no key needed
    with pytest.raises(BadInputError, match="identity_file"):
        writer.restore("no-key.sqlite")
    reader = BackupStore("tradesv3", [disk], cipher=Cipher([], str(key_file)))
    assert verify_store(reader, deep=True).ok
    assert _digest(writer.restore("with-key.sqlite", reader)) == _digest(writer.path)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(f"{x25519.Identity.generate()}\n")
    with pytest.raises(BadInputError, match="does not hold the key"):
        writer.restore("wrong-key.sqlite", BackupStore("tradesv3", [disk], cipher=Cipher([], str(wrong))))
    assert not (tmp_path / "wrong-key.sqlite").exists()
