"""``status`` shows every table that is not protected (left out by ``[database]
include/exclude``), in red; every other table is protected, keyless ones included."""

from __future__ import annotations

import sqlite3

from tests.cli_harness import tv


def test_status_names_the_tables_left_out_in_red(tmp_path):
    db = tmp_path / "bot.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE trades (id INTEGER PRIMARY KEY); CREATE TABLE log (msg TEXT);"
                       "CREATE TABLE audit (at TEXT, what TEXT);")
    conn.close()
    (tmp_path / "tradevault.toml").write_text(f"""
[database]
url = "sqlite:///{db}"
exclude = ["audit"]
[[locations]]
name = "local"
url = "file://{tmp_path / 'backups'}"
[config_vcs]
paths = []
""")
    assert tv("backup", "full", cwd=tmp_path).rc == 0
    info = tv("status", "--json", cwd=tmp_path).json()
    assert info["capture"]["unprotected"] == ["audit"]
    assert set(info["last_full"]["tables"]) == {"trades", "log"}  # the keyless log is protected
    shown = tv("status", cwd=tmp_path)
    assert "unprotected tables" in shown.out and "audit" in shown.out
