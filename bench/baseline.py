"""The baseline a full backup is compared with: the real ``sqlite3`` and ``zstd`` tools.

    backup:  sqlite3 SRC ".backup COPY"  then  zstd -3 -q COPY   (-> COPY.zst)
    restore: zstd -d -q COPY.zst -o OUT
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.children import run_measured

TOOLS = ("sqlite3", "zstd")


class MissingTools(RuntimeError):
    pass


def require_tools() -> dict[str, str]:
    """Paths of the baseline tools; MissingTools with the install hint when one is absent."""
    found = {tool: shutil.which(tool) for tool in TOOLS}
    missing = [tool for tool, path in found.items() if not path]
    if missing:
        raise MissingTools(
            f"the benchmark compares with the real {' and '.join(TOOLS)} command-line tools, "
            f"but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on PATH: "
            "apt-get install sqlite3 zstd"
        )
    return {tool: str(path) for tool, path in found.items()}


def tool_versions(tools: dict[str, str]) -> dict[str, str]:
    versions = {}
    for tool, flag in (("sqlite3", "--version"), ("zstd", "--version")):
        try:
            out = subprocess.run([tools[tool], flag], capture_output=True, text=True, timeout=10).stdout
            versions[tool] = out.strip().splitlines()[0] if out.strip() else "?"
        except (OSError, subprocess.SubprocessError):
            versions[tool] = "?"
    return versions


def _sqlite_path_arg(path: Path) -> str:
    text = str(path)
    if "'" in text:
        raise ValueError(f"baseline paths must not contain a single quote: {text}")
    return f"'{text}'"


@dataclass
class BaselineBackup:
    backup_seconds: float
    compress_seconds: float
    bytes: int
    copy_bytes: int
    backup_rss_kb: int
    compress_rss_kb: int
    zst: Path
    cpu_seconds: float

    @property
    def seconds(self) -> float:
        return self.backup_seconds + self.compress_seconds


def backup(tools: dict[str, str], source: Path, copy: Path) -> BaselineBackup:
    zst = copy.with_name(copy.name + ".zst")
    for leftover in (copy, zst):
        leftover.unlink(missing_ok=True)
    b = run_measured([tools["sqlite3"], str(source), f".backup {_sqlite_path_arg(copy)}"])
    c = run_measured([tools["zstd"], "-3", "-q", str(copy)])
    result = BaselineBackup(b.seconds, c.seconds, zst.stat().st_size, copy.stat().st_size,
                            b.hwm_kb, c.hwm_kb, zst, b.cpu_seconds + c.cpu_seconds)
    copy.unlink()
    return result


def decompress(tools: dict[str, str], zst: Path, out: Path) -> tuple[float, int, float]:
    """(seconds, peak RSS KiB, CPU seconds) of ``zstd -d`` into a fresh file."""
    out.unlink(missing_ok=True)
    run = run_measured([tools["zstd"], "-d", "-q", str(zst), "-o", str(out)])
    return run.seconds, run.hwm_kb, run.cpu_seconds
