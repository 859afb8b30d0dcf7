"""The running configuration history: watch, commit, push -- the public entry point.

``ConfigHistory(paths, remotes, options)`` is what the agent (and ``tradevault config
watch``) composes: ``start()`` adopts or creates each repository, commits what changed
while nobody was watching, and starts one commit loop per directory (events coalesced
into one commit per burst, periodic rescans as a safety net) plus one push thread per
(directory, remote). ``stop(flush=True)`` commits what is pending and gives every
remote a last chance. ``status()`` reports per directory and per remote.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config_vcs.coalescer import Coalescer
from config_vcs.commit_message import ADDED, MODIFIED, RENAMED, display_path
from config_vcs.errors import BadInput, ConfigVcsError, RepositoryBusy
from config_vcs.options import Options
from config_vcs.paths import labels_for
from config_vcs.plaintext import PlaintextFinder, plaintext_reason
from config_vcs.push_queue import RemotePusher
from config_vcs.repository import CommitResult, ConfigRepo, head_of, tree_entries
from config_vcs.scanner import MODE_LINK
from config_vcs.scope import scope_report, skipped_list

if TYPE_CHECKING:  # watchdog is for the live agent only, not for status or recovery
    from config_vcs.watcher import DirectoryWatcher

log = logging.getLogger(__name__)

_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RETRY_AFTER_ERROR = 2.0
_REPACK_RETRY = 5.0


def validate(paths: Sequence[Path | str], remotes: Mapping[str, str]) -> list[Path]:
    """Bad configuration is refused before anything is created (exit 2)."""
    if not paths:
        raise BadInput("config_vcs.paths is empty: nothing to watch")
    roots = [Path(os.path.abspath(os.path.expanduser(str(p)))) for p in paths]
    for i, a in enumerate(roots):
        for b in roots[i + 1 :]:
            if a == b or a in b.parents or b in a.parents:
                raise BadInput(f"config_vcs.paths overlap: {a} and {b}")
    for name, url in remotes.items():
        if not _REMOTE_NAME.match(name):
            raise BadInput(f"config_vcs.remotes: bad remote name {name!r} (letters, digits, . _ -)")
        if not str(url).strip():
            raise BadInput(f"config_vcs.remotes.{name}: empty URL")
    return roots


def remote_refs_for(roots: Sequence[Path]) -> list[bytes | None]:
    """With one directory, remotes get its branch as is; with several sharing the
    same remotes, each goes to ``refs/heads/<label>`` so histories do not collide."""
    if len(roots) == 1:
        return [None]
    return [f"refs/heads/{label}".encode() for label in labels_for(roots)]


@dataclass
class _Stats:
    commits: int = 0
    last_commit: str | None = None
    last_commit_time: float | None = None
    last_error: str | None = None
    secrets: list[str] = field(default_factory=list)


class RepoWorker:
    """The commit loop of one watched directory (one thread: one writer)."""

    def __init__(
        self,
        repo: ConfigRepo,
        options: Options,
        pushers: Sequence[RemotePusher],
        warn: Callable[[str], None],
    ) -> None:
        self.repo = repo
        self.options = options
        self.pushers = list(pushers)
        self._warn = warn
        self._cond = threading.Condition()
        self._coalescer = Coalescer(options.quiet_period, options.max_delay)
        self._next_rescan = time.monotonic() + options.rescan_interval
        self._rescan_requested = False
        self._retry_at: float | None = None
        self._flush_requested = 0
        self._flush_done = 0
        self._reseal_requested = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._since_repack = 0
        self._repack_at: float | None = None  # a postponed repack
        self._warned_secrets: set[bytes] = set()
        self.stats = _Stats()

    # -- inputs (any thread) -----------------------------------------------------------------

    def touch(self, rel: str = "") -> None:
        """A filesystem event below the directory."""
        with self._cond:
            self._coalescer.add(time.monotonic())
            self._cond.notify_all()

    def rescan_now(self) -> None:
        """Events were lost (watcher overflow): walk the tree now."""
        with self._cond:
            self._rescan_requested = True
            self._cond.notify_all()

    def request_reseal(self) -> None:
        """A push was held back (plaintext credentials in its range): with recipients,
        seal the unpushed commits at the next cycle (a push thread calls this)."""
        if not self.repo.sealer.enabled:
            return
        with self._cond:
            self._reseal_requested = True
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Commit whatever is pending now; True once that commit cycle has finished."""
        with self._cond:
            self._flush_requested += 1
            wanted = self._flush_requested
            self._cond.notify_all()
            if self._thread is None or not self._thread.is_alive():
                return False
            return self._cond.wait_for(lambda: self._flush_done >= wanted, timeout)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"commit-{self.repo.root.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._due(time.monotonic()):
                    self._cond.wait(self._wait_time(time.monotonic()))
                if self._stopping:
                    return
                now = time.monotonic()
                commit_due = self._commit_due(now)
                reseal = commit_due and self._reseal_requested
                if commit_due:
                    self._coalescer.take()
                    self._rescan_requested = False
                    self._reseal_requested = False
                    self._retry_at = None
                    self._next_rescan = now + self.options.rescan_interval
                flush_seq = self._flush_requested
            if commit_due:
                self.cycle()
                if reseal:
                    self.reseal()
            else:  # only a postponed repack is due
                self.repack()
            with self._cond:
                self._flush_done = max(self._flush_done, flush_seq)
                self._cond.notify_all()

    def _commit_due(self, now: float) -> bool:
        return (
            self._flush_requested > self._flush_done
            or self._rescan_requested
            or self._reseal_requested
            or self._coalescer.due(now)
            or now >= self._next_rescan
            or (self._retry_at is not None and now >= self._retry_at)
        )

    def _due(self, now: float) -> bool:
        return self._commit_due(now) or (
            self._repack_at is not None and now >= self._repack_at
        )

    def _wait_time(self, now: float) -> float:
        times = [self._next_rescan]
        deadline = self._coalescer.deadline()
        for extra in (deadline, self._retry_at, self._repack_at):
            if extra is not None:
                times.append(extra)
        return max(0.0, min(times) - now)

    # -- one commit cycle ------------------------------------------------------------------------------

    def cycle(self) -> CommitResult | None:
        """Commit the directory if it changed; errors are logged and retried later."""
        try:
            result = self.repo.commit_worktree()
        except RepositoryBusy as exc:
            self._failed(str(exc))
            return None
        except Exception as exc:
            log.exception("config commit in %s failed", self.repo.root)
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        self.stats.last_error = None
        if result is not None:
            self.committed(result)
        return result

    def committed(self, result: CommitResult) -> None:
        """Book-keeping after a commit: secrets, pushes, repack."""
        self.stats.commits += 1
        self.stats.last_commit = result.commit.decode()
        self.stats.last_commit_time = time.time()
        log.info("%s: %s", self.repo.root, result.message.splitlines()[0])
        changed = [c.path for c in result.changes if c.kind in (ADDED, MODIFIED, RENAMED)]
        self.check_secrets(changed)
        self._since_repack += 1
        if self._since_repack >= self.options.repack_every:
            self.repack()  # before the pushes start reading the store: it is quick
        for pusher in self.pushers:
            pusher.notify()

    def reseal(self) -> None:
        """Seal the plaintext credentials of the commits no remote has, then push again."""
        try:
            rewritten = self.repo.reseal_unpushed()
        except Exception as exc:  # noqa: BLE001 - the pushes stay held; retried at the next hold
            log.warning("sealing the unpushed commits of %s failed: %s", self.repo.root, exc)
            return
        if rewritten:
            for pusher in self.pushers:
                pusher.notify()

    def repack(self) -> None:
        """Pack the history; while a push is reading it (a slow remote), try again later."""
        try:
            done = self.repo.repack()
        except Exception as exc:  # noqa: BLE001 - housekeeping must not stop commits
            log.warning("repack of %s failed: %s", self.repo.root, exc)
            done = False
        with self._cond:
            if done:
                self._since_repack = 0
                self._repack_at = None
            else:
                self._repack_at = time.monotonic() + _REPACK_RETRY

    def _failed(self, message: str) -> None:
        first = self.stats.last_error is None
        self.stats.last_error = message
        if first:
            self._warn(f"config history of {self.repo.root}: {message} (will retry)")
        with self._cond:
            self._retry_at = time.monotonic() + _RETRY_AFTER_ERROR

    def check_secrets(self, paths: Sequence[bytes] | None = None) -> None:
        """Warn once per file that looks like credentials, naming where it will go."""
        try:
            with self.repo.open() as repo:
                _branch, head = head_of(repo)
                if head is None:
                    return
                entries = tree_entries(repo, repo.object_store[head].tree)  # type: ignore[attr-defined]
                candidates = entries.keys() if paths is None else [p for p in paths if p in entries]
                for path in sorted(candidates):
                    mode, sha = entries[path]
                    if path in self._warned_secrets or mode == MODE_LINK or mode & 0o170000 != 0o100000:
                        continue
                    data = repo.object_store[sha].as_raw_string()
                    reason = plaintext_reason(display_path(path), data)
                    if reason:
                        self._warned_secrets.add(path)
                        self.stats.secrets.append(display_path(path))
                        self._warn(self._secret_warning(path, reason))
        except Exception as exc:  # noqa: BLE001 - a warning must never break committing
            log.debug("secret check failed: %s", exc)

    def _secret_warning(self, path: bytes, reason: str) -> str:
        where = self.repo.root / os.fsdecode(path)
        clear = [p.name for p in self.pushers if p.allow_plaintext]
        held = [p.name for p in self.pushers if not p.allow_plaintext]
        reach = ["committed in clear to the local history"]
        if clear:
            reach.append(f"pushed in clear to {', '.join(clear)} (allow_plaintext_secrets)")
        if held:
            reach.append(f"held back from {', '.join(held)} until [config_vcs] secret_recipients is set")
        return f"{where} looks like credentials ({reason}); " + "; ".join(reach)

    def status(self) -> dict[str, Any]:
        try:
            branch, head = self.repo.head()
        except ConfigVcsError:
            branch, head = None, None
        with self._cond:
            pending = self._coalescer.pending
        return {
            "path": str(self.repo.root),
            "branch": branch.decode() if branch else None,
            "head": head.decode() if head else None,
            "pending_changes": pending,
            "commits": self.stats.commits,
            "last_commit": self.stats.last_commit,
            "last_error": self.stats.last_error,
            "secrets": list(self.stats.secrets),
            **_skipped(self.repo.last_excluded),
            "remotes": {p.name: p.state().as_dict() for p in self.pushers},
        }


def _skipped(excluded: Mapping[bytes, str]) -> dict[str, Any]:
    """What the last scan left out, for status (``skipped`` is capped, the total is not)."""
    return {"skipped": skipped_list(excluded), "skipped_total": len(excluded)}


class ConfigHistory:
    """Watch ``paths``, commit every change, push each commit to every remote."""

    def __init__(
        self,
        paths: Sequence[Path | str],
        remotes: Mapping[str, str] | None = None,
        options: Options | None = None,
        *,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.remotes = dict(remotes or {})
        self.roots = validate(paths, self.remotes)
        self.options = options or Options()
        self._warn = warn or log.warning
        self.options.identity()  # a bad author fails now, not at the first commit
        self.options.sealer()  # so does a bad secret recipient
        self.options.static_ignore()  # and a bad include/exclude glob
        self.workers: list[RepoWorker] = []
        self._watcher: DirectoryWatcher | None = None
        self._started = False

    @property
    def repos(self) -> list[ConfigRepo]:
        return [w.repo for w in self.workers]

    def start(self) -> None:
        """Adopt/create the repositories, commit offline changes, start the threads."""
        if self._started:
            return
        o = self.options
        for root, remote_ref in zip(self.roots, remote_refs_for(self.roots)):
            repo = o.repo(root, create=True, warn=self._warn)
            if self.remotes:
                with repo.write_lock():
                    repo.set_remotes(self.remotes)
            finder = PlaintextFinder()  # shared: one cache of verdicts per repository
            pushers = [
                RemotePusher(
                    repo, name, url, remote_ref,
                    backoff_initial=o.push_backoff_initial, backoff_max=o.push_backoff_max,
                    timeout=o.push_timeout, ssh_command=o.ssh_command, warn=self._warn,
                    allow_plaintext=name in o.plaintext_remotes, finder=finder,
                )
                for name, url in self.remotes.items()
            ]
            worker = RepoWorker(repo, o, pushers, self._warn)
            for pusher in pushers:
                pusher.on_held = worker.request_reseal
            self.workers.append(worker)
        self._started = True
        try:
            if o.watch:  # watch before the start-up scan: nothing changed during it is missed
                from config_vcs.watcher import DirectoryWatcher

                self._watcher = DirectoryWatcher()
                for worker in self.workers:
                    self._watcher.add(worker.repo.root, worker.repo, worker.touch, worker.rescan_now)
                self._watcher.start()
            for worker in self.workers:
                worker.cycle()  # changes made while nobody watched (or the initial commit)
                worker.check_secrets()  # every file once per run, also those committed earlier
                if worker.repo.loose_object_count() > 500:
                    worker.repack()
                for pusher in worker.pushers:
                    pusher.start()
                worker.start()
        except BaseException:
            self.stop(flush=False, timeout=5)
            raise

    def flush(self, timeout: float | None = None) -> bool:
        """Commit pending changes of every directory now (pushes continue in background)."""
        timeout = self.options.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        return all(w.flush(max(0.0, deadline - time.monotonic())) for w in self.workers)

    def wait_pushed(self, timeout: float) -> bool:
        """Wait until every remote has every commit (True) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while True:
            states = [p.state() for w in self.workers for p in w.pushers]
            if all(s.unpushed == 0 and not s.last_error for s in states):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def stop(self, flush: bool = True, timeout: float | None = None) -> None:
        """Stop watching; with ``flush`` commit pending changes and try every remote
        once more (bounded by ``timeout``, default ``options.flush_timeout``)."""
        if not self._started:
            return
        timeout = self.options.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if self._watcher is not None:
            if flush:
                time.sleep(min(0.05, timeout))  # let events already queued reach us
            self._watcher.stop()
        if flush:
            self.flush(max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            worker.stop(max(0.1, deadline - time.monotonic()))
        for worker in self.workers:
            for pusher in worker.pushers:
                pusher.stop(final_push=flush, timeout=0)
        for worker in self.workers:
            for pusher in worker.pushers:
                if not pusher.stop(final_push=flush, timeout=max(0.0, deadline - time.monotonic())):
                    log.warning("push to %s still running at shutdown; it resumes at next start", pusher.name)
        self._started = False

    def status(self) -> list[dict[str, Any]]:
        """Per watched directory: head, pending changes, errors, secrets flagged, and per
        remote: unpushed commit count, last error, diverged flag."""
        return [w.status() for w in self.workers]

    def __enter__(self) -> "ConfigHistory":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(flush=True)


def offline_status(
    paths: Sequence[Path | str],
    remotes: Mapping[str, str] | None = None,
    options: Options | None = None,
) -> list[dict[str, Any]]:
    """Status without a running watcher (``tradevault status``): head, what the rules
    leave out of the directory now (``skipped``), and per remote the unpushed count from
    ``refs/remotes/NAME/...`` plus the last recorded error."""
    remotes = dict(remotes or {})
    roots = validate(paths, remotes)
    options = options or Options()
    out = []
    for root, remote_ref in zip(roots, remote_refs_for(roots)):
        try:
            repo = options.repo(root, create=False)
        except ConfigVcsError as exc:
            out.append({"path": str(root), "head": None, "error": str(exc), "remotes": {}})
            continue
        branch, head = repo.head()
        finder = PlaintextFinder()
        pushers = [
            RemotePusher(repo, n, u, remote_ref, allow_plaintext=n in options.plaintext_remotes, finder=finder)
            for n, u in remotes.items()
        ]
        report = scope_report(root, options)
        excluded = {os.fsencode(path): reason for path, reason in report.excluded}
        out.append(
            {
                "path": str(root),
                "branch": branch.decode() if branch else None,
                "head": head.decode() if head else None,
                **_skipped(excluded),
                "remotes": {p.name: p.state().as_dict() for p in pushers},
            }
        )
    return out
