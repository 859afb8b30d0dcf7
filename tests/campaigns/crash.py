"""Crash campaign: SIGKILL at random instants while the synthetic workload trades.

Victims: ``tradevault agent`` (compacting every two incrementals), ``backup full``,
``backup incremental``, ``backup compact``, ``restore`` and ``tradevault config watch``
(during a commit/push burst).

After every kill of a backup process: ``verify`` passes, the next ``backup incremental``
succeeds and ``backups list --json`` shows a chain without gap or duplicate (each
incremental's after_seq == the previous incremental's last_seq, or <= the full's seq
right after a full). A killed restore leaves no target or a whole one. At the end the
bot stops, the chain reaches the captured seq, ``verify --deep`` passes and a restore
equals the source by digest.

After every kill of ``config watch``: ``git fsck --full`` (the real git) passes on the
work tree and on the remote, every commit id seen before the kill is still reachable
(locally; and on the remote for ids seen there), and a restarted watcher commits again.

    python -m tests.campaigns.crash --runs 50 [--seed N] [--keep]
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.campaigns.common import (
    SOURCE,
    Bot,
    Env,
    Tally,
    captured_seq,
    check_chain,
    cli_args,
    digest_of,
    finish,
    git,
    integrity,
    private_root,
)

AGENT_EXTRA = """
[schedule]
full = "* * * * * */7"
incremental = "0.5s"
compact = ["1s", "2s"]
verify = ""
drill = false
retention = "1h"

[agent]
state_dir = "{root}/state"

[config_vcs]
paths = ["{root}/agent-config"]
"""

VICTIMS = ("agent", "full", "incremental", "compact", "restore")


def _kill_after(proc: subprocess.Popen, delay: float) -> tuple[int, float]:
    """SIGKILL ``proc`` after ``delay`` s unless it ended; returns its exit status and, when
    it ended on its own, how long it ran."""
    started = time.perf_counter()
    try:
        proc.wait(delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    ran = time.perf_counter() - started
    if proc.stdout is not None:
        proc.communicate(timeout=60)
    return proc.wait(60), ran


class KillTimer:
    """Where to aim a kill so it lands while the victim runs: a random point of the
    victim's duration, as last measured. A backup or restore of the campaign's small
    database takes a fraction of a second, so fixed delays of 0.4-1.9 s mostly landed
    after the process had finished (14 of 24 kills in one run). Each run that ends before
    its kill shortens the estimate to what it took."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.duration: dict[str, float] = {}

    def delay(self, victim: str) -> float:
        if victim == "agent":  # runs until killed
            return self.rng.uniform(1.0, 5.0)
        # the later part: the first ~0.15 s of a command is interpreter start-up, not the work
        return self.rng.uniform(0.3, 0.95) * self.duration[victim]

    def ran(self, victim: str, seconds: float) -> None:
        self.duration[victim] = seconds


def catalog(env: Env) -> list[dict]:
    from trade_stream.manifest import summary
    from trade_stream.storage.locations import open_location
    from trade_stream.storage.store import BackupStore

    store = BackupStore(SOURCE, [open_location(n, u) for n, u in env.locations.items()])
    return [summary(e) for e in store.entries()]


def data_campaign(runs: int, seed: int, root: Path, tally: Tally, log=print) -> None:
    rng = random.Random(seed)
    env = Env.create(root / "data", extra=AGENT_EXTRA.format(root=root / "data"), transactions=100, seed=seed)
    (root / "data" / "agent-config").mkdir()
    env.ok("backup", "full", "--json")
    bot = Bot(env.db, seed=seed, pause=0.01)
    bot.start()
    schedule = [VICTIMS[i % len(VICTIMS)] for i in range(runs)]
    rng.shuffle(schedule)  # every victim equally often; a small run covers them in turn
    timer = KillTimer(rng)
    try:
        for victim in ("full", "incremental", "compact", "restore"):  # measured unkilled, as the bot trades
            time.sleep(1.0)  # changes for the incremental to store, as between the kills
            started = time.perf_counter()
            if victim == "restore":
                env.ok("restore", "--to", f"sqlite:///{root / 'data' / 'measured.sqlite'}", "--json")
            else:
                env.ok("backup", victim, "--json")
            timer.ran(victim, time.perf_counter() - started)
        landed = 0
        for run, victim in enumerate(schedule):
            tally.runs += 1
            ctx = f"seed {seed} run {run}: {victim}"
            delay = timer.delay(victim)
            if victim == "agent":
                proc = env.start("agent", log=root / "data" / "agent.log")
            elif victim == "restore":
                target = root / "data" / f"restored-{run}.sqlite"
                proc = env.start("restore", "--to", f"sqlite:///{target}", "--json")
            else:
                proc = env.start("backup", victim, "--json")
            rc, ran = _kill_after(proc, delay)
            ctx += f" killed after {delay:.2f}s (exit {rc})"
            if rc == -9:
                tally.faults += 1
                landed += 1
            else:
                timer.ran(victim, ran)
                if rc != 0:
                    tally.fail(f"{ctx}: exited {rc} before the kill")
            if victim == "restore" and target.exists():
                if integrity(target) != "ok":
                    tally.fail(f"{ctx}: a killed restore left a damaged target")
                    tally.lost += 1
            if victim == "restore":
                leftovers = [p.name for p in target.parent.glob(target.name + "-*")]
                if not target.exists() and leftovers:
                    tally.fail(f"{ctx}: left {leftovers}")
            verify = env.tv("verify", "--json")
            if verify.rc != 0:
                tally.fail(f"{ctx}: verify after the kill\n{verify}")
                tally.lost += 1
                continue
            after = env.tv("backup", "incremental", "--json")
            if after.rc != 0:
                tally.fail(f"{ctx}: the next backup failed\n{after}")
                continue
            # the catalog in-process (what `backups list --json` prints; the CLI lists at the end)
            entries = catalog(env)
            problems = check_chain(entries, ctx)
            if problems:
                tally.fail("; ".join(problems))
                tally.lost += 1
            elif rc == -9:
                tally.detected += 1
            log(f"  {ctx}: ok ({len(entries)} entries, bot {bot.commits} commits)")
    finally:
        bot.stop()
    tally.notes.append(f"kills that landed while the process ran: {landed} of {len(schedule)} "
                       f"({100 * landed / max(1, len(schedule)):.0f} %)")
    tally.notes.append(f"workload: {bot.commits} transactions committed during the kills, "
                       f"longest transaction {bot.max_gap * 1000:.0f} ms")
    env.ok("backup", "incremental", "--json")
    entries = env.ok("backups", "list", "--json").json()
    problems = check_chain(entries, f"seed {seed} final")
    if problems:
        tally.fail("; ".join(problems))
        tally.lost += 1
    if entries[-1]["last_seq"] != captured_seq(env.db):
        tally.fail(f"seed {seed}: chain ends at {entries[-1]['last_seq']}, captured {captured_seq(env.db)}")
        tally.lost += 1
    deep = env.tv("verify", "--deep", "--json")
    if deep.rc != 0:
        tally.fail(f"seed {seed}: final verify --deep\n{deep}")
    final = root / "data" / "final.sqlite"
    restored = env.tv("restore", "--to", f"sqlite:///{final}", "--json")
    if restored.rc != 0:
        tally.fail(f"seed {seed}: final restore\n{restored}")
        tally.lost += 1
    elif digest_of(final) != digest_of(env.db):
        tally.fail(f"seed {seed}: final restore differs from the source")
        tally.lost += 1
    tally.notes.append(f"chain: {len(entries)} entries, {sum(e['kind'] == 'full' for e in entries)} full, "
                       f"last seq {entries[-1]['last_seq']}")


# -- config watch -------------------------------------------------------------------------


def _rev(work: Path, *git_dir: str) -> str | None:
    out = git(*git_dir, "rev-parse", "--verify", "-q", "refs/heads/master", cwd=work)
    return out.stdout.strip() or None


def _fsck(path: Path, bare: bool = False) -> str:
    args = ["--git-dir", str(path)] if bare else []
    done = git(*args, "fsck", "--full", "--no-dangling", cwd=None if bare else path)
    if done.returncode != 0 or any(w in done.stdout + done.stderr for w in ("error", "missing", "broken", "corrupt")):
        return (done.stdout + done.stderr).strip()[-1500:] or f"exit {done.returncode}"
    return ""


def config_campaign(runs: int, seed: int, root: Path, tally: Tally, log=print, tolerate: tuple[str, ...] = ()) -> None:
    rng = random.Random(seed ^ 0x5EED)
    base = root / "cfg"
    work = base / "config"
    work.mkdir(parents=True)
    (work / "config.json").write_text('{"stake": 1}\n')
    remote = base / "remote.git"
    git("init", "-q", "--bare", str(remote))
    env = Env(base, base / "none.sqlite", base / "tradevault.toml", {"local": f"file://{base / 'backups'}"}, f"""
[config_vcs]
paths = ["{work}"]
quiet_period = "50ms"
max_delay = "200ms"
repack_every = 7
push_retry_max = "1s"
[config_vcs.remotes]
usb = "{remote}"
""")
    env.write_config()
    for run in range(runs):
        tally.runs += 1
        ctx = f"seed {seed} config run {run}"
        proc = env.start("config", "watch", log=base / "watch.log")
        stop = threading.Event()
        seen_local: set[str] = set()
        seen_remote: set[str] = set()

        def burst(stop: threading.Event, run: int) -> None:
            i = 0
            while not stop.is_set():
                name = f"f{rng.randrange(6)}.txt"
                if rng.random() < 0.1 and (work / name).exists():
                    (work / name).unlink()
                else:
                    (work / name).write_text(f"run {run} edit {i} {rng.random()}\n" * rng.randint(1, 50))
                i += 1
                time.sleep(rng.uniform(0.005, 0.08))

        def watch_heads(stop: threading.Event, seen_local: set[str], seen_remote: set[str]) -> None:
            while not stop.is_set():
                for rev, bucket in ((_rev(work), seen_local), (_rev(work, "--git-dir", str(remote)), seen_remote)):
                    if rev:
                        bucket.add(rev)
                time.sleep(0.05)

        threads = [threading.Thread(target=burst, args=(stop, run), daemon=True),
                   threading.Thread(target=watch_heads, args=(stop, seen_local, seen_remote), daemon=True)]
        for t in threads:
            t.start()
        delay = rng.uniform(1.5, 5.0)
        time.sleep(delay)
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        stop.set()
        for t in threads:
            t.join(10)
        ctx += f": killed after {delay:.2f}s, {len(seen_local)} local / {len(seen_remote)} pushed heads seen"
        if killed:
            tally.faults += 1
        else:
            tally.fail(f"{ctx}: config watch had exited before the kill: {(base / 'watch.log').read_text()[-1500:]}")
        problems = []
        for path, bare in ((work, False), (remote, True)):
            damage = _fsck(path, bare)
            if damage:
                problems.append(f"git fsck {path.name}: {damage}")
        for rev in seen_local:
            if git("merge-base", "--is-ancestor", rev, "HEAD", cwd=work).returncode != 0:
                problems.append(f"local commit {rev} seen before the kill is no longer reachable from HEAD")
        for rev in seen_remote:
            if git("--git-dir", str(remote), "merge-base", "--is-ancestor", rev, "refs/heads/master").returncode != 0:
                problems.append(f"pushed commit {rev} is no longer reachable on the remote")
        # A restarted watcher picks up where the killed one stopped (stale locks included).
        proc = env.start("config", "watch", log=base / "watch.log")
        try:
            before = _rev(work)
            (work / "after-kill.txt").write_text(f"{ctx}\n")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _rev(work) == before:
                time.sleep(0.1)
            if _rev(work) == before:
                problems.append("a restarted watcher did not commit a new edit within 30 s")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _rev(work, "--git-dir", str(remote)) != _rev(work):
                time.sleep(0.1)
            if _rev(work, "--git-dir", str(remote)) != _rev(work):
                problems.append("a restarted watcher did not push to the remote within 30 s")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait(10)
        if rc != 0:
            problems.append(f"config watch exited {rc} at SIGTERM")
        stale = sorted(str(p.relative_to(work)) for p in (work / ".git").rglob("*.lock")
                       if p.name != "tradevault.lock")
        if stale and any("did not commit" in p for p in problems):
            # Known finding (tests/campaigns/test_findings.py::
            # test_config_watcher_recovers_from_git_locks_left_by_a_kill): clean up so the
            # next runs test fresh kills, and report it.
            for lock in stale:
                (work / lock).unlink(missing_ok=True)
            problems = [p for p in problems if "did not" not in p]
            message = f"{ctx}: STALE GIT LOCKS {stale} left by the kill: the restarted watcher never commits"
            if "stale-lock" in tolerate:
                tally.notes.append(message + " (known bug, tolerated in this run)")
            else:
                tally.fail(message)
        if problems:
            tally.fail(f"{ctx}: " + "; ".join(problems) + f"\n{(base / 'watch.log').read_text()[-1500:]}")
            if any("reachable" in p or "fsck" in p for p in problems):
                tally.lost += 1
        elif not stale:
            tally.detected += 1
        verdict = "FAILED" if problems else f"ok, lock files left that block nothing: {stale}" if stale else "ok"
        log(f"  {ctx}: {verdict}")


def run(runs: int = 4, config_runs: int | None = None, seed: int | None = None, root: Path | None = None,
        log=print, tolerate: tuple[str, ...] = ()) -> Tally:
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    root = root or private_root("crash")
    tally = Tally("crash")
    tally.notes.append(f"seed {seed}, directory {root}")
    log(f"crash campaign: seed {seed}, {runs} data kills, directory {root}")
    data_campaign(runs, seed, root, tally, log)
    config_campaign(config_runs if config_runs is not None else max(1, runs // 5), seed, root, tally, log, tolerate)
    return tally


def main() -> int:
    args = cli_args(__doc__.splitlines()[0], "runs", 50, "number of SIGKILLed data processes (config kills: runs/5)")
    root = private_root("crash")
    tally = run(args.runs, seed=args.seed, root=root)
    return finish(tally, root, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
