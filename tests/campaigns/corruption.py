"""Corruption campaign: damage every kind of stored object and check that it is caught.

Stored things (template store on two file locations ``a`` and ``b``, built in-process):
1 full, 2 incr (pruned by retention), 3 full, 4 incr, 5 full, 6 incr, 7 incr, 8 incr (6 and
7 merged by compaction, then pruned) — so there are historic and needed full snapshots,
historic and needed incremental segments (the needed one compacted),
manifest entries, the catalog checkpoint that retention wrote (it holds copies of the
entries and the pruned run 2, bridging the hash chain 1 -> 3), the head, and the pack
file of a config repository (``.git/objects/pack`` of a watched directory).

Damages: flip random bits, truncate, zero a range, swap two objects (or two entries),
delete one. Scope: location ``a`` only (``b`` keeps a good copy), or both.

Required, case by case (detection must be 100 %):
* ``verify --json`` exits 3 and a problem names the damaged object (or its entry/chain);
* ``restore`` exits 0 with the source's digest (fell back to ``b``, or the damaged thing
  is not needed) or refuses with exit 3 — never exit 0 with a different digest;
* a damaged config pack: ``git fsck --full`` or ``tradevault config log`` reports it.

    python -m tests.campaigns.corruption --cases 300 [--seed N] [--keep]
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

from tests.campaigns.common import SOURCE, Env, Tally, cli_args, digest_of, finish, git, private_root, tv
from tradevault.workload import TradingWorkload

BUILT = {1: "full", 2: "incremental", 3: "full", 4: "incremental", 5: "full", 6: "incremental",
         7: "incremental"}
KIND = {**BUILT, 8: "incremental"}  # 8: compaction merged 6 and 7
RETIRED = (2,)  # as retention does it: an incremental older than the anchor full (3)
PRUNED = (2, 6, 7)
NEEDED = {5, 8}  # what restoring the latest state reads

# Things that can be damaged: (label, relative paths under <location>/<source>/)
def _obj(n: int) -> str:
    return f"objects/{n:010d}-{KIND[n]}.tvo"


def _ent(n: int) -> str:
    return f"manifest/{n:010d}.json"


THINGS: dict[str, list[str]] = {
    "full-needed": [_obj(5)], "full-historic": [_obj(1), _obj(3)],
    "incremental-needed": [_obj(8)], "incremental-historic": [_obj(4)],
    "entry-needed": [_ent(5), _ent(8)], "entry-historic": [_ent(1), _ent(3), _ent(4)],
    # retention folded 2's record into 7's checkpoint, compaction 6's and 7's into 8's
    "checkpoint": ["checkpoints/0000000007.json.zst", "checkpoints/0000000008.json.zst"],
    "head": ["head.json"],
}
SWAPS = [(_obj(4), _obj(8)), (_obj(3), _obj(5)), (_obj(1), _obj(5)), (_ent(4), _ent(8)), (_ent(3), _ent(4))]
DAMAGES = ("bitflip", "truncate", "zero", "delete")


def build_template(root: Path, seed: int) -> tuple[Env, dict[str, str]]:
    """The store described above, built through the library (fast), used by the CLI."""
    from trade_stream.compaction import compact
    from trade_stream.sqlite.backup import BackupEngine
    from trade_stream.sqlite.database import DatabaseService
    from trade_stream.storage.locations import open_location
    from trade_stream.storage.store import BackupStore

    env = Env.create(root, ("a", "b"), transactions=0)
    workload = TradingWorkload(env.db, seed=seed)
    store = BackupStore(SOURCE, [open_location(n, u) for n, u in env.locations.items()])
    engine = BackupEngine(DatabaseService(f"sqlite:///{env.db}"), store)
    try:
        for kind in BUILT.values():
            workload.run(60)
            (engine.full if kind == "full" else engine.incremental)()
    finally:
        workload.close()
    store.prune(list(RETIRED))
    merged = compact(store, engine.publisher, (2,)).merged
    assert [m["replaces"] for m in merged] == [[6, 7]], merged
    kinds = {e.n: e.kind for e in store.entries()}
    assert kinds == {n: k for n, k in KIND.items() if n not in PRUNED}, kinds
    return env, digest_of(env.db)


def build_config_repo(root: Path) -> Path:
    """A watched directory's history with a pack file (committed and packed by tradevault)."""
    from config_vcs.repository import ConfigRepo

    work = root / "config"
    repo = ConfigRepo.open_or_init(work)
    for i in range(6):
        (work / "config.json").write_text('{"stake_amount": %d}\n' % i)
        (work / f"strategy{i % 3}.py").write_text(f"class S{i}:\n    pass\n" * (i + 1))
        repo.commit_worktree()
    repo.repack()
    assert list((work / ".git" / "objects" / "pack").glob("*.pack")), "no pack file"
    return work


# -- damage -------------------------------------------------------------------------------

def damage(path: Path, how: str, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    if how == "delete":
        path.unlink()
        return "deleted"
    if how == "bitflip":
        flips = rng.randint(1, 4)
        for _ in range(flips):
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        if bytes(data) == path.read_bytes():  # two flips of one bit cancelled out
            data[0] ^= 1
        path.write_bytes(bytes(data))
        return f"{flips} random bit flips"
    if how == "truncate":
        content = len(data.rstrip()) if path.suffix == ".json" else len(data)
        keep = rng.randrange(0, max(1, content - 1))
        path.write_bytes(bytes(data[:keep]))
        return f"truncated {len(data)} -> {keep}"
    if how == "zero":
        for _ in range(100):
            start = rng.randrange(len(data))
            length = rng.randint(1, min(4096, len(data) - start))
            if any(data[start:start + length]):
                break
        data[start:start + length] = bytes(length)
        path.write_bytes(bytes(data))
        return f"zeroed {start}..{start + length - 1} of {len(data)}"
    raise ValueError(how)


def swap(a: Path, b: Path) -> str:
    tmp = a.with_name(a.name + ".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    return f"swapped {a.name} <-> {b.name}"


def _names(problem: dict, keys: list[str]) -> bool:
    text = problem.get("object", "") + " " + problem.get("problem", "")
    for key in keys:
        if key in text:
            return True
        m = re.match(r"(manifest|pruned)/(\d+)\.json", key)
        if m:
            n = int(m.group(2))
            # a lost/damaged entry shows as the neighbour's chain break or as a gap
            if f"manifest/{n + 1:010d}.json" in text or f"entries {n}.." in text or re.search(
                    rf"entries \d+\.\.{n}\b", text):
                return True
    return False


def case(template: Env, source_digest: dict[str, str], root: Path, rng: random.Random, label: str,
         tally: Tally, log=print) -> None:
    """One damage case on a private copy of the template."""
    work = root / f"case-{tally.runs}"
    shutil.copytree(template.root, work, symlinks=True)
    env = Env(work, work / template.db.name, work / "tradevault.toml",
              {n: f"file://{work / f'backups-{n}'}" for n in template.locations})
    env.write_config()
    tally.runs += 1
    scope = ["a"] if rng.random() < 0.7 else ["a", "b"]
    if label == "swap":
        pair = rng.choice(SWAPS)
        keys = list(pair)
        for loc in scope:
            what = swap(env.location_dir(loc) / pair[0], env.location_dir(loc) / pair[1])
    else:
        key = rng.choice(THINGS[label])
        keys = [key]
        how = rng.choice(DAMAGES)
        r = random.Random(rng.random())
        for loc in scope:  # same damage in each damaged copy
            what = damage(env.location_dir(loc) / key, how, random.Random(r.random()) if loc == "a" else r)
    tally.faults += 1
    ctx = f"case {tally.runs - 1} [{label}] {what} in {'+'.join(scope)} ({', '.join(keys)})"
    target = work / "restored.sqlite"
    verify, restore = env.parallel(["verify", "--json"], ["restore", "--to", f"sqlite:///{target}", "--json"])
    problems = []
    caught = False
    if verify.rc == 3:
        report = verify.json()
        if report.get("ok") is False and any(_names(p, keys) for p in report["problems"]):
            caught = True
        else:
            problems.append(f"verify exit 3 but no problem names {keys}: {report.get('problems')}")
    else:
        problems.append(f"verify exit {verify.rc} (expected 3)\n{verify}")
    outcome = ""
    if restore.rc == 0:
        if digest_of(target) != source_digest:
            problems.append("SILENTLY WRONG RESTORE: exit 0 but the digest differs from the source")
            tally.lost += 1
        outcome = "restored (equal)"
        if scope == ["a"]:
            outcome = "restored from the good copy (equal)"
    elif restore.rc == 3:
        outcome = "refused (exit 3)"
        if target.exists():
            problems.append("restore exit 3 but left a target")
        needed = any(int(re.search(r"/(\d+)", k).group(1)) in NEEDED for k in keys)
        if scope == ["a"]:
            tally.notes.append(f"{ctx}: restore refused although location b holds a good copy")
        elif not needed and not label.startswith("entry") and label not in ("checkpoint", "head", "swap"):
            tally.notes.append(f"{ctx}: restore refused although the plan does not need the damaged object")
    else:
        problems.append(f"restore exit {restore.rc}\n{restore}")
    if caught and not problems:
        tally.detected += 1
    if problems:
        tally.fail(f"{ctx}: " + "; ".join(problems))
        log(f"  {ctx}: FAILED")
    else:
        log(f"  {ctx}: verify exit 3 naming it; restore {outcome}")
        shutil.rmtree(work, ignore_errors=True)


def config_case(template: Path, root: Path, rng: random.Random, tally: Tally, log=print) -> None:
    work = root / f"config-case-{tally.runs}"
    shutil.copytree(template, work, symlinks=True)
    tally.runs += 1
    pack_dir = work / ".git" / "objects" / "pack"
    pack = sorted(pack_dir.glob("*.pack"))[0]
    how = rng.choice(DAMAGES + ("swap",))
    if how == "swap":
        idx = pack.with_suffix(".idx")
        what = swap(pack, idx)
    else:
        what = damage(pack, how, rng)
    tally.faults += 1
    ctx = f"config case {tally.runs - 1}: pack file {what}"
    fsck = git("fsck", "--full", cwd=work)
    config_toml = work.parent / f"{work.name}.toml"
    config_toml.write_text(f'[config_vcs]\npaths = ["{work}"]\n')
    log_result = tv("config", "log", "--json", "-c", str(config_toml), cwd=work.parent)
    fsck_caught = fsck.returncode != 0
    log_caught = log_result.rc != 0
    if fsck_caught or log_caught:
        tally.detected += 1
        log(f"  {ctx}: git fsck exit {fsck.returncode}, config log exit {log_result.rc}"
            f" ({log_result.err.strip().splitlines()[-1][:160] if log_result.err.strip() else ''})")
        if log_result.rc == 1 and "Traceback" in log_result.err:
            tally.notes.append(f"{ctx}: config log crashed with a traceback instead of a one-line error")
        shutil.rmtree(work, ignore_errors=True)
        config_toml.unlink()
    else:
        tally.fail(f"{ctx}: neither git fsck nor config log reported the damage")
        tally.lost += 1


LABELS = list(THINGS) + ["swap"]


def run(cases: int = len(LABELS) + 1, seed: int | None = None, root: Path | None = None, log=print) -> Tally:
    """``cases`` damage cases: the first len(LABELS)+1 cover every kind of stored object
    once (the last one a config pack), then random ones (about 1 in 9 a config pack)."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    root = root or private_root("corruption")
    tally = Tally("corruption")
    tally.notes.append(f"seed {seed}, directory {root}")
    log(f"corruption campaign: seed {seed}, {cases} cases, directory {root}")
    rng = random.Random(seed)
    template, source_digest = build_template(root / "template", seed)
    config_template = build_config_repo(root / "config-template")
    for i in range(cases):
        if i < len(LABELS):
            case(template, source_digest, root, rng, LABELS[i], tally, log)
        elif i == len(LABELS) or rng.random() < 1 / 9:
            config_case(config_template, root, rng, tally, log)
        else:
            case(template, source_digest, root, rng, rng.choice(LABELS), tally, log)
    refused = [n for n in tally.notes if "refused" in n]
    tally.notes = [n for n in tally.notes if "refused" not in n] + refused[:10]
    if len(refused) > 10:
        tally.notes.append(f"... {len(refused) - 10} more refusals")
    return tally


def main() -> int:
    args = cli_args(__doc__.splitlines()[0], "cases", 300, "number of damage cases")
    root = private_root("corruption")
    tally = run(args.cases, seed=args.seed, root=root)
    return finish(tally, root, args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
