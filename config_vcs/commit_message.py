"""What changed between two snapshots, and the commit message that says so.

Pure functions over ``{path: (mode, blob id)}`` maps. A message lists paths and the
kind of change, never contents (contents may be secrets and messages are shown
everywhere). Renames are recognised when a deleted and an added path hold the very same
blob, which is what an editor's or a bot's ``mv`` produces. A path that leaves the tree
while its file stays on disk (the rules now say it is not configuration) is
``untracked``, with its reason, and never the source of a rename.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: (git mode, hex blob id) of one path in a snapshot.
Entry = tuple[int, bytes]

ADDED, MODIFIED, DELETED, RENAMED = "added", "modified", "deleted", "renamed"
UNTRACKED = "untracked"  # left the history, still on disk
_EMPTY_BLOB = b"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
_SYMBOL = {ADDED: "+", MODIFIED: "~", DELETED: "-", RENAMED: "~", UNTRACKED: "-"}


@dataclass(frozen=True, order=True)
class Change:
    path: bytes
    kind: str
    old_path: bytes | None = None  # renames only
    reason: str | None = None  # untracked only: why it is not configuration (reasons.py)

    def as_dict(self) -> dict[str, str]:
        out = {"path": display_path(self.path), "change": self.kind}
        if self.old_path is not None:
            out["from"] = display_path(self.old_path)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def diff_entries(
    old: Mapping[bytes, Entry],
    new: Mapping[bytes, Entry],
    kept: Mapping[bytes, str] | None = None,
) -> list[Change]:
    """Changes turning ``old`` into ``new``, sorted by path.

    ``kept``: paths that leave the tree but stay on disk -> reason (``untracked``).
    """
    kept = kept or {}
    added = [p for p in new if p not in old]
    deleted = [p for p in old if p not in new and p not in kept]
    changes = [Change(p, MODIFIED) for p in new if p in old and old[p] != new[p]]
    by_blob: dict[bytes, list[bytes]] = {}
    for path in sorted(deleted):
        sha = old[path][1]
        if sha != _EMPTY_BLOB:  # every empty file has this id: pairing them means nothing
            by_blob.setdefault(sha, []).append(path)
    for path in sorted(added):
        sources = by_blob.get(new[path][1])
        if sources:
            source = sources.pop(0)
            deleted.remove(source)
            changes.append(Change(path, RENAMED, source))
        else:
            changes.append(Change(path, ADDED))
    changes.extend(Change(p, DELETED) for p in deleted)
    changes.extend(Change(p, UNTRACKED, reason=r) for p, r in kept.items() if p in old and p not in new)
    return sorted(changes)


def summary_line(changes: Iterable[Change]) -> str:
    """``config: 3 files changed (+1 ~1 -1)``; a rename counts as a change (~); untracked
    files count as removed and are also named: ``(+0 ~1 -2, 2 untracked)``."""
    counts = {"+": 0, "~": 0, "-": 0}
    total = untracked = 0
    for change in changes:
        counts[_SYMBOL[change.kind]] += 1
        total += 1
        untracked += change.kind == UNTRACKED
    noun = "file" if total == 1 else "files"
    extra = f", {untracked} untracked" if untracked else ""
    return f"config: {total} {noun} changed (+{counts['+']} ~{counts['~']} -{counts['-']}{extra})"


def format_message(
    changes: list[Change],
    host: str,
    *,
    title: str | None = None,
    max_listed: int = 1000,
) -> str:
    """Summary line, blank line, one line per path, blank line, ``Host:`` trailer."""
    lines = [title or summary_line(changes), ""]
    for change in changes[:max_listed]:
        if change.kind == RENAMED and change.old_path is not None:
            lines.append(
                f"{change.kind}: {display_path(change.old_path)} -> {display_path(change.path)}"
            )
        elif change.kind == UNTRACKED:
            lines.append(f"{change.kind}: {display_path(change.path)} ({change.reason}; kept on disk)")
        else:
            lines.append(f"{change.kind}: {display_path(change.path)}")
    if len(changes) > max_listed:
        lines.append(f"... and {len(changes) - max_listed} more")
    untracked = sum(1 for c in changes if c.kind == UNTRACKED)
    if untracked:
        lines += ["", (f"Untracked {untracked} file(s) that are not configuration (the protected "
                       "database, SQLite files, logs, data, large or binary files, or excluded): "
                       "they stay on disk, and earlier commits still hold them.")]
    lines += ["", f"Host: {host}", ""]
    return "\n".join(lines)


_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f",
            0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}


def display_path(path: bytes) -> str:
    """A path as git shows it with core.quotePath=false: UTF-8 as is, C-quoted when
    it holds control characters, quotes, backslashes or bytes that are not UTF-8."""
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:  # octal escapes for every byte outside printable ASCII
        return '"' + "".join(_escape(b) if b in _ESCAPES or not 32 <= b < 127 else chr(b) for b in path) + '"'
    if not any(ord(ch) in _ESCAPES or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return text
    return '"' + "".join(
        _escape(ord(ch)) if ord(ch) in _ESCAPES or ord(ch) < 32 or ord(ch) == 127 else ch for ch in text
    ) + '"'


def _escape(byte: int) -> str:
    return _ESCAPES.get(byte, f"\\{byte:03o}")
