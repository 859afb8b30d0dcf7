"""Get every commit to one remote, whatever the remote is doing.

One thread per (repository, remote): a down or slow remote only delays itself, never
the commits or the other remotes. A failed push is retried with exponential backoff
(a new commit does not cut a backoff short), and a remote that comes back receives
everything it missed in one push. We never force: when the remote's branch is not an
ancestor of ours (someone pushed elsewhere, or reset it) the remote is *diverged*, it
is reported and left alone. dulwich does not raise when the server refuses a ref, so
``ref_status`` of every push is checked too.

What a remote has is remembered in ``refs/remotes/NAME/BRANCH`` (as git does), so the
unpushed count survives restarts and plain ``git log usb/master..`` agrees with us.

Credentials never leave in clear by default: unless the remote has
``allow_plaintext_secrets``, a push whose commit range holds a detected credential that
is not sealed (plaintext.py) sends nothing. The remote is *held*: the commits stay local,
the log says so once, ``status`` names the files, and nothing is retried until a new
commit arrives (``on_held`` lets the committer reseal the range when it has recipients).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dulwich.client import default_urllib3_manager, get_transport_and_path
from dulwich.file import FileLocked
from dulwich.objects import ZERO_SHA, Commit
from dulwich.repo import Repo
from dulwich.walk import Walker

from config_vcs.plaintext import PlaintextFinder
from config_vcs.repository import ConfigRepo, head_of

log = logging.getLogger(__name__)

_STATE_DIR = "tradevault"

# A push holds a ref's lock file for milliseconds; one this old on a remote in our own file
# system was left by a push that was killed, and would block every later push (and plain git).
STALE_LOCK_SECONDS = 10.0


@dataclass
class RemoteState:
    """What ``status()`` reports per remote (also persisted for offline status)."""

    name: str
    url: str
    remote_ref: str
    pushed: str | None = None  # last commit known to be on the remote
    unpushed: int = 0
    diverged: bool = False
    last_error: str | None = None
    last_attempt: str | None = None  # ISO 8601 UTC
    last_success: str | None = None
    failures: int = 0
    #: files whose plaintext credentials keep the unpushed commits local (empty: none)
    held: list[str] = field(default_factory=list)
    #: this remote receives credentials in clear (``allow_plaintext_secrets = true``)
    allow_plaintext_secrets: bool = False

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["url"] = redact_url(self.url)
        return out


def redact_url(url: str) -> str:
    """Never show a password embedded in an http(s) URL."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        userinfo, host = rest.split("@", 1)
        if ":" in userinfo:
            return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
    return url


def tracking_ref(name: str, remote_ref: bytes) -> bytes:
    branch = remote_ref[len(b"refs/heads/") :] if remote_ref.startswith(b"refs/heads/") else remote_ref
    return b"refs/remotes/" + name.encode() + b"/" + branch


def backoff_delay(failures: int, initial: float, maximum: float, rand: float = 0.5) -> float:
    """Exponential backoff with +-20 % jitter (``rand`` in [0, 1))."""
    base = min(maximum, initial * (2 ** max(0, failures - 1)))
    return max(0.0, min(maximum, base * (0.8 + 0.4 * rand)))


def is_ancestor(repo: Repo, ancestor: bytes, descendant: bytes) -> bool:
    """Is ``ancestor`` reachable from ``descendant`` (False when we lack the object)?"""
    if ancestor == descendant:
        return True
    if ancestor not in repo.object_store:
        return False
    seen: set[bytes] = set()
    todo = [descendant]
    while todo:
        sha = todo.pop()
        if sha == ancestor:
            return True
        if sha in seen:
            continue
        seen.add(sha)
        commit = repo.object_store[sha]
        if isinstance(commit, Commit):
            todo.extend(commit.parents)
    return False


def count_commits(repo: Repo, head: bytes | None, pushed: bytes | None) -> int:
    """Commits reachable from ``head`` but not from ``pushed``."""
    if head is None:
        return 0
    exclude = [pushed] if pushed is not None and pushed in repo.object_store else []
    return sum(1 for _ in Walker(repo.object_store, [head], exclude=exclude))


class RemotePusher:
    """The push thread of one remote; see the module docstring."""

    def __init__(
        self,
        repo: ConfigRepo,
        name: str,
        url: str,
        remote_ref: bytes | None = None,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
        timeout: float = 60.0,
        ssh_command: str = "ssh",
        warn: Callable[[str], None] | None = None,
        allow_plaintext: bool = False,
        on_held: Callable[[], None] | None = None,
        finder: PlaintextFinder | None = None,
    ) -> None:
        self.repo = repo
        self.name = name
        self.url = url
        self.allow_plaintext = allow_plaintext
        self.on_held = on_held  # called (push thread) when a push is held back
        self.finder = finder or PlaintextFinder()
        self._fixed_ref = remote_ref  # None: the branch HEAD points to
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.timeout = timeout
        # never prompt (no terminal in an agent); give up on dead hosts and connections
        self.ssh_command = (
            f"{ssh_command} -o BatchMode=yes -o ConnectTimeout={max(1, int(timeout))}"
            " -o ServerAliveInterval=15 -o ServerAliveCountMax=3"
        )
        self._warn = warn or log.warning
        self._cond = threading.Condition()
        self._pending = True  # catch up at start
        self._not_before = 0.0
        self._stopping = False
        self._final_push = False
        self._attempts = 0
        self._warned_held: list[str] = []
        self._thread: threading.Thread | None = None
        self._state = RemoteState(name=name, url=url, remote_ref="", allow_plaintext_secrets=allow_plaintext)
        self._load_state()

    # -- thread control ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"push-{self.repo.root.name}-{self.name}", daemon=True
        )
        self._thread.start()

    def notify(self) -> None:
        """A new commit exists; push it when the backoff (if any) allows."""
        with self._cond:
            self._pending = True
            self._cond.notify_all()

    def stop(self, *, final_push: bool, timeout: float) -> bool:
        """Stop the thread; with ``final_push`` it first tries once more (ignoring the
        backoff) to deliver what is pending. False when it did not finish in time."""
        with self._cond:
            self._stopping = True
            self._final_push = final_push
            self._cond.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def attempts(self) -> int:
        with self._cond:
            return self._attempts

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not (
                    self._pending and time.monotonic() >= self._not_before
                ):
                    wait = None if not self._pending else max(0.0, self._not_before - time.monotonic())
                    self._cond.wait(wait)
                if self._stopping:
                    break
                self._pending = False
            outcome = self._attempt()
            with self._cond:
                if outcome in _SETTLED:  # held: wait for the next commit, no retry loop
                    self._not_before = 0.0
                else:
                    delay = backoff_delay(
                        self._state.failures, self.backoff_initial, self.backoff_max, random.random()
                    )
                    self._not_before = time.monotonic() + delay
                    self._pending = True
        if self._final_push:
            state = self.state()
            if state.unpushed or state.last_error:
                self.push_once()

    # -- one push ----------------------------------------------------------------------------------

    def push_once(self) -> bool:
        """Try to bring the remote up to date now; True when it is."""
        return self._attempt() in _IN_SYNC

    def _attempt(self) -> str:
        """One push; the outcome: pushed, up-to-date, empty, held, diverged or error."""
        started = _now()
        outcome: str
        error: str | None = None
        remote_sha: bytes | None = None
        for attempt in (1, 2):
            try:
                with self.repo.store_lock.reading(), self.repo.open() as repo:
                    outcome, remote_sha, error = self._push(repo)
            except FileLocked as exc:  # a local remote: dulwich writes its refs itself
                outcome, error = "error", f"remote is locked: {os.fsdecode(exc.lockfilename)} exists"
                if attempt == 1 and remove_stale_lock(exc.lockfilename):
                    continue
            except Exception as exc:  # noqa: BLE001 - any failure of a remote is its own state
                outcome, error = "error", _one_line(exc)
            break
        self._record(outcome, error, remote_sha, started)
        return outcome

    def _remote_ref(self, repo: Repo) -> bytes | None:
        if self._fixed_ref is not None:
            return self._fixed_ref
        branch, _head = head_of(repo)
        return branch

    def _push(self, repo: Repo) -> tuple[str, bytes | None, str | None]:
        _branch, head = head_of(repo)
        remote_ref = self._remote_ref(repo)
        if head is None:
            return "empty", None, None
        if remote_ref is None:
            return "error", None, "HEAD is detached: nothing to push until a branch is checked out"
        self._state.remote_ref = remote_ref.decode()
        pool = None
        if self.url.startswith(("http://", "https://")):
            pool = default_urllib3_manager(None, base_url=self.url, timeout=self.timeout)
        client, path = get_transport_and_path(
            self.url,
            operation="push",
            quiet=True,
            ssh_command=self.ssh_command,
            pool_manager=pool,
        )
        seen: dict[str, object] = {}

        def update_refs(refs: dict[bytes, bytes]) -> dict[bytes, bytes]:
            remote = refs.get(remote_ref)
            if remote == ZERO_SHA:
                remote = None
            seen["remote"] = remote
            if remote == head:
                seen["kind"] = "up-to-date"
                return {}
            if remote is None or is_ancestor(repo, remote, head):
                held = [] if self.allow_plaintext else self.finder.range_files(repo, head, [remote])
                if held:
                    seen["kind"], seen["held"] = "held", held
                    return {}
                seen["kind"] = "push"
                return {remote_ref: head}
            seen["kind"] = "diverged"
            return {}

        def pack_data(have, want, *, ofs_delta=False, progress=None):  # type: ignore[no-untyped-def]
            return repo.generate_pack_data(set(have), set(want), progress=progress, ofs_delta=ofs_delta)

        result = client.send_pack(path.encode() if isinstance(path, str) else path, update_refs, pack_data)
        kind = seen.get("kind")
        remote = seen.get("remote")
        if kind == "diverged":
            return "diverged", remote, (  # type: ignore[return-value]
                f"remote {remote_ref.decode()} is at {remote.decode()[:10]}, "  # type: ignore[union-attr]
                f"which is not in our history: refusing to overwrite it"
            )
        if kind == "up-to-date":
            return "up-to-date", head, None
        if kind == "held":
            self._state.held = list(seen["held"])  # type: ignore[call-overload]
            return "held", remote, None  # type: ignore[return-value]
        if kind != "push":
            return "error", None, "the remote did not report its refs"
        status = (result.ref_status or {}).get(remote_ref)
        if status is not None:
            text = str(status)
            if any(word in text.lower() for word in ("non-fast-forward", "fetch first", "rejected", "stale")):
                return "diverged", remote, f"remote refused the update: {text}"  # type: ignore[return-value]
            return "error", remote, f"remote refused the update: {text}"  # type: ignore[return-value]
        return "pushed", head, None

    # -- state -------------------------------------------------------------------------------------

    def _record(self, outcome: str, error: str | None, remote_sha: bytes | None, started: str) -> None:
        state = self._state
        was_failing, was_diverged = state.last_error is not None, state.diverged
        state.last_attempt = started
        held_before = state.held
        if outcome in _IN_SYNC:
            state.held = []
        if outcome in ("pushed", "up-to-date"):
            state.diverged = False
            state.last_error = None
            state.failures = 0
            state.last_success = _now()
            if remote_sha is not None:
                self._set_tracking(remote_sha)
            if was_failing:
                log.info("config push to %s recovered", self.name)
            if held_before:
                self._warned_held = []
                log.info("config push to %s: nothing held back any more (no credential in clear)", self.name)
        elif outcome == "empty":
            state.last_error = None
        elif outcome == "held":
            state.diverged = False
            state.last_error = None
            if remote_sha is not None:
                self._set_tracking(remote_sha)  # what the remote has (it may have been reset)
            if state.held != self._warned_held:
                self._warned_held = list(state.held)
                self._warn(held_message(self.name, state.held))
            if self.on_held is not None:
                self.on_held()
        else:
            state.failures += 1
            state.diverged = outcome == "diverged"
            state.last_error = error
            if state.diverged and not was_diverged:
                self._warn(f"config remote {self.name} has diverged: {error}")
            elif not state.diverged and not was_failing:
                self._warn(f"config push to {self.name} failed (will retry): {error}")
        self._save_state()
        with self._cond:
            self._attempts += 1
            self._cond.notify_all()

    def _set_tracking(self, sha: bytes) -> None:
        ref = self._state.remote_ref.encode()
        if not ref:
            return
        try:
            with self.repo.open() as repo:
                repo.refs.set_if_equals(tracking_ref(self.name, ref), None, sha)
        except Exception as exc:  # noqa: BLE001 - only bookkeeping; the push itself succeeded
            log.debug("could not update tracking ref of %s: %s", self.name, exc)

    def state(self) -> RemoteState:
        """A copy of the state with a fresh unpushed count and held files: those of the
        last attempt and those the unpushed commits hold now (so status names them also
        while the remote is down, or before any agent ran)."""
        ref: bytes | None = None
        held = set() if self.allow_plaintext else set(self._state.held)
        try:
            with self.repo.open() as repo:
                branch, head = head_of(repo)
                ref = self._state.remote_ref.encode() or self._fixed_ref or branch
                pushed = repo.refs.as_dict().get(tracking_ref(self.name, ref)) if ref else None
                unpushed = count_commits(repo, head, pushed)
                if not self.allow_plaintext:
                    held.update(self.finder.range_files(repo, head, [pushed]))
        except Exception:  # noqa: BLE001
            pushed, unpushed = None, self._state.unpushed
        state = RemoteState(**asdict(self._state))
        state.held = sorted(held)
        state.pushed = pushed.decode() if pushed else None
        state.unpushed = unpushed
        if ref:
            state.remote_ref = ref.decode()
        return state

    def _state_path(self) -> Path:
        return self.repo.git_dir / _STATE_DIR / f"remote-{self.name}.json"

    def _save_state(self) -> None:
        path = self._state_path()
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._state.as_dict(), f)  # no password from an http URL
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("cannot save push state of %s: %s", self.name, exc)

    def _load_state(self) -> None:
        saved = load_saved_state(self.repo.git_dir, self.name)
        if saved is not None and saved.get("url") == redact_url(self.url):
            for key in ("diverged", "last_error", "last_attempt", "last_success", "failures", "held"):
                if key in saved:
                    setattr(self._state, key, saved[key])


_IN_SYNC = ("pushed", "up-to-date", "empty")
_SETTLED = (*_IN_SYNC, "held")


def held_message(name: str, files: list[str]) -> str:
    """The one log line (and status detail) of a held remote."""
    return (
        f"config push to {name} held: the unpushed commits hold credentials in clear "
        f"({', '.join(files)}); they stay local until [config_vcs] secret_recipients is set "
        f"(or allow_plaintext_secrets = true for {name})"
    )


def remove_stale_lock(path: str | bytes, now: float | None = None) -> bool:
    """Remove a ref lock file older than STALE_LOCK_SECONDS (True when it was removed)."""
    path = os.fsdecode(path)
    try:
        age = (time.time() if now is None else now) - os.stat(path).st_mtime
    except FileNotFoundError:
        return True  # gone meanwhile: worth another try
    if age < STALE_LOCK_SECONDS:
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    log.warning("removed %s, left %.0f s ago by a push that was interrupted", path, age)
    return True


def load_saved_state(git_dir: Path, name: str) -> dict[str, object] | None:
    """The last recorded state of a remote (for status without a running agent)."""
    try:
        return json.loads((git_dir / _STATE_DIR / f"remote-{name}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return redact_url(message)[:300]
