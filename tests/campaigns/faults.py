"""Fault campaign: storage, network, lock and disk faults while the bot trades.

Scenarios (each repeated ``--rounds`` times):

* ``readonly``: a file location (its own tmpfs) remounted read-only at a random moment
  of a running ``backup full`` (mid-upload), then an incremental while it stays read-only;
* ``diskfull``: the same location on a tiny tmpfs (its contents + 2 MiB) filled with
  ballast up to 1-12 KiB: ENOSPC mid-write;
* ``s3down``: an S3 location (SeaweedFS) stopped (``SeaweedS3.stop()``) with
  ``min_locations = 1``, then started again;
* ``locked``: a writer holds ``BEGIN IMMEDIATE`` for several seconds while
  ``backup incremental`` and ``backup full`` run;
* ``twoprimaries``: ``follow --once`` + ``promote``, then the old primary trades and backs
  up again: it must be refused (exit 3) and the promoted database start the next chain;
* ``pgslot``: a PostgreSQL slot loses its WAL while the agent runs; the agent must start a
  new chain on its own, and a restore equal the source;
* ``githang``: a config remote over http that accepts TCP connections and never answers;
* ``concurrent`` (large run only): ``backup incremental`` and ``backup full`` at once.

Required: a failing command exits non-zero with a clear one-line error (no traceback);
nothing half-written (verify passes once the fault is gone, no partial object visible);
the next backup catches up; trading is never blocked (the bot keeps committing during
every fault and no transaction waits longer than 3 s, except behind the deliberate
writer lock); the config watcher keeps committing and pushing to the healthy remote and
stops promptly. At the end: chain without gap, ``verify --deep`` passes, restore equals
the source. (The Kafka broker kill is not part of this campaign: the Kafka sink has its
own restart tests in tests/kafka.)

Needs root for the tmpfs mounts (``mount -t tmpfs``); without it those scenarios are
reported as skipped.

    python -m tests.campaigns.faults --rounds 5 [--seed N] [--keep]
"""

from __future__ import annotations

import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from tests.campaigns.common import (
    Bot,
    Env,
    Tally,
    check_chain,
    cli_args,
    digest_of,
    dump_stacks_and_kill,
    finish,
    git,
    private_root,
)

MAX_TX_SECONDS = 3.0


def _one_line_error(result) -> str:
    """'' when a failed command said what went wrong in one clear line; else the problem."""
    err = result.err.strip()
    if "Traceback" in err:
        return f"traceback instead of a one-line error: {err[-800:]}"
    lines = [line for line in err.splitlines() if line.startswith("tradevault:")]
    if not lines:
        return f"no 'tradevault: ...' error line on stderr: {err[-800:]!r}"
    return ""


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _remount(path: Path, mode: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], capture_output=True).returncode == 0:
            return True
        time.sleep(0.02)  # EBUSY while a file is open for writing
    return False


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _visible_partials(env: Env, location: str) -> list[str]:
    """Objects under their final name that are not whole (never allowed)."""
    import json

    from trade_stream.object_format import ObjectReader

    directory = env.location_dir(location)
    bad = []
    if not (directory / "objects").exists():
        return bad
    for path in sorted((directory / "objects").iterdir()):
        if path.name.startswith(".tmp-"):
            continue
        try:
            with open(path, "rb") as handle:
                reader = ObjectReader(handle, path.stat().st_size, path.name)
                for _ in reader.body_chunks(1 << 22):
                    pass
                reader.check_trailer()
        except Exception as exc:  # noqa: BLE001
            bad.append(f"{path.name}: {exc}")
    for path in sorted((directory / "manifest").glob("*.json")) if (directory / "manifest").exists() else []:
        try:
            json.loads(path.read_bytes())
        except ValueError as exc:
            bad.append(f"{path.name}: {exc}")
    return bad


def _temporaries(env: Env, location: str) -> list[str]:
    directory = env.location_dir(location)
    return sorted(p.name for p in directory.rglob(".tmp-*")) if directory.exists() else []


class Campaign:
    def __init__(self, root: Path, seed: int, tally: Tally, log) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.seed = seed
        self.tally = tally
        self.log = log
        self.flaky = root / "flaky-mnt"
        self.mounted = _mount_tmpfs(self.flaky, "64m")
        locations = {"good": f"file://{root / 'good'}"}
        if self.mounted:
            locations["flaky"] = f"file://{self.flaky}"
        else:
            tally.notes.append("mount -t tmpfs failed (not root?): readonly and diskfull scenarios skipped")
        self.env = Env(root, root / "tradesv3.sqlite", root / "tradevault.toml", locations)
        from tradevault.workload import TradingWorkload, create_database

        create_database(self.env.db)
        w = TradingWorkload(self.env.db, seed=seed)
        w.run(200)
        w.close()
        self.env.write_config()
        self.env.ok("backup", "full", "--json")
        self.bot = Bot(self.env.db, seed=seed, pause=0.01)

    # -- helpers ---------------------------------------------------------------------------
    def fault(self, name: str, detected: bool, problem: str = "") -> None:
        self.tally.faults += 1
        if problem:
            self.tally.fail(f"seed {self.seed} {name}: {problem}")
        elif detected:
            self.tally.detected += 1

    def recovered(self, name: str) -> str:
        """After the fault is gone: the next backup catches up and verify passes."""
        after = self.env.tv("backup", "incremental", "--json")
        if after.rc != 0:
            return f"backup after the fault failed\n{after}"
        verify = self.env.tv("verify", "--json")
        if verify.rc != 0:
            return f"verify after recovery\n{verify}"
        listing = self.env.tv("backups", "list", "--json").json()
        problems = check_chain(listing, name)
        missing = [e["n"] for e in listing if sorted(e["locations"]) != sorted(self.env.locations)]
        if missing:
            problems.append(f"entries {missing} not in every location after catch-up")
        return "; ".join(problems)

    def trading_check(self, name: str, commits_before: int) -> str:
        if self.bot.commits <= commits_before:
            return "the bot committed nothing during the fault"
        if self.bot.max_gap > MAX_TX_SECONDS:
            return f"a bot transaction took {self.bot.max_gap:.1f} s during the fault"
        return ""

    # -- scenarios -------------------------------------------------------------------------
    def readonly(self) -> None:
        name = "readonly"
        commits, _ = self.bot.commits, self.bot.reset_gap()
        delay = self.rng.uniform(0.3, 1.6)
        proc = self.env.start("backup", "full", "--json")
        time.sleep(delay)
        if not _remount(self.flaky, "ro"):
            proc.wait(120)
            self.fault(name, False, "could not remount the location read-only")
            return
        out, err = proc.communicate(timeout=180)
        first_rc = proc.returncode
        problems = []
        from tests.campaigns.common import Result

        if first_rc != 0 and (msg := _one_line_error(Result(["backup", "full"], first_rc, out, err))):
            problems.append(f"backup full (read-only after {delay:.2f}s): {msg}")
        second = self.env.tv("backup", "incremental", "--json")
        if second.rc == 0:
            problems.append("backup incremental succeeded although a location is read-only and min_locations = all")
        elif msg := _one_line_error(second):
            problems.append(f"backup incremental on a read-only location: {msg}")
        partial = _visible_partials(self.env, "flaky") + _visible_partials(self.env, "good")
        if partial:
            problems.append(f"partial objects visible: {partial}")
        problems.append(self.trading_check(name, commits))
        _remount(self.flaky, "rw")
        problems.append(self.recovered(name))
        problems = [p for p in problems if p]
        self.fault(name, second.rc != 0, "; ".join(problems))
        self.log(f"  {name}: remounted ro after {delay:.2f}s: full exit {first_rc}, incremental exit {second.rc}"
                 f" ({second.err.strip().splitlines()[-1][:140] if second.err.strip() else ''})"
                 f"{' FAILED: ' + '; '.join(problems) if problems else ''}")

    def diskfull(self) -> None:
        name = "diskfull"
        tiny = self.root / f"tiny-{self.tally.faults}"
        used = sum(p.stat().st_size for p in self.flaky.rglob("*") if p.is_file())
        size = used + 2 * 1024 * 1024  # what the location holds + 2 MiB, then filled up with ballast
        if not _mount_tmpfs(tiny, str(size)):
            self.tally.notes.append("diskfull: mount failed")
            return
        try:
            # the tiny disk replaces the flaky location for this scenario: copy what it holds
            subprocess.run(["cp", "-a", f"{self.flaky}/.", str(tiny)], check=True)
            ballast = tiny / "ballast"
            leave = self.rng.randint(1, 12) * 1024  # less than any full backup of this database
            stat = __import__("os").statvfs(tiny)
            free = stat.f_bavail * stat.f_frsize
            try:
                with open(ballast, "wb") as handle:
                    handle.write(b"\0" * max(0, free - leave))
            except OSError:
                pass
            saved = dict(self.env.locations)
            self.env.locations["flaky"] = f"file://{tiny}"
            self.env.write_config()
            commits, _ = self.bot.commits, self.bot.reset_gap()
            full = self.env.tv("backup", "full", "--json")
            problems = []
            if full.rc == 0:  # it fitted: no fault happened (not a failure, not counted)
                self.tally.notes.append(f"diskfull: the backup fitted in {leave // 1024} KiB; no fault injected")
                ballast.unlink(missing_ok=True)
                return
            if msg := _one_line_error(full):
                problems.append(f"backup full on a full disk: {msg}")
            verify = self.env.tv("verify", "--json")
            partial = _visible_partials(self.env, "flaky") + _visible_partials(self.env, "good")
            if partial:
                problems.append(f"partial objects visible: {partial}")
            temporaries = _temporaries(self.env, "flaky")
            if temporaries:
                self.tally.notes.append(f"diskfull: the failed backup left temporaries on the full disk: {temporaries}")
            problems.append(self.trading_check(name, commits))
            ballast.unlink(missing_ok=True)
            problems.append(self.recovered(name))
            problems = [p for p in problems if p]
            self.fault(name, full.rc != 0, "; ".join(problems))
            self.log(f"  {name}: {leave // 1024} KiB free: full exit {full.rc} "
                     f"({full.err.strip().splitlines()[-1][:140] if full.err.strip() else ''}); verify during: "
                     f"{verify.rc}{' FAILED: ' + '; '.join(problems) if problems else ''}")
        finally:
            # back to the big flaky location (it catches up at the next backup)
            self.env.locations = saved if "saved" in locals() else self.env.locations
            self.env.write_config()
            _umount(tiny)

    def locked(self) -> None:
        name = "locked"
        hold = self.rng.uniform(2.0, 5.0)
        with self.bot.hold:  # the bot pauses: the writer below is the only one
            ready = threading.Event()

            def writer() -> None:
                conn = sqlite3.connect(self.env.db, isolation_level=None, timeout=30)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("UPDATE orders SET filled = coalesce(filled, 0) + 1 WHERE id % 7 = 3")
                conn.execute("INSERT OR REPLACE INTO KeyValueStore (key, value_type, string_value)"
                             " VALUES (?, 'str', 'held')", (f"lock-{time.monotonic_ns()}",))
                ready.set()
                time.sleep(hold)
                conn.execute("COMMIT")
                conn.close()

            results = []
            took = 0.0
            for command in (["backup", "incremental", "--json"], ["backup", "full", "--json"]):
                # one backup at a time: concurrent backups are the ``concurrent`` scenario
                ready.clear()
                thread = threading.Thread(target=writer)
                thread.start()
                ready.wait(30)
                began = time.monotonic()
                results.append(self.env.tv(*command))
                took = max(took, time.monotonic() - began)
                thread.join(60)
            incr, full = results
        problems = []
        for result in (incr, full):
            if result.rc != 0:
                problems.append(f"{' '.join(result.args)} while a writer held the lock {hold:.1f}s\n{result}")
        problems.append(self.recovered(name))
        problems = [p for p in problems if p]
        self.fault(name, True, "; ".join(problems))
        self.log(f"  {name}: writer held BEGIN IMMEDIATE {hold:.1f}s; incremental exit {incr.rc}, full exit {full.rc}"
                 f" ({took:.1f}s){' FAILED: ' + '; '.join(problems) if problems else ''}")

    def run(self, rounds: int, scenarios: tuple[str, ...]) -> None:
        self.bot.start()
        try:
            for _ in range(rounds):
                for scenario in scenarios:
                    if scenario in ("readonly", "diskfull") and not self.mounted:
                        continue
                    self.tally.runs += 1
                    getattr(self, scenario)()
        finally:
            self.bot.stop()
        self.tally.notes.append(f"workload: {self.bot.commits} transactions committed during the faults")
        self.final()

    def final(self) -> None:
        env = self.env
        env.ok("backup", "incremental", "--json")
        entries = env.ok("backups", "list", "--json").json()
        problems = check_chain(entries, f"seed {self.seed} final")
        deep = env.tv("verify", "--deep", "--json")
        if deep.rc != 0:
            problems.append(f"final verify --deep\n{deep}")
        target = self.root / "final.sqlite"
        restored = env.tv("restore", "--to", f"sqlite:///{target}", "--json")
        if restored.rc != 0:
            problems.append(f"final restore\n{restored}")
            self.tally.lost += 1
        elif digest_of(target) != digest_of(env.db):
            problems.append("final restore differs from the source")
            self.tally.lost += 1
        for p in problems:
            self.tally.fail(p)

    def close(self) -> None:
        if self.mounted:
            _umount(self.flaky)


# -- two backups at once ---------------------------------------------------------------------

def concurrent(root: Path, rounds: int, seed: int, tally: Tally, log) -> None:
    """``backup incremental`` and ``backup full`` started together (an operator's manual
    backup while the agent seals): afterwards the chain must still continue."""
    env = Env.create(root / "concurrent", ("a",), transactions=100, seed=seed)
    env.ok("backup", "full")
    from tradevault.workload import TradingWorkload

    w = TradingWorkload(env.db, seed=seed)
    try:
        for r in range(rounds * 3):
            tally.runs += 1
            tally.faults += 1
            w.run(50)
            pair = env.parallel(["backup", "incremental", "--json"], ["backup", "full", "--json"])
            after = env.tv("backup", "incremental", "--json")
            listing = env.tv("backups", "list", "--json").json()
            problems = [f"{' '.join(x.args)} exit {x.rc}: {x.err.strip()[-200:]}" for x in pair if x.rc != 0]
            if after.rc != 0:
                problems.append(f"the next backup incremental fails: {after.err.strip()[-200:]}")
            problems += check_chain(listing, "concurrent")
            log(f"  concurrent round {r}: incremental ∥ full exit {[x.rc for x in pair]}, next incremental exit "
                f"{after.rc}{' FAILED' if problems else ''}")
            if problems:
                again = env.tv("backup", "full")
                w.run(5)
                still = env.tv("backup", "incremental")
                problems.append(f"after another full backup (exit {again.rc}) incremental still exits {still.rc}")
                tally.fail(f"seed {seed} concurrent round {r}: " + "; ".join(problems)
                           + "\n" + "\n".join(f"#{e['n']} {e['kind']} after {e['after_seq']} last {e['last_seq']}"
                                               for e in listing))
                tally.lost += 1  # events between the chain's end and the pruned change log are in no incremental
                return
            tally.detected += 1
    finally:
        w.close()


# -- S3 down --------------------------------------------------------------------------------

def _round_outcome(tally: Tally, log, name: str, problems: list[str], summary: str) -> None:
    """Log one round of a scenario and count it: detected, or a failure with its problems."""
    log(f"  {name.split(' ', 2)[2]}: {summary}{' FAILED: ' + '; '.join(problems) if problems else ''}")
    if problems:
        tally.fail(f"{name}: " + "; ".join(problems))
    else:
        tally.detected += 1


def twoprimaries(root: Path, rounds: int, seed: int, tally: Tally, log) -> None:
    """``follow --once`` + ``promote``, then the old primary comes back, trades and backs
    up: two primaries must not share the chain. Its incremental and full exit 3, the catalog
    is unchanged, ``verify`` passes, and the promoted database's first full backup starts the
    next chain, whose restore equals the promoted database."""
    from tradevault.workload import TradingWorkload

    rng = random.Random(seed)
    for r in range(rounds):
        tally.runs += 1
        tally.faults += 1
        base = root / f"twoprimaries-{r}"
        env = Env.create(base / "primary", ("a", "b"), transactions=60, seed=seed + r)
        env.ok("backup", "full")
        for _ in range(rng.randrange(1, 4)):
            w = TradingWorkload(env.db, seed=rng.randrange(1 << 30))
            w.run(rng.randrange(10, 60))
            w.close()
            env.ok("backup", "incremental")
        standby = base / "standby.sqlite"
        env.ok("follow", "--to", f"sqlite:///{standby}", "--once")
        env.ok("promote", "--to", f"sqlite:///{standby}")
        w = TradingWorkload(env.db, seed=rng.randrange(1 << 30))
        w.run(30)
        w.close()
        before = env.tv("backups", "list", "--json").json()
        refused = [env.tv("backup", kind) for kind in ("incremental", "full")]
        problems = [f"old primary's backup {x.args[1]} exit {x.rc} (want 3): {x.err.strip()[-200:]}"
                    for x in refused if x.rc != 3 or "promote" not in x.err]
        if env.tv("backups", "list", "--json").json() != before:
            problems.append("a fenced backup changed the catalog")
        verify = env.tv("verify")
        if verify.rc != 0:
            problems.append(f"verify after the fenced backups: {verify.err.strip()[-300:]}")
        promoted = Env(base / "promoted", standby, base / "promoted" / "tradevault.toml", dict(env.locations))
        promoted.root.mkdir()
        promoted.write_config()  # the same locations; the store's source name is the old file's stem
        promoted.config.write_text(promoted.config.read_text().replace(
            f'url = "sqlite:///{standby}"\n', f'url = "sqlite:///{standby}"\nname = "{env.db.stem}"\n', 1))
        new_full = promoted.tv("backup", "full")
        restored = base / "restored.sqlite"
        restore = promoted.tv("restore", "--to", f"sqlite:///{restored}")
        if new_full.rc != 0 or restore.rc != 0:
            problems.append(f"the promoted database's chain: full exit {new_full.rc}, restore exit {restore.rc}: "
                            f"{(new_full.err + restore.err).strip()[-300:]}")
        elif digest_of(restored) != digest_of(standby):
            problems.append("restore of the next chain differs from the promoted database")
            tally.lost += 1
        _round_outcome(tally, log, f"seed {seed} twoprimaries round {r}", problems,
                       f"old primary's incremental/full exit {[x.rc for x in refused]}, "
                       f"promoted full {new_full.rc}, restore {restore.rc}")


def pgslot(root: Path, rounds: int, seed: int, tally: Tally, log) -> None:
    """A PostgreSQL slot that loses its WAL while the agent runs (``max_slot_wal_keep_size``
    = 1MB, another database writes 80 MB with CHECKPOINTs): the agent must start a new chain
    on its own, backups go on, and a restore equals the source."""
    import json
    import signal

    from tests.services import PgCluster

    cluster = PgCluster()
    try:
        cluster.start()
    except BaseException as exc:  # noqa: BLE001 - pytest.skip inside: report and go on
        tally.notes.append(f"pgslot skipped: PostgreSQL did not start ({exc})")
        return
    try:
        with cluster.admin() as admin:
            admin.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
            admin.execute("SELECT pg_reload_conf()")
        for r in range(rounds):
            tally.runs += 1
            tally.faults += 1
            src, other, dst = (cluster.url(cluster.create_database(n)) for n in ("src", "other", "dst"))
            work = root / f"pgslot-{r}"
            env = Env(work, Path("unused"), work / "tradevault.toml", {"a": f"file://{work / 'backups'}"},
                      f'[agent]\nstate_dir = "{work / "state"}"\n\n[schedule]\nincremental = "0.5s"\n'
                      'full = "0 3 1 1 *"\nverify = ""\ndrill = false\n\n[config_vcs]\npaths = []\n')
            work.mkdir()
            env.write_config()
            env.config.write_text(env.config.read_text().replace("sqlite:///unused", src).replace(
                f'url = "{src}"\n', f'url = "{src}"\nname = "pgslot"\n', 1))
            _pg(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
            env.ok("backup", "full")
            agent = env.start("agent", log=work / "agent.log")
            try:
                _pg(src, "INSERT INTO t VALUES (2, 'b')")
                for burst in range(4):
                    _pg(other, f"CREATE TABLE big{burst} AS SELECT g AS id, repeat('x', 150) AS pad"
                               " FROM generate_series(1, 100000) g")
                    with cluster.admin() as admin:
                        admin.execute("CHECKPOINT")
                state_file, state = work / "state" / "agent.json", {}
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline and not state.get("capture_restarts"):
                    time.sleep(0.5)
                    state = json.loads(state_file.read_text()) if state_file.exists() else {}
                _pg(src, f"INSERT INTO t VALUES ({3 + r}, 'c')")
                time.sleep(2)  # a seal or more of the new chain
            finally:
                agent.send_signal(signal.SIGTERM)
                agent.wait(120)
            problems = [] if state.get("capture_restarts") else ["the agent never started a new chain"]
            restore = env.tv("restore", "--to", dst)
            if restore.rc != 0:
                problems.append(f"restore exit {restore.rc}: {restore.err.strip()[-300:]}")
            elif _pg_rows(dst) != _pg_rows(src):
                problems.append("the restore differs from the source")
                tally.lost += 1
            _round_outcome(tally, log, f"seed {seed} pgslot round {r}", problems,
                           f"capture restarts {len(state.get('capture_restarts') or [])}, restore {restore.rc}")
    finally:
        cluster.stop()


def _pg(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _pg_rows(url: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return conn.execute("SELECT * FROM t ORDER BY id").fetchall()


def s3down(root: Path, rounds: int, seed: int, tally: Tally, log) -> None:
    from tests.services import SeaweedS3

    server = SeaweedS3(root / "weed")
    try:
        server.start()
    except BaseException as exc:  # noqa: BLE001 - pytest.skip/fail inside: report and go on
        tally.notes.append(f"s3down skipped: SeaweedFS did not start ({exc})")
        return
    try:
        server.create_bucket("tv-faults")
        env = Env(root / "s3env", root / "s3env" / "tradesv3.sqlite", root / "s3env" / "tradevault.toml",
                  {"disk": f"file://{root / 's3env' / 'disk'}", "s3": "s3://tv-faults/b"},
                  extra="[backup]\nmin_locations = 1\n")
        env.root.mkdir()
        from tradevault.workload import TradingWorkload, create_database

        create_database(env.db)
        w = TradingWorkload(env.db, seed=seed)
        w.run(100)
        w.close()
        env.write_config()
        text = env.config.read_text().replace('url = "s3://tv-faults/b"\n', (
            f'url = "s3://tv-faults/b"\nendpoint_url = "{server.endpoint}"\nregion = "us-east-1"\n'
            'access_key_id = "tradevault"\nsecret_access_key = "tradevault-secret"\n'))
        env.config.write_text(text)
        env.ok("backup", "full", "--json")
        bot = Bot(env.db, seed=seed, pause=0.01)
        bot.start()
        try:
            for r in range(rounds):
                tally.runs += 1
                problems = []
                server.stop()
                commits = bot.commits
                bot.reset_gap()
                began = time.monotonic()
                incr = env.tv("backup", "incremental", "--json", timeout=300)
                took = time.monotonic() - began
                if incr.rc != 0:
                    problems.append(f"backup with S3 down and min_locations = 1 failed\n{incr}")
                status = env.tv("status", "--json")
                if bot.commits <= commits or bot.max_gap > MAX_TX_SECONDS:
                    problems.append(f"trading blocked while S3 was down (max transaction {bot.max_gap:.1f}s)")
                server.start()
                after = env.tv("backup", "incremental", "--json")
                verify = env.tv("verify", "--json")
                if after.rc != 0:
                    problems.append(f"backup after S3 came back\n{after}")
                if verify.rc != 0:
                    problems.append(f"verify after S3 came back (catch-up)\n{verify}")
                listing = env.tv("backups", "list", "--json").json()
                problems += check_chain(listing, "s3down")
                behind = [e["n"] for e in listing if sorted(e["locations"]) != ["disk", "s3"]]
                if behind:
                    problems.append(f"entries {behind} still missing on a location after catch-up")
                tally.faults += 1
                if problems:
                    tally.fail(f"seed {seed} s3down round {r}: " + "; ".join(problems))
                else:
                    tally.detected += 1
                log(f"  s3down round {r}: backup with S3 stopped exit {incr.rc} in {took:.1f}s, status exit "
                    f"{status.rc}; after restart: backup {after.rc}, verify {verify.rc}"
                    f"{' FAILED' if problems else ''}")
        finally:
            bot.stop()
        target = env.root / "final.sqlite"
        env.ok("backup", "incremental", "--json")
        restored = env.tv("restore", "--to", f"sqlite:///{target}", "--from", "s3", "--json")
        if restored.rc != 0 or digest_of(target) != digest_of(env.db):
            tally.fail(f"seed {seed} s3down: restore from S3 after the outages\n{restored}")
            tally.lost += 1
    finally:
        server.stop()


# -- a git remote that never answers ---------------------------------------------------------

class BlackHole(threading.Thread):
    """Accepts TCP connections and never answers (nor closes them)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.accepted = 0

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def githang(root: Path, rounds: int, seed: int, tally: Tally, log) -> None:
    hole = BlackHole()
    hole.start()
    base = root / "githang"
    work = base / "config"
    work.mkdir(parents=True)
    (work / "config.json").write_text("{}\n")
    good = base / "good.git"
    git("init", "-q", "--bare", str(good))
    env = Env(base, base / "none.sqlite", base / "tradevault.toml", {"local": f"file://{base / 'b'}"}, f"""
[config_vcs]
paths = ["{work}"]
quiet_period = "50ms"
max_delay = "300ms"
push_timeout = "2s"
push_retry_max = "2s"
[config_vcs.remotes]
hang = "http://127.0.0.1:{hole.port}/config.git"
good = "{good}"
""")
    env.write_config()
    rng = random.Random(seed)
    try:
        for r in range(rounds):
            tally.runs += 1
            problems = []
            proc = env.start("config", "watch", log=base / "watch.log")
            try:
                for i in range(5):
                    (work / f"s{rng.randrange(3)}.py").write_text(f"round {r} edit {i}\n")
                    time.sleep(0.2)
                head = None
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    head = git("rev-parse", "HEAD", cwd=work).stdout.strip()
                    remote = git("--git-dir", str(good), "rev-parse", "-q", "--verify",
                                 "refs/heads/master").stdout.strip()
                    if head and remote == head and git("status", "--porcelain", cwd=work).stdout.strip() == "":
                        break
                    time.sleep(0.2)
                else:
                    problems.append("the healthy remote did not receive the commits within 30 s "
                                    "while another remote hangs")
                status = env.tv("config", "status", "--json")
                if hole.accepted == 0:
                    problems.append("the hanging remote was never contacted")
            finally:
                began = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(60)
                except subprocess.TimeoutExpired:
                    dump_stacks_and_kill(proc)
                    rc = proc.wait(10)
                stop_took = time.monotonic() - began
            if rc != 0:
                problems.append(f"config watch exited {rc} at SIGTERM")
            if stop_took > 30 + 15:  # config watch bounds its final pushes by flush_timeout (30 s)
                problems.append(f"config watch took {stop_took:.1f}s to stop (flush bound 30 s)")
            if "hang" not in status.out:
                problems.append(f"config status does not mention the hanging remote: {status}")
            tally.faults += 1
            if problems:
                tally.fail(f"seed {seed} githang round {r}: " + "; ".join(problems)
                           + f"\n{(base / 'watch.log').read_text()[-4000:]}")
            else:
                tally.detected += 1
            log(f"  githang round {r}: healthy remote up to date, {hole.accepted} connections to the black hole, "
                f"stopped in {stop_took:.1f}s{' FAILED: ' + '; '.join(problems) if problems else ''}")
        fsck = git("fsck", "--full", cwd=work)
        if fsck.returncode != 0:
            tally.fail(f"githang: git fsck of the work tree: {fsck.stderr}")
    finally:
        hole.close()


SCENARIOS = ("readonly", "diskfull", "locked")


def run(rounds: int = 1, seed: int | None = None, root: Path | None = None, log=print,
        scenarios: tuple[str, ...] = SCENARIOS + ("githang", "s3down", "concurrent", "twoprimaries",
                                                 "pgslot")) -> Tally:
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    root = root or private_root("faults")
    tally = Tally("faults")
    tally.notes.append(f"seed {seed}, directory {root}")
    log(f"fault campaign: seed {seed}, {rounds} rounds, directory {root}")
    local = tuple(s for s in scenarios if s in SCENARIOS)
    if local:
        campaign = Campaign(root / "data", seed, tally, log) if (root / "data").mkdir() is None else None
        try:
            campaign.run(rounds, local)
        finally:
            campaign.close()
    if "concurrent" in scenarios:
        concurrent(root, rounds, seed, tally, log)
    if "twoprimaries" in scenarios:
        twoprimaries(root, rounds, seed, tally, log)
    if "pgslot" in scenarios:
        pgslot(root, rounds, seed, tally, log)
    if "githang" in scenarios:
        githang(root, rounds, seed, tally, log)
    if "s3down" in scenarios:
        s3down(root, rounds, seed, tally, log)
    tally.notes.append("Kafka broker kill: not in this campaign (see tests/kafka for sink restarts)")
    return tally


def main() -> int:
    args = cli_args(__doc__.splitlines()[0], "rounds", 5, "rounds of every scenario")
    root = private_root("faults")
    tally = run(args.rounds, seed=args.seed, root=root)
    return finish(tally, root, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
