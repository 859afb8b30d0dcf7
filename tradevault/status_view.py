"""``tradevault status`` for humans: one table, green / yellow / red at a glance."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table
from rich.text import Text

from restore.planner import format_ts

GREEN, YELLOW, RED = "[green]ok[/]", "[yellow]warn[/]", "[red]PROBLEM[/]"


def _age(ts_us: int | None) -> str:
    if not ts_us:
        return "never"
    seconds = time.time() - ts_us / 1e6
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _slot_row(capture: dict[str, Any]) -> tuple[str, str] | None:
    """A PostgreSQL slot's WAL against ``max_slot_wal_keep_size``: past half of it, the
    server is on its way to throwing away changes the chain needs."""
    if "retained_wal_bytes" not in capture:
        return None
    retained, limit = capture.get("retained_wal_bytes") or 0, capture.get("max_slot_wal_keep_size_bytes")
    if capture.get("wal_status") == "lost":
        return RED, "lost its WAL: the agent starts a new chain (or run `tradevault backup full`)"
    detail = f"{retained / 1e6:,.1f} MB of WAL retained"
    if not limit:
        return GREEN, detail + " (max_slot_wal_keep_size unlimited)"
    state = YELLOW if retained > limit / 2 else GREEN
    return state, f"{detail} of max_slot_wal_keep_size {limit / 1e6:,.0f} MB" + (
        ": past half, the server will drop what the next incremental needs" if state == YELLOW else "")


def pending_text(capture: dict[str, Any]) -> str:
    """What the capture holds that no backup has stored yet: a count (``+``: at least; the
    PostgreSQL count reads the slot within a budget, and may read nothing in time), the
    oldest change's age, and a slot's WAL not yet read."""
    pending, behind = capture.get("pending_events"), capture.get("lag_bytes")
    counted = "an unknown number of" if pending is None else \
        f"{pending:,}{'+' if capture.get('pending_capped') else ''}"
    parts = [f"{counted} events not yet stored"]
    if pending:
        parts.append(f"oldest {capture.get('lag_seconds') or 0.0:.1f} s")
    if behind:
        parts.append(f"{behind / 1e6:,.1f} MB of WAL not yet read")
    return ", ".join(parts)


def render_status(info: dict[str, Any]) -> Table:
    table = Table("what", "state", "detail", title=f"tradevault — {info['database']}", title_justify="left")
    agent = info.get("agent")
    if agent:
        table.add_row("agent", GREEN, f"running, pid {agent['pid']}, state {agent['age_seconds']:.0f}s old")
        lag = agent.get("lag_seconds") or 0.0
        table.add_row("capture lag", GREEN if lag < 120 else YELLOW if lag < 900 else RED,
                      f"{agent.get('lag_events', 0):,} events, oldest {lag:.1f} s (not yet in every location)")
        for name, job in sorted((agent.get("jobs") or {}).items()):
            state = GREEN if job.get("ok") else RED
            when = job.get("at") or job.get("failed_at")
            detail = job.get("error") or ", ".join(
                f"{k} {v}" for k, v in job.items()
                if k in ("last_seq", "count", "bytes", "restore_seconds", "seconds") and v is not None
            )
            table.add_row(f"job {name}", state, f"{_age(int(when * 1e6)) if when else ''}: {detail}")
        for restart in agent.get("capture_restarts") or []:
            if time.time() - restart["at"] < 86400:  # yellow for a day: the chain has a gap before it
                table.add_row("capture restarted", YELLOW,
                              f"{_age(int(restart['at'] * 1e6))}: {restart['reason']}; a new chain starts at "
                              f"full #{restart['new_full']} (changes before it since the last stored point are lost)")
        kafka = agent.get("kafka")
        if kafka:
            behind = kafka.get("behind_events") or 0
            state = RED if kafka.get("last_error") else GREEN if behind < 10000 else YELLOW
            table.add_row("kafka", state, f"{behind:,} events behind, checkpoint seq {kafka.get('checkpoint_seq')}"
                          + (f", last error: {kafka['last_error']}" if kafka.get("last_error") else ""))
        for name, when in sorted((agent.get("next") or {}).items()):
            table.add_row(f"next {name}", "", format_ts(int(when * 1e6)))
    else:
        capture = info["capture"]
        if capture.get("installed"):
            lag = capture.get("lag_seconds") or 0.0
            table.add_row("agent", YELLOW, "not running: changes are stored only when you run `backup incremental`")
            table.add_row("capture lag", GREEN if lag < 120 else YELLOW if lag < 3600 else RED,
                          pending_text(capture))
        else:
            table.add_row("capture", RED, "not installed: run `tradevault backup full` or start the agent")
    capture = info.get("capture") or {}
    slot_row = _slot_row(capture)
    if slot_row:
        table.add_row("replication slot", *slot_row)
    if capture.get("unprotected"):
        table.add_row("unprotected tables", RED, ", ".join(capture["unprotected"])
                      + " (left out by [database] include/exclude: not backed up)")
    if capture.get("schema_change_pending"):
        table.add_row("schema change", YELLOW, "not synchronised yet: until the next backup the changed tables' "
                      "writes are kept in their resync snapshot, not as separate events")
    for label, key in (("last full", "last_full"), ("last incremental", "last_incremental")):
        entry = info.get(key)
        if entry:
            table.add_row(label, GREEN,
                          f"#{entry['n']} seq {entry['last_seq']}, {_age(entry['last_ts'] or entry['created_at'])}")
        else:
            table.add_row(label, RED if key == "last_full" else YELLOW, "none")
    history = info.get("history") or {}
    if history.get("oldest_point"):
        oldest, since = history["oldest_point"], history.get("every_instant_since")
        text = f"oldest restore point seq {oldest['seq']} ({format_ts(oldest['time'] or 0)})"
        if since:
            text += f"; every instant restorable since seq {since['seq']} ({format_ts(since['time'] or 0)})"
        if history.get("pitr_seconds"):
            text += f"; retention keeps {history['pitr_seconds'] / 86400:g} day(s) of instants"
        table.add_row("history", GREEN, text)
    if info.get("backups_missing"):
        table.add_row("backups missing", RED, info["backups_missing"])
    for loc in info.get("locations", []):
        state = GREEN if loc["ok"] and not loc["behind"] else (YELLOW if loc["ok"] else RED)
        behind = f", {loc['behind']} behind" if loc["behind"] else ""
        table.add_row(f"location {loc['name']}", state,
                      f"{loc['url']}: {loc['entries']} entries{behind} {loc['error']}".strip())
    standby = info.get("standby")
    if standby:
        if standby.get("error"):
            table.add_row("standby", YELLOW, f"{standby['url']}: {standby['error']}")
        else:
            lag = standby.get("lag_seconds")
            stale = not standby.get("following") or standby.get("age_seconds", 0) > 120
            state = RED if stale else GREEN if (lag or 0) < 120 else YELLOW
            table.add_row("standby", state, f"{standby['url']}: seq {standby.get('seq')}, lag {lag} s"
                          + ("" if standby.get("following") else ", follower not running"))
    config = info.get("config")
    if isinstance(config, dict) and config.get("error"):
        table.add_row("config history", RED, config["error"])
    for repo in config if isinstance(config, list) else []:
        head = (repo.get("head") or "")[:10] or "no commits"
        table.add_row(f"config {repo.get('path')}", RED if repo.get("last_error") else GREEN, f"head {head}")
        skipped = repo.get("skipped") or []
        if skipped:
            counts: dict[str, int] = {}
            for item in skipped:
                counts[item["reason"]] = counts.get(item["reason"], 0) + 1
            shown = ", ".join(item["path"] for item in skipped[:5])
            more = repo.get("skipped_total", len(skipped)) - min(5, len(skipped))
            detail = f"{', '.join(f'{r} {n}' for r, n in counts.items())}: {shown}"
            table.add_row("  not versioned", "", Text(detail + (f" and {more} more" if more > 0 else "")))
        for name, remote in (repo.get("remotes") or {}).items():
            bad = remote.get("diverged") or remote.get("last_error") or remote.get("allow_plaintext_secrets")
            state = (RED if remote.get("diverged") or remote.get("held")
                     else YELLOW if bad or remote.get("unpushed") else GREEN)
            detail = f"{remote.get('unpushed', 0)} unpushed"
            if remote.get("held"):
                detail += (f", HELD: credentials in clear in {', '.join(remote['held'])} keep them local "
                           f"(set [config_vcs] secret_recipients, or allow_plaintext_secrets for {name})")
            if remote.get("allow_plaintext_secrets"):
                detail += ", allow_plaintext_secrets: credentials are pushed here in clear"
            if remote.get("diverged"):
                detail += ", DIVERGED (someone else pushed there)"
            if remote.get("last_error"):
                detail += f", last error: {remote['last_error']}"
            table.add_row(f"  remote {name}", state, detail)
    for problem in info.get("private_files") or []:
        table.add_row(problem["what"], YELLOW, f"{problem['file']}: {problem['problem']}")
    return table
