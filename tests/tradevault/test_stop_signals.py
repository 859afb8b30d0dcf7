"""StopSignals: the lock-free SIGTERM/SIGINT request the long-running commands wait on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from tradevault.stop_signals import StopSignals

CHILD = textwrap.dedent("""
    import sys, time
    from tradevault.stop_signals import StopSignals
    with StopSignals() as stop:
        print("ready", flush=True)
        began = time.monotonic()
        rounds = 0
        while not stop.wait(float(sys.argv[1])):
            rounds += 1
        print(stop.received, rounds, round(time.monotonic() - began, 3), flush=True)
""")


def _child(timeout: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(timeout)], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_sigterm_wakes_a_long_wait_at_once():
    proc = _child(60.0)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)  # a lost wake-up would sleep the full 60 s
    received, rounds, _elapsed = out.split()
    assert int(received) == signal.SIGTERM and rounds == "0"
    assert proc.returncode == 0


def test_sigterm_during_tight_waits_is_always_seen():
    """wait(0) in a tight loop: the signal lands at every point of it across rounds. The
    same child with threading.Event and a handler calling Event.set() hung in 9 of 20
    rounds (the handler waits for the lock its own thread holds inside Event.wait)."""
    for _ in range(20):
        proc = _child(0.0)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert int(out.split()[0]) == signal.SIGTERM
        assert proc.returncode == 0


def test_a_signal_before_wait_is_not_lost_and_handlers_are_restored():
    previous = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        assert not stop.wait(0)
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(0) and stop.received == signal.SIGINT
        assert stop.is_set()
    assert signal.getsignal(signal.SIGINT) is previous
    assert signal.set_wakeup_fd(-1) == -1  # our pipe was taken away again
