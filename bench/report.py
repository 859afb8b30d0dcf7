"""results.json, RESULTS.md and the table printed at the end."""

from __future__ import annotations

import json
from pathlib import Path


def _s(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.3f} s"


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


def _rate(per_second: float | None, what: str) -> str:
    return f"{per_second:,.0f} {what}/s" if per_second else "-"


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def _ratio(x: float | None, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and x == x else ""


def _goal_of(goals: list[dict], prefix: str) -> str:
    for g in goals:
        if g["name"].startswith(prefix):
            return f"{g['goal']} {'PASS' if g['ok'] else 'FAIL'}"
    return "-"


def sections(m: dict, goals: list[dict]) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
    """(title, header, rows) of every measured scenario."""
    out = []
    H = ("measurement", "tradevault", "peer", "ratio tradevault/peer", "goal")
    fb = m.get("full_backup")
    if fb:
        n = len(fb["tradevault_runs_seconds"])
        rows = [
            ("source database", f"{m['build']['db_bytes'] / 1e6:.1f} MB, {fb['rows']:,} rows", "", "", ""),
            (f"time vs sqlite3 .backup + zstd -3 (median of {n})", _s(fb["tradevault_seconds"]),
             f"{_s(fb['baseline_seconds'])} (.backup {fb['baseline_backup_seconds']:.3f} + zstd "
             f"{fb['baseline_compress_seconds']:.3f})", _ratio(fb["time_ratio"]),
             _goal_of(goals, "full backup time / (sqlite3 .backup")),
            ("size vs sqlite3 .backup + zstd -3", _mb(fb["tradevault_bytes"]), _mb(fb["baseline_bytes"]),
             _ratio(fb["size_ratio"], 4), _goal_of(goals, "full backup size / (sqlite3 .backup")),
            ("time vs sqlite3 .dump | zstd -3", _s(fb["tradevault_seconds"]), _s(fb["dump_seconds"]),
             _ratio(fb["dump_time_ratio"]), _goal_of(goals, "full backup time / (sqlite3 .dump")),
            ("size vs sqlite3 .dump | zstd -3", _mb(fb["tradevault_bytes"]), _mb(fb["dump_bytes"]),
             _ratio(fb["dump_size_ratio"], 4), _goal_of(goals, "full backup size / (sqlite3 .dump")),
        ]
        if "restic_seconds" in fb:
            rows += [
                ("time vs restic backup (fresh repository)", _s(fb["tradevault_seconds"]), _s(fb["restic_seconds"]),
                 _ratio(fb["restic_time_ratio"]), _goal_of(goals, "full backup time / restic")),
                ("size vs restic backup", _mb(fb["tradevault_bytes"]), _mb(fb["restic_bytes"]),
                 _ratio(fb["restic_size_ratio"], 4), _goal_of(goals, "full backup size / restic")),
            ]
        rows += [
            ("runs (s): tradevault | .backup+zstd | .dump|zstd | restic", _runs(fb["tradevault_runs_seconds"]),
             " | ".join([_runs(fb["baseline_runs_seconds"]), _runs(fb["dump_runs_seconds"]),
                         _runs(fb.get("restic_runs_seconds", []))]), "", ""),
            ("CPU time vs .backup + zstd", _s(fb["tradevault_cpu_seconds"]), _s(fb["baseline_cpu_seconds"]),
             _ratio(fb["tradevault_cpu_seconds"] / fb["baseline_cpu_seconds"]) if fb["baseline_cpu_seconds"] else "",
             ""),
            ("first full backup, installs capture", _s(fb["first_full_seconds_with_capture_install"]), "", "", ""),
            ("in-process (the command's own report: no start-up; not the goal's figure)",
             _s(fb.get("tradevault_in_process_seconds")), "", "", ""),
        ]
        pg = (m.get("postgres") or {}).get("measurements", {}).get("full_backup")
        if pg:
            rows.append((f"PostgreSQL ({m['postgres']['measurements']['rows']:,} rows): time vs pg_dump -Fc",
                         _s(pg["seconds"]), _s(pg["pg_dump_seconds"]), _ratio(pg["time_ratio"]),
                         _goal_of(goals, "PostgreSQL full backup time")))
            rows.append(("PostgreSQL: size vs pg_dump -Fc", _mb(pg["bytes"]), _mb(pg["pg_dump_bytes"]),
                         _ratio(pg["size_ratio"], 4), _goal_of(goals, "PostgreSQL full backup size")))
        out.append(("Full backup", H, rows))
    up = m.get("startup")
    if up:
        out.append(("Start-up (whole process, " + up["statistic"] + ")", ("command", "seconds", "runs", "goal"), [
            ("tradevault --version", _s(up["version_seconds"]), _runs(up["version_runs_seconds"]),
             _goal_of(goals, "tradevault --version")),
            (f"tradevault backups list ({up['catalog_entries']} entries)", _s(up["backups_list_seconds"]),
             _runs(up["backups_list_runs_seconds"]), _goal_of(goals, "tradevault backups list")),
        ]))
    inc = m.get("incremental")
    if inc:
        rows = []
        H2 = ("changed rows", "tradevault", "restic backup (dedup)", "restic/tradevault", "goal")
        for label in ("1%", "10%"):
            s = inc[label]
            rows.append((f"{label} ({s['changed_rows']:,} rows): time", _s(s["tradevault_seconds"]) +
                         f" ({_rate(s['events_per_second'], 'events')})",
                         _s(s["restic_seconds"]) if "restic_seconds" in s else "skipped",
                         _ratio(s.get("restic_time_over_tradevault"), 1),
                         _goal_of(goals, f"incremental at {label} changed: restic time")))
            rows.append((f"{label}: size", _mb(s["tradevault_bytes"]),
                         _mb(s["restic_bytes"]) if "restic_bytes" in s else "skipped",
                         _ratio(s.get("restic_size_over_tradevault"), 1),
                         _goal_of(goals, f"incremental at {label} changed: restic size")))
        rows.append((f"{inc['changed_rows']:,} changed rows (seconds)", _s(inc["seconds"]), "", "",
                     _goal_of(goals, "incremental backup of")))
        rows.append(("the same, in-process (the command's own report: no start-up)",
                     _s(inc.get("in_process_seconds")), "", "", ""))
        out.append((f"Incremental backup (median of {len([x for x in inc['rounds'] if x['label'] == '1%'])} "
                    "rounds each; ratios are peer / tradevault)", H2, rows))
    rs = m.get("restore")
    if rs:
        n = len(rs["tradevault_runs_seconds"])
        rows = []
        rp = rs.get("replay")
        if rp:
            rows.append((f"latest point, replaying: full + {rp['incrementals']} incrementals "
                         f"({rp['events_replayed']:,} events) vs zstd -d (median of {n}; no goal: the agent "
                         "consolidates past 250,000 events)",
                         f"{_s(rp['tradevault_seconds'])}, {_rate(rp['rows_per_second'], 'rows')}",
                         _s(rs["baseline_seconds"]), _ratio(rp["time_ratio"]), ""))
            if "restic_time_ratio" in rp:
                rows.append(("latest point, replaying, vs restic restore latest", _s(rp["tradevault_seconds"]),
                             _s(rs["restic_seconds"]), _ratio(rp["restic_time_ratio"]), ""))
            cons = rs["consolidation"]
            rows.append(("consolidation (a full backup built from the store; the source is not read)",
                         f"{_s(cons['seconds'])}, {cons['bytes'] / 1e6:.2f} MB", "", "", ""))
        rows.append((f"latest point{', after consolidation' if rp else ''}: full + {rs['incrementals']} "
                     f"incrementals vs zstd -d of the .backup copy (median of {n})",
                     f"{_s(rs['tradevault_seconds'])}, {_rate(rs['rows_per_second'], 'rows')}",
                     _s(rs["baseline_seconds"]), _ratio(rs["time_ratio"]),
                     _goal_of(goals, "restore of the latest point (as the agent keeps the store) time / zstd")))
        if "restic_seconds" in rs:
            rows.append(("latest point vs restic restore latest", _s(rs["tradevault_seconds"]),
                         _s(rs["restic_seconds"]), _ratio(rs["restic_time_ratio"]),
                         _goal_of(goals, "restore of the latest point (as the agent keeps the store) time / restic")))
        rows += [
            ("latest point, in-process (the command's own report: no start-up)",
             _s(rs.get("tradevault_in_process_seconds")), "", "", ""),
            ("runs (s): tradevault | zstd -d | restic", _runs((rp or {}).get("tradevault_runs_seconds", []))
             + (" then " if rp else "") + _runs(rs["tradevault_runs_seconds"]),
             _runs(rs["baseline_runs_seconds"]) + " | " + _runs(rs.get("restic_runs_seconds", [])), "", ""),
            ("restored equals source (digest)", "yes" if rs["equals_source"] else
             f"NO ({', '.join(rs['differing_tables']) or 'table lists differ'})",
             ("restic: yes" if rs.get("restic_equals_source") else "restic: NO")
             if "restic_equals_source" in rs else "",
             "", _goal_of(goals, "restore equals source")),
        ]
        pg = (m.get("postgres") or {}).get("measurements", {})
        if pg.get("restore"):
            rows.append(("PostgreSQL: full + incremental vs pg_restore of the end state", _s(pg["restore"]["seconds"]),
                         _s(pg["restore"]["pg_restore_seconds"]), _ratio(pg["restore"]["time_ratio"]),
                         _goal_of(goals, "PostgreSQL restore of full + incremental")))
        pit = m.get("pitr")
        if pit:
            rows.append((f"point in time (middle of the changes: {pit['incrementals']} incrementals, "
                         f"{pit['events_replayed']:,} events)", _s(pit["seconds"]),
                         "peers cannot (no point-in-time restore)", "",
                         _goal_of(goals, "point-in-time restore")))
            rows.append(("point in time equals the source at that instant", "yes" if pit["equals_source_at_target"]
                         else "NO", "", "", ""))
        for n_rows, t in sorted(((int(k), v) for k, v in (m.get("scaling") or {}).items())):
            what = "full + incrementals" if n_rows == max(int(k) for k in m["scaling"]) else "full backup only"
            rows.append((f"restore vs rows: {n_rows:,} ({what})", _s(t["tradevault"]),
                         f"zstd -d {_s(t['zstd -d'])}"
                         + (f", restic {_s(t['restic restore'])}" if "restic restore" in t else ""),
                         _ratio(t["tradevault"] / t["zstd -d"]), ""))
        out.append(("Restore", H, rows))
    lat = m.get("commit_latency")
    if lat:
        H3 = ("commit latency", "p50", "p99", "mean / max", "p99 / capture off", "goal")
        rows = []
        for key, label in (("off", "capture off"), ("on", "capture on"),
                           ("during_full", "capture on, full backup running")):
            if key not in lat:
                continue
            x = lat[key]
            ratio = {"off": 1.0, "on": lat["p99_ratio"], "during_full": lat.get("during_full_p99_ratio")}[key]
            g = {"off": "", "on": _goal_of(goals, "commit latency p99 with capture / without"),
                 "during_full": _goal_of(goals, "commit latency p99 with capture during")}[key]
            rows.append((f"{label} ({x['transactions']:,} tx)", f"{x['p50_ms']:.3f} ms", f"{x['p99_ms']:.3f} ms",
                         f"{x['mean_ms']:.3f} / {x['max_ms']:.1f} ms", _ratio(ratio), g))
        if "during_full" in lat:
            rows.append((f"(full backups during the last row: {lat['during_full']['background_fulls']})",
                         "", "", "", "", ""))
        if lat.get("rounds"):
            rows.append((f"(ratios: median of {len(lat['rounds'])} rounds; per round p99 on/off "
                         + ", ".join(f"{x['p99_ratio']:.2f}" for x in lat["rounds"]) + "; during full/off "
                         + ", ".join(f"{x['during_full_p99_ratio']:.2f}" for x in lat["rounds"]) + ")",
                         "", "", "", "", ""))
        out.append(("Capture: trading-commit latency", H3, rows))
    kl = m.get("keyless_capture")
    if kl:
        H5 = ("table", "p99 capture off", "p99 capture on", "on / off", "goal")
        p99 = kl["p99_ms"]
        rows = [("keyed (11 columns)", f"{p99['keyed_off']:.3f} ms", f"{p99['keyed_on']:.3f} ms",
                 _ratio(kl["keyed_overhead_p99"]), ""),
                ("keyless (same 11 columns)", f"{p99['keyless_off']:.3f} ms", f"{p99['keyless_on']:.3f} ms",
                 _ratio(kl["keyless_overhead_p99"]), ""),
                ("keyless overhead / keyed overhead", "", "", _ratio(kl["overhead_ratio_p99"]),
                 _goal_of(goals, "capture overhead on a keyless table"))]
        out.append(("Capture: a table without a primary key (" + kl["statistic"] + ")", H5, rows))
    ag = m.get("agent")
    if ag:
        H4 = ("measurement", "value", "goal")
        rows = [
            (f"commit -> stored (agent, incremental = 1 s), {ag['lag_transactions']:,} tx: p50 / p99 / max",
             f"{ag['commit_to_stored_p50_s']:.3f} / {ag['commit_to_stored_p99_s']:.3f} / "
             f"{ag['commit_to_stored_max_s']:.3f} s",
             _goal_of(goals, "commit -> stored")),
            (f"sustained capture throughput ({ag['throughput_events']:,} events in {ag['throughput_batch']}-row tx)",
             f"{_rate(ag['throughput_sealed_per_second'], 'events')} sealed and stored (written at "
             f"{_rate(ag['throughput_written_per_second'], 'events')}; "
             f"max backlog {ag['throughput_backlog_max_events']:,})",
             _goal_of(goals, "sustained capture throughput")),
        ]
        kf = m.get("kafka")
        if kf:
            rows.append((f"commit -> Kafka: {kf['events']:,} captured events published, acks=all ({kf['broker']})",
                         f"{kf['seconds']:.3f} s, {_rate(kf['events_per_second'], 'events')}",
                         _goal_of(goals, "Kafka sink throughput")))
        else:
            why = (m.get("scenarios") or {}).get("skipped", {}).get("kafka")
            rows.append(("commit -> Kafka", f"skipped: {why}" if why else "not run", "-"))
        pgc = (m.get("postgres") or {}).get("measurements", {}).get("capture")
        if pgc:
            catch_up = (f"; an untimed incremental before them took {pgc['catch_up_seconds']:.1f} s to move the slot "
                        "past the bench's own restore loads" if "catch_up_seconds" in pgc else "")
            rows.append((f"PostgreSQL capture throughput ({pgc['events']:,} changes{catch_up})",
                         _rate(pgc["per_second"], "events"),
                         _goal_of(goals, "PostgreSQL capture throughput")))
        out.append(("Capture: lag and throughput", H4, rows))
    cfg = m.get("config")
    if cfg:
        import statistics

        from bench.latency import percentile
        c, p = sorted(cfg["change_to_commit_s"]), sorted(cfg["commit_to_pushed_s"])
        H5 = ("configuration history (3 local bare remotes)", "p50", "p99", "goal")
        rows = [
            (f"change -> commit ({len(c)} changes, quiet period {cfg['quiet_period']} s)",
             f"{statistics.median(c):.3f} s", f"{percentile(c, 99):.3f} s", _goal_of(goals, "config change-to-commit")),
            ("commit -> pushed to all 3 remotes", f"{statistics.median(p):.3f} s" if p else "-",
             f"{percentile(p, 99):.3f} s" if p else "-", _goal_of(goals, "config commit-to-pushed")),
            (f"{cfg['bulk_files']:,} files at once -> {cfg['bulk_commits']} commit(s) holding "
             f"{cfg['bulk_files_in_commit']:,} of them", f"{cfg['bulk_change_to_commit_s'] or float('nan'):.3f} s",
             f"pushed +{cfg['bulk_commit_to_pushed_s'] or float('nan'):.3f} s", _goal_of(goals, "config 1,000 files")),
        ]
        out.append(("Configuration history", H5, rows))
    mem = m.get("memory")
    if mem:
        H6 = ("peak RSS (VmHWM) of", "MB", "goal")
        rows = [(k, f"{v:.0f}", "<= 200 MB") for k, v in sorted(mem["per_command_mb"].items())]
        rows.append(("(python + imports alone)", f"{mem['interpreter_with_imports_mb']:.0f}", ""))
        for key, label in (("baseline_sqlite3_backup_mb", "peer: sqlite3 .backup"),
                           ("baseline_zstd_compress_mb", "peer: zstd -3"),
                           ("baseline_zstd_decompress_mb", "peer: zstd -d"), ):
            if mem.get(key) is not None:
                rows.append((label, f"{mem[key]:.0f}", ""))
        if (m.get("full_backup") or {}).get("restic_rss_mb"):
            rows.append(("peer: restic backup", f"{m['full_backup']['restic_rss_mb']:.0f}", ""))
        out.append(("Peak memory of every tradevault command in the run", H6, rows))
    return out


def print_goals(goals: list[dict]) -> None:
    """A sub-bench's goals on the terminal: name, value, goal, ok or MISSED."""
    width = max((len(g["name"]) for g in goals), default=0)
    for goal in goals:
        print(f"{goal['name']:{width}}  {goal['value']:>8}  {goal['goal']:>7}  {'ok' if goal['ok'] else 'MISSED'}")


def value_text(goal: dict) -> str:
    return _value(goal)


def _value(goal: dict) -> str:
    value = goal["value"]
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.4f}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def goal_rows(goals: list[dict]) -> list[tuple[str, str, str, str]]:
    return [(g["name"], _value(g), g["goal"], "PASS" if g["ok"] else "FAIL") for g in goals]


def goal_rows_with_source(goals: list[dict]) -> list[tuple[str, str, str, str, str]]:
    return [(*row, g.get("source", "existing bench goal")) for row, g in zip(goal_rows(goals), goals)]


def text(results: dict) -> str:
    m = results["measurements"]
    parts = [f"tradevault benchmark, {results['rows']:,} rows: {results['command']}", ""]
    for title, header, rows in sections(m, results["goals"]):
        parts += [f"== {title}", _table(header, rows), ""]
    parts += ["== Goals", _table(("goal", "value", "goal", ""), goal_rows(results["goals"]))]
    if busy_note(results):
        parts += ["", busy_note(results)]
    return "\n".join(parts)


METHOD = """\
* Every backup and restore step is the `tradevault` command as a user runs it (the
  console script with a generated `tradevault.toml`, bench/tv_commands.py), timed from
  spawn to reap exactly like the peers' commands: interpreter start-up, imports, reading
  the config and the work. The command's own `--json` figure (the library call, no
  start-up) is kept beside it as "in-process", and is not what the goals judge. CPU time
  is the child's own from `wait4`. Before every timed step `os.sync()` writes back what
  earlier steps left dirty, so a step that fsyncs does not pay for them.
* Memory: the peak resident set (`VmHWM`) of each command's own process, polled every
  2 ms (`ru_maxrss` is not used: on Linux a child inherits the parent's high-water mark at
  exec); the same for the baseline tools.
* Full backup: tradevault's full backup (online backup API copy, change-log zeroing, row
  counts, zstd level 3 on all cores, fsync'd object + manifest) vs
  `sqlite3 SRC ".backup COPY"` then `zstd -3 -q COPY` (no fsync). Rounds are interleaved
  and the median of each side is compared. The first full backup, which installs change
  capture, is reported separately and is not part of the median.
* Incremental: rows are UPDATEd (a third in trades, the rest in orders, 10k rows per
  transaction, the same rows again when the tables hold fewer) after the full backups,
  so the change log holds one event per updated row; then one `tradevault backup incremental` is timed
  (it reads the log, encodes, compresses, stores + fsyncs, publishes and prunes the log).
* Restore: the latest full + the incremental into a fresh file (decompress, replay,
  count check, fsync, rename) vs `zstd -d -q COPY.zst -o OUT` of the baseline; rows/s is
  restored rows per wall second. The restored database is compared with the source by
  `trade_stream.sqlite.digest.database_digest` over every user table.
* Commit latency: `BEGIN IMMEDIATE; INSERT INTO orders ...; UPDATE trades ...; COMMIT`
  on two copies of the same database, one without capture and one with the triggers a full
  backup installed; WAL mode and SQLite's default `synchronous = FULL` on a fresh
  connection (what a bot's connection has); batches of both sides interleaved in random
  order after a warm-up of 100 transactions per side.
* Peers (same run, same data, A/B interleaved: the order of the sides alternates round by
  round; medians of `--repeat` >= 3 rounds): `sqlite3 .dump | zstd -3`; `restic backup` of
  the database file (local repository, `RESTIC_PASSWORD` in the child's environment; a fresh
  repository per full round, the last one kept so each incremental round is a deduplicated
  `restic backup` of the changed file; the WAL is checkpointed into the file, untimed, before
  every restic step since the file alone must hold the changes); `restic restore latest`;
  `pg_dump -Fc` / `pg_restore` through `bench/postgres_bench.py` on its own PostgreSQL cluster
  (same row count, its own schema).
* Incremental rounds: 1% and 10% of the rows UPDATEd at random (a third trades, the rest
  orders; random rows are the hard case for restic's file-level deduplication and make no
  difference to tradevault, which reads the change log), then tradevault's incremental,
  then restic. Restore of the latest point replays the last full + every incremental
  (`--repeat` rounds), then, after a consolidation, restores its snapshot (at least 7
  rounds: a round is seconds, and identical runs of each tool varied 1.0-3.2 s with the
  disk's speed at 10M rows); the `zstd -d` time is the median of both scenarios' rounds.
* Point-in-time restore: `restore --at` the instant between the 1% and the 10% rounds;
  the result is compared by digest with the source's digest taken at that instant.
* Commit latency during a full backup: a separate process runs `BackupEngine.full()` back
  to back on the capture-on copy while the trading transactions are timed. The latency
  scenario takes at least 7 rounds (p99 ratios of single rounds swing between 0.4x and
  2.2x on a shared 2-core machine); goals use the median of the per-round ratios.
* Keyless capture: four databases with one 11-column table of 10,000 rows, keyed and
  keyless (a plain index on `id`), each with and without capture; one transaction INSERTs a
  row and UPDATEs one by id; the four sides interleaved in batches. The goal compares
  capture's p99 overhead (on / off) of the keyless table with the keyed one's (median of at
  least 7 rounds).
* Agent: `tradevault agent` as a subprocess on a copy (`incremental = "1s"`); commit ->
  stored is the time from a COMMIT to the moment the manifest entry of the incremental that
  holds its seq appears in the store (polled every 5 ms). Throughput: 1000-row transactions
  as fast as possible for the phase, until the agent has stored the last one.
* Configuration history: `config_vcs.service.ConfigHistory` with 3 local bare remotes,
  quiet period 0.5 s, in its own child process; times by polling every 2 ms.
* Goals with a source of "bench default ..." are not stated by an issue: they hold
  tradevault to at least parity with the peer.
* The machine is shared and noisy (other jobs run on it): the load average at start and
  end is in the machine table; CPU times are less sensitive to other load than wall times."""


def busy_note(results: dict) -> str:
    machine = results["machine"]
    loads = [x for key in ("load_average_start", "load_average_end") for x in (machine.get(key) or [])[:1]]
    cpus = machine.get("cpus") or 1
    if loads and max(loads) > 0.5 * cpus:
        return (f"Note: the machine was busy with other work (1-minute load average up to {max(loads):.1f} "
                f"on {cpus} CPUs): wall-clock times and ratios are noisy; CPU times are steadier.")
    return ""


def markdown(results: dict) -> str:
    m = results["measurements"]
    machine = results["machine"]
    goals = results["goals"]
    missed = [g for g in goals if not g["ok"]]
    parts = [
        "# tradevault benchmark results",
        "",
        f"Command (from the project root): `{results['command']}`",
        "",
        f"Rows: {results['rows']:,} (trades {m['build']['tables']['trades']:,}, "
        f"orders {m['build']['tables']['orders']:,}); scenarios: {', '.join(results['scenarios'])}; "
        f"finished {results['finished']} in {results['total_seconds']:.1f} s.",
        "",
        "The machine is shared with other work and noisy: wall-clock ratios move by tens of per cent "
        "between runs; CPU times are steadier. " + busy_note(results),
        "",
        "## Goals",
        "",
        f"{len(goals) - len(missed)} of {len(goals)} goals met.",
        "",
        _md_table(("goal", "value", "target", "result", "goal from"), goal_rows_with_source(goals)),
        "",
    ]
    if missed:
        parts += ["Missed goals:", ""] + [f"* **{g['name']}**: {_value(g)} (goal {g['goal']})" for g in missed] + [""]
    sc = m.get("scenarios") or {}
    for name, why in (sc.get("skipped") or {}).items():
        parts.append(f"* skipped: {name}: {why}")
    for name, error in (sc.get("errors") or {}).items():
        parts.append(f"* FAILED scenario {name}: {error.splitlines()[0]}")
    parts.append("")
    for title, header, rows in sections(m, goals):
        parts += [f"## {title}", "", _md_table(header, rows), ""]
    lat = (m.get("commit_latency") or {}).get("settings", {}).get("on")
    if lat:
        parts += [f"Commit latency settings: journal_mode={lat['journal_mode']}, synchronous={lat['synchronous']}, "
                  f"wal_autocheckpoint={lat['wal_autocheckpoint']}, batches of "
                  f"{m['commit_latency']['settings']['batch']} interleaved.", ""]
    if results.get("plots"):
        parts += ["## Plots", ""] + [f"![{p}]({p})" for p in results["plots"]] + [""]
    parts += [
        "## Method",
        "",
        METHOD,
        "",
        "## Machine",
        "",
        _md_table(("", ""), [(k, (", ".join(map(str, v)) or "none") if isinstance(v, list) else str(v))
                             for k, v in machine.items()]),
        "",
        "All numbers, with every raw sample: `results.json` next to this file.",
        "",
    ]
    return "\n".join(parts)


def write(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "RESULTS.md").write_text(markdown(results))


def rerender(out: Path) -> dict:
    """Re-render DIR/RESULTS.md and the plots from DIR/results.json with this code (goals
    recomputed from the stored measurements): ``python -m bench.report DIR``."""
    from bench import core, plots

    results = json.loads((out / "results.json").read_text())
    opts = core.Options(rows=results["rows"], out=out)
    results["goals"] = core.goals(results["measurements"], opts)
    results["plots"] = plots.write(out, results)
    write(out, results)
    return results


if __name__ == "__main__":
    import sys

    print(text(rerender(Path(sys.argv[1]))))
