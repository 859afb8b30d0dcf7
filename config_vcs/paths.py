"""Path rules shared by the history commands (pure, no disk access).

A path named on the command line or found in a tree is only ever used *below* a target
directory: it must be relative, must not climb out with ``..`` and must not reach into
``.git``. Absolute paths are accepted when they lie inside the watched directory.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

from config_vcs.errors import PathEscapes


def tree_path(path: str | bytes, root: Path | None = None) -> bytes:
    """A user-supplied path -> normalised ``/``-separated bytes relative to ``root``.

    ``""`` and ``"."`` mean the whole tree (``b""``). Raises PathEscapes.
    """
    text = os.fsdecode(path) if isinstance(path, bytes) else path
    if os.path.isabs(text):
        if root is None:
            raise PathEscapes(f"absolute path not allowed here: {text}")
        absolute = os.path.normpath(text)
        base = os.path.normpath(os.path.abspath(root))
        if absolute != base and not absolute.startswith(base.rstrip(os.sep) + os.sep):
            raise PathEscapes(f"{text} is outside {base}")
        text = os.path.relpath(absolute, base)
    text = text.replace(os.sep, "/")
    normal = posixpath.normpath(text) if text else "."
    if normal == ".":
        return b""
    if normal == ".." or normal.startswith("../") or normal.startswith("/"):
        raise PathEscapes(f"{text} escapes the target directory")
    if ".git" in normal.split("/"):
        raise PathEscapes(f"{text} is inside .git")
    return os.fsencode(normal)


def check_tree_path(path: bytes) -> bytes:
    """A path read from a git tree: refuse anything that could write outside the target."""
    parts = path.split(b"/")
    if (
        not path
        or path.startswith(b"/")
        or any(part in (b"", b".", b"..", b".git") for part in parts)
        or b"\0" in path
    ):
        raise PathEscapes(f"refusing unsafe path in history: {path!r}")
    return path


def in_scope(path: bytes, scope: Sequence[bytes]) -> bool:
    """Is ``path`` one of the ``scope`` paths or below one of them (empty scope = all)."""
    if not scope:
        return True
    return any(not s or path == s or path.startswith(s + b"/") for s in scope)


def labels_for(paths: Sequence[Path]) -> list[str]:
    """A short unique name per watched directory (its base name, suffixed on clashes):
    the remote branch when several directories share remotes, the sub-directory when
    several are restored into one place."""
    labels: list[str] = []
    for path in paths:
        base = Path(os.path.abspath(path)).name or "root"
        label, n = base, 2
        while label in labels:
            label, n = f"{base}-{n}", n + 1
        labels.append(label)
    return labels
