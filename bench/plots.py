"""PNG plots of a run (only when matplotlib is importable: ``pip install matplotlib``, or the
``bench`` extra): time and size per tool per scenario, commit-latency distributions, restore
time vs rows. Returns the file names written (relative to DIR)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    """matplotlib's pyplot drawing to files, or None when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def write(out: Path, results: dict) -> list[str]:
    plt = _pyplot()
    if plt is None:
        return []
    m = results["measurements"]
    written = []
    for name, draw in (("times-and-sizes.png", _times_sizes), ("commit-latency.png", _latency),
                       ("restore-vs-rows.png", _scaling)):
        fig = draw(plt, m, results["rows"])
        if fig is None:
            continue
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(name)
    return written


def write_postgres(out: Path, results: dict) -> list[str]:
    """The PostgreSQL bench's plot: one large transaction's times and peak memory
    against its size."""
    m = results["measurements"].get("large_transaction")
    plt = _pyplot()
    if plt is None or not m:
        return []
    sizes = m["sizes"]
    rows = [s["rows"] for s in sizes]
    fig, (ax_t, ax_m) = plt.subplots(2, 1, figsize=(9, 8), sharex=True)
    colour = {"backup incremental": "C0", "wal2json decode floor": "C1", "restore to PostgreSQL": "C2",
              "pg_restore of the end state": "C3", "restore to SQLite": "C4"}
    for label, series in (("backup incremental", [s["incremental"]["seconds"] for s in sizes]),
                          ("wal2json decode floor", [s["floor"]["seconds"] for s in sizes]),
                          ("restore to PostgreSQL", [s["restore_postgres"]["seconds"] for s in sizes]),
                          ("pg_restore of the end state", [s["restore_postgres"]["pg_restore_seconds"] for s in sizes]),
                          ("restore to SQLite", [s["restore_sqlite"]["seconds"] for s in sizes])):
        ax_t.plot(rows, series, marker="o", label=label, color=colour[label])
    for label, key in (("backup incremental", "incremental"), ("restore to PostgreSQL", "restore_postgres"),
                       ("restore to SQLite", "restore_sqlite")):
        ax_m.plot(rows, [s[key]["peak_mb"] for s in sizes], marker="o", label=label, color=colour[label])
    ax_m.axhline(200, color="grey", linestyle="--", linewidth=1, label="goal: 200 MB")
    for ax in (ax_t, ax_m):
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_t.set_yscale("log")
    ax_t.set_ylabel("seconds (whole process)")
    ax_m.set_ylabel("peak RSS (MB)")
    ax_m.set_xlabel("rows changed by the one transaction")
    ax_t.set_title("PostgreSQL: one UPDATE of every row, against its size", fontsize=10)
    fig.savefig(out / "large-transaction.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return ["large-transaction.png"]


def _times_sizes(plt, m: dict, rows: int):
    fb, inc, rs = m.get("full_backup"), m.get("incremental"), m.get("restore")
    if not fb:
        return None
    groups = []  # (scenario, {tool: (seconds, bytes or None)})
    full = {"tradevault": (fb["tradevault_seconds"], fb["tradevault_bytes"]),
            ".backup + zstd -3": (fb["baseline_seconds"], fb["baseline_bytes"]),
            ".dump | zstd -3": (fb["dump_seconds"], fb["dump_bytes"])}
    if "restic_seconds" in fb:
        full["restic"] = (fb["restic_seconds"], fb["restic_bytes"])
    groups.append(("full backup", full))
    if inc:
        for label in ("1%", "10%"):
            s = inc[label]
            g = {"tradevault": (s["tradevault_seconds"], s["tradevault_bytes"])}
            if "restic_seconds" in s:
                g["restic"] = (s["restic_seconds"], s["restic_bytes"])
            groups.append((f"incremental {label}", g))
    if rs:
        g = {"tradevault": (rs["tradevault_seconds"], None), "zstd -d (.backup)": (rs["baseline_seconds"], None)}
        if rs.get("replay"):
            g["tradevault, replaying every incremental"] = (rs["replay"]["tradevault_seconds"], None)
        if "restic_seconds" in rs:
            g["restic"] = (rs["restic_seconds"], None)
        groups.append(("restore latest", g))
    if m.get("pitr"):
        groups.append(("restore point in time", {"tradevault": (m["pitr"]["seconds"], None)}))
    tools = []
    for _name, g in groups:
        tools += [t for t in g if t not in tools]
    colors = dict(zip(tools, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    fig, (ax_t, ax_s) = plt.subplots(2, 1, figsize=(11, 8))
    width = 0.8 / max(1, len(tools))
    for ax, index, unit, scale in ((ax_t, 0, "seconds (median)", 1.0), (ax_s, 1, "MB stored", 1e6)):
        labelled = set()
        for x, (_name, g) in enumerate(groups):
            for j, tool in enumerate(tools):
                value = g.get(tool, (None, None))[index]
                if value is None:
                    continue
                ax.bar(x + (j - len(tools) / 2 + 0.5) * width, value / scale, width, color=colors[tool],
                       label=None if tool in labelled else tool)
                labelled.add(tool)
        ax.set_xticks(range(len(groups)), [name for name, _ in groups])
        ax.set_ylabel(unit)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    ax_t.set_title(f"time and size per tool per scenario, {rows:,} rows (log scale)")
    return fig


def _latency(plt, m: dict, rows: int):
    lat = m.get("commit_latency")
    if not lat:
        return None
    fig, ax = plt.subplots(figsize=(9, 5))
    for key, label in (("off", "capture off"), ("on", "capture on"), ("during_full", "capture on + full backup")):
        if key not in lat or not lat[key].get("samples_ms"):
            continue
        values = sorted(lat[key]["samples_ms"])
        n = len(values)
        ax.plot(values, [(i + 1) / n for i in range(n)], label=f"{label} (p99 {lat[key]['p99_ms']:.2f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("commit latency (ms, log scale)")
    ax.set_ylabel("fraction of transactions")
    ax.set_title(f"trading-commit latency distribution (CDF), {rows:,} rows")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _scaling(plt, m: dict, rows: int):
    scaling = m.get("scaling") or {}
    if not scaling:
        return None
    points = sorted((int(k), v) for k, v in scaling.items())
    fig, ax = plt.subplots(figsize=(8, 5))
    tools = []
    for _n, v in points:
        tools += [t for t in v if t not in tools]
    for tool in tools:
        xs = [n for n, v in points if tool in v]
        ax.plot(xs, [v[tool] for n, v in points if tool in v], marker="o", label=tool)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows")
    ax.set_ylabel("restore time (s, median)")
    ax.set_title(f"restore of the latest point vs database size\n(smaller sizes: full backup only; "
                 f"{rows:,} rows: full + the run's incrementals)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
