"""Configuration history latency: ``config_vcs.service.ConfigHistory`` with 3 local bare remotes.

* change-to-commit: one file written -> the commit holding it exists (goal from issue 3:
  p50 <= quiet period + 100 ms);
* commit-to-pushed: that commit -> every one of the 3 remotes' branch points at it (p99 <= 1 s);
* ``files_at_once`` files written at once -> exactly one commit, within 3 s of the first write.

Runs inside a bench.worker child (its VmHWM is the memory of the config history service).
Times are taken by polling (every 2 ms) the service's commit counter and the remotes' ref
files, so each is late by at most a few ms.
"""

from __future__ import annotations

import time
from pathlib import Path

from dulwich.repo import Repo

from config_vcs.options import Options
from config_vcs.service import ConfigHistory

POLL = 0.002
REMOTES = 3


def _ref(bare: Path, ref: bytes) -> bytes | None:
    loose = bare / ref.decode()
    try:
        return loose.read_bytes().strip()
    except FileNotFoundError:
        try:
            with Repo(str(bare)) as repo:
                return repo.refs[ref] if ref in repo.refs else None
        except Exception:  # noqa: BLE001 - not there yet
            return None


def _wait(check, timeout: float) -> float | None:
    """monotonic time at which ``check()`` first held, None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(POLL)
    return None


def measure(work: Path, samples: int, quiet_period: float, files_at_once: int) -> dict:
    watched = work / "watched"
    watched.mkdir(parents=True)
    (watched / "config.json").write_text('{"max_open_trades": 3}\n')
    remotes = {}
    for i in range(REMOTES):
        bare = work / f"remote{i + 1}.git"
        Repo.init_bare(str(bare), mkdir=True).close()
        remotes[f"r{i + 1}"] = str(bare)
    history = ConfigHistory([watched], remotes, Options(quiet_period=quiet_period, max_delay=5.0))
    history.start()
    worker = history.workers[0]
    try:
        if not history.wait_pushed(30):
            raise RuntimeError("the initial commit was not pushed to every remote within 30 s")
        branch, _head = worker.repo.head()
        ref = branch or b"refs/heads/master"

        def pushed_everywhere(commit: bytes) -> bool:
            return all(_ref(Path(url), ref) == commit for url in remotes.values())

        to_commit, to_pushed, missing = [], [], 0
        for i in range(samples):
            before = worker.stats.commits
            started = time.monotonic()
            (watched / f"strategy{i % 5}.json").write_text(f'{{"stake_amount": {i}, "sample": {i}}}\n')
            committed = _wait(lambda before=before: worker.stats.commits > before, 10)
            if committed is None:
                missing += 1
                continue
            commit = (worker.stats.last_commit or "").encode()
            pushed = _wait(lambda commit=commit: pushed_everywhere(commit), 30)
            to_commit.append(committed - started)
            if pushed is not None:
                to_pushed.append(pushed - committed)
            else:
                missing += 1
            time.sleep(0.05)

        # files_at_once files written in one go: one commit, how soon
        bulk = watched / "bulk"
        bulk.mkdir()
        before = worker.stats.commits
        started = time.monotonic()
        for i in range(files_at_once):
            (bulk / f"pair_{i:04d}.json").write_text(f'{{"pair": "P{i}/USDT", "weight": {i}}}\n')
        written = time.monotonic() - started
        committed = _wait(lambda: worker.stats.commits > before, 30)
        commit = (worker.stats.last_commit or "").encode()
        bulk_pushed = _wait(lambda: pushed_everywhere(commit), 30) if committed else None
        time.sleep(quiet_period + 0.3)  # a second commit would show up by now
        bulk_commits = worker.stats.commits - before
        with worker.repo.open() as repo:
            tree_files = len([p for p in _tree_paths(repo, repo[commit].tree) if p.startswith(b"bulk/")]) \
                if commit else 0
    finally:
        history.stop(flush=True, timeout=10)
    return {
        "remotes": REMOTES,
        "quiet_period": quiet_period,
        "samples": samples,
        "change_to_commit_s": to_commit,
        "commit_to_pushed_s": to_pushed,
        "missing": missing,
        "bulk_files": files_at_once,
        "bulk_write_seconds": written,
        "bulk_change_to_commit_s": (committed - started) if committed else None,
        "bulk_commit_to_pushed_s": (bulk_pushed - committed) if bulk_pushed and committed else None,
        "bulk_commits": bulk_commits,
        "bulk_files_in_commit": tree_files,
    }


def _tree_paths(repo, tree_id: bytes, prefix: bytes = b""):
    for entry in repo[tree_id].items():
        path = prefix + entry.path
        if entry.mode & 0o170000 == 0o040000:
            yield from _tree_paths(repo, entry.sha, path + b"/")
        else:
            yield path
