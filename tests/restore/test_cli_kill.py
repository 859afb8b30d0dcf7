"""End to end: ``tradevault backup full|incremental`` and ``tradevault restore`` killed with
SIGKILL at random moments never leave a partial backup or a half-written target.

After every kill: ``verify`` passes, nothing partial is visible (hidden ``.tmp-*`` files
may remain but are never listed as backups), and the next backup succeeds. At the end the
incremental chain has no gap and no duplicate, holds every captured change, and a restore
equals the source by digest.

TRADEVAULT_KILL_RUNS (default 8) sets the number of killed backups; TRADEVAULT_KILL_SEED
replays a run (the seed is printed in every assertion message).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from pathlib import Path

import pytest

from trade_stream.object_format import ObjectReader
from trade_stream.sqlite.capture import SqliteCapture

# Both tests share the 200,000-row store: keep them on one worker (pytest -n 2 --dist loadgroup).
pytestmark = pytest.mark.xdist_group("tradevault_cli_kill")

KILL_RUNS = int(os.environ.get("TRADEVAULT_KILL_RUNS", "8"))
RESTORE_KILLS = int(os.environ.get("TRADEVAULT_RESTORE_KILLS", "3"))
SEED = int(os.environ.get("TRADEVAULT_KILL_SEED") or random.SystemRandom().randrange(2**31))


def timed(setup, *args: str):
    began = time.monotonic()
    result = setup.tv(*args)
    return result, time.monotonic() - began


def kill_after(setup, delay: float, *args: str) -> tuple[int, str]:
    """Start a command, SIGKILL it after ``delay`` seconds; (exit status, stderr)."""
    proc, _ = setup.start(*args)
    time.sleep(delay)
    proc.kill()  # SIGKILL: no cleanup handler runs
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def pick_delay(rng: random.Random, run: int, total: float, work: float) -> float:
    """A moment in [0, total]: every other run anywhere (start-up included), the others
    inside the last ``work`` seconds, where the command copies, seals and writes."""
    if run % 2 == 0:
        return rng.uniform(0.0, total)
    return rng.uniform(max(0.0, total - work - 0.1), total)


def complete_object(path: Path) -> str:
    """'' when the file is a whole, self-consistent object; else what is wrong."""
    try:
        with open(path, "rb") as handle:
            reader = ObjectReader(handle, path.stat().st_size, path.name)
            for _ in reader.body_chunks(4 << 20):
                pass
            reader.check_trailer()
    except Exception as exc:  # noqa: BLE001 - any failure means a partial object
        return f"{type(exc).__name__}: {exc}"
    return ""


def hidden_temporaries(setup) -> list[str]:
    return sorted(p.relative_to(setup.source_dir()).as_posix() for p in setup.source_dir().rglob(".tmp-*"))


def check_store(setup, context: str) -> None:
    """verify passes and no partial object is visible under its final name; hidden
    ``.tmp-*`` temporaries of the killed process are allowed, but never listed."""
    temporaries = hidden_temporaries(setup)
    if temporaries:  # list the catalog too (at once, it only reads)
        verify, listing = setup.parallel(["verify", "--json"], ["backups", "list", "--json"])
        check_listing(setup, f"{context} (temporaries left: {temporaries})", listing)
    else:
        verify = setup.tv("verify", "--json")
    assert verify.rc == 0 and verify.json()["ok"] is True, f"{context}: verify after a kill\n{verify}"
    source = setup.source_dir()
    entries = [json.loads(p.read_bytes()) for p in sorted((source / "manifest").iterdir())
               if not p.name.startswith(".tmp-")]
    referenced = {e["object"] for e in entries}
    for path in sorted((source / "objects").iterdir()):
        if path.name.startswith(".tmp-") or f"objects/{path.name}" in referenced:
            continue  # a temporary of the killed process, or an object verify just checked
        # An object without an entry is invisible as a backup, but it must not be partial.
        problem = complete_object(path)
        assert not problem, f"{context}: partial object visible under its final name: {path.name}: {problem}"


def check_listing(setup, context: str, listing=None) -> list[dict]:
    """``backups list`` shows exactly the manifest entries: no temporary, nothing missing."""
    listing = listing or setup.tv("backups", "list", "--json")
    assert listing.rc == 0, f"{context}\n{listing}"
    entries = listing.json()
    source = setup.source_dir()
    listed = [e["object"] for e in entries]
    assert not [o for o in listed if ".tmp-" in o], f"{context}: temporaries listed as backups: {listed}"
    manifest_files = sorted(p.name for p in (source / "manifest").iterdir() if not p.name.startswith(".tmp-"))
    assert manifest_files == [f"{e['n']:010d}.json" for e in entries], (
        f"{context}: manifest files {manifest_files} vs listed entries {[e['n'] for e in entries]}")
    for relative in listed:
        assert (source / relative).is_file(), f"{context}: listed object missing: {relative}"
    return entries


def check_chain(entries: list[dict], context: str) -> None:
    """Entries 1..N; incrementals continue exactly where the chain was: no gap, no overlap."""
    assert [e["n"] for e in entries] == list(range(1, len(entries) + 1)), context
    fulls = [e for e in entries if e["kind"] == "full"]
    assert fulls and entries[0]["kind"] == "full", context
    assert len({e["capture_id"] for e in entries}) == 1, f"{context}: capture was reinstalled"
    covered = fulls[0]["last_seq"]
    for e in entries:
        if e["kind"] != "incremental":
            continue
        assert e["after_seq"] == covered, (
            f"{context}: incremental #{e['n']} starts after seq {e['after_seq']}, the chain is at {covered}")
        assert e["last_seq"] > e["after_seq"] and e["events"] > 0, f"{context}: empty or backwards #{e['n']}"
        covered = e["last_seq"]


def integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def captured_seq(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return SqliteCapture.last_seq(conn)
    finally:
        conn.close()


def test_cli_backups_killed_at_random_moments_leave_a_consistent_store(cli, bulk_store, workdir: Path) -> None:
    rng = random.Random(SEED)
    setup = cli.copy_setup(bulk_store.setup, workdir)
    outcomes = []
    for run in range(KILL_RUNS):
        cli.trade(setup, 10 + run)
        kind = ("incremental", "full")[run % 2]
        total, work = bulk_store.durations[kind]
        delay = pick_delay(rng, run // 2, total, work)
        context = f"seed {SEED}, run {run}: backup {kind} killed after {delay:.3f} s (takes ~{total:.2f} s)"
        rc, err = kill_after(setup, delay, "backup", kind, "--json")
        assert rc in (0, -9), f"{context}: exit status {rc} before the kill\n{err}"
        outcomes.append(f"{kind}@{delay:.2f}s:{'done' if rc == 0 else 'killed'}")
        check_store(setup, context)
        after = setup.tv("backup", "incremental", "--json")
        assert after.rc == 0, f"{context}: the next backup must succeed\n{after}"

    context = f"seed {SEED}, runs {outcomes}"
    entries = check_listing(setup, context)
    check_chain(entries, context)
    assert entries[-1]["last_seq"] == captured_seq(setup.db), f"{context}: captured changes missing from the chain"
    target = workdir / "restored.sqlite"
    restored = setup.tv("restore", "--to", f"sqlite:///{target}", "--json")
    assert restored.rc == 0, f"{context}\n{restored}"
    assert cli.digest_of(target) == cli.digest_of(setup.db), f"{context}: restore differs from the source"


def test_cli_restore_killed_at_random_moments_never_leaves_a_target(cli, bulk_store, workdir: Path) -> None:
    rng = random.Random(SEED + 1)
    setup = cli.copy_setup(bulk_store.setup, workdir)
    source_digest = cli.digest_of(setup.db)
    out = workdir / "out"
    out.mkdir()
    # Until a restore was timed, a full backup's duration stands in for it (same data).
    total, work = bulk_store.durations["full"]

    for run in range(RESTORE_KILLS):
        target = out / f"killed-{run}.sqlite"
        delay = pick_delay(rng, run, total, work)
        context = f"seed {SEED + 1}, run {run}: restore killed after {delay:.3f} s (takes ~{total:.2f} s)"
        rc, err = kill_after(setup, delay, "restore", "--to", f"sqlite:///{target}", "--json")
        assert rc in (0, -9), f"{context}: exit status {rc}\n{err}"
        if target.exists():
            # Only a restore that got as far as its final rename may leave the target (the
            # kill can land between the rename and the process's exit): then it is whole.
            assert integrity(target) == "ok", f"{context}: a killed restore left a damaged target"
            assert cli.digest_of(target) == source_digest, f"{context}: a killed restore left a partial target"
        else:
            assert rc == -9, f"{context}: exited 0 without creating the target"
            for suffix in ("-wal", "-shm", "-journal"):
                assert not Path(f"{target}{suffix}").exists(), f"{context}: left {target.name}{suffix}"
        if run == 0:
            # Whatever hidden temporaries the kill left, a restore into the same place works
            # (and is timed for the next kills).
            result, total = timed(setup, "restore", "--to", f"sqlite:///{target}", "--force", "--json")
            assert result.rc == 0, f"{context}: restore after the kill\n{result}"
            assert cli.digest_of(target) == source_digest, context
            work = result.json()["seconds"]
