"""Restore, location catch-up and ``config checkout`` never write outside their target.

Hostile inputs: a manifest entry (validly sealed into the hash chain with
``trade_stream.manifest.seal``) whose object name climbs out with ``../`` or is absolute;
a config history whose commits hold a symlink pointing outside followed by a file below
that symlink's name, tree entries named ``..`` and absolute-looking names.

Every test snapshots the whole sandbox before and after and allows changes only where the
command may write (the target, the locations' own source directories, scratch space).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import msgspec
import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from tests.campaigns.common import SOURCE, Env, private_root, tv
from trade_stream.manifest import decode_entry, encode_entry, seal


def tree_state(root: Path) -> dict[str, str]:
    state = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            state[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def changes_outside(before: dict[str, str], after: dict[str, str], allowed: list[str]) -> list[str]:
    changed = [p for p in set(before) | set(after) if before.get(p) != after.get(p)]
    return sorted(p for p in changed if not any(p == a or p.startswith(a + "/") for a in allowed))


@pytest.fixture
def sandbox():
    root = private_root("security")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _hostile_store(sandbox: Path, object_name: str) -> Env:
    """Two locations; entry 2 (in location ``a`` only) names ``object_name``; its hash and
    the chain link are valid, and a real object lies where the name points."""
    env = Env.create(sandbox / "env", ("a", "b"), transactions=40)
    env.ok("backup", "full")
    from tradevault.workload import TradingWorkload

    w = TradingWorkload(env.db, seed=5)
    w.run(30)
    w.close()
    env.ok("backup", "incremental")
    a, b = env.location_dir("a"), env.location_dir("b")
    first = decode_entry((a / "manifest" / "0000000001.json").read_bytes(), "1")
    second = decode_entry((a / "manifest" / "0000000002.json").read_bytes(), "2")
    hostile = seal(msgspec.structs.replace(second, object=object_name), first)
    (a / "manifest" / "0000000002.json").write_bytes(encode_entry(hostile))
    # the real object where the hostile name points (relative to the source directory)
    if not object_name.startswith("/"):
        target = (a / object_name).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(a / second.object, target)
    (b / "manifest" / "0000000002.json").unlink()  # b lacks it: catch-up would copy it there
    return env


@pytest.mark.parametrize("object_name", ["../../../outside/evil.tvo", "objects/../../../escape.tvo",
                                         "/tmp/tradevault-absolute-evil.tvo"])
def test_hostile_object_names_in_a_manifest_entry_never_write_outside(sandbox, object_name):
    env = _hostile_store(sandbox, object_name)
    target = sandbox / "restored" / "out.sqlite"
    target.parent.mkdir()
    before = tree_state(sandbox)
    absolute = Path("/tmp/tradevault-absolute-evil.tvo")
    existed = absolute.exists()
    results = [env.tv("locations", "sync"), env.tv("backup", "incremental"), env.tv("verify", "--json"),
               env.tv("restore", "--to", f"sqlite:///{target}", "--json")]
    after = tree_state(sandbox)
    allowed = [f"env/backups-{n}/{SOURCE}" for n in ("a", "b")] + ["env/work", "env/.tradevault", "restored",
                                                                    "env/tradesv3.sqlite", "env/tradesv3.sqlite-wal",
                                                                    "env/tradesv3.sqlite-shm"]
    for result in results:
        print(result.args, result.rc, result.err.strip()[-200:])
    outside = changes_outside(before, after, allowed)
    assert not outside, f"written outside the locations/target: {outside}\n" + "\n".join(map(str, results))
    if not existed:
        assert not absolute.exists(), "an absolute object name was written to /tmp"
    for result in results:
        assert "Traceback" not in result.err, str(result)
    restore = results[3]
    assert restore.rc in (0, 2, 3), str(restore)


# -- config history ------------------------------------------------------------------------


def _commit(repo: Repo, tree: Tree, parents: list[bytes], message: bytes) -> bytes:
    commit = Commit()
    commit.tree = tree.id
    commit.parents = parents
    commit.author = commit.committer = b"attacker <a@example.com>"
    commit.author_time = commit.commit_time = 1_700_000_000 + len(parents)
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message
    repo.object_store.add_object(commit)
    return commit.id


def _tree(repo: Repo, entries: dict[bytes, tuple[int, object]]) -> Tree:
    tree = Tree()
    for name, (mode, obj) in entries.items():
        repo.object_store.add_object(obj)
        tree.add(name, mode, obj.id)
    repo.object_store.add_object(tree)
    return tree


def _hostile_history(work: Path, outside: Path) -> list[bytes]:
    """Commits: 1 ``escape`` -> symlink to ``outside``; 2 ``escape/pwned.txt`` (a file
    below the symlink's name); 3 a tree entry named ``..`` holding ``pwned.txt``;
    4 an entry whose name is an absolute path."""
    work.mkdir(parents=True)
    repo = Repo.init(str(work))
    blob = Blob.from_string(b"pwned\n")
    ok = Blob.from_string(b'{"stake": 1}\n')
    link = Blob.from_string(os.fsencode(outside))
    ids = []
    t1 = _tree(repo, {b"config.json": (0o100644, ok), b"escape": (0o120000, link)})
    ids.append(_commit(repo, t1, [], b"symlink out"))
    sub = _tree(repo, {b"pwned.txt": (0o100644, blob)})
    t2 = _tree(repo, {b"config.json": (0o100644, ok), b"escape": (0o040000, sub)})
    ids.append(_commit(repo, t2, [ids[-1]], b"file below the symlink"))
    t3 = _tree(repo, {b"config.json": (0o100644, ok), b"..": (0o040000, sub)})
    ids.append(_commit(repo, t3, [ids[-1]], b"dot-dot tree"))
    t4 = Tree()
    repo.object_store.add_object(ok)
    repo.object_store.add_object(blob)
    t4.add(b"config.json", 0o100644, ok.id)
    t4.add(os.fsencode(outside / "abs.txt"), 0o100644, blob.id)
    repo.object_store.add_object(t4)
    ids.append(_commit(repo, t4, [ids[-1]], b"absolute name"))
    repo.refs[b"refs/heads/master"] = ids[-1]
    repo.close()
    return ids


def test_config_checkout_never_follows_history_outside_the_target(sandbox):
    outside = sandbox / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched\n")
    work = sandbox / "config"
    ids = _hostile_history(work, outside)
    config = sandbox / "tradevault.toml"
    config.write_text(f'[config_vcs]\npaths = ["{work}"]\n')
    to = sandbox / "checkout"
    before_outside = tree_state(outside)
    results = []
    for commit in ids:
        rev = commit.decode()
        results.append(tv("config", "checkout", "--rev", rev, "--to", str(to), "-c", str(config), cwd=sandbox))
        results.append(tv("config", "checkout", "--rev", rev, "-c", str(config), cwd=sandbox))  # in place
    results.append(tv("config", "checkout", "--rev", ids[1].decode(), "--to", str(to), "escape/pwned.txt",
                      "-c", str(config), cwd=sandbox))
    assert tree_state(outside) == before_outside, "config checkout wrote outside its target:\n" + "\n".join(
        map(str, results))
    for directory in (sandbox, sandbox.parent):
        assert not (directory / "pwned.txt").exists(), "a '..' tree entry escaped the target"
    for result in results:
        assert "Traceback" not in result.err, str(result)
        assert result.rc in (0, 1, 2, 3), str(result)


def test_restore_config_to_never_follows_history_outside(sandbox):
    """``restore --config-to`` writes the config through the same path checks."""
    from config_vcs.history import export_config_at

    outside = sandbox / "outside"
    outside.mkdir()
    work = sandbox / "config"
    _hostile_history(work, outside)
    dest = sandbox / "exported"
    for when in ("2023-11-14T22:13:21Z", "2023-11-14T22:13:22Z", "2023-11-14T22:13:23Z", "2023-11-14T22:13:24Z"):
        try:
            export_config_at([work], when, dest)
        except Exception as exc:  # noqa: BLE001 - refusing is fine; escaping is not
            assert "Traceback" not in str(exc)
        assert list(outside.iterdir()) == [], f"export at {when} wrote outside: {list(outside.iterdir())}"
        assert not (sandbox / "pwned.txt").exists()


def test_verify_reports_a_hostile_object_name_as_an_integrity_problem(sandbox):
    env = _hostile_store(sandbox, "../../../outside/evil.tvo")
    verify = env.tv("verify", "--json")
    assert verify.rc == 3, str(verify)
    assert any("0000000002" in p["object"] for p in verify.json()["problems"]), str(verify)
