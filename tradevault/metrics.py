"""Prometheus metrics of the agent (off unless ``[metrics] listen`` is set)."""

from __future__ import annotations

from typing import Any


class Metrics:
    def __init__(self, listen: str) -> None:
        self.enabled = bool(listen)
        if not self.enabled:
            return
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        self.registry = CollectorRegistry()
        self.lag_seconds = Gauge("tradevault_capture_lag_seconds", "Age of the oldest change not yet stored",
                                 registry=self.registry)
        self.lag_events = Gauge("tradevault_capture_lag_events", "Changes captured but not yet stored",
                                registry=self.registry)
        self.last_success = Gauge("tradevault_last_success_timestamp_seconds", "Last successful run per job",
                                  ["job"], registry=self.registry)
        self.bytes_written = Counter("tradevault_bytes_written_total", "Bytes of backup objects stored",
                                     ["kind"], registry=self.registry)
        self.errors = Counter("tradevault_errors_total", "Job failures", ["job", "kind"], registry=self.registry)
        self.drill_seconds = Gauge("tradevault_drill_restore_seconds", "Restore time of the last drill",
                                   registry=self.registry)
        self.drill_ok = Gauge("tradevault_drill_ok", "1 when the last restore drill matched the source",
                              registry=self.registry)
        self.location_behind = Gauge("tradevault_location_behind_entries", "Backups a location is missing",
                                     ["location"], registry=self.registry)
        self.capture_restarts = Counter("tradevault_capture_restarts_total",
                                        "Captures started anew after the source lost what the chain needed "
                                        "(a PostgreSQL slot that lost its WAL): a new chain, a gap before it",
                                        registry=self.registry)
        self.storage_requests = Counter("tradevault_storage_requests_total",
                                        "Requests sent to each storage location, by kind (list, get, head, put, "
                                        "delete; S3: every HTTP request, retries included)",
                                        ["location", "request"], registry=self.registry)
        self._requests_seen: dict[str, dict[str, int]] = {}
        self.location_bytes = Gauge("tradevault_location_bytes", "Bytes of backup objects a location holds",
                                    ["location"], registry=self.registry)
        host, _, port = listen.rpartition(":")
        self.server, self.thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=self.registry)

    def job_ok(self, job: str, when: float, written: int = 0) -> None:
        if self.enabled:
            self.last_success.labels(job).set(when)
            if written:
                self.bytes_written.labels(job).inc(written)

    def job_failed(self, job: str, exc: BaseException) -> None:
        if self.enabled:
            self.errors.labels(job, type(exc).__name__).inc()

    def capture_restarted(self) -> None:
        if self.enabled:
            self.capture_restarts.inc()

    def locations(self, behind: dict[str, int], stored: dict[str, int]) -> None:
        if self.enabled:
            for name, count in behind.items():
                self.location_behind.labels(name).set(count)
            for name, size in stored.items():
                self.location_bytes.labels(name).set(size)

    def requests(self, counts: dict[str, dict[str, int]]) -> None:
        """``counts``: ``BackupStore.request_counts()``, totals since the store was opened."""
        if self.enabled:
            from trade_stream.storage.requests import difference

            for location, kinds in difference(counts, self._requests_seen).items():
                for kind, n in kinds.items():
                    if n:
                        self.storage_requests.labels(location, kind).inc(n)
            self._requests_seen = counts

    def set(self, name: str, value: Any) -> None:
        if self.enabled:
            getattr(self, name).set(value)

    def close(self) -> None:
        if self.enabled:
            self.server.shutdown()
