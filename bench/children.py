"""Running measured child processes: wall time and peak memory of each child.

Every measured step runs in a child process of its own. Peak memory is the child's
``VmHWM`` (peak resident set of its own address space since exec, /proc/PID/status):

* ``ru_maxrss`` (getrusage / wait4) is NOT used as the number: on Linux a child started by
  vfork/fork + exec inherits the parent's high-water RSS at exec (exec_mmap records the old
  mm's hiwater into the process's maxrss), so every child would show at least the
  benchmark driver's own peak (tens to hundreds of MB) whatever it really used.
* a bench.worker child reports its own VmHWM just before it exits (exact);
* for the baseline tools the parent polls VmHWM every few milliseconds while they run
  (monotonic, so the last reading is the peak up to a few ms before exit).

``ru_maxrss`` is kept alongside for reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "tradevault"
TRADEVAULT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tradevault.cli"]


class ChildFailed(RuntimeError):
    pass


@dataclass
class ChildRun:
    seconds: float  # wall time from spawn to reap
    hwm_kb: int  # polled VmHWM (0 when the child ended before the first reading)
    maxrss_kb: int  # wait4's ru_maxrss (includes the parent's inherited high-water mark)
    cpu_seconds: float  # user + system CPU time of the child (its own, not inherited)
    returncode: int
    stderr: str


def vm_hwm_kb(pid: int | str = "self") -> int:
    """Peak resident set (KiB) of a process's address space; 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_measured(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                 stdout: Any = subprocess.DEVNULL) -> ChildRun:
    """Run ``argv`` to completion; raise ChildFailed (with its stderr) if it fails."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=err)
        hwm = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, vm_hwm_kb(proc.pid))
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    run = ChildRun(seconds, hwm, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, proc.returncode, stderr)
    if run.returncode != 0:
        raise ChildFailed(f"{' '.join(argv)} exited with {run.returncode}:\n{stderr.strip()}")
    return run


def run_worker(op: str, args: dict, *, profile_dir: Path | None = None) -> tuple[dict, ChildRun]:
    """Run one bench.worker operation in a fresh interpreter; returns (its result, the run)."""
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
        if profile_dir is not None:
            env["BENCH_PROFILE_DIR"] = str(profile_dir)
        run = run_measured([sys.executable, "-m", "bench.worker", op, json.dumps(args), str(out)],
                           cwd=PROJECT_ROOT, env=env)
        return json.loads(out.read_text()), run


def run_cli(args: list[str], *, cwd: Path, json_flag: bool = True, profile: Path | None = None) -> tuple[Any, ChildRun]:
    """The ``tradevault`` command as a user runs it (console script, start-up and imports
    included): ``args`` (with ``--json``); returns (its JSON output or None, the run). Its
    peak memory is the polled VmHWM (``hwm_kb``). ``profile``: run it under cProfile,
    stats written there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEVAULT_")}
    command = TRADEVAULT if profile is None else [sys.executable, "-m", "cProfile", "-o", str(profile),
                                                  "-m", "tradevault.cli"]
    with tempfile.TemporaryFile() as out:
        run = run_measured([*command, *args, *(["--json"] if json_flag else [])], cwd=cwd, env=env, stdout=out)
        out.seek(0)
        return (json.loads(out.read().decode()) if json_flag else None), run
