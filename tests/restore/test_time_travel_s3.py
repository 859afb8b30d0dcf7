"""Time travel from an S3 location (SeaweedFS): ``history``, ``diff`` and ``query`` read
from S3 alone give the answers they give from a file location holding the same chain."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli_harness import ConfiguredCli

pytestmark = pytest.mark.xdist_group("s3")


def test_time_travel_answers_the_same_from_s3(cli, workdir: Path, s3_location_options) -> None:
    url, options = s3_location_options
    s3 = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    both = cli.new_setup(workdir / "both", extra=f'[[locations]]\nname = "offsite"\nurl = "{url}"\n{s3}')
    both.workload(30, seed=41)
    both.ok("backup", "full")
    seqs = []
    for i in range(3):
        both.workload(12, seed=42 + i)
        seqs.append(both.ok("backup", "incremental", "--json").json()["last_seq"])
    only_s3 = ConfiguredCli(root=both.root, config=both.root / "s3-only.toml")
    work = both.root / "work-s3"
    only_s3.config.write_text(f'work_dir = "{work}"\n\n[database]\nurl = "sqlite:///{both.db}"\n\n'
                              f'[[locations]]\nname = "offsite"\nurl = "{url}"\n{s3}')
    work.mkdir()
    conn = sqlite3.connect(both.db)
    trade_id = conn.execute("SELECT max(id) FROM trades").fetchone()[0]
    conn.close()
    asked = [["history", "trades", "--key", f"id={trade_id}", "--json"],
             ["diff", "--from-seq", str(seqs[0]), "--rows", "--json"],
             ["query", "--seq", str(seqs[1]), "SELECT count(*) AS n, sum(amount) AS a FROM trades", "--json"]]
    for args in asked:
        from_file, from_s3 = both.ok(*args), only_s3.ok(*args)
        assert from_s3.json() == from_file.json() and from_s3.json(), args
    assert "opened" in only_s3.ok(*asked[0]).err
