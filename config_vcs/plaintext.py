"""Which commits hold a detected credential in clear -- the question the push guard asks.

A remote without ``allow_plaintext_secrets`` never receives a commit range in which a
commit brings in a file that ``secrets.py`` flags and that is not sealed (a whole-file
age blob, or a file whose every secret value is an ``ENC[age,...]`` marker). Only what a
commit *introduces* (its entries that differ from its first parent's) is examined: what
the remote already has, it already has. Each commit's answer is cached, since a commit
never changes, so asking again on every push and every status costs a walk of the range.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable

from dulwich.diff_tree import tree_changes
from dulwich.objects import Commit
from dulwich.repo import Repo
from dulwich.walk import Walker

from config_vcs.commit_message import display_path
from config_vcs.sealing import FILE_HEADER, without_markers
from config_vcs.secrets import secret_reason

_CACHED_COMMITS = 10_000
_REGULAR = 0o100000


def plaintext_reason(path: str, data: bytes) -> str | None:
    """Why a committed blob holds a credential in clear (None: it holds none, or only
    sealed ones). The reason never contains the value."""
    if data.startswith(FILE_HEADER):
        return None
    return secret_reason(path, without_markers(data))


class PlaintextFinder:
    """Per repository: the files holding plaintext credentials that a commit, or a range
    of commits, introduces."""

    def __init__(self) -> None:
        self._commits: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()
        self._blobs: dict[tuple[bytes, bytes], bool] = {}
        self._lock = threading.Lock()  # shared by the push threads of one repository

    def commit_files(self, repo: Repo, commit: Commit) -> tuple[str, ...]:
        """Files this commit brings in (compared with its first parent) that hold a
        credential in clear."""
        with self._lock:
            return self._commit_files(repo, commit)

    def _commit_files(self, repo: Repo, commit: Commit) -> tuple[str, ...]:
        cached = self._commits.get(commit.id)
        if cached is not None:
            self._commits.move_to_end(commit.id)
            return cached
        parent_tree = repo.object_store[commit.parents[0]].tree if commit.parents else None  # type: ignore[attr-defined]
        found = []
        for change in tree_changes(repo.object_store, parent_tree, commit.tree):
            new = change.new
            if new is None or new.path is None or new.sha is None or new.mode is None:
                continue
            if new.mode & 0o170000 != _REGULAR:
                continue  # symlinks, submodules: no content of ours
            if self._blob_holds_plaintext(repo, new.path, new.sha):
                found.append(display_path(new.path))
        result = tuple(sorted(found))
        self._commits[commit.id] = result
        while len(self._commits) > _CACHED_COMMITS:
            self._commits.popitem(last=False)
        return result

    def _blob_holds_plaintext(self, repo: Repo, path: bytes, sha: bytes) -> bool:
        key = (path, sha)
        known = self._blobs.get(key)
        if known is None:
            data = repo.object_store[sha].as_raw_string()
            known = plaintext_reason(os.fsdecode(path), data) is not None
            if len(self._blobs) > 4 * _CACHED_COMMITS:
                self._blobs.clear()
            self._blobs[key] = known
        return known

    def range_files(self, repo: Repo, head: bytes | None, exclude: Iterable[bytes | None] = ()) -> list[str]:
        """Files holding plaintext credentials in the commits reachable from ``head`` but
        not from ``exclude`` (what a push of ``head`` to a remote at ``exclude`` sends).
        An ``exclude`` we do not have is ignored: then the whole history counts."""
        if head is None:
            return []
        known = [sha for sha in exclude if sha is not None and sha in repo.object_store]
        files: set[str] = set()
        for entry in Walker(repo.object_store, [head], exclude=known):
            files.update(self.commit_files(repo, entry.commit))
        return sorted(files)
