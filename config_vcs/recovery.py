"""Recover a watched configuration directory that is gone or no longer a git work tree.

Order of sources: the local repository when only the files are gone (check out HEAD),
otherwise the first remote that holds the history (clone). Files that are still there are
never overwritten by a clone: only the history (``.git``) is put back under them, and the
next commit records whatever differs.

A fresh install and a lost history look alike on disk (no ``.git``). History counts as
lost only on evidence that it existed: a broken ``.git``, a remote holding the branch, or
the caller's record that it was created (``history_known``). Without any, the directory
is new: its history is created here (a first commit of what is there), not a failure.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping

from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.repo import Repo

from config_vcs.errors import BadInput, ConfigVcsError
from config_vcs.materialize import write_file
from config_vcs.options import Options
from config_vcs.paths import labels_for
from config_vcs.repository import head_of, tree_entries
from config_vcs.sealing import holds_ciphertext, is_sealed


@dataclass
class DirectoryRecovery:
    path: str
    problem: str = ""  # "" = healthy
    action: str = "none"
    ok: bool = True
    #: refused because sealed secrets cannot be decrypted here (bad input: exit 2)
    needs_identity: bool = False


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


def _holds_history(url: str, branch: bytes | None) -> bool:
    """Whether the remote has the branch (any branch when ``branch`` is None); raises
    when the remote cannot be reached."""
    refs = porcelain.ls_remote(url)
    names = set(getattr(refs, "refs", refs))
    if branch is not None:
        return (branch if branch.startswith(b"refs/") else b"refs/heads/" + branch) in names
    return any(name.startswith(b"refs/heads/") for name in names)


def clone_from_remotes(
    remotes: Mapping[str, str], branch: bytes | None, into: Path, *, checkout: bool = True
) -> tuple[str, str, bool]:
    """(remote name, error summary, some remote holds the history): clones the first
    remote that holds the history into ``into`` (without ``checkout``: the history only,
    no file of the work tree is written). A remote that answers without the branch is no
    evidence of lost history; one that cannot be reached is an error."""
    errors = []
    held = False
    for name, url in remotes.items():
        try:
            if not _holds_history(url, branch):
                errors.append(f"{name}: has no history yet")
                continue
            held = True
            porcelain.clone(url, str(into), checkout=checkout, errstream=io.BytesIO(),
                            branch=branch.removeprefix(b"refs/heads/") if branch else None)
            return name, "", True
        except Exception as exc:  # noqa: BLE001 - try the next remote
            errors.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            shutil.rmtree(into, ignore_errors=True)
    return "", "; ".join(errors) or "no remotes configured", held


def _create_history(root: Path, options: Options, report: DirectoryRecovery) -> None:
    """A directory that never had history gets it now: a first commit of what is there."""
    repo = options.repo(root, create=True)
    result = repo.commit_worktree(title="config: first commit of the existing files")
    files = len(result.changes) if result else 0
    report.action = (f"no history yet: created it with a first commit of {files} file(s)" if files
                     else "no history yet: created it (no files to commit yet)")


def _undecryptable(root: Path, options: Options) -> str | None:
    """Why the files of HEAD in ``root`` cannot be written in clear (their sealed secrets
    cannot be decrypted here), or None. Everything is decrypted once, nothing written."""
    try:
        repo = options.repo(root, create=False)
        with repo.open() as r:
            head = head_of(r)[1]
            if head is None:
                return None
            sealed = []
            for rel, (mode, sha) in sorted(tree_entries(r, r[head].tree).items()):
                if mode & 0o170000 == 0o100000:
                    data = r.object_store[sha].as_raw_string()
                    if holds_ciphertext(data):
                        sealed.append((rel.decode("utf-8", "replace"), data))
            repo.sealer.require_identity([name for name, _data in sealed])
            for name, data in sealed:
                repo.sealer.unseal(name, data)
    except BadInput as exc:
        return str(exc)
    return None


def _refuse(report: DirectoryRecovery, why: str) -> DirectoryRecovery:
    report.ok = False
    report.needs_identity = True
    report.action = f"refused: {why}"
    return report


def _unseal_worktree(root: Path, options: Options, report: DirectoryRecovery) -> None:
    """Files just checked out hold the committed form: decrypt their secrets with
    ``secret_identity_file``, or say which files still hold ciphertext."""
    try:
        repo = options.repo(root, create=False)
        with repo.open() as r:
            head = head_of(r)[1]
            if head is None:
                return
            pending = []
            for rel, (mode, sha) in sorted(tree_entries(r, r[head].tree).items()):
                if mode & 0o170000 != 0o100000:
                    continue
                data = r.object_store[sha].as_raw_string()
                if not is_sealed(data):
                    continue
                try:
                    on_disk = (root / rel.decode("utf-8", "surrogateescape")).read_bytes()
                except OSError:
                    continue
                if on_disk == data:
                    pending.append((rel, mode, data))
        still = []
        plain = []
        for rel, mode, data in pending:  # decrypt all first: a wrong key writes nothing
            text, encrypted = repo.sealer.unseal(rel.decode("utf-8", "replace"), data)
            (still if encrypted else plain).append((rel, mode, text))
        for rel, mode, text in plain:
            write_file(root, rel, mode, text)
    except ConfigVcsError as exc:
        report.action += f"; secrets not decrypted: {exc}"
        return
    if plain:
        report.action += f"; secrets decrypted in {len(plain)} file(s)"
    if still:
        names = ", ".join(rel.decode("utf-8", "replace") for rel, _m, _d in still)
        report.action += f"; still encrypted (set config_vcs.secret_identity_file): {names}"


def recover_directory(
    root: Path,
    remotes: Mapping[str, str],
    *,
    label_branch: bytes | None = None,
    options: Options | None = None,
    history_known: bool = False,
) -> DirectoryRecovery:
    """``history_known``: the caller recorded that this directory had history (so its
    absence is a loss, not a first run)."""
    root = root.absolute()
    report = DirectoryRecovery(path=str(root), problem=problem_of(root))
    if not report.problem:
        return report
    broken_git = (root / ".git").exists() or (root / ".git").is_symlink()
    options = options or Options()
    if root.exists() and (root / ".git").is_dir() and report.problem.startswith("every file"):
        why = _undecryptable(root, options)  # never ciphertext where the bot reads its config
        if why:
            return _refuse(report, why)
        porcelain.reset(str(root), "hard")
        report.action = "checked out the last commit from the local history"
        _unseal_worktree(root, options, report)
        return report
    scratch = Path(tempfile.mkdtemp(prefix=".tradevault-recover-", dir=root.parent if root.parent.exists() else None))
    try:
        clone = scratch / "clone"
        name, error, held = clone_from_remotes(remotes, label_branch, clone)
        if not name:
            if held or broken_git or history_known:
                evidence = ("a remote holds its history" if held else
                            "its .git is there but broken" if broken_git else
                            "its history was recorded as created")
                report.ok = False
                report.action = f"history lost ({evidence}) and no remote could be cloned ({error})"
                return report
            report.problem = "no history yet" + (" (directory missing)" if not root.exists() else "")
            _create_history(root, options, report)
            if remotes:
                report.action += f"; remotes: {error}"
            return report
        if not root.exists():
            why = _undecryptable(clone, options)
            if why:
                return _refuse(report, why)
            report.action = f"cloned from remote {name}"
            _unseal_worktree(clone, options, report)  # in clear before it becomes the directory
            clone.rename(root)
        else:
            broken = root / ".git"
            if broken.exists() or broken.is_symlink():  # kept beside the directory, not inside it
                broken.rename(root.parent / f".{root.name}.git.broken-{scratch.name[-8:]}")
            (clone / ".git").rename(root / ".git")
            report.action = f"history restored from remote {name}; existing files kept (committed next)"
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def recover_directories(
    paths: list[Path], remotes: Mapping[str, str], options: Options | None = None,
    known: Collection[Path] = (),
) -> list[DirectoryRecovery]:
    """Every watched directory; with several directories each lives on its own branch.
    ``options``: its ``secret_identity_file`` decrypts the secrets of checked-out files.
    ``known``: directories recorded as having had history (absolute paths)."""
    labels = labels_for([Path(p) for p in paths])
    single = len(paths) == 1
    known_set = {Path(k).absolute() for k in known}
    return [recover_directory(Path(p), remotes, label_branch=None if single else label.encode(),
                              options=options, history_known=Path(p).absolute() in known_set)
            for p, label in zip(paths, labels)]
