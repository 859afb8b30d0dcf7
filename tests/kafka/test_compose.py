"""docker-compose.yml: valid for ``docker compose config`` (when a compose client is
installed; there is no docker engine in CI), wired to files that exist, and its
tradevault configuration loads."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trade_stream.kafka.config import KafkaConfig
from tradevault.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy and subprocess.run([legacy, "version"], capture_output=True).returncode == 0:
        return [legacy]
    return None


def test_compose_file_is_valid_for_docker_compose_config():
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose client here (`docker compose version` fails)")
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_services_use_files_that_exist_and_a_loadable_config():
    text = COMPOSE.read_text(encoding="utf-8")
    for service in ("kafka:", "postgres:", "agent:"):
        assert re.search(rf"^  {service}", text, re.M), service
    assert "image: apache/kafka:" in text and "KAFKA_PROCESS_ROLES: broker,controller" in text
    assert "wal_level=logical" in text
    for dockerfile in re.findall(r"dockerfile: (\S+)", text):
        context = "deploy" if "postgres" in dockerfile else "."
        assert (ROOT / context / dockerfile).is_file(), dockerfile
    assert "postgresql-15-wal2json" in (ROOT / "deploy" / "postgres.Dockerfile").read_text()
    assert "./deploy/tradevault.docker.toml:/etc/tradevault/tradevault.toml" in text

    settings = load_settings(ROOT / "deploy" / "tradevault.docker.toml", must_exist=True)
    config = KafkaConfig.from_settings(settings.kafka)
    assert config.enabled and config.bootstrap_servers == "kafka:9092"
    assert "kafka:9092" in text.replace("PLAINTEXT://kafka:9092", "kafka:9092")
