"""Reading the configuration history back: log, diff, show, checkout, "as of time T".

These are what ``tradevault config ...`` and the restore command call. Read-only
operations open the repository fresh each time; a checkout into the watched directory
takes the repository's write lock, first commits whatever is there (so nothing is
lost), then writes the files and commits the result as ``restore PATHS to REV``.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository
from dulwich.index import commit_tree as build_tree
from dulwich.object_store import (
    BaseObjectStore,
    MemoryObjectStore,
    OverlayObjectStore,
    tree_lookup_path,
)
from dulwich.objects import Blob, Commit, Tree
from dulwich.objectspec import parse_commit
from dulwich.patch import write_tree_diff
from dulwich.repo import Repo
from dulwich.walk import Walker

from config_vcs.commit_message import Change, diff_entries, display_path
from config_vcs.errors import BadInput, BadTime, IntegrityFailure, NotARepository, UnknownRevision
from config_vcs.ignore import PathFilter
from config_vcs.materialize import remove_file, write_file
from config_vcs.options import Options
from config_vcs.paths import in_scope, labels_for, tree_path
from config_vcs.reasons import DATABASE
from config_vcs.recovery import clone_from_remotes
from config_vcs.repository import ConfigRepo, Entries, head_of, tree_entries
from config_vcs.scanner import Scanner
from config_vcs.sealing import holds_ciphertext, is_sealed

# -- time and revisions ---------------------------------------------------------------------

_REV = re.compile(r"^(?P<base>[^~^]*)(?P<suffix>(?:[~^]\d*)*)$")
_SUFFIX = re.compile(r"([~^])(\d*)")


def heads(paths: Sequence[Path]) -> dict[str, str]:
    """The commit each watched directory is at, by absolute path (directories without
    history or without a commit are left out): what a restore point's config is."""
    found = {}
    for path in paths:
        try:
            repo = Repo(str(path))
        except (NotGitRepository, OSError):
            continue
        try:
            found[str(Path(path).absolute())] = repo.head().decode()
        except KeyError:
            pass
        finally:
            repo.close()
    return found


def parse_time(text: str) -> datetime:
    """ISO 8601 -> aware UTC datetime; a naive time is UTC. Raises BadTime."""
    value = text.strip()
    if value[-1:] in ("z", "Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadTime(f"not an ISO 8601 time: {text!r} (e.g. 2024-05-01T12:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def resolve_commit(repo: Repo, rev: str) -> Commit:
    """``HEAD``, ``HEAD~2``, a (short) commit id, a branch or tag -> Commit."""
    if head_of(repo)[1] is None:
        raise UnknownRevision(f"{rev}: the history is empty (no commit yet)")
    match = _REV.match(rev.strip())
    if not match:
        raise UnknownRevision(f"unknown revision: {rev}")
    try:
        commit = parse_commit(repo, (match.group("base") or "HEAD").encode("utf-8"))
        for op, count in _SUFFIX.findall(match.group("suffix")):
            n = int(count) if count else 1
            if op == "^":  # n-th parent (^0: the commit itself)
                commit = commit if n == 0 else repo.object_store[commit.parents[n - 1]]
            else:  # ~n: n-th first-parent ancestor
                for _ in range(n):
                    commit = repo.object_store[commit.parents[0]]
    except (KeyError, ValueError, NotImplementedError, IndexError):
        raise UnknownRevision(f"unknown revision: {rev}") from None
    assert isinstance(commit, Commit)
    return commit


def commit_at(repo: Repo, when: datetime) -> Commit:
    """The last commit at or before ``when`` (first-parent history of HEAD).

    Commit times have one-second resolution; of several commits in the same second the
    newest wins. Raises BadTime when the history starts after ``when``.
    """
    _branch, head = head_of(repo)
    if head is None:
        raise BadTime("the history is empty (no commit yet)")
    limit = int(when.timestamp())
    best: Commit | None = None
    sha: bytes | None = head
    while sha is not None:
        commit = repo.object_store[sha]
        assert isinstance(commit, Commit)
        if commit.commit_time <= limit and (best is None or commit.commit_time > best.commit_time):
            best = commit
        sha = commit.parents[0] if commit.parents else None
    if best is None:
        raise BadTime(f"no configuration recorded at or before {when.isoformat()}")
    return best


def commit_time(commit: Commit) -> datetime:
    return datetime.fromtimestamp(commit.commit_time, UTC)


# -- log ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    commit: str
    time: datetime
    author: str
    summary: str
    message: str
    changes: list[Change] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "author": self.author,
            "summary": self.summary,
            "message": self.message,
            "files": [c.as_dict() for c in self.changes],
        }


def log(
    repo: ConfigRepo,
    path: str | None = None,
    *,
    rev: str = "HEAD",
    limit: int | None = None,
) -> list[LogEntry]:
    """Newest first; with ``path`` only the commits touching it (a file or a directory)."""
    scope = tree_path(path, repo.root) if path else b""
    with repo.open() as r:
        if head_of(r)[1] is None:
            return []
        start = resolve_commit(r, rev)
        walker = Walker(
            r.object_store, [start.id], paths=[scope] if scope else None, max_entries=limit
        )
        out = []
        for entry in walker:
            commit = entry.commit
            parent_tree = r.object_store[commit.parents[0]].tree if commit.parents else None
            changes = changes_between(r.object_store, parent_tree, commit.tree, [scope] if scope else None)
            message = commit.message.decode("utf-8", errors="replace")
            out.append(
                LogEntry(
                    commit=commit.id.decode(),
                    time=commit_time(commit),
                    author=commit.author.decode("utf-8", errors="replace"),
                    summary=message.split("\n", 1)[0],
                    message=message,
                    changes=changes,
                )
            )
        return out


def changes_between(
    store: BaseObjectStore,
    old_tree: bytes | None,
    new_tree: bytes | None,
    paths: list[bytes] | None = None,
) -> list[Change]:
    """Changes between two trees, renames paired by identical blob (as in commit messages)."""
    old: Entries = {}
    new: Entries = {}
    for change in tree_changes(store, old_tree, new_tree):
        if change.old is not None and change.old.path is not None and in_scope(change.old.path, paths or []):
            old[change.old.path] = (change.old.mode, change.old.sha)  # type: ignore[assignment]
        if change.new is not None and change.new.path is not None and in_scope(change.new.path, paths or []):
            new[change.new.path] = (change.new.mode, change.new.sha)  # type: ignore[assignment]
    return diff_entries(old, new)


# -- encrypted secrets ----------------------------------------------------------------------------


class _Unsealer:
    """Decrypts the blobs one read operation hands out (see sealing.py) and remembers
    which had to stay encrypted (no identity file), to say so once at the end."""

    def __init__(self, repo: ConfigRepo, learn: bool = False) -> None:
        self.repo = repo
        self.learn = learn and repo.sealer.enabled
        self.still: set[str] = set()

    def data(self, rel: bytes, data: bytes, blob_id: bytes | None = None) -> bytes:
        if not is_sealed(data):
            return data
        name = display_path(rel)
        plain, still = self.repo.sealer.unseal(name, data, learn=self.learn, blob_id=blob_id)
        if still:
            self.still.add(name)
        return plain

    def report(self) -> None:
        if self.still:
            names = sorted(self.still)
            self.repo.warn(
                f"{len(names)} file(s) still hold encrypted secrets (ENC[age,...] values or an "
                f"age-encrypted file) because config_vcs.secret_identity_file is not set: "
                + ", ".join(names)
            )


def _is_file(mode: int) -> bool:
    return mode & 0o170000 == 0o100000


def _store_entries(store: BaseObjectStore, tree_id: bytes | None) -> Entries:
    if tree_id is None:
        return {}
    return {e.path: (e.mode, e.sha) for e in store.iter_tree_contents(tree_id)}  # type: ignore[misc]


def _plain_trees(
    store: BaseObjectStore, old_tree: bytes | None, new_tree: bytes | None, unsealer: _Unsealer
) -> tuple[BaseObjectStore, bytes | None, bytes | None]:
    """The two trees with the encrypted blobs of the files that differ decrypted (in a
    memory store, never in the repository), so a diff shows what really changed."""
    sides = [_store_entries(store, old_tree), _store_entries(store, new_tree)]
    changed = {p for p in set(sides[0]) | set(sides[1]) if sides[0].get(p) != sides[1].get(p)}
    overlay = OverlayObjectStore([MemoryObjectStore(), store])
    overlay.add_store = overlay.bases[0]  # never write into the repository
    touched = [False, False]
    for i, entries in enumerate(sides):
        for path in sorted(changed & set(entries)):
            mode, sha = entries[path]
            if not _is_file(mode):
                continue
            data = store[sha].as_raw_string()
            plain = unsealer.data(path, data)
            if plain != data:
                blob = Blob.from_string(plain)
                overlay.add_object(blob)
                entries[path] = (mode, blob.id)
                touched[i] = True
    if not any(touched):
        return store, old_tree, new_tree
    trees = [
        build_tree(overlay, [(p, sha, mode) for p, (mode, sha) in entries.items()])
        if touched[i] else tree
        for i, (entries, tree) in enumerate(zip(sides, (old_tree, new_tree)))
    ]
    return overlay, trees[0], trees[1]


# -- diff and show ------------------------------------------------------------------------------


def diff(repo: ConfigRepo, rev_a: str, rev_b: str | None = None) -> tuple[bytes, list[Change]]:
    """Unified diff (and the list of changes) from ``rev_a`` to ``rev_b``; without
    ``rev_b``, to the directory as it is now (as ``git diff REV`` does)."""
    unsealer = _Unsealer(repo)
    with repo.open() as r:
        old_tree = resolve_commit(r, rev_a).tree
        store: BaseObjectStore = r.object_store
        if rev_b is not None:
            new_tree = resolve_commit(r, rev_b).tree
        else:
            overlay = OverlayObjectStore([MemoryObjectStore(), r.object_store])
            overlay.add_store = overlay.bases[0]  # never write into the repository
            # the work tree as it is (plaintext), compared with decrypted history
            scanner = repo.scanner if not repo.sealer.enabled else Scanner(
                repo.root, repo.scanner.max_file_size, repo.warn, protected=repo.scanner.protected
            )
            snapshot = scanner.scan(PathFilter.for_repo(r, repo.static_ignore), overlay)
            new_tree = build_tree(
                overlay, [(p, sha, mode) for p, (mode, sha) in snapshot.entries().items()]
            )
            store = overlay
        store, old_tree, new_tree = _plain_trees(store, old_tree, new_tree, unsealer)
        changes = changes_between(store, old_tree, new_tree)
        out = io.BytesIO()
        write_tree_diff(out, store, old_tree, new_tree)
        unsealer.report()
        return out.getvalue(), changes


def show(repo: ConfigRepo, spec: str) -> bytes:
    """``REV:PATH`` -> the file's bytes (a directory: its listing; a symlink: its target);
    ``REV`` -> the commit's message and patch."""
    rev, sep, path = spec.partition(":")
    unsealer = _Unsealer(repo)
    with repo.open() as r:
        commit = resolve_commit(r, rev or "HEAD")
        if not sep:
            parent_tree = r.object_store[commit.parents[0]].tree if commit.parents else None
            out = io.BytesIO()
            out.write(b"commit " + commit.id + b"\n")
            out.write(b"Author: " + commit.author + b"\n")
            out.write(f"Date:   {commit_time(commit).isoformat()}\n\n".encode())
            out.write(commit.message.rstrip(b"\n") + b"\n\n")
            store, old_tree, new_tree = _plain_trees(r.object_store, parent_tree, commit.tree, unsealer)
            write_tree_diff(out, store, old_tree, new_tree)
            unsealer.report()
            return out.getvalue()
        rel = tree_path(path, repo.root)
        if not rel:
            obj = r.object_store[commit.tree]
            mode = 0o040000
        else:
            try:
                mode, sha = tree_lookup_path(r.object_store.__getitem__, commit.tree, rel)
            except KeyError:
                raise UnknownRevision(f"{path} does not exist in {rev or 'HEAD'}") from None
            obj = r.object_store[sha]
        if isinstance(obj, Tree):
            names = [
                e.path + (b"/" if e.mode == 0o040000 else b"") for e in obj.iteritems()
            ]
            return b"".join(n + b"\n" for n in names)
        if isinstance(obj, Blob):
            data = obj.as_raw_string()
            if _is_file(mode):
                data = unsealer.data(rel, data)
                unsealer.report()
            return data
        raise UnknownRevision(f"{spec} is not a file or directory")


# -- checkout -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutResult:
    source: str  # commit id the files came from
    target: Path
    written: list[str]
    deleted: list[str]
    commit: str | None = None  # the "restore" commit (in-place checkout only)
    #: in the revision but not written: not configuration now (in place), or the protected
    #: database (anywhere): path -> reason
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": str(self.target),
            "written": self.written,
            "deleted": self.deleted,
            "commit": self.commit,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped.items()],
        }


def checkout(
    repo: ConfigRepo,
    *,
    rev: str | None = None,
    at: datetime | str | None = None,
    to: Path | None = None,
    paths: Sequence[str] = (),
) -> CheckoutResult:
    """Bring files back as they were at ``rev`` or at time ``at``.

    With ``to`` the files are written below that directory (nothing else there is
    touched). Without it they are written into the watched directory, which then
    mirrors the revision within ``paths`` (later files there are removed; they stay
    in the history) and the result is committed as ``restore PATHS to REV``; files of
    the revision that the rules say are not configuration now (an old commit holding
    the live database, logs, data) are never written there (``skipped``); nor is the
    protected database ever overwritten through ``to``.
    """
    if (rev is None) == (at is None):
        raise BadInput("give exactly one of --rev or --at")
    when = parse_time(at) if isinstance(at, str) else at
    scope = [tree_path(p, repo.root) for p in paths]
    if to is None:
        with repo.write_lock():
            source = _source(repo, rev, when)  # REV means what it meant before we commit
            with repo.open() as r:  # no key for its sealed secrets: refuse before committing
                entries = tree_entries(r, r.object_store[source].tree)  # type: ignore[attr-defined]
                repo.sealer.require_identity(
                    _ciphertext_files(r, {p: e for p, e in entries.items() if in_scope(p, scope)})
                )
            repo.commit_locked()  # whatever is there now is kept in the history first
            return _checkout_locked(repo, source, rev, when, None, scope, paths)
    return _checkout_locked(repo, _source(repo, rev, when), rev, when, Path(to), scope, paths)


def _ciphertext_files(r: Repo, entries: Entries) -> list[str]:
    """The regular files among ``entries`` whose committed form holds ciphertext."""
    return [
        display_path(rel)
        for rel, (mode, sha) in sorted(entries.items())
        if _is_file(mode) and sha in r.object_store and holds_ciphertext(r.object_store[sha].as_raw_string())
    ]


def _source(repo: ConfigRepo, rev: str | None, when: datetime | None) -> bytes:
    with repo.open() as r:
        commit = resolve_commit(r, rev) if rev is not None else commit_at(r, when)  # type: ignore[arg-type]
        return commit.id


def _checkout_locked(
    repo: ConfigRepo,
    source_id: bytes,
    rev: str | None,
    when: datetime | None,
    to: Path | None,
    scope: list[bytes],
    raw_paths: Sequence[str],
) -> CheckoutResult:
    target = to if to is not None else repo.root
    with repo.open() as r:
        source = r.object_store[source_id]
        assert isinstance(source, Commit)
        entries = tree_entries(r, source.tree)
        selected = {p: e for p, e in entries.items() if in_scope(p, scope)}
        for rel, raw in zip(scope, raw_paths):
            if rel and not any(in_scope(p, [rel]) for p in selected):
                label = rev if rev is not None else f"{when.isoformat() if when else ''}"
                raise BadInput(f"{raw} did not exist at {label} ({source.id[:10].decode()})")
        current: Entries = {}
        snapshot = None
        if to is None:
            snapshot = repo.scan(r, repo.entries_of(r, head_of(r)[1]))
            current = snapshot.entries()
            pfilter = repo.path_filter(r)
        # decrypt everything first: a missing or wrong identity must fail before any file
        # is written, and ciphertext is never written where a bot reads its config
        unsealer = _Unsealer(repo, learn=to is None)  # learn: the restore commit reuses REV's blobs
        raw: list[tuple[bytes, int, bytes, bytes]] = []
        skipped: dict[str, str] = {}
        for rel, (mode, sha) in sorted(selected.items()):
            if current.get(rel) == (mode, sha):
                continue
            try:
                raw.append((rel, mode, sha, r.object_store[sha].as_raw_string()))
            except KeyError:
                raise IntegrityFailure(f"object {sha.decode()} of {display_path(rel)} is missing") from None
        repo.sealer.require_identity(
            [display_path(rel) for rel, mode, _sha, data in raw if _is_file(mode) and holds_ciphertext(data)]
        )
        pending: list[tuple[bytes, int, bytes]] = []
        for rel, mode, sha, data in raw:
            if _is_file(mode):
                data = unsealer.data(rel, data, sha)
            if snapshot is not None:
                reason = repo.left_out(rel, mode, data, snapshot, pfilter)
            else:  # another directory: only never over the protected database itself
                real = os.path.join(os.path.realpath(target), os.fsdecode(rel))
                reason = DATABASE if repo.scanner.protected.contains(real) else None
            if reason is not None:
                skipped[display_path(rel)] = reason
                continue
            pending.append((rel, mode, data))
        target.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        for rel, mode, data in pending:
            if write_file(target, rel, mode, data):
                written.append(display_path(rel))
        unsealer.report()
        if skipped:
            repo.warn(
                f"{len(skipped)} file(s) of {source.id[:10].decode()} not written into {target}: "
                f"not configuration now ({', '.join(f'{p} ({r})' for p, r in list(skipped.items())[:5])}"
                + (", ..." if len(skipped) > 5 else "") + ")"
            )
        deleted: list[str] = []
        if to is None:
            for rel in sorted(current):
                if in_scope(rel, scope) and rel not in selected:
                    remove_file(target, rel)
                    deleted.append(display_path(rel))
    restore_commit = None
    if to is None:
        short = source.id[:10].decode()
        what = _describe_paths(raw_paths)
        suffix = f" (as of {when.isoformat().replace('+00:00', 'Z')})" if when is not None else ""
        result = repo.commit_locked(title=f"config: restore {what} to {short}{suffix}")
        restore_commit = result.commit.decode() if result else None
    return CheckoutResult(source.id.decode(), target, written, deleted, restore_commit, skipped)


def _describe_paths(paths: Sequence[str]) -> str:
    if not paths:
        return "all files"
    if len(paths) <= 3:
        return ", ".join(paths)
    return f"{len(paths)} paths"


# -- configuration as of an instant (for restore) -------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    watched: Path
    target: Path
    commit: str | None  # None: nothing was recorded at that time
    files: int


def write_config_at(
    repos: Sequence[ConfigRepo], when: datetime | str, dest: Path
) -> list[ExportResult]:
    """Write every watched directory as it was at ``when`` into ``dest``.

    One directory goes straight into ``dest``; several go into ``dest/<label>``
    (their base names, made unique). A directory without history at ``when`` is
    reported with ``commit=None`` rather than failing the whole restore.
    """
    instant = parse_time(when) if isinstance(when, str) else when
    labels = labels_for([r.root for r in repos])
    results = []
    for repo, label in zip(repos, labels):
        target = Path(dest) if len(repos) == 1 else Path(dest) / label
        try:
            source = _source(repo, None, instant)
        except BadTime:
            results.append(ExportResult(repo.root, target, None, 0))
            continue
        result = _checkout_locked(repo, source, None, instant, target, [], ())
        results.append(ExportResult(repo.root, target, result.source, len(result.written)))
    return results


@contextmanager
def _history_of(
    root: Path, options: Options, remotes: Mapping[str, str], branch: bytes | None
) -> Iterator[ConfigRepo | None]:
    """The history of a watched directory: its own ``.git``, else (a new machine) a clone
    of the first remote that answers, history only, in a temporary directory removed
    afterwards; None when there is neither."""
    try:
        local: ConfigRepo | None = options.repo(root, create=False)
    except NotARepository:
        local = None
    if local is not None or not remotes:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="tradevault-history-") as scratch:
        clone = Path(scratch) / "clone"
        name, _error, _held = clone_from_remotes(remotes, branch, clone, checkout=False)
        yield options.repo(clone, create=False) if name else None


def _branches(roots: Sequence[Path]) -> list[bytes | None]:
    """The remote branch of each directory (several directories share remotes by label)."""
    return [None] * len(roots) if len(roots) == 1 else [label.encode() for label in labels_for(roots)]


def require_readable_config(
    paths: Sequence[Path | str],
    earliest: datetime,
    latest: datetime,
    options: Options | None = None,
    remotes: Mapping[str, str] | None = None,
) -> None:
    """Before a restore writes anything: the configuration as of any instant between
    ``earliest`` and ``latest`` (where the restored point will be) can be written in
    clear here. Its sealed secrets are decrypted now (a missing or wrong identity is
    MissingIdentity / BadInput, exit 2); directories without history are fine."""
    options = options or Options()
    roots = [Path(p) for p in paths]
    for root, branch in zip(roots, _branches(roots)):
        with _history_of(root, options, remotes or {}, branch) as repo:
            if repo is not None:
                _require_readable(repo, earliest, latest)


def _require_readable(repo: ConfigRepo, earliest: datetime, latest: datetime) -> None:
    with repo.open() as r:
        head = head_of(r)[1]
        if head is None:
            return
        try:
            commits = [commit_at(r, earliest)]
        except BadTime:
            commits = []
        commits += [
            entry.commit for entry in Walker(r.object_store, [head])
            if earliest.timestamp() < entry.commit.commit_time <= latest.timestamp()
        ]
        seen: set[bytes] = set()
        for commit in commits:
            entries = {p: e for p, e in tree_entries(r, commit.tree).items() if e[1] not in seen}
            seen.update(sha for _mode, sha in entries.values())
            names = _ciphertext_files(r, entries)
            repo.sealer.require_identity(names)
            for rel, (_mode, sha) in entries.items():
                if display_path(rel) in names:
                    repo.sealer.unseal(display_path(rel), r.object_store[sha].as_raw_string())


def export_config_at(
    paths: Sequence[Path | str],
    when: datetime | str,
    dest: Path,
    options: Options | None = None,
    remotes: Mapping[str, str] | None = None,
) -> list[ExportResult]:
    """``write_config_at`` by directory names: what ``restore --config-to DIR`` calls.

    Same layout (one directory: ``dest``; several: ``dest/<label>``). A directory without
    its ``.git`` (a new machine) is read from the first of ``remotes`` that answers;
    directories without any history are reported with ``commit=None``.
    """
    options = options or Options()
    roots = [Path(p) for p in paths]
    labels = labels_for(roots)
    results: list[ExportResult] = []
    for root, label, branch in zip(roots, labels, _branches(roots)):
        target = Path(dest) if len(roots) == 1 else Path(dest) / label
        with _history_of(root, options, remotes or {}, branch) as repo:
            if repo is None:
                results.append(ExportResult(root.absolute(), target, None, 0))
                continue
            results.extend(replace(r, watched=root.absolute()) for r in write_config_at([repo], when, target))
    return results
