"""Minimal reproducers of what the campaigns found (issue 8). Each is a single check,
strict-xfailed while the bug stands: when it is fixed the check passes, strict xfail
turns that into a failure, and the marker must go. Fixed ones stay as regression tests."""

from __future__ import annotations

import io
import struct

import msgspec
import pytest

from restore.planner import Target, plan_restore
from restore.sqlite.replay import restore_sqlite
from restore.verify import verify_store
from tests.campaigns.fuzz import OBJECT
from trade_stream.errors import IntegrityError
from trade_stream.object_format import ObjectReader
from trade_stream.segments import decode_chunks
from trade_stream.sqlite.database import DatabaseService


def _chunk_with(ext: msgspec.msgpack.Ext) -> bytes:
    payload = msgspec.msgpack.encode([[1, 1, 1, "trades", "insert", [ext], None, None]])
    return struct.pack(">I", len(payload)) + payload


def test_malformed_decimal_extension_is_an_integrity_error():
    with pytest.raises(IntegrityError):
        list(decode_chunks([_chunk_with(msgspec.msgpack.Ext(1, b"garbage"))]))


def test_overflowing_timedelta_extension_is_an_integrity_error():
    with pytest.raises(IntegrityError):
        list(decode_chunks([_chunk_with(msgspec.msgpack.Ext(5, b"999999999999,0,0"))]))


def _header_with_invalid_utf8(data: bytes) -> bytes:
    """The object, same size, with the header's ``source`` value replaced by the byte 0x80
    (and its capture id shortened, to make room) (invalid UTF-8) — what random bit flips in the zstd-compressed
    header (level 19, no frame checksum) produced in the corruption campaign. The
    recompressed header is padded to its old length (zstd ignores bytes after the frame)."""
    import zstandard

    (header_len,) = struct.unpack(">I", data[8:12])
    plain = zstandard.ZstdDecompressor().decompress(data[12:12 + header_len], max_output_size=1 << 24)
    def replaced(text: bytes, field: bytes, value: bytes) -> bytes:
        at = text.index(b'"' + field + b'":"') + len(field) + 4
        return text[:at] + value + text[text.index(b'"', at):]

    # room to spare: the capture id (32 hex digits) shrinks to one character
    damaged = replaced(replaced(plain, b"capture_id", b"x"), b"source", b"\x80")
    packed = zstandard.ZstdCompressor(level=19).compress(damaged)
    assert len(packed) <= header_len, "the damaged header does not fit (header format changed?)"
    return data[:12] + packed + bytes(header_len - len(packed)) + data[12 + header_len:]


def test_object_header_with_invalid_utf8_is_an_integrity_error():
    data = _header_with_invalid_utf8(OBJECT)
    with pytest.raises(IntegrityError):
        ObjectReader(io.BytesIO(data), len(data), "damaged")


def test_restore_falls_back_past_a_copy_with_invalid_utf8_in_its_header(harness):
    harness.trade(50)
    full = harness.engine.full()
    path = harness.root / "loc1" / "tradesv3" / full.entry.object if hasattr(full, "entry") else None
    path = path or next((harness.root / "loc1" / "tradesv3" / "objects").glob("*-full.tvo"))
    path.write_bytes(_header_with_invalid_utf8(path.read_bytes()))
    target = harness.root / "restored.sqlite"
    store = harness.store
    restore_sqlite(store, plan_restore(store.entries(), Target()), DatabaseService(f"sqlite:///{target}"))
    assert target.exists()


def test_verify_notices_the_oldest_entry_deleted_everywhere(harness):
    harness.trade(30)
    harness.engine.full()
    harness.trade(30)
    harness.engine.incremental()
    harness.trade(30)
    harness.engine.full()
    for loc in ("loc1", "loc2"):
        (harness.root / loc / "tradesv3" / "manifest" / "0000000001.json").unlink()
    assert not verify_store(harness.store).ok


def _chain_with_entry_2_pruned(harness) -> None:
    for _ in range(3):
        harness.trade(30)
        harness.engine.full()
        harness.trade(30)
        harness.engine.incremental()
    harness.store.prune([2])


def test_verify_notices_a_pruned_record_missing_in_one_location(harness):
    """Retention folds its records into a checkpoint at once: one location without it no
    longer knows that entry 2 went on purpose."""
    _chain_with_entry_2_pruned(harness)
    folded = harness.root / "loc1" / "tradesv3"
    assert not list((folded / "pruned").glob("*.json")), "pruned records are folded into a checkpoint"
    assert verify_store(harness.store).ok
    for checkpoint in (folded / "checkpoints").iterdir():
        checkpoint.unlink()
    assert not verify_store(harness.store).ok


def test_config_watcher_recovers_from_git_locks_left_by_a_kill():
    """Deterministic form of what the crash campaign hit: the lock files exactly as the
    killed watcher left them (tradevault.lock's flock died with it), then a restart."""
    import shutil
    import time

    from tests.campaigns.common import git, private_root, tv_start

    root = private_root("stale-lock")
    try:
        work = root / "config"
        work.mkdir()
        (work / "config.json").write_text("{}\n")
        git("init", "-q", str(work))
        git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A", cwd=work)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first", cwd=work)
        head = git("rev-parse", "HEAD", cwd=work).stdout.strip()
        # what a watcher killed inside a commit leaves: its "committing" marker (pid long
        # gone), then git's lock files created after it
        (work / ".git" / "tradevault").mkdir(exist_ok=True)
        (work / ".git" / "tradevault" / "committing").write_text("999999999")
        (work / ".git" / "index.lock").write_bytes(b"")
        (work / ".git" / "refs" / "heads" / "master.lock").write_text(head + "\n")
        config = root / "tradevault.toml"
        config.write_text(f'[config_vcs]\npaths = ["{work}"]\nquiet_period = "50ms"\nmax_delay = "200ms"\n')
        proc = tv_start("config", "watch", "-c", str(config), cwd=root, log=root / "watch.log")
        try:
            time.sleep(1.5)
            (work / "config.json").write_text('{"stake": 2}\n')
            deadline = time.monotonic() + 15  # > busy_timeout (10 s): the watcher had its chance
            while time.monotonic() < deadline and git("rev-parse", "HEAD", cwd=work).stdout.strip() == head:
                time.sleep(0.2)
        finally:
            proc.kill()  # its SIGTERM flush would wait on the same locks
            proc.wait(30)
        assert git("rev-parse", "HEAD", cwd=work).stdout.strip() != head, (root / "watch.log").read_text()[-800:]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_verify_notices_the_newest_entry_deleted_everywhere():
    import shutil

    from tests.campaigns.common import Env, private_root
    from tradevault.workload import TradingWorkload

    root = private_root("newest-entry")
    try:
        env = Env.create(root, ("a", "b"), transactions=40)
        env.ok("backup", "full")
        w = TradingWorkload(env.db, seed=4)
        w.run(30)
        env.ok("backup", "incremental")
        w.run(30)
        w.close()
        env.ok("backup", "incremental")
        for loc in ("a", "b"):
            (env.location_dir(loc) / "manifest" / "0000000003.json").unlink()
        verify = env.tv("verify", "--json")
        assert verify.rc == 3, str(verify)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_incrementals_resume_after_a_full_backup_when_the_change_log_moved_on():
    import shutil
    import sqlite3

    from tests.campaigns.common import Env, private_root
    from tradevault.workload import TradingWorkload

    root = private_root("stuck-chain")
    try:
        env = Env.create(root, ("a",), transactions=50)
        env.ok("backup", "full")
        w = TradingWorkload(env.db, seed=3)
        w.run(30)
        env.ok("backup", "incremental")
        w.run(30)
        conn = sqlite3.connect(env.db, isolation_level=None)
        top = conn.execute("SELECT max(seq) FROM _tradevault_changes").fetchone()[0]
        conn.execute("DELETE FROM _tradevault_changes WHERE seq < ?", (top,))  # pruned past the chain
        conn.close()
        env.ok("backup", "full")  # what the error message advises
        w.run(10)
        w.close()
        result = env.tv("backup", "incremental")
        assert result.rc == 0, str(result)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_verify_notices_a_pruned_record_damaged_in_one_location_that_still_decodes(harness):
    """Corruption campaign seed 9002, cases 59 and 192: bit flips in one location's pruned
    record that leave valid JSON went unseen (the other location's copy won the merge).
    Records are folded into checkpoints now: a damaged checkpoint fails its own hash, and
    one forged with a fresh hash still breaks that location's chain."""
    import hashlib

    import msgspec
    import zstandard

    from trade_stream.checkpoints import decode_checkpoint, encode_checkpoint
    from trade_stream.manifest import PrunedRun

    _chain_with_entry_2_pruned(harness)
    assert verify_store(harness.store).ok
    path = next((harness.root / "loc1" / "tradesv3" / "checkpoints").iterdir())
    good = path.read_bytes()
    checkpoint = decode_checkpoint(good, path.name)
    assert [(r.first, r.last) for r in checkpoint.pruned] == [(2, 2)]
    run = checkpoint.pruned[0]
    wrong = PrunedRun(run.first, run.last, ("0" if run.last_hash[0] != "0" else "1") + run.last_hash[1:])
    forged = msgspec.structs.replace(checkpoint, pruned=[wrong])
    old_digest = hashlib.sha256(msgspec.json.encode(checkpoint)).hexdigest().encode()
    stale_hash = zstandard.ZstdCompressor().compress(old_digest + b"\n" + msgspec.json.encode(forged))
    damaged_location = harness.store.locations[0].name  # the one in loc1/
    for label, data in (("bad hash", stale_hash), ("re-hashed", encode_checkpoint(forged))):
        path.write_bytes(data)
        report = verify_store(harness.store)
        assert any(p["location"] == damaged_location for p in report.problems), (label, report.problems)
        assert all(p["location"] == damaged_location for p in report.problems), (label, report.problems)
    path.write_bytes(good)
    assert verify_store(harness.store).ok


def test_two_writers_racing_for_one_entry_cannot_both_publish(harness):
    """Two primaries appending to one chain (an old primary after a promote that no fence
    stopped, e.g. its location was down then): the second to publish at a position gets an
    integrity error instead of replacing the first's entry."""
    import msgspec
    import pytest

    from trade_stream.errors import IntegrityError
    from trade_stream.manifest import seal

    harness.trade(30)
    harness.engine.full()
    harness.trade(30)
    harness.engine.incremental()
    entries = harness.store.entries()
    newest = entries[-1]
    rival = seal(msgspec.structs.replace(newest, created_at=newest.created_at + 1, entry_hash=""), entries[-2])
    with pytest.raises(IntegrityError, match="published by another backup first"):
        harness.store.publish(rival, [loc.name for loc in harness.store.locations])
    assert harness.store.entries()[-1] == newest


def test_a_header_frame_declaring_gigabytes_is_refused_before_it_is_allocated():
    """Fuzz campaign, seed 1103: a header whose zstd frame declared 3,959,358,379 bytes of
    content made the reader allocate 3.96 GB before decompressing a byte."""
    # a zstd frame header (magic, then single segment with a 4-byte content size), the
    # size the damaged one declared, then bytes that are no valid block
    frame = b"(\xb5/\xfd\xa0" + (3_959_358_379).to_bytes(4, "little") + b"\xff" * 32
    data = b"TVAULT\x00\x01" + struct.pack(">I", len(frame)) + frame + b"\x00" * 40
    with pytest.raises(IntegrityError, match="declares 3,959,358,379 bytes"):
        ObjectReader(io.BytesIO(data), len(data), "obj")
