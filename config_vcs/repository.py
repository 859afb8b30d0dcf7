"""One watched directory and the plain git repository inside it (``DIR/.git``).

The only module that writes to a repository. A commit is: walk the work tree
(scanner), build the tree, and if it differs from HEAD's tree, write a commit on top of
*the current* HEAD with the same protocol as git itself -- take ``index.lock``, move
the branch with a compare-and-swap, write the index -- so a concurrent manual
``git commit`` either finishes first (and we build on top of it) or waits for us.
Between tradevault processes (agent + a CLI checkout) a ``flock`` on
``.git/tradevault.lock`` makes us one writer per repository.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from dulwich.errors import NotGitRepository
from dulwich.file import FileLocked, GitFile
from dulwich.index import (
    FLAG_VALID,
    IndexChecksumWriter,
    IndexEntry,
    index_entry_from_stat,
    read_index_dict,
    write_index_dict,
)
from dulwich.index import commit_tree as build_tree
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo
from dulwich.walk import ORDER_TOPO, Walker

from config_vcs.commit_message import Change, diff_entries, format_message
from config_vcs.content import HEADER_BYTES, content_reason
from config_vcs.errors import BadInput, NotARepository, RepositoryBusy
from config_vcs.ignore import PathFilter, StaticIgnore, literal, managed_block, merge_exclude_file
from config_vcs.plaintext import plaintext_reason
from config_vcs.protected import ProtectedFiles
from config_vcs.reasons import CONTENT_REASONS, DATABASE, GITIGNORE, SQLITE
from config_vcs.scanner import MODE_LINK, Scanner, Snapshot
from config_vcs.sealing import Sealer
from primitives.file_lock import exclusive_lock

log = logging.getLogger(__name__)

Entries = dict[bytes, tuple[int, bytes]]
_IDENTITY = re.compile(r"^[^<>\n]+ <[^<>\n]*>$")
_LOCK_FILE = "tradevault.lock"
_DETECTED = "# left out for their contents (SQLite, size, binary):"


def parse_identity(text: str) -> bytes:
    """``"Name <email>"`` -> bytes for a commit; anything else is a configuration error."""
    text = text.strip()
    if not _IDENTITY.match(text):
        raise BadInput(f"not a git identity (want 'Name <email>'): {text!r}")
    return text.encode("utf-8")


@dataclass(frozen=True)
class Identity:
    """Who commits, and from which host (the ``Host:`` trailer)."""

    author: bytes = b"tradevault <tradevault@localhost>"
    committer: bytes | None = None  # None = same as author
    host: str = field(default_factory=socket.gethostname)

    @classmethod
    def from_strings(cls, author: str, committer: str = "", host: str = "") -> "Identity":
        return cls(
            author=parse_identity(author),
            committer=parse_identity(committer) if committer else None,
            host=host or socket.gethostname(),
        )


@dataclass(frozen=True)
class CommitResult:
    commit: bytes  # hex id
    parent: bytes | None
    changes: list[Change]
    message: str


class _Busy:
    """Marker: try again (git holds index.lock / the branch lock, or HEAD moved)."""


_BUSY = _Busy()


class _ReadWriteLock:
    """Pushers read the object store while a repack rewrites it: many readers, one writer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing_if_idle(self) -> Iterator[bool]:
        """Yields False (and does not wait) when a reader is busy, e.g. a slow push."""
        with self._cond:
            got = not self._writer and self._readers == 0
            if got:
                self._writer = True
        try:
            yield got
        finally:
            if got:
                with self._cond:
                    self._writer = False
                    self._cond.notify_all()


class ConfigRepo:
    """A watched directory with its ``.git``; see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        identity: Identity | None = None,
        static_ignore: StaticIgnore | None = None,
        max_file_size: int = 1024 * 1024,
        warn: Callable[[str], None] | None = None,
        busy_timeout: float = 10.0,
        sealer: Sealer | None = None,
        protected: ProtectedFiles | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.git_dir = self.root / ".git"
        self.identity = identity or Identity()
        self.static_ignore = static_ignore or StaticIgnore()
        self.warn = warn or log.warning
        #: encrypts secrets before they are committed (when it has recipients) and
        #: decrypts them for checkout/show/diff (when it has the identity)
        self.sealer = sealer or Sealer(warn=self.warn)
        self.sealer.attach(self.git_dir)
        self.scanner = Scanner(
            self.root, max_file_size, warn,
            seal=self.sealer.seal if self.sealer.enabled else None, protected=protected,
        )
        #: what the last scan left out (path -> reason), for status; replaced whole
        self.last_excluded: dict[bytes, str] = {}
        self._block_detected: tuple[str, ...] | None = None  # in .git/info/exclude now
        self.busy_timeout = busy_timeout
        self.store_lock = _ReadWriteLock()
        self._thread_lock = threading.Lock()
        self._lock_owner: int | None = None
        self._entries_cache: tuple[bytes, Entries] | None = None

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open_or_init(cls, root: Path, **kwargs: object) -> "ConfigRepo":
        """Adopt ``root/.git`` if it exists, else create it (mode 0700)."""
        self = cls(root, **kwargs)  # type: ignore[arg-type]
        if self.root.exists() and not self.root.is_dir():
            raise BadInput(f"{self.root} is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.git_dir.exists():
            Repo.init(str(self.root)).close()
            log.info("created configuration history in %s", self.git_dir)
        elif not (self.git_dir / "HEAD").exists():
            raise NotARepository(f"{self.git_dir} exists but is not a git repository")
        os.chmod(self.git_dir, 0o700)
        with self.write_lock():
            self._write_info_exclude()
            self.tighten_permissions()
        return self

    @classmethod
    def open_existing(cls, root: Path, **kwargs: object) -> "ConfigRepo":
        """For history commands: never creates anything."""
        self = cls(root, **kwargs)  # type: ignore[arg-type]
        if not (self.git_dir / "HEAD").is_file():
            raise NotARepository(f"no configuration history in {self.root} (no .git)")
        return self

    @contextmanager
    def open(self) -> Iterator[Repo]:
        """A fresh dulwich Repo per operation: sees other writers' refs and packs."""
        try:
            repo = Repo(str(self.root))
        except NotGitRepository:
            raise NotARepository(f"no configuration history in {self.root}") from None
        try:
            yield repo
        finally:
            repo.close()

    def head(self) -> tuple[bytes | None, bytes | None]:
        """(branch ref or None when HEAD is detached, commit id or None when empty)."""
        with self.open() as repo:
            return head_of(repo)

    # -- locking -----------------------------------------------------------------------

    @contextmanager
    def write_lock(self, timeout: float | None = None) -> Iterator[None]:
        """One tradevault writer per repository, across threads and processes.

        Re-entrant within a thread (a second ``flock`` on a new descriptor would
        otherwise wait for ourselves).
        """
        if self._lock_owner == threading.get_ident():
            yield
            return
        timeout = self.busy_timeout if timeout is None else timeout
        if not self._thread_lock.acquire(timeout=timeout):
            raise RepositoryBusy(f"{self.root}: another writer is busy")
        try:
            def busy() -> RepositoryBusy:
                return RepositoryBusy(f"{self.root}: another tradevault process is writing")

            with exclusive_lock(self.git_dir / _LOCK_FILE, timeout, busy, poll=0.05):
                self._lock_owner = threading.get_ident()
                self._clear_locks_of_a_dead_commit()
                try:
                    yield
                finally:
                    self._lock_owner = None
        finally:
            self._thread_lock.release()

    # -- locks left by a killed commit ---------------------------------------------------

    @property
    def _marker(self) -> Path:
        return self.git_dir / "tradevault" / "committing"

    def _committing(self, active: bool) -> None:
        """While we hold git's locks, a marker says so: if we are killed in between, the
        next writer knows the lock files are ours and stale, not a user's git command."""
        if active:
            self._marker.parent.mkdir(mode=0o700, exist_ok=True)
            self._marker.write_text(str(os.getpid()))
        else:
            self._marker.unlink(missing_ok=True)

    def _clear_locks_of_a_dead_commit(self) -> None:
        """Called holding our flock: no other tradevault writer is alive, so a marker left
        behind means its commit was killed; the git lock files created since are its own."""
        try:
            since = self._marker.stat().st_mtime - 1.0
        except FileNotFoundError:
            return
        candidates = [self.git_dir / "index.lock", self.git_dir / "HEAD.lock",
                      *(self.git_dir / "refs").rglob("*.lock")]
        for lock in candidates:
            try:
                if lock.stat().st_mtime >= since:
                    lock.unlink()
                    log.warning("%s: removed %s left by a killed commit", self.root, lock.name)
            except FileNotFoundError:
                pass
        self._marker.unlink(missing_ok=True)

    # -- committing ----------------------------------------------------------------------

    def commit_worktree(
        self, *, title: str | None = None, when: int | None = None
    ) -> CommitResult | None:
        """Commit the work tree if it differs from HEAD; None when nothing changed."""
        with self.write_lock():
            return self.commit_locked(title=title, when=when)

    def commit_locked(
        self, *, title: str | None = None, when: int | None = None, refresh_index: bool = False
    ) -> CommitResult | None:
        """``commit_worktree`` for a caller already holding ``write_lock``.

        Retries while git's own locks are held (a manual ``git commit`` in progress) or
        HEAD moved under us; gives up with RepositoryBusy after ``busy_timeout``. With
        ``refresh_index`` the index is rewritten even when nothing is committed (HEAD's
        blobs changed under it, as after ``reseal_unpushed``).
        """
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.02
        while True:
            outcome = self._try_commit(title, when, refresh_index)
            if not isinstance(outcome, _Busy):
                return outcome
            if time.monotonic() >= deadline:
                raise RepositoryBusy(
                    f"{self.root}: git's index.lock or branch lock stayed held for "
                    f"{self.busy_timeout:.0f}s (a manual git command, or a stale lock file)"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _try_commit(
        self, title: str | None, when: int | None, refresh_index: bool = False
    ) -> CommitResult | None | _Busy:
        """One attempt; _BUSY when git's locks are held or HEAD moved meanwhile."""
        try:
            return self._commit_attempt(title, when, refresh_index)
        except FileLocked as exc:
            lock = Path(os.fsdecode(exc.lockfilename))
            if (self.git_dir / "objects") not in lock.parents:
                raise
            # Only dulwich writes objects/**/*.lock (git writes tmp_obj_* files), and we hold
            # the flock that keeps other tradevault writers out: the lock is a killed
            # writer's. An object is named by its content, so the next attempt writes the
            # very one it was writing; left there, the lock would block it forever.
            lock.unlink(missing_ok=True)
            log.warning("%s: removed %s left by a killed writer", self.root, lock.name)
            return _BUSY

    def _commit_attempt(
        self, title: str | None, when: int | None, refresh_index: bool
    ) -> CommitResult | None | _Busy:
        with self.open() as repo:
            _branch, head = head_of(repo)
            old = self.entries_of(repo, head)
            snapshot = self.scan(repo, old)
            new = snapshot.entries()
            for path in snapshot.unreadable:  # keep the last good version, do not "delete" it
                if path in old:
                    new[path] = old[path]
            if new == old:
                if head is not None and (refresh_index or not os.path.exists(repo.index_path())):
                    self._write_index_if_free(repo, snapshot, new)
                return None
            untracked = self._untracked(old, new, snapshot)
            changes = diff_entries(old, new, kept=untracked)
            message = format_message(changes, self.identity.host, title=title)
            tree_id = build_tree(
                repo.object_store, [(path, sha, mode) for path, (mode, sha) in new.items()]
            )
            commit = self._make_commit(tree_id, head, message, when)
            repo.object_store.add_object(commit)
            self._committing(True)
            try:
                index_file = GitFile(repo.index_path(), "wb", mask=0o600)
            except FileLocked:
                self._committing(False)
                return _BUSY
            try:
                reflog = (b"commit (initial): " if head is None else b"commit: ") + (
                    message.splitlines()[0].encode("utf-8")
                )
                kwargs = dict(
                    committer=commit.committer,
                    timestamp=commit.commit_time,
                    timezone=0,
                    message=reflog,
                )
                if head is None:
                    moved = repo.refs.add_if_new(b"HEAD", commit.id, **kwargs)  # type: ignore[arg-type]
                else:
                    moved = repo.refs.set_if_equals(b"HEAD", head, commit.id, **kwargs)  # type: ignore[arg-type]
            except FileLocked:
                index_file.abort()
                self._committing(False)
                return _BUSY
            except BaseException:
                index_file.abort()
                self._committing(False)
                raise
            if not moved:  # a manual commit landed meanwhile: redo on top of it
                index_file.abort()
                self._committing(False)
                return _BUSY
            self._write_index(index_file, repo, snapshot, new)
            self._committing(False)
        self.tighten_permissions()
        if untracked:
            self._say_untracked(untracked)
        return CommitResult(commit.id, head, changes, message)

    def _untracked(self, old: Entries, new: Entries, snapshot: Snapshot) -> dict[bytes, str]:
        """Paths HEAD holds that are still on disk but no longer configuration (an older
        version, or a plain ``git commit``, recorded them): path -> reason. They leave the
        tree in this commit and stay on disk."""
        out: dict[bytes, str] = {}
        for path in old.keys() - new.keys():
            try:
                os.lstat(os.path.join(os.fsencode(self.root), path))
            except (FileNotFoundError, NotADirectoryError):
                continue  # really deleted
            reason = snapshot.excluded.get(path)
            parent = path
            while reason is None and b"/" in parent:
                parent = parent.rsplit(b"/", 1)[0]
                reason = snapshot.excluded.get(parent + b"/")
            out[path] = reason or GITIGNORE
        return out

    def _say_untracked(self, untracked: dict[bytes, str]) -> None:
        by_reason: dict[str, list[str]] = {}
        for path, reason in sorted(untracked.items()):
            by_reason.setdefault(reason, []).append(os.fsdecode(path))
        listed = "; ".join(
            f"{reason}: {', '.join(paths[:5])}" + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
            for reason, paths in by_reason.items()
        )
        self.warn(
            f"{self.root}: {len(untracked)} file(s) recorded earlier are not configuration and "
            f"were untracked in this commit ({listed}); they stay on disk, and earlier commits "
            "(and copies already pushed) still hold them: see README, 'What config history versions'"
        )
    def reseal_unpushed(self) -> int:
        """Seal the credentials left in clear in the commits that no remote has yet.

        Commits made before ``secret_recipients`` was set hold plaintext; the push guard
        keeps them local. Once there are recipients, those commits -- only those reachable
        from HEAD and from no ``refs/remotes/*`` (what we know some remote has) -- are
        rewritten with each such blob sealed (same messages, authors and times; a commit
        left with nothing to change, because it only sealed what its parent now seals, is
        dropped). Returns the number of commits rewritten; 0 when there is nothing to do,
        nothing that may be rewritten, or HEAD moved meanwhile (the next call retries).
        """
        if not self.sealer.enabled:
            return 0
        with self.write_lock():
            with self.open() as repo:
                branch, head = head_of(repo)
                if head is None or branch is None:
                    return 0
                store = repo.object_store
                keep = [sha for sha in repo.refs.as_dict(b"refs/remotes/").values() if sha in store]
                commits = [
                    e.commit
                    for e in Walker(store, [head], exclude=keep, order=ORDER_TOPO, reverse=True)
                ]
                self.sealer.prepare(store, self.entries_of(repo, head))
                blobs: dict[tuple[bytes, bytes], bytes] = {}
                new_ids: dict[bytes, bytes] = {}
                rewritten = 0
                for commit in commits:
                    entries = tree_entries(repo, commit.tree)
                    changed = False
                    for path, (mode, sha) in entries.items():
                        if mode & 0o170000 != 0o100000:
                            continue
                        if (path, sha) not in blobs:
                            blobs[(path, sha)] = self._sealed_blob(store, path, sha)
                        if blobs[(path, sha)] != sha:
                            entries[path] = (mode, blobs[(path, sha)])
                            changed = True
                    parents = [new_ids.get(p, p) for p in commit.parents]
                    if not changed and parents == commit.parents:
                        new_ids[commit.id] = commit.id
                        continue
                    tree = commit.tree if not changed else build_tree(
                        store, [(p, sha, mode) for p, (mode, sha) in entries.items()]
                    )
                    rewritten += 1
                    if len(parents) == 1 and store[parents[0]].tree == tree and (  # type: ignore[attr-defined]
                        store[commit.parents[0]].tree != commit.tree  # type: ignore[attr-defined]
                    ):
                        new_ids[commit.id] = parents[0]
                        continue
                    copy = _copy_commit(commit, tree, parents)
                    store.add_object(copy)
                    new_ids[commit.id] = copy.id
                new_head = new_ids.get(head, head)
                if new_head == head:
                    return 0
                self._committing(True)  # the branch lock is ours while HEAD moves
                try:
                    moved = repo.refs.set_if_equals(
                        b"HEAD", head, new_head,
                        committer=self.identity.committer or self.identity.author,
                        timestamp=int(time.time()), timezone=0,
                        message=b"tradevault: seal the credentials of unpushed commits",
                    )
                finally:
                    self._committing(False)
                if not moved:
                    return 0
            self.sealer.save()
            self.commit_locked(refresh_index=True)
        log.info("%s: sealed the credentials of %d unpushed commit(s)", self.root, rewritten)
        return rewritten

    def _sealed_blob(self, store: object, path: bytes, sha: bytes) -> bytes:
        data = store[sha].as_raw_string()  # type: ignore[index]
        name = os.fsdecode(path)
        if plaintext_reason(name, data) is None:
            return sha
        sealed = Blob.from_string(self.sealer.seal(name, data))
        store.add_object(sealed)  # type: ignore[attr-defined]
        return sealed.id

    def scan(self, repo: Repo, old: Entries) -> Snapshot:
        """Walk the work tree into ``repo``'s store (secrets sealed); ``old``: HEAD's entries.

        The caller holds ``write_lock`` (the sealer's cache is written here).
        """
        if self.sealer.enabled:
            self.sealer.prepare(repo.object_store, old)
        snapshot = self.scanner.scan(
            PathFilter.for_repo(repo, self.static_ignore),
            repo.object_store,
            known={sha for _mode, sha in old.values()},
        )
        if self.sealer.enabled:
            self.sealer.save({os.fsdecode(p) for p in snapshot.files} | {os.fsdecode(p) for p in snapshot.unreadable})
        self.last_excluded = dict(snapshot.excluded)
        self._write_info_exclude(snapshot.excluded)
        return snapshot

    def left_out(
        self, rel: bytes, mode: int, data: bytes, snapshot: Snapshot, pfilter: PathFilter
    ) -> str | None:
        """Why a file from the history is not configuration here now, or None: an in-place
        checkout never writes such a file (an old commit may hold the live database)."""
        if rel in snapshot.excluded:
            return snapshot.excluded[rel]
        if self.scanner.protected.contains(os.path.join(os.path.realpath(self.root), os.fsdecode(rel))):
            return DATABASE
        text = os.fsdecode(rel)
        reason = pfilter.path_reason(text)
        if reason is not None or mode == MODE_LINK or pfilter.included(text):
            return reason
        name = text.rsplit("/", 1)[-1]
        return content_reason(name, data[:HEADER_BYTES], len(data), self.scanner.max_file_size)

    def path_filter(self, repo: Repo) -> PathFilter:
        """The rules by name as they are now (the .gitignore files included)."""
        return PathFilter.for_repo(repo, self.static_ignore)

    def ignores(self, rel: str, is_dir: bool = False) -> bool:
        """For the watcher: events on this path can never change a commit (a rule by name,
        the protected database, or a database the last scan found)."""
        if self.static_ignore.ignores(rel, is_dir):
            return True
        if is_dir:
            return False
        real = os.path.join(os.path.realpath(self.root), rel)
        if self.scanner.protected.contains(real):
            return True
        key = os.fsencode(rel.replace(os.sep, "/"))
        if self.last_excluded.get(key) in (DATABASE, SQLITE):
            return True
        base, _sep, name = key.rpartition(b"/")
        for suffix in (b"-wal", b"-shm", b"-journal"):
            if name.endswith(suffix):
                db = (base + b"/" if base else b"") + name[: -len(suffix)]
                return self.last_excluded.get(db) in (DATABASE, SQLITE)
        return False

    def _make_commit(
        self, tree_id: bytes, parent: bytes | None, message: str, when: int | None
    ) -> Commit:
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [parent] if parent else []
        commit.author = self.identity.author
        commit.committer = self.identity.committer or self.identity.author
        commit.author_time = commit.commit_time = int(time.time()) if when is None else int(when)
        commit.author_timezone = commit.commit_timezone = 0  # UTC
        commit.message = message.encode("utf-8")
        return commit

    def _write_index(self, index_file: object, repo: Repo, snapshot: Snapshot, entries: Entries) -> None:
        """Make the index match the new commit so ``git status`` is clean."""
        previous: dict = {}
        try:
            with open(repo.index_path(), "rb") as f:
                previous = read_index_dict(f)
        except (OSError, ValueError, AssertionError):
            pass
        index: dict[bytes, IndexEntry] = {}
        for path, (mode, sha) in entries.items():
            scanned = snapshot.files.get(path)
            if scanned is not None and scanned.sha == sha:
                index[path] = index_entry_from_stat(scanned.stat, sha, mode=mode)
                if scanned.sealed:  # work tree = plaintext, blob = ciphertext: git must not
                    # re-hash it (status noise, or `git commit -a` committing the secret)
                    index[path] = replace(index[path], flags=index[path].flags | FLAG_VALID)
            else:
                old = previous.get(path)
                if isinstance(old, IndexEntry) and old.sha == sha:
                    index[path] = old
                else:  # no trustworthy stat: zeros make git re-hash the file
                    index[path] = IndexEntry(0, 0, 0, 0, mode, 0, 0, 0, sha)
        try:
            writer = IndexChecksumWriter(index_file)  # type: ignore[arg-type]
            write_index_dict(writer, index)  # type: ignore[arg-type]
            writer.close()
        except BaseException:
            index_file.abort()  # type: ignore[attr-defined]
            raise

    def _write_index_if_free(self, repo: Repo, snapshot: Snapshot, entries: Entries) -> None:
        """The index rewritten unless git holds it. Like a commit, under the "committing"
        marker: a kill while ``index.lock`` is ours must not leave a lock that the next
        writer takes for a user's git command (it would never commit again)."""
        self._committing(True)
        try:
            try:
                index_file = GitFile(repo.index_path(), "wb", mask=0o600)
            except FileLocked:
                return
            self._write_index(index_file, repo, snapshot, entries)
        finally:
            self._committing(False)

    def entries_of(self, repo: Repo, commit_id: bytes | None) -> Entries:
        """Flat ``{path: (mode, blob)}`` of a commit's tree (cached for the last tree)."""
        if commit_id is None:
            return {}
        tree_id = repo.object_store[commit_id].tree  # type: ignore[attr-defined]
        if self._entries_cache is not None and self._entries_cache[0] == tree_id:
            return dict(self._entries_cache[1])
        entries = tree_entries(repo, tree_id)
        self._entries_cache = (tree_id, entries)
        return dict(entries)

    # -- housekeeping ----------------------------------------------------------------------

    def set_remotes(self, remotes: dict[str, str]) -> None:
        """Record remotes in .git/config so plain ``git push NAME`` / ``git fetch`` work."""
        with self.open() as repo:
            config = repo.get_config()
            changed = False
            for name, url in remotes.items():
                section = (b"remote", name.encode())
                try:
                    current = config.get(section, b"url")
                except KeyError:
                    current = None
                if current != url.encode():
                    config.set(section, b"url", url.encode())
                    config.set(section, b"fetch", f"+refs/heads/*:refs/remotes/{name}/*".encode())
                    changed = True
            if changed:
                config.write_to_path()
        self.tighten_permissions()

    def repack(self) -> bool:
        """Pack loose objects (and consolidate many packs) so big histories stay fast.

        Skipped (False) while a push is reading the store; the next call retries.
        """
        with self.write_lock(), self.store_lock.writing_if_idle() as idle:
            if not idle:
                return False
            with self.open() as repo:
                store = repo.object_store
                packed = store.pack_loose_objects()
                if len(store.packs) > 16:
                    store.repack()
            self.tighten_permissions()
            log.debug("%s: packed %d loose objects", self.root, packed)
            return True

    def loose_object_count(self) -> int:
        objects = self.git_dir / "objects"
        count = 0
        for sub in objects.glob("[0-9a-f][0-9a-f]"):
            try:
                count += len(os.listdir(sub))
            except OSError:
                pass
        return count

    def tighten_permissions(self) -> None:
        """.git is private: directories 0700, files at most 0600 (owner bits kept)."""
        for dirpath, dirnames, filenames in os.walk(self.git_dir):
            for name in dirnames:
                _tighten(os.path.join(dirpath, name), 0o700)
            for name in filenames:
                _tighten(os.path.join(dirpath, name), 0o600)
        _tighten(str(self.git_dir), 0o700)

    def _write_info_exclude(self, excluded: dict[bytes, str] | None = None) -> None:
        """The managed block: the rules by name, the protected database and, after a scan,
        the files left out for their contents, so ``git status`` lists none of them.

        Without ``excluded`` (opening) the content-detected lines already there are kept.
        """
        path = self.git_dir / "info" / "exclude"
        try:
            existing = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            existing = ""
        protected = [literal(p) for p in self.scanner.protected.below(self.root)]
        if excluded is not None:
            detected = tuple(sorted(
                line for line in (
                    literal(os.fsdecode(p)) for p, reason in excluded.items()
                    if reason in CONTENT_REASONS and b"\n" not in p
                ) if line not in protected
            ))
            if detected == self._block_detected:
                return
        else:
            block = managed_block(existing)
            detected = tuple(block[block.index(_DETECTED) + 1:]) if _DETECTED in block else ()
        self._block_detected = detected
        patterns = [*self.static_ignore.patterns, *protected]
        if detected:
            patterns += [_DETECTED, *detected]
        wanted = merge_exclude_file(existing, patterns)
        if wanted != existing:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            tmp = path.with_name("exclude.tradevault-tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(wanted)
            os.replace(tmp, path)


def _tighten(path: str, limit: int) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & ~limit:
        try:
            os.chmod(path, mode & limit)
        except OSError:
            pass


def _copy_commit(old: Commit, tree: bytes, parents: list[bytes]) -> Commit:
    """``old`` with another tree and parents (a signature would no longer hold: dropped)."""
    new = Commit()
    new.tree = tree
    new.parents = parents
    new.author, new.committer = old.author, old.committer
    new.author_time, new.author_timezone = old.author_time, old.author_timezone
    new.commit_time, new.commit_timezone = old.commit_time, old.commit_timezone
    new.encoding = old.encoding
    new.message = old.message
    return new


def head_of(repo: Repo) -> tuple[bytes | None, bytes | None]:
    """(branch ref or None when detached, commit id or None when the branch is unborn)."""
    chain, sha = repo.refs.follow(b"HEAD")
    branch = chain[-1] if chain and chain[-1] != b"HEAD" else None
    return branch, sha


def tree_entries(repo: Repo, tree_id: bytes) -> Entries:
    """Flat ``{path: (mode, blob)}`` of a tree (submodule entries included as is)."""
    return {
        entry.path: (entry.mode, entry.sha)
        for entry in repo.object_store.iter_tree_contents(tree_id)
    }

