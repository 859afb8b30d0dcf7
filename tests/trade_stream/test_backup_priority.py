"""Full backups and consolidations yield CPU and disk to the bot: their work runs in a
thread at niceness 10, in the SCHED_IDLE policy and in the idle I/O class, while the calling thread (the agent's
loop, which seals incrementals) keeps its own priority."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading

import pytest

from trade_stream.priority import BACKUP_NICE, at_low_priority

IOPRIO_GET, IOPRIO_WHO_PROCESS = 252, 1


def _priorities() -> tuple[int, int | None, int | None]:
    tid = threading.get_native_id()
    io_class = None
    if sys.platform == "linux" and platform.machine() == "x86_64":
        io_class = ctypes.CDLL(None, use_errno=True).syscall(IOPRIO_GET, IOPRIO_WHO_PROCESS, tid) >> 13
    policy = os.sched_getscheduler(tid) if hasattr(os, "SCHED_IDLE") else None
    return os.getpriority(os.PRIO_PROCESS, tid), io_class, policy


def test_low_priority_work_is_niced_idle_and_the_caller_keeps_its_priority():
    before = _priorities()
    nice, io_class, policy = at_low_priority(_priorities)
    assert nice >= BACKUP_NICE
    if io_class is not None:
        assert io_class == 3  # IOPRIO_CLASS_IDLE
    if policy is not None:
        assert policy == os.SCHED_IDLE
    assert _priorities() == before


def test_threads_started_by_low_priority_work_inherit_it():
    """The compression threads of a full backup are started from the low-priority thread."""
    seen: list[tuple] = []

    def start_a_thread() -> None:
        thread = threading.Thread(target=lambda: seen.append(_priorities()))
        thread.start()
        thread.join()

    at_low_priority(start_a_thread)
    nice, io_class, policy = seen[0]
    assert nice >= BACKUP_NICE
    assert io_class in (None, 3)
    assert policy in (None, getattr(os, "SCHED_IDLE", None))


def test_errors_of_low_priority_work_reach_the_caller():
    def fail() -> None:
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        at_low_priority(fail)


# -- the full backup's transient copy stays off the bot's disk when memory allows ---------------------------
def _engine(tmp_path, monkeypatch, work_dir: str = ""):
    import sqlite3

    from trade_stream.sqlite import backup
    from trade_stream.sqlite.backup import BackupEngine
    from trade_stream.sqlite.database import DatabaseService
    from trade_stream.storage.locations import open_location
    from trade_stream.storage.store import BackupStore

    scratch = tmp_path / "memory"
    scratch.mkdir()
    monkeypatch.setattr(backup, "MEMORY_SCRATCH", scratch)  # stands in for /dev/shm
    db = tmp_path / "db.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 100) for i in range(2000)])
    conn.commit()
    conn.close()
    store = BackupStore("db", [open_location("local", f"file://{tmp_path / 'backups'}")])
    return BackupEngine(DatabaseService(f"sqlite:///{db}"), store, work_dir=work_dir), scratch


def test_the_copy_goes_to_memory_scratch_and_a_killed_backups_leftover_is_removed(tmp_path, monkeypatch):
    import shutil as sh

    from trade_stream.sqlite import backup

    engine, scratch = _engine(tmp_path, monkeypatch)
    seen: list[str] = []
    real_copy = backup.BackupEngine._copy
    monkeypatch.setattr(backup.BackupEngine, "_copy",
                        lambda self, conn, path: seen.append(str(path.parent.parent)) or real_copy(self, conn, path))
    leftover = scratch / f"tradevault-full-{engine.publisher.digest}-killed"
    leftover.mkdir()
    (leftover / "snapshot.sqlite").write_bytes(b"x" * 1000)
    other_source = scratch / "tradevault-full-0123456789abcdef-other"
    other_source.mkdir()
    assert engine.full().count == 2000
    assert seen == [str(scratch)]
    assert sorted(p.name for p in scratch.iterdir()) == [other_source.name]  # its own leftover gone, the rest kept
    sh.rmtree(other_source)


def test_a_configured_work_dir_or_too_little_memory_keeps_the_copy_on_disk(tmp_path, monkeypatch):
    from trade_stream.sqlite import backup

    work = tmp_path / "work"
    work.mkdir()
    engine, scratch = _engine(tmp_path, monkeypatch, work_dir=str(work))
    seen: list[str] = []
    real_copy = backup.BackupEngine._copy
    monkeypatch.setattr(backup.BackupEngine, "_copy",
                        lambda self, conn, path: seen.append(str(path.parent.parent)) or real_copy(self, conn, path))
    engine.full()
    assert seen == [str(work)]
    assert backup.memory_scratch(1 << 62) is None  # larger than any machine's memory
