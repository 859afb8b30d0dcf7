"""The commented ``tradevault.toml`` that ``tradevault init`` writes (mode 0600: it can
hold credentials -- S3 keys, a database password -- so it is always written private)."""

from __future__ import annotations

import json
from pathlib import Path

from tradevault.init_secrets import InitIdentity


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def detect_watch(base: Path, db_path: Path | None) -> tuple[list[str], str]:
    """The config directory a bot in ``base`` most likely has, and why it was chosen:
    freqtrade's ``user_data/`` holding ``config*.json`` (beside the database, or the
    directory the database lives in), else a ``config/`` directory, else nothing."""
    places = [base.absolute()]
    if db_path is not None and db_path.absolute().parent not in places:
        places.append(db_path.absolute().parent)

    def shown(path: Path) -> str:
        try:
            return "./" + str(path.relative_to(base.absolute()))
        except ValueError:
            return str(path)

    for place in places:
        for candidate in (place / "user_data", place):
            if candidate.name != "user_data" or not candidate.is_dir():
                continue
            found = sorted(candidate.glob("config*.json"))
            if found:
                return [shown(candidate)], f"found {shown(found[0])}"
    for place in places:
        if (place / "config").is_dir():
            return [shown(place / "config")], "found a config/ directory"
    return [], "no config directory found"


def secrets_lines(identity: InitIdentity | None) -> str:
    """The [config_vcs] keys that seal credentials, with what a user must know about them."""
    if identity is None:
        return ""
    return f"""# Credentials in watched files (exchange keys, bot tokens, .env) are sealed with age before
# they are committed: git and the remotes only ever see ENC[age,...] values. The identity
# file decrypts them for checkout, restore --config-to and recover: keep a copy OFF this
# machine (password manager), and/or add the public key of a recovery identity kept
# elsewhere (age-keygen) to secret_recipients. README: "Secrets in your config".
secret_recipients = [{_toml_str(identity.recipient)}]
secret_identity_file = {_toml_str(identity.setting)}   # relative to where tradevault runs
"""


def render(db_url: str, watch: list[str], locations: list[str], identity: InitIdentity | None = None) -> str:
    loc_blocks = []
    for i, url in enumerate(locations):
        name = "local" if i == 0 else f"location{i + 1}"
        loc_blocks.append(f"[[locations]]\nname = {_toml_str(name)}\nurl = {_toml_str(url)}\n")
    paths = ", ".join(_toml_str(p) for p in watch)
    schema_line = ('schema = ""                   # the schema whose tables are backed up; empty = public\n'
                   if db_url.startswith("postgresql") else "")
    return f"""# tradevault configuration. Every key has a default; TRADEVAULT_<SECTION>__<KEY>
# environment variables override this file (e.g. TRADEVAULT_DATABASE__URL).

[database]
url = {_toml_str(db_url)}   # any SQLAlchemy URL: sqlite:///..., postgresql+psycopg://...
include = []                  # table name globs; empty = every table
exclude = []
{schema_line}sqlite_wal = true             # switch SQLite to WAL so backups never block the bot's writes

# Every backup object goes to each location (add an off-site one: s3://bucket/prefix).
{chr(10).join(loc_blocks)}
[schedule]
full = "0 3 * * *"            # cron, agent's local time
incremental = "30s"           # captured changes are sealed at least this often
consolidate_after_events = 250000  # a full built from the store once a restore would replay this many

[kafka]
bootstrap_servers = ""        # empty = Kafka sink off
topic_prefix = "tradevault"

[config_vcs]
paths = [{paths}]             # each watched directory is its own git work tree
# Only configuration is versioned. Never the database above (nor its -wal/-shm/-journal),
# nor any SQLite file; by default not logs (*.log, logs/), data directories (data/,
# backtest_results/, hyperopt_results/, plot/, notebooks/), binary files or files over
# max_file_size. `tradevault status` lists what was skipped.
include = []                  # globs (gitignore syntax) re-admitting what a default leaves out
exclude = []                  # globs never versioned; they win over include
max_file_size = "1MiB"        # larger files are skipped with a warning ("500KB", "2MiB", bytes)
{secrets_lines(identity)}
[config_vcs.remotes]          # name = git URL or bare repository path; every commit is pushed to each
# usb = "/mnt/usb/tradevault-config.git"
# A remote that may receive credentials in clear (status shows it in yellow):
# [config_vcs.remotes.lab]
# url = "/srv/git/bot-config.git"
# allow_plaintext_secrets = true
"""
