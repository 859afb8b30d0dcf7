"""The other peers a backup is compared with, besides ``sqlite3 .backup`` + ``zstd -3``
(bench/baseline.py):

    dump:    sqlite3 SRC .dump | zstd -3 -q -o DUMP.sql.zst          (restore: zstd -dc | sqlite3 NEW)
    restic:  restic backup SRC   into a local repository (RESTIC_PASSWORD in the child's env)
             restic restore latest --target DIR

restic is installed on first use when missing (``apt-get install -y restic`` as root);
otherwise the restic comparisons are skipped with a clear message.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.children import run_measured

RESTIC_PASSWORD = "tradevault-bench"  # a throw-away local repository


@dataclass
class ToolRun:
    seconds: float
    cpu_seconds: float
    hwm_kb: int
    bytes: int = 0


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def ensure_restic(log) -> str | None:
    """Path of ``restic``; installs the Debian package when missing and running as root.
    None (with a message) when it cannot be had: the restic comparisons are then skipped."""
    found = shutil.which("restic")
    if found:
        return found
    if os.geteuid() != 0:
        log("restic is not installed and this is not root: the restic comparisons are skipped "
            "(install it with `sudo apt-get install -y restic` and run again)")
        return None
    log("restic is not installed: running `apt-get install -y restic`")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", "install", "-y", "restic"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        proc = subprocess.run(["apt-get", "install", "-y", "restic"], capture_output=True, text=True, env=env)
    found = shutil.which("restic")
    if not found:
        log(f"could not install restic (apt-get exited {proc.returncode}: {proc.stderr.strip()[-300:]}); "
            "the restic comparisons are skipped")
    return found


def restic_version(restic: str | None) -> str:
    if not restic:
        return "not installed"
    try:
        return subprocess.run([restic, "version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


class Restic:
    """One local restic repository."""

    def __init__(self, restic: str, repo: Path, cache: Path) -> None:
        self.restic, self.repo, self.cache = restic, repo, cache
        self.env = dict(os.environ, RESTIC_REPOSITORY=str(repo), RESTIC_PASSWORD=RESTIC_PASSWORD,
                        RESTIC_CACHE_DIR=str(cache), RESTIC_PROGRESS_FPS="0.01")

    def init(self) -> None:
        if self.repo.exists():
            shutil.rmtree(self.repo)
        run_measured([self.restic, "init"], env=self.env)

    def backup(self, path: Path) -> ToolRun:
        """``restic backup PATH``; bytes = growth of the repository."""
        before = dir_bytes(self.repo)
        run = run_measured([self.restic, "backup", "--quiet", "--host", "bench", str(path)], env=self.env)
        return ToolRun(run.seconds, run.cpu_seconds, run.hwm_kb, dir_bytes(self.repo) - before)

    def restore(self, target_dir: Path, source_path: Path) -> tuple[ToolRun, Path]:
        """``restic restore latest --target DIR``; returns the run and the restored file."""
        if target_dir.exists():
            shutil.rmtree(target_dir)
        target_dir.mkdir(parents=True)
        run = run_measured([self.restic, "restore", "latest", "--quiet", "--host", "bench",
                            "--target", str(target_dir)], env=self.env)
        restored = target_dir / str(source_path.absolute()).lstrip("/")
        return ToolRun(run.seconds, run.cpu_seconds, run.hwm_kb, restored.stat().st_size), restored


def dump_backup(tools: dict[str, str], source: Path, out: Path) -> ToolRun:
    """``sqlite3 SRC .dump | zstd -3 -q -o OUT`` (pipefail)."""
    out.unlink(missing_ok=True)
    script = (f"set -o pipefail; {shlex.quote(tools['sqlite3'])} {shlex.quote(str(source))} .dump | "
              f"{shlex.quote(tools['zstd'])} -3 -q -o {shlex.quote(str(out))}")
    run = run_measured(["bash", "-c", script])
    return ToolRun(run.seconds, run.cpu_seconds, run.hwm_kb, out.stat().st_size)


def python_module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def python() -> str:
    return sys.executable
