"""Builds the domain objects a command needs from the settings (the composition root)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from trade_stream.progress import Progress, no_progress
from trade_stream.source import BackupEngine, EngineOptions, Source, open_source
from trade_stream.storage.encryption import Cipher
from trade_stream.storage.locations import Location, open_location
from trade_stream.storage.store import BackupStore
from tradevault.settings import Settings

if TYPE_CHECKING:
    from trade_stream.kafka.sink import KafkaSink


def source(settings: Settings) -> Source:
    """The protected database, behind the backend-neutral Source interface."""
    return open_source(settings.database.url, settings.database.include, settings.database.exclude,
                       settings.database.schema)


def locations(settings: Settings) -> list[Location]:
    return [
        open_location(loc.name, loc.url, endpoint_url=loc.endpoint_url, region=loc.region,
                      access_key_id=loc.access_key_id, secret_access_key=loc.secret_access_key)
        for loc in settings.locations
    ]


def source_name(settings: Settings, src: Source) -> str:
    return settings.database.name or src.name


def cipher(settings: Settings) -> Cipher:
    return Cipher(settings.encryption.recipients, settings.encryption.identity_file)


def evidence(settings: Settings, backup_store: BackupStore, src: Source) -> list[Any]:
    """Every witness of how far the backups went (``restore.evidence``): the locations'
    heads, the source's change log, and the agent's record of what it stored last."""
    from restore.evidence import witnesses
    from tradevault.agent_state import stored_evidence

    return witnesses(backup_store, src) + stored_evidence(Path(settings.agent.state_dir), backup_store.source)


def store(settings: Settings, src: Source | None = None) -> BackupStore:
    src = src or source(settings)
    return BackupStore(source_name(settings, src), locations(settings), cipher=cipher(settings),
                       min_locations=settings.backup.min_locations)


def engine(settings: Settings, progress: Progress = no_progress, *, src: Source | None = None,
           backup_store: BackupStore | None = None,
           annotate: Callable[[], dict[str, str]] | None = None) -> BackupEngine:
    """The backup engine of the configured source."""
    src = src or source(settings)
    options = EngineOptions(work_dir=settings.work_dir, level=settings.backup.compression_level,
                            use_wal=settings.database.sqlite_wal, copy_in_memory=settings.backup.copy_in_memory)
    return src.engine(backup_store or store(settings, src), options, progress=progress, annotate=annotate)


def compaction_fan_in(settings: Settings) -> tuple[int, ...]:
    """How many incrementals of each level make one of the next (``[schedule] compact``)."""
    from trade_stream.compaction import fan_in_for

    return fan_in_for(settings.schedule.incremental, settings.schedule.compact)


def kafka_sink(settings: Settings, *, src: Source | None = None, backup_store: BackupStore | None = None,
               state_dir: str = "") -> KafkaSink:
    """The Kafka sink of the configured source and store (bad input when Kafka is off)."""
    from trade_stream.errors import BadInputError
    from trade_stream.kafka.config import KafkaConfig
    from trade_stream.kafka.sink import KafkaSink

    config = KafkaConfig.from_settings(settings.kafka)
    if not config.enabled:
        raise BadInputError("the Kafka sink is off: set [kafka] bootstrap_servers")
    src = src or source(settings)
    return KafkaSink(config, backup_store or store(settings, src), src, state_dir=state_dir or config.state_dir or None,
                     work_dir=settings.work_dir or None)
