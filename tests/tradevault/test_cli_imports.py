"""Start-up cost of the ``tradevault`` command: each command imports only what it uses.

A command runs in a fresh interpreter (as the console script does) and reports the
packages it loaded. A SQLite command must not load the Kafka, git, PostgreSQL or S3
clients, nor pydantic (0.2 s, for nothing: the settings are plain dataclasses);
``--version`` loads none of tradevault's domain packages, pydantic or rich.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_harness import clean_env

_REPORT = """
import json, sys
from tradevault.cli import app
from tradevault.cli.support import run
code = run(app, sys.argv[1:])
print(json.dumps({"code": code, "packages": sorted({name.split(".")[0] for name in sys.modules})}),
      file=sys.stderr)
"""

BACKENDS = {"aiokafka", "dulwich", "psycopg", "boto3", "botocore", "sqlalchemy", "watchdog",
            "pydantic", "pydantic_settings"}
DOMAIN = {"trade_stream", "restore", "config_vcs", "pydantic", "pydantic_settings", "rich"}


def loaded(root: Path, *args: str) -> set[str]:
    """The top-level packages ``tradevault ARGS`` imported (it must exit 0)."""
    proc = subprocess.run([sys.executable, "-c", _REPORT, *args], cwd=root, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stdout + proc.stderr
    return set(report["packages"])


def test_version_imports_no_domain_code(tmp_path: Path) -> None:
    packages = loaded(tmp_path, "--version")
    assert not packages & (BACKENDS | DOMAIN), sorted(packages & (BACKENDS | DOMAIN))


@pytest.mark.parametrize(("command", "allowed"), [
    (["backup", "full"], set()),
    (["backup", "incremental"], set()),
    (["backups", "list"], set()),
    (["restore", "--to", "sqlite:///restored.sqlite"], set()),
    (["verify"], set()),
    (["status"], {"dulwich"}),  # it reports the config history's unpushed commits
])
def test_sqlite_commands_do_not_import_other_backends(backed_up, command: list[str], allowed: set[str]) -> None:
    packages = loaded(backed_up.root, *command, "-c", str(backed_up.config))
    assert "trade_stream" in packages  # the command did its work
    assert not packages & (BACKENDS - allowed), sorted(packages & (BACKENDS - allowed))
