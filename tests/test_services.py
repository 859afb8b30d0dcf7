"""The test services themselves: a SeaweedFS whose port another process takes between
``free_port`` and its bind used to fail the run in CI ("bind: address already in use", a
fatal error of the server); its first start now tries new ports."""

from __future__ import annotations

import socket

from tests.services import SeaweedS3


def test_seaweedfs_starts_on_new_ports_when_its_own_were_taken(tmp_path):
    server = SeaweedS3(tmp_path / "s3")
    taken = server.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        server.start()
        try:
            assert server.port != taken
            server.create_bucket("tv-after-retry")
            assert f"port {taken}" in server.log.read_text(errors="replace")  # refused, then tried anew
        finally:
            server.stop()
