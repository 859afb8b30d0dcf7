"""``tradevault agent``: the one long-running process next to the trading bot.

It composes the domain packages and holds no domain logic: configuration history
(config_vcs), continuous sealing of captured changes, scheduled full backups (cron, quiet
hours), retention, verify and restore drills (trade_stream, restore). Every job runs in
the main loop, one at a time; config history runs in its own threads. SIGTERM/SIGINT
end the loop: pending changes are sealed and stored, pending commits pushed (bounded
wait), then the process exits 0. After SIGKILL, the next start continues from the
stored chain: the change log is pruned only after its events are stored everywhere.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from restore.consolidate import consolidate, events_since_full
from restore.drill import restore_drill
from restore.verify import verify_store
from trade_stream.errors import CaptureLost, FencedError, StorageError
from trade_stream.manifest import FULL, chain_position
from trade_stream.retention import RetentionPolicy, plan_retention
from trade_stream.source import PendingWatch
from tradevault import wiring
from tradevault.agent_state import write_state
from tradevault.metrics import Metrics
from tradevault.protection_record import note_backup, note_config
from tradevault.scheduler import check_cron, next_cron, next_full, parse_window, zone
from tradevault.settings import Settings
from tradevault.stop_signals import StopSignals

log = logging.getLogger("tradevault.agent")
TICK = 0.25


def consolidate_in_child(settings: Settings, min_events: int) -> dict[str, Any]:
    """A consolidation in a fresh process: it restores a whole database, and CPython keeps
    most of the memory that touches, which a long-running agent must not carry ever after."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_consolidate_child, name="tradevault-consolidate",
                              args=(settings, min_events, sender, os.getpid()))
    process.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = {"error": "the consolidation process ended without a result"}
    finally:
        receiver.close()
        process.join()
    if "error" in outcome:
        raise StorageError(f"consolidation failed: {outcome['error']} (exit status {process.exitcode})")
    return outcome


def die_with_parent(parent: int) -> None:
    """Have this process killed when ``parent`` dies (Linux: PR_SET_PDEATHSIG), and end at
    once if it is gone already. A consolidation left running after its agent was killed
    went on writing to the store next to the agent's next start: two writers, and a
    ``verify`` meanwhile saw a head naming a checkpoint it had not listed."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pipe's end tells the child later
        pass
    if os.getppid() != parent:
        os._exit(1)


def _consolidate_child(settings: Settings, min_events: int, sender: Any, parent: int) -> None:
    die_with_parent(parent)
    try:
        result = consolidate(wiring.engine(settings), work_dir=settings.work_dir or None, min_events=min_events)
        sender.send(result.to_json())
    except Exception as exc:  # noqa: BLE001 - reported to the agent, which logs and retries
        sender.send({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
    finally:
        sender.close()


class Agent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        schedule = settings.schedule
        check_cron(schedule.full)
        if schedule.verify:
            check_cron(schedule.verify)
        self.tz = zone(schedule.timezone)
        self.quiet = [parse_window(w) for w in schedule.quiet_hours]
        self.stop_event = threading.Event()
        self.source = wiring.source(settings)
        self.store = wiring.store(settings, self.source)
        self.config_paths = [Path(p) for p in settings.config_vcs.paths]
        self.engine = wiring.engine(settings, src=self.source, backup_store=self.store, annotate=self._config_heads)

        database_file = self.source.database_file
        if database_file is None or database_file.exists():
            # a server that does not answer, a path that is no database: bad input now. Only
            # a database file that does not exist yet is waited for (a first run).
            self.source.require_exists()
        self.policy = RetentionPolicy(settings.retention.keep_full, settings.retention.pitr,
                                      settings.retention.keep_daily, settings.retention.keep_weekly,
                                      settings.retention.keep_monthly)
        self.fan_in = wiring.compaction_fan_in(settings)
        self.state_dir = Path(settings.agent.state_dir)
        self.metrics = Metrics(settings.metrics.listen)
        self.history: Any = None
        self.jobs: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, int] = {}
        self.retry_at: dict[str, float] = {}
        self.position: int | None = None
        self.since_full = 0  # events stored since the latest full (a lower bound until counted)
        self.next: dict[str, float] = {}
        self.started = time.time()
        self.kafka_thread: threading.Thread | None = None
        self.kafka_lag: dict[str, Any] | None = None
        self.watch: PendingWatch | None = None
        self.capture_restarts: list[dict[str, Any]] = []  # the capture this agent had to start anew
        self.stored: dict[str, Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT (main thread only), then shut down in order."""
        fenced: FencedError | None = None
        with StopSignals() as stop:
            try:
                self._loop(stop)
            except FencedError as exc:  # a promoted standby owns the store now: stop, exit 3
                log.error("%s", exc)
                fenced = exc
            finally:
                self.stop_event.set()  # the Kafka thread's cue
        code = self._shutdown(seal=fenced is None)
        if fenced is not None:
            raise fenced
        return code

    def _loop(self, stop: StopSignals) -> None:
        log.info("agent starting (pid %d) for %s", os.getpid(), self.settings.database.url)
        self._start_config_history()
        if not self._wait_for_database(stop):
            return
        self._start_kafka_sink()
        reason = self._full_needed_at_start()
        if reason:
            self._job("full", self.engine.full, announce=f"{reason}: taking a full backup now")
        self.position = chain_position(self.store.entries())
        if self.source.physical_snapshots and self.settings.schedule.consolidate_after_events > 0:
            try:
                self.since_full = events_since_full(self.engine)
            except Exception as exc:  # noqa: BLE001 - counted again before any consolidation
                log.warning("could not count the events since the latest full backup: %s", exc)
        self._plan_next()
        last_seal = time.monotonic()
        last_state = 0.0
        # None: pending changes are not counted; seal on the clock
        watch = self.watch = self.source.watch(self.state_dir)
        while not stop.is_set():
            now = time.time()
            pending, oldest_ts, schema_changed = watch.pending(self.position) if watch else (1, None, False)
            due_seal = time.monotonic() - last_seal >= self.settings.schedule.incremental
            if schema_changed or (pending and (due_seal
                                               or pending >= self.settings.schedule.incremental_max_events)):
                if self._job("incremental", self._seal):
                    last_seal = time.monotonic()
                    self._compact_when_due()
                    self._consolidate_when_due()
            if now >= self.next["full"]:
                drills = self.settings.schedule.drill and self.source.physical_snapshots
                full_ok = self._job("full", self.engine.full)
                if full_ok:
                    self.since_full = 0
                if full_ok and drills:
                    self._job("drill", lambda: restore_drill(self.engine, self.settings.work_dir, seal=self._seal))
                self._job("retention", self._retention)
                self.next["full"] = self._next_full_after(now)
            if self.settings.schedule.verify and now >= self.next["verify"]:
                self._job("verify", self._verify)
                self.next["verify"] = next_cron(self.settings.schedule.verify, self._local(now)).timestamp()
            if now >= self.next["retention"]:
                self._job("retention", self._retention)
                self.next["retention"] = now + self.settings.schedule.retention
            if now - last_state >= 1.0:
                self._write_state(pending, oldest_ts)
                last_state = now
            stop.wait(TICK)

    def _seal(self) -> Any:
        """An incremental, told which positions the watch saw committed (so a point-in-time
        restore never lands inside a transaction of a source that reports none). When the
        source lost what the chain needs, the capture starts anew (``_restart_capture``)."""
        try:
            return self.engine.incremental(self.watch.commit_points() if self.watch is not None else ())
        except CaptureLost as exc:
            return self._restart_capture(exc)

    def _restart_capture(self, exc: CaptureLost) -> Any:
        """What the operator would do at 3 a.m.: drop the broken capture (a PostgreSQL slot
        that lost its WAL), reinstall it with a full backup, which starts a new chain, and
        say so (log, metric, status for a day). The changes between the last stored point
        and the new full are the ones the source no longer had."""
        log.error("%s: capture lost; starting a new chain with a full backup", exc)
        self.source.uninstall(self.store.source)
        result = self.engine.full()
        self.capture_restarts.append({"at": time.time(), "reason": str(exc).splitlines()[0],
                                      "new_full": result.n, "seq": result.last_seq})
        self.metrics.capture_restarted()
        return result

    def _wait_for_database(self, stop: StopSignals) -> bool:
        """On a first run the bot creates its database: wait for it (the state file says
        so, which lets ``run`` start the bot), then protect it. False: stopped first."""
        if self.source.exists():
            return True
        log.info("waiting for the database %s to be created (first run)", self.source.display_url)
        while not stop.is_set():
            self._write_state(0, None, waiting=f"the database {self.source.display_url} does not exist yet")
            stop.wait(0.5)
            if self.source.exists():
                log.info("the database exists now")
                return True
        return False

    def _shutdown(self, seal: bool = True) -> int:
        log.info("agent stopping: sealing pending changes and pushing pending commits")
        if seal and self.source.exists():
            if self.position is None and self._full_needed_at_start():  # stopped before protecting it
                self._job("full", self.engine.full, announce="the database has no full backup yet: taking one now")
            self._job("incremental", self._seal)
        if self.watch is not None:
            self.watch.close()
        if self.kafka_thread is not None:
            self.kafka_thread.join(self.settings.kafka.timeout + 5)
        if self.history is not None:
            try:
                self.history.stop(flush=True, timeout=self.settings.agent.stop_timeout)
            except Exception as exc:  # noqa: BLE001 - report, still exit cleanly
                log.error("config history did not stop cleanly: %s", exc)
        self._write_state(0, None, stopped=True)
        self.metrics.close()
        log.info("agent stopped")
        return 0

    def _full_needed_at_start(self) -> str:
        """A new chain starts with a full backup: none exists yet, or the database lost its
        capture (e.g. it was just restored or recovered) or got a new one."""
        entries = self.store.entries()
        if not any(e.kind == FULL for e in entries):
            return "no full backup yet"
        note_backup(self.state_dir, self.store.source, self.settings.database.url)
        capture_id = self.source.capture_id(self.store.source)
        if capture_id is None:
            return "change capture is not installed in this database (restored or recovered?)"
        if capture_id != entries[-1].capture_id:
            return "the database's change capture differs from the stored chain"
        return ""

    def _start_config_history(self) -> None:
        if not self.settings.config_vcs.paths:
            return
        from tradevault.config_history import history_service

        self.history = history_service(self.settings)
        self.history.start()
        self._config_heads()  # the first commit is made by now: evidence for `recover`
        log.info("watching configuration in %s", ", ".join(str(p) for p in self.settings.config_vcs.paths))

    def _start_kafka_sink(self) -> None:
        from trade_stream.kafka.config import KafkaConfig

        config = KafkaConfig.from_settings(self.settings.kafka)
        if not config.enabled:
            return
        self.kafka_thread = threading.Thread(target=self._kafka_loop, args=(config,), name="kafka-sink", daemon=True)
        self.kafka_thread.start()
        log.info("Kafka sink on: %s", config.bootstrap_servers)

    def _kafka_loop(self, config: Any) -> None:
        """Publishes everything stored or captured to Kafka, on its own checkpoint: a broker
        that is down or slow never delays backups; it catches up when it returns."""
        sink = wiring.kafka_sink(self.settings, src=self.source, backup_store=self.store,
                                 state_dir=config.state_dir or str(self.state_dir))
        delay = config.sync_interval
        try:
            while True:
                final = self.stop_event.is_set()
                try:
                    result = sink.sync_once()
                    for warning in result.warnings:
                        log.warning("kafka: %s", warning)
                    if result.error:
                        log.error("kafka sync failed (retry in %.0f s): %s", delay, result.error)
                    delay = config.sync_interval if result.ok else min(60.0, delay * 2)
                    self.kafka_lag = sink.lag()
                except Exception as exc:  # noqa: BLE001 - keep the sink alive; backups go on
                    log.error("kafka sink: %s", exc)
                    delay = min(60.0, delay * 2)
                if final:
                    break
                self.stop_event.wait(delay)
        finally:
            sink.close()

    # -- scheduling --------------------------------------------------------------------------
    def _local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, tz=self.tz) if self.tz else datetime.fromtimestamp(now).astimezone()

    def _next_full_after(self, now: float) -> float:
        return next_full(self.settings.schedule.full, self._local(now), self.quiet, self.tz).timestamp()

    def _plan_next(self) -> None:
        now = time.time()
        self.next = {"full": self._next_full_after(now), "retention": now}
        self.next["verify"] = (next_cron(self.settings.schedule.verify, self._local(now)).timestamp()
                               if self.settings.schedule.verify else float("inf"))

    # -- jobs -------------------------------------------------------------------------------
    def _job(self, name: str, fn: Callable[[], Any], announce: str = "") -> bool:
        if time.monotonic() < self.retry_at.get(name, 0.0):
            return False
        if announce:
            log.info(announce)
        began = time.time()
        try:
            try:
                result = fn()
            finally:
                self.metrics.requests(self.store.request_counts())
        except FencedError:
            raise  # not a failure to retry: this database is no longer the store's primary
        except Exception as exc:  # noqa: BLE001 - one failed job must not stop the agent
            failures = self.failures[name] = self.failures.get(name, 0) + 1
            delay = min(300.0, 2.0 ** failures)
            self.retry_at[name] = time.monotonic() + delay
            self.jobs[name] = {**self.jobs.get(name, {}), "ok": False,
                               "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                               "failed_at": began, "retry_in": delay}
            self.metrics.job_failed(name, exc)
            log.error("%s failed (retry in %.0f s): %s", name, delay, exc)
            return False
        self.failures.pop(name, None)
        summary = result.to_json() if hasattr(result, "to_json") else (result or {})
        if name == "incremental" and summary.get("last_seq") is not None:
            self.position = int(summary["last_seq"])
        elif name in ("full", "drill"):  # a drill seals too
            self.position = chain_position(self.store.entries())
        if name == "full":
            note_backup(self.state_dir, self.store.source, self.settings.database.url)
        if isinstance(summary.get("n"), int) and isinstance(summary.get("last_seq"), int):
            # the newest entry this agent stored: a witness for restore (restore/evidence.py)
            self.stored = {"n": summary["n"], "last_seq": summary["last_seq"], "at": time.time()}
        ok = bool(summary.get("ok", True))
        self.jobs[name] = {"ok": ok, "at": began, "seconds": round(time.time() - began, 3),
                           **{k: summary.get(k) for k in ("first_seq", "last_seq", "count", "bytes", "skipped",
                                                          "restore_seconds", "seq", "mismatches", "problems",
                                                          "deleted", "warnings", "objects_checked") if k in summary}}
        for warning in summary.get("warnings") or []:
            log.warning("%s: %s", name, warning)
        if name != "incremental" or not summary.get("skipped"):
            log.info("%s done: %s", name, {k: v for k, v in self.jobs[name].items() if v not in (None, [], "")})
        if ok:
            self.metrics.job_ok(name, time.time(), int(summary.get("bytes") or 0))
        else:  # a drill that did not match, a verify with problems: failures, not successes
            self.metrics.job_failed(name, RuntimeError("not ok"))
            log.error("%s found problems: %s", name, summary.get("mismatches") or summary.get("problems"))
        if name == "drill":
            self.metrics.set("drill_seconds", summary.get("restore_seconds") or 0)
            self.metrics.set("drill_ok", 1 if ok else 0)
        if name in ("full", "incremental", "retention") and self.metrics.enabled:
            self._location_metrics()
        return ok

    def _compact_when_due(self) -> None:
        """Merge the newest incrementals once a level is due. Whether one is due is read
        from the catalog the incremental just wrote: no request when none is."""
        from trade_stream.compaction import compact, plan_compaction

        if not self.fan_in or plan_compaction(self.store.merged(self.store.last_seen()), self.fan_in) is None:
            return
        self._job("compact", lambda: compact(self.store, self.engine.publisher, self.fan_in,
                                                   self.settings.work_dir or None))

    def _consolidate_when_due(self) -> None:
        """Keep the replay a restore of the latest point needs bounded: once it would pass
        ``consolidate_after_events``, store the latest point as a full built from the store."""
        threshold = self.settings.schedule.consolidate_after_events
        if threshold <= 0 or not self.source.physical_snapshots:
            return
        self.since_full += int(self.jobs.get("incremental", {}).get("count") or 0)
        if self.since_full < threshold:
            return
        self.since_full = events_since_full(self.engine)  # the store knows best
        if self.since_full >= threshold and self._job(
                "consolidate", lambda: consolidate_in_child(self.settings, threshold)):
            self.since_full = 0

    def _location_metrics(self) -> None:
        catalogs = self.store.last_seen()
        total = len(self.store.merged(catalogs))
        behind = {c.location.name: total - len(c.entries) for c in catalogs}
        stored = {c.location.name: sum(e.bytes for e in c.entries.values()) for c in catalogs}
        self.metrics.locations(behind, stored)

    def _verify(self) -> dict[str, Any]:
        report = verify_store(self.store, evidence=wiring.evidence(self.settings, self.store, self.source))
        return report.to_json()

    def _retention(self) -> dict[str, Any]:
        entries = self.store.entries()
        plan = plan_retention(entries, self.policy, time.time_ns() // 1000)
        deleted = self.store.prune(plan.delete) if plan.delete else []
        return {"deleted": deleted, "kept": len(plan.keep)}

    # -- state -----------------------------------------------------------------------------
    def _config_heads(self) -> dict[str, str]:
        """The commit of each watched directory (recorded in every manifest entry), noted
        as evidence that the directory has history."""
        if not self.config_paths:
            return {}
        from config_vcs.history import heads

        found = heads(self.config_paths)
        note_config(self.state_dir, [Path(p) for p in found])
        return found

    def _write_state(self, pending: int, oldest_ts: int | None, stopped: bool = False, waiting: str = "") -> None:
        now = time.time()
        state: dict[str, Any] = {
            "pid": os.getpid(), "started": self.started, "updated": now, "stopped": stopped,
            "database": self.settings.database.url, "source": self.store.source,
            "lag_events": pending,
            "lag_seconds": round(now - oldest_ts / 1e6, 3) if oldest_ts else 0.0,
            "jobs": self.jobs,
            "next": {k: v for k, v in self.next.items() if v != float("inf")},
        }
        if waiting:
            state["waiting"] = waiting
        if self.capture_restarts:
            state["capture_restarts"] = self.capture_restarts
        if self.stored is not None:
            state["stored"] = self.stored
        if self.kafka_lag is not None:
            state["kafka"] = self.kafka_lag
        if self.history is not None:
            try:
                state["config"] = self.history.status()
            except Exception as exc:  # noqa: BLE001
                state["config"] = {"error": str(exc)}
        self.metrics.set("lag_events", pending)
        self.metrics.set("lag_seconds", state["lag_seconds"])
        try:
            write_state(self.state_dir, state)
        except OSError as exc:
            log.warning("cannot write agent state to %s: %s", self.state_dir, exc)
