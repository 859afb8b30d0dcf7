"""Recovery of everything ``run`` needs before it starts the bot: the protected database
(restore.recover) and the watched config directories (config_vcs.recovery), told apart
from a first run by the protection record. One report for ``recover`` and ``run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config_vcs.history import heads
from config_vcs.recovery import recover_directories
from restore.recover import recover_database
from trade_stream.errors import IntegrityError
from tradevault import protection_record, wiring
from tradevault.config_history import options_from
from tradevault.settings import Settings


def recover_all(settings: Settings, *, if_missing: bool, if_corrupt: bool) -> dict[str, Any]:
    """Check and recover the database and the watched config; raises IntegrityError
    (exit 3) when something is broken and no backup can repair it. A first run (nothing
    there and no evidence that anything was protected before) is not broken."""
    source = wiring.source(settings)
    state_dir = Path(settings.agent.state_dir)
    record = protection_record.load(state_dir)
    store = wiring.store(settings, source)
    known = record.backups.get(store.source)
    evidence = (f"first on {known.get('first_full')}, recorded in {state_dir / protection_record.RECORD_FILE}"
                if known else "")
    report: dict[str, Any] = {"ok": True}
    if source.database_file is None:  # a server keeps its own files: nothing to put back here
        report["database"] = {"database": source.display_url, "problem": "",
                              "action": "not checked (a database server's files are its own)"}
    else:
        try:
            report["database"] = recover_database(store, source.db, if_missing=if_missing, if_corrupt=if_corrupt,
                                                  backups_known=evidence).to_json()
        except IntegrityError as exc:
            report["ok"] = False
            report["database"] = {"database": str(source.database_file), "problem": str(exc),
                                  "action": "cannot recover"}
    paths = [Path(p) for p in settings.config_vcs.paths]
    config = recover_directories(paths, settings.config_vcs.remotes, options_from(settings),
                                 known=record.config_dirs())
    protection_record.note_config(state_dir, [Path(p) for p in heads(paths)])
    report["config"] = [vars(c) for c in config]
    report["ok"] = report["ok"] and all(c.ok for c in config)
    return report


def outcome(item: dict[str, Any]) -> str:
    if item.get("problem"):
        return f"{item['problem']} -> {item['action']}"
    return item["action"] if item.get("action") not in (None, "", "none") else "healthy"


def failure_code(report: dict[str, Any]) -> int:
    """3 (integrity), or 2 when all that failed is config whose sealed secrets cannot be
    decrypted here: the missing age identity is bad input, the backups are fine."""
    failed = [c for c in report["config"] if not c["ok"]]
    database_ok = report["database"].get("action") != "cannot recover"
    return 2 if database_ok and failed and all(c.get("needs_identity") for c in failed) else 3
