"""End to end: bad usage or bad input exits 2 with exactly one line on stderr and changes
nothing at all: no file created, removed or modified anywhere under the test's directory
(database bytes, backup location, config file, restore target).

Also the positive side of the same options: ``-c`` before or after the command,
TRADEVAULT_DATABASE__URL over the file, ``restore --force`` and ``restore --dry-run``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest


def check_refused(cli, setup_root: Path, before: dict[str, str], result, context: str = "") -> None:
    assert result.rc == 2, f"{context}: must exit 2 (bad input)\n{result}"
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"{context}: stderr must be exactly one line\n{result}"
    changes = cli.tree_changes(before, cli.tree_state(setup_root))
    assert not changes, f"{context}: refused command changed files: {changes}\n{result}"


# Config files: (id, TOML with {db}, {loc}, {work}, {root} placeholders, set-up).
_LOC = '[[locations]]\nname = "local"\nurl = "file://{loc}"\n'
_HEAD = 'work_dir = "{work}"\n'


def _toml(db_section: str, tail: str = "", location: str = _LOC) -> str:
    return _HEAD + "[database]\n" + db_section + "\n" + location + tail


CONFIG_CASES = [
    ("unknown-url-scheme", _toml('url = "nosuch://x"')),
    ("sqlite-url-without-path", _toml('url = "sqlite://"')),
    ("missing-database-file", _toml('url = "sqlite:///{root}/missing.sqlite"')),
    ("include-unknown-table", _toml('url = "sqlite:///{db}"\ninclude = ["trades", "no_such_table"]')),
    ("malformed-toml", _HEAD + '[database\nurl = "sqlite:///{db}"\n' + _LOC),
    ("unknown-key", _toml('url = "sqlite:///{db}"\nurll = "sqlite:///{db}"')),
    ("unknown-section", _toml('url = "sqlite:///{db}"', '\n[nosuch]\nkey = 1\n')),
    ("bad-duration", _toml('url = "sqlite:///{db}"', '\n[schedule]\nincremental = "soon"\n')),
    ("bad-max-file-size", _toml('url = "sqlite:///{db}"', '\n[config_vcs]\nmax_file_size = "huge"\n')),
    ("zero-max-file-size", _toml('url = "sqlite:///{db}"', '\n[config_vcs]\nmax_file_size = 0\n')),
    ("negated-include-glob", _toml('url = "sqlite:///{db}"', '\n[config_vcs]\ninclude = ["!data/"]\n')),
    ("empty-exclude-glob", _toml('url = "sqlite:///{db}"', '\n[config_vcs]\nexclude = [""]\n')),
    ("unsupported-location-scheme",
     _toml('url = "sqlite:///{db}"', location='[[locations]]\nname = "local"\nurl = "ftp://x/backups"\n')),
    ("remote-table-without-url",
     _toml('url = "sqlite:///{db}"', '\n[config_vcs.remotes.github]\nallow_plaintext_secrets = true\n')),
    ("remote-table-misspelt-option",
     _toml('url = "sqlite:///{db}"', '\n[config_vcs.remotes.github]\nurl = "/x.git"\nallow_plaintext = true\n')),
]


@pytest.mark.parametrize("command", [["backup", "full"]], ids=["backup-full"])
@pytest.mark.parametrize("case,toml", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_cli_bad_configuration_exits_2_and_changes_nothing(cli, fresh, case: str, toml: str, command) -> None:
    fresh.config.write_text(toml.format(db=fresh.db, loc=fresh.locations["local"], work=fresh.root / "work",
                                        root=fresh.root), encoding="utf-8")
    before = cli.tree_state(fresh.root)

    result = fresh.tv(*command)

    check_refused(cli, fresh.root, before, result, case)
    assert not fresh.locations["local"].exists(), f"{case}: the location was created\n{result}"


def test_cli_incremental_before_any_full_backup_exits_2_and_changes_nothing(cli, fresh) -> None:
    before = cli.tree_state(fresh.root)
    check_refused(cli, fresh.root, before, fresh.tv("backup", "incremental"), "incremental before full")


def test_cli_restore_with_no_backups_yet_exits_2_and_changes_nothing(cli, fresh) -> None:
    (fresh.root / "out").mkdir()
    before = cli.tree_state(fresh.root)
    result = fresh.tv("restore", "--to", f"sqlite:///{fresh.root / 'out' / 'restored.sqlite'}")
    check_refused(cli, fresh.root, before, result, "restore without backups")


def test_cli_config_option_naming_a_missing_file_exits_2_and_changes_nothing(cli, fresh) -> None:
    # A tradevault.toml in the working directory must not be used instead.
    before = cli.tree_state(fresh.root)
    result = cli.tv("-c", str(fresh.root / "no-such.toml"), "backup", "full", cwd=fresh.root)
    check_refused(cli, fresh.root, before, result, "-c missing file")


def test_cli_init_refuses_to_overwrite_an_existing_file(cli, fresh) -> None:
    before = cli.tree_state(fresh.root)
    result = fresh.tv("init", "--db", "sqlite:///other.sqlite")
    check_refused(cli, fresh.root, before, result, "init over an existing file")


# -- restore: bad requests against a store that has backups ------------------------------------


def newest_seq(setup) -> int:
    manifest = setup.locations["local"] / "tradesv3" / "manifest"
    return max(json.loads(p.read_bytes())["last_seq"] for p in manifest.glob("*.json"))


def make_non_empty(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE precious (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO precious VALUES (1, 'do not lose me')")
        conn.commit()
    finally:
        conn.close()


RESTORE_CASES = [
    ("at-and-seq", lambda s: ["--at", "2026-01-01T00:00:00Z", "--seq", "1"]),
    ("at-not-a-time", lambda s: ["--at", "yesterday at noon"]),
    ("seq-beyond-newest-change", lambda s: ["--seq", str(newest_seq(s) + 1000)]),
    ("non-empty-target-without-force", lambda s: []),
    ("target-is-a-directory", lambda s: []),
]


@pytest.mark.parametrize("case,extra", RESTORE_CASES, ids=[c[0] for c in RESTORE_CASES])
def test_cli_bad_restore_request_exits_2_and_changes_nothing(cli, backed_up, case: str, extra) -> None:
    out = backed_up.root / "out"
    out.mkdir()
    target = out / "restored.sqlite"
    if case == "non-empty-target-without-force":
        make_non_empty(target)
    if case == "target-is-a-directory":
        target.mkdir()
    args = ["restore", "--to", f"sqlite:///{target}", *extra(backed_up)]
    before = cli.tree_state(backed_up.root)

    result = backed_up.tv(*args)

    check_refused(cli, backed_up.root, before, result, case)


# -- the positive side ------------------------------------------------------------------------


def test_cli_config_option_is_accepted_before_and_after_the_command(cli, fresh, workdir: Path) -> None:
    elsewhere = workdir / "cwd"  # no tradevault.toml here: only -c can work
    elsewhere.mkdir()
    config = str(fresh.config)

    full = cli.tv("-c", config, "backup", "full", "--json", cwd=elsewhere)
    assert full.rc == 0, str(full)
    fresh.workload(20, seed=13)
    incremental = cli.tv("backup", "incremental", "--json", "-c", config, cwd=elsewhere)
    assert incremental.rc == 0, str(incremental)
    assert incremental.json()["events"] > 0, str(incremental)

    listing = cli.tv("-c", config, "backups", "list", "--json", cwd=elsewhere)
    assert listing.rc == 0, str(listing)
    assert [e["kind"] for e in listing.json()] == ["full", "incremental"], str(listing)
    assert list(elsewhere.iterdir()) == [], "commands wrote into the working directory"


def test_cli_environment_overrides_the_database_url_of_the_file(cli, workdir: Path) -> None:
    from tradevault.workload import create_database

    real = cli.new_setup(workdir)
    decoy = workdir / "decoy.sqlite"
    create_database(decoy)
    real.write_config(db_url=f"sqlite:///{decoy}")
    decoy_bytes = decoy.read_bytes()

    result = real.tv("backup", "full", "--json", env={"TRADEVAULT_DATABASE__URL": f"sqlite:///{real.db}"})

    assert result.rc == 0, str(result)
    conn = sqlite3.connect(real.db)
    try:
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in cli.TABLES}
    finally:
        conn.close()
    assert result.json()["rows"] == sum(counts.values()) > 0, str(result)
    assert result.json()["tables"] == counts, str(result)
    stored = sorted(p.name for p in real.locations["local"].iterdir())
    assert stored == ["tradesv3"], f"backed up the wrong source: {stored}"
    assert decoy.read_bytes() == decoy_bytes, "the database named in the file was touched"


def test_cli_restore_force_replaces_a_non_empty_target(cli, backed_up) -> None:
    out = backed_up.root / "out"
    out.mkdir()
    target = out / "restored.sqlite"
    make_non_empty(target)

    result = backed_up.tv("restore", "--to", f"sqlite:///{target}", "--force", "--json")

    assert result.rc == 0, str(result)
    assert cli.digest_of(target) == cli.digest_of(backed_up.db)
    conn = sqlite3.connect(target)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "precious" not in tables, f"the old target's content survived: {sorted(tables)}"


def test_cli_restore_dry_run_prints_the_plan_and_changes_nothing(cli, backed_up) -> None:
    out = backed_up.root / "out"
    out.mkdir()
    target = out / "restored.sqlite"
    manifest = backed_up.locations["local"] / "tradesv3" / "manifest"
    full, incremental = [json.loads(p.read_bytes()) for p in sorted(manifest.glob("*.json"))]
    before = cli.tree_state(backed_up.root)

    result = backed_up.tv("restore", "--to", f"sqlite:///{target}", "--dry-run", "--json")

    assert result.rc == 0, str(result)
    info = result.json()
    for key in ("first_seq", "last_seq", "rows", "events", "bytes", "seconds"):
        assert key in info, f"dry-run JSON lacks {key!r}\n{result}"
    assert info["first_seq"] == full["last_seq"], str(result)
    assert info["last_seq"] == incremental["last_seq"], str(result)
    assert info["rows"] == full["count"], str(result)
    assert info["events"] == incremental["count"], str(result)
    assert info["bytes"] == full["bytes"] + incremental["bytes"], str(result)
    assert cli.tree_changes(before, cli.tree_state(backed_up.root)) == [], "--dry-run changed files"


def test_cli_full_backup_on_a_full_disk_names_the_location_and_the_os_reason(cli, fresh, workdir: Path) -> None:
    """A location on a 64 KiB filesystem (tmpfs: needs root) cannot take the full backup:
    one line naming the location, its directory and the OS's reason; nothing visible in it."""
    import subprocess

    from tradevault.workload import bulk_fill

    tiny = workdir / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)],
                      capture_output=True).returncode != 0:
        pytest.skip("mount -t tmpfs needs root")
    try:
        with sqlite3.connect(fresh.db) as conn:
            conn.execute("DELETE FROM orders")
            conn.execute("DELETE FROM trades")
        bulk_fill(fresh.db, 20_000)  # about 0.8 MB compressed
        fresh.write_config(locations={"tiny": tiny / "store"})
        result = fresh.tv("backup", "full")
        assert result.rc == 1, str(result)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, str(result)
        assert "location tiny" in lines[0] and str(tiny / "store") in lines[0], lines[0]
        assert "No space left on device" in lines[0], lines[0]
        visible = [p.name for p in (tiny / "store").rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]
        assert visible == [], visible
    finally:
        subprocess.run(["umount", "-l", str(tiny)], capture_output=True)
