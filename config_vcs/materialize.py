"""Write files from the history into a directory without ever writing outside it.

Every path is checked (no ``..``, no ``.git``), every parent directory is created or
verified with ``lstat`` (a symlink or file standing where the tree has a directory is
replaced, never followed), and each file lands by rename from a temp file in the same
directory, so a reader (the trading bot) sees either the old or the new file. The temp
name matches the default ignore pattern ``*.tmp``, so a watcher never commits it.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from pathlib import Path

from config_vcs.errors import PathEscapes
from config_vcs.paths import check_tree_path
from config_vcs.scanner import MODE_EXEC, MODE_LINK

_GITLINK = 0o160000


def write_file(root: Path, rel: bytes, mode: int, data: bytes) -> bool:
    """Write one tree entry below ``root``; False for entries git trees may hold but a
    directory cannot (submodule links)."""
    check_tree_path(rel)
    if mode == _GITLINK:
        return False
    root_b = os.fsencode(os.path.abspath(root))
    parent = _ensure_parents(root_b, rel)
    name = rel.rsplit(b"/", 1)[-1]
    final = os.path.join(parent, name)
    tmp = os.path.join(parent, b".tradevault-" + uuid.uuid4().hex.encode() + b".tmp")
    try:
        if mode == MODE_LINK:
            os.symlink(data, tmp)
        else:
            perm = _permissions_for(final, mode)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, perm)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if _exists(final):  # keep its permissions exactly, whatever the umask
                    os.fchmod(fd, perm)
                os.fsync(fd)
            finally:
                os.close(fd)
        _clear_directory_at(final)
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def remove_file(root: Path, rel: bytes) -> None:
    """Delete one file or link below ``root`` and the directories it leaves empty."""
    check_tree_path(rel)
    root_b = os.fsencode(os.path.abspath(root))
    target = os.path.join(root_b, rel)
    _check_inside(root_b, os.path.dirname(target))
    try:
        os.unlink(target)
    except FileNotFoundError:
        return
    parent = os.path.dirname(rel)
    while parent:
        try:
            os.rmdir(os.path.join(root_b, parent))
        except OSError:
            break
        parent = os.path.dirname(parent)


def _ensure_parents(root: bytes, rel: bytes) -> bytes:
    current = root
    for part in rel.split(b"/")[:-1]:
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
            continue
        if not stat.S_ISDIR(st.st_mode):  # a file or a symlink where the tree has a dir
            os.unlink(current)
            os.mkdir(current)
    _check_inside(root, current)
    return current


def _check_inside(root: bytes, directory: bytes) -> None:
    real_root = os.path.realpath(root)
    real = os.path.realpath(directory)
    if real != real_root and not real.startswith(real_root.rstrip(b"/") + b"/"):
        raise PathEscapes(f"{os.fsdecode(directory)} resolves outside {os.fsdecode(root)}")


def _clear_directory_at(final: bytes) -> None:
    """The tree has a file where the directory has a sub-directory: the file wins."""
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(final)


def _exists(path: bytes) -> bool:
    try:
        os.lstat(path)
        return True
    except FileNotFoundError:
        return False


def _permissions_for(final: bytes, mode: int) -> int:
    """Keep an existing file's permissions (only the x bits follow the history);
    a new file gets the umask's default."""
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        return 0o777 if mode == MODE_EXEC else 0o666
    if not stat.S_ISREG(st.st_mode):
        return 0o777 if mode == MODE_EXEC else 0o666
    perm = stat.S_IMODE(st.st_mode)
    if mode == MODE_EXEC:
        return perm | ((perm & 0o444) >> 2)
    return perm & ~0o111
