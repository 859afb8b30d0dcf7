"""results.json, RESULTS.md and the table printed at the end."""

from __future__ import annotations

import json
from pathlib import Path


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


def _rate(per_second: float | None, what: str) -> str:
    return f"{per_second:,.0f} {what}/s" if per_second else "-"


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def measurement_rows(m: dict) -> list[tuple[str, str, str, str]]:
    """(measurement, tradevault, baseline, ratio) rows of the human tables."""
    fb, inc, rs, mem, lat = m["full_backup"], m["incremental"], m["restore"], m["memory"], m["commit_latency"]
    n = len(fb["tradevault_runs_seconds"])
    rows = [
        ("source database", f"{m['build']['db_bytes'] / 1e6:.1f} MB, {fb['rows']:,} rows", "", ""),
        (f"full backup time (best of {n})", _s(fb["tradevault_seconds"]),
         f"{_s(fb['baseline_seconds'])} (.backup {fb['baseline_backup_seconds']:.3f} + zstd -3 "
         f"{fb['baseline_compress_seconds']:.3f})", f"{fb['time_ratio']:.3f}"),
        ("full backup runs (s)", _runs(fb["tradevault_runs_seconds"]), _runs(fb["baseline_runs_seconds"]), ""),
        ("full backup CPU time (best)", _s(fb["tradevault_cpu_seconds"]), _s(fb["baseline_cpu_seconds"]),
         f"{fb['tradevault_cpu_seconds'] / fb['baseline_cpu_seconds']:.3f}" if fb["baseline_cpu_seconds"] else ""),
        ("first full backup, installs capture", _s(fb["first_full_seconds_with_capture_install"]), "", ""),
        ("full backup size", f"{fb['tradevault_bytes']:,} B" + (
            f" ({fb['tradevault_container_bytes']:,} B header+trailer)" if fb.get("tradevault_container_bytes") else ""),
         f"{fb['baseline_bytes']:,} B", f"{fb['size_ratio']:.4f}"),
        (f"incremental backup, {inc['changed_rows']:,} changed rows",
         f"{_s(inc['seconds'])} (CPU {inc['cpu_seconds'] or 0:.3f} s), {_mb(inc['bytes'])}, "
         f"{_rate(inc['events_per_second'], 'events')}", "", ""),
        (f"restore full + {rs['incrementals']} incremental(s) (best of {len(rs['tradevault_runs_seconds'])})",
         f"{_s(rs['tradevault_seconds'])}, {_rate(rs['rows_per_second'], 'rows')}",
         f"zstd -d {_s(rs['baseline_seconds'])}, {_rate(rs['baseline_rows_per_second'], 'rows')}",
         f"{rs['time_ratio']:.3f}"),
        ("restore runs (s)", _runs(rs["tradevault_runs_seconds"]), _runs(rs["baseline_runs_seconds"]), ""),
        ("restore CPU time (best)", _s(rs["tradevault_cpu_seconds"]), _s(rs["baseline_cpu_seconds"]),
         f"{rs['tradevault_cpu_seconds'] / rs['baseline_cpu_seconds']:.3f}" if rs["baseline_cpu_seconds"] else ""),
        ("restore equals source (digest)", "yes" if rs["equals_source"] else
         f"NO ({', '.join(rs['differing_tables']) or 'table lists differ'})", "", ""),
        ("peak RSS full / incremental / restore",
         f"{mem['full_backup_mb']:.0f} / {mem['incremental_mb']:.0f} / {mem['restore_mb']:.0f} MB",
         f"sqlite3 {mem['baseline_sqlite3_backup_mb']:.0f}, zstd {mem['baseline_zstd_compress_mb']:.0f} / "
         f"-d {mem['baseline_zstd_decompress_mb']:.0f} MB", ""),
        ("  (python + imports alone)", f"{mem['interpreter_with_imports_mb']:.0f} MB", "", ""),
        ("commit latency p50, capture on vs off", f"{lat['on']['p50_ms']:.3f} ms",
         f"{lat['off']['p50_ms']:.3f} ms", f"{lat['p50_ratio']:.3f}"),
        ("commit latency p99, capture on vs off", f"{lat['on']['p99_ms']:.3f} ms",
         f"{lat['off']['p99_ms']:.3f} ms", f"{lat['p99_ratio']:.3f}"),
        ("commit latency mean / max, on vs off", f"{lat['on']['mean_ms']:.3f} / {lat['on']['max_ms']:.1f} ms",
         f"{lat['off']['mean_ms']:.3f} / {lat['off']['max_ms']:.1f} ms", ""),
    ]
    return rows


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
    return [(g["name"], _value(g), g["goal"], "ok" if g["ok"] else "MISSED") for g in goals]


def text(results: dict) -> str:
    return "\n".join([
        f"tradevault benchmark, {results['rows']:,} rows: {results['command']}",
        "",
        _table(("measurement", "tradevault", "baseline", "ratio"), measurement_rows(results["measurements"])),
        "",
        _table(("goal", "value", "goal", ""), goal_rows(results["goals"])),
        *(["", busy_note(results)] if busy_note(results) else []),
    ])


METHOD = """\
* Every backup and restore step runs in a fresh child process (`python -m bench.worker`);
  its wall time and CPU time (all threads) are measured inside the child around the
  library call only (`BackupEngine.full()`, `.incremental()`, `plan_restore` +
  `restore_sqlite`). The baseline tools are timed from spawn to exit (CPU from `wait4`).
  Before every timed step `os.sync()` writes back what earlier steps left dirty, so a step
  that fsyncs does not pay for them.
* Memory: the peak resident set (`VmHWM`) of each step's own process, reported by the
  worker just before it exits (`ru_maxrss` is not used: on Linux a child inherits the
  parent's high-water mark at exec). Baseline tools: `VmHWM` polled every 2 ms.
* Full backup: tradevault's full backup (online backup API copy, change-log zeroing, row
  counts, zstd level 3 on all cores, fsync'd object + manifest) vs
  `sqlite3 SRC ".backup COPY"` then `zstd -3 -q COPY` (no fsync). Rounds are interleaved
  and the best of each side is compared. The first full backup, which installs change
  capture, is reported separately and is not part of the best-of.
* Incremental: rows are UPDATEd (a third in trades, the rest in orders, 10k rows per
  transaction, the same rows again when the tables hold fewer) after the full backups,
  so the change log holds one event per updated row; then one `incremental()` is timed
  (it reads the log, encodes, compresses, stores + fsyncs, publishes and prunes the log).
* Restore: the latest full + the incremental into a fresh file (decompress, replay,
  count check, fsync, rename) vs `zstd -d -q COPY.zst -o OUT` of the baseline; rows/s is
  restored rows per wall second. The restored database is compared with the source by
  `trade_stream.digest.database_digest` over every user table.
* Commit latency: `BEGIN IMMEDIATE; INSERT INTO orders ...; UPDATE trades ...; COMMIT`
  on two copies of the same database, one without capture and one with the triggers a full
  backup installed; WAL mode and SQLite's default `synchronous = FULL` on a fresh
  connection (what a bot's connection has); batches of both sides interleaved in random
  order after a warm-up of 100 transactions per side.
* The machine may be shared: the load average at start and end is in the machine table;
  CPU times are less sensitive to other load than wall times."""


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
    lat = m["commit_latency"]["settings"]["on"]
    machine = results["machine"]
    return "\n".join([
        "# tradevault benchmark results",
        "",
        f"Command (from the project root): `{results['command']}`",
        "",
        f"Rows: {results['rows']:,} (trades {m['build']['tables']['trades']:,}, "
        f"orders {m['build']['tables']['orders']:,}); "
        f"finished {results['finished']} in {results['total_seconds']:.1f} s.",
        "",
        busy_note(results),
        "",
        "## Goals",
        "",
        _md_table(("goal", "value", "target", "result"), goal_rows(results["goals"])),
        "",
        "## Measurements",
        "",
        _md_table(("measurement", "tradevault", "baseline", "ratio"), measurement_rows(m)),
        "",
        f"Commit latency settings: journal_mode={lat['journal_mode']}, synchronous={lat['synchronous']}, "
        f"wal_autocheckpoint={lat['wal_autocheckpoint']}, {m['commit_latency']['on']['transactions']:,} "
        f"transactions per side in batches of {m['commit_latency']['settings']['batch']}.",
        "",
        "## Method",
        "",
        METHOD,
        "",
        "## Machine",
        "",
        _md_table(("", ""), [(k, (", ".join(map(str, v)) or "none") if isinstance(v, list) else str(v))
                             for k, v in machine.items()]),
        "",
        "All numbers: `results.json` next to this file.",
        "",
    ])


def write(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "RESULTS.md").write_text(markdown(results))
