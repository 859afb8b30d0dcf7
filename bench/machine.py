"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from pathlib import Path

import zstandard

from bench.baseline import tool_versions
from bench.children import PROJECT_ROOT


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _filesystem(path: Path) -> str:
    """Type of the file system holding ``path`` (longest matching mount point)."""
    try:
        best, kind = "", "?"
        target = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")):
                if len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
        return kind
    except OSError:
        return "?"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _modified_files() -> list[str]:
    """Tracked files with uncommitted changes (the numbers are of the working tree)."""
    try:
        out = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        return [line[3:] for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return []


def describe(out_dir: Path, tools: dict[str, str]) -> dict:
    versions = tool_versions(tools)
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_mb": _memory_mb(),
        "filesystem": _filesystem(out_dir),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "sqlite_library": sqlite3.sqlite_version,
        "sqlite3_cli": versions["sqlite3"],
        "zstd_cli": versions["zstd"],
        "zstandard_module": f"{zstandard.__version__} (libzstd {zstandard.ZSTD_VERSION[0]}."
                            f"{zstandard.ZSTD_VERSION[1]}.{zstandard.ZSTD_VERSION[2]})",
        "restic_cli": _restic(),
        "pg_dump": _version(["pg_dump", "--version"]),
        "matplotlib": _matplotlib(),
        "project_commit": _git_commit(),
        "project_uncommitted_files": _modified_files(),
    }


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def _restic() -> str:
    import shutil

    from bench.peers import restic_version

    return restic_version(shutil.which("restic"))


def _matplotlib() -> str:
    try:
        import matplotlib

        return matplotlib.__version__
    except ImportError:
        return "not installed (no plots)"
