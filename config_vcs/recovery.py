"""Recover a watched configuration directory that is gone or no longer a git work tree.

Order of sources: the local repository when only the files are gone (check out HEAD),
otherwise the first remote that answers (clone). Files that are still there are never
overwritten by a clone: only the history (``.git``) is put back under them, and the next
commit records whatever differs.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.repo import Repo

from config_vcs.paths import labels_for


@dataclass
class DirectoryRecovery:
    path: str
    problem: str = ""  # "" = healthy
    action: str = "none"
    ok: bool = True


def _head_files(repo: Repo) -> int:
    try:
        tree = repo[repo[repo.head()].tree]
    except KeyError:
        return 0
    return sum(1 for _ in repo.object_store.iter_tree_contents(tree.id))


def problem_of(root: Path) -> str:
    if not root.exists():
        return "directory is missing"
    try:
        repo = Repo(str(root))
    except (NotGitRepository, OSError):
        return "not a git work tree any more (.git missing or broken)"
    try:
        try:
            repo.head()
        except KeyError:
            return ""  # a repository without commits yet is healthy (nothing to lose)
        visible = [p for p in root.iterdir() if p.name != ".git"]
        if not visible and _head_files(repo):
            return "every file is gone (the history still has them)"
        return ""
    finally:
        repo.close()


def _clone_from_remotes(remotes: Mapping[str, str], branch: bytes | None, into: Path) -> tuple[str, str]:
    """(remote name, error summary): clones the first remote that works into ``into``."""
    errors = []
    for name, url in remotes.items():
        try:
            porcelain.clone(url, str(into), checkout=True, errstream=io.BytesIO(), outstream=io.BytesIO(),
                            branch=branch)
            return name, ""
        except Exception as exc:  # noqa: BLE001 - try the next remote
            errors.append(f"{name}: {exc}")
            shutil.rmtree(into, ignore_errors=True)
    return "", "; ".join(errors) or "no remotes configured"


def recover_directory(root: Path, remotes: Mapping[str, str], *, label_branch: bytes | None = None) -> DirectoryRecovery:
    root = root.absolute()
    report = DirectoryRecovery(path=str(root), problem=problem_of(root))
    if not report.problem:
        return report
    if root.exists() and (root / ".git").is_dir() and report.problem.startswith("every file"):
        porcelain.reset(str(root), "hard")
        report.action = "checked out the last commit from the local history"
        return report
    scratch = Path(tempfile.mkdtemp(prefix=".tradevault-recover-", dir=root.parent if root.parent.exists() else None))
    try:
        clone = scratch / "clone"
        name, error = _clone_from_remotes(remotes, label_branch, clone)
        if not name:
            report.ok = False
            report.action = f"no remote could be cloned ({error})"
            return report
        if not root.exists():
            clone.rename(root)
            report.action = f"cloned from remote {name}"
        else:
            broken = root / ".git"
            if broken.exists() or broken.is_symlink():  # kept beside the directory, not inside it
                broken.rename(root.parent / f".{root.name}.git.broken-{scratch.name[-8:]}")
            (clone / ".git").rename(root / ".git")
            report.action = f"history restored from remote {name}; existing files kept (committed next)"
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def recover_directories(paths: list[Path], remotes: Mapping[str, str]) -> list[DirectoryRecovery]:
    """Every watched directory; with several directories each lives on its own branch."""
    labels = labels_for([Path(p) for p in paths])
    single = len(paths) == 1
    return [recover_directory(Path(p), remotes, label_branch=None if single else label.encode())
            for p, label in zip(paths, labels)]
