"""The sink's checkpoint file and its settings, without a broker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trade_stream.errors import BadInputError
from trade_stream.kafka import checkpoint as ckpt
from trade_stream.kafka.config import KafkaConfig


def test_checkpoint_round_trips_atomically_and_belongs_to_its_topics(tmp_path):
    path = ckpt.checkpoint_path(tmp_path, "tradesv3", "tv")
    assert not ckpt.load(path, "tradesv3", "tv").started
    point = ckpt.Checkpoint("tradesv3", "tv", capture_id="abc", seq=42, topics=["tv.tradesv3.trades"])
    ckpt.save(path, point)
    assert ckpt.load(path, "tradesv3", "tv") == point
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    # Another prefix or source means other topics: start afresh.
    assert not ckpt.load(path, "tradesv3", "other").started
    assert not ckpt.load(path, "elsewhere", "tv").started


def test_config_reads_what_the_settings_have_and_defaults_the_rest():
    config = KafkaConfig.from_settings(SimpleNamespace(bootstrap_servers="k:9092", topic_prefix="p", unknown=1))
    assert config.enabled and config.partitions == 1 and config.compression_type == "lz4"
    assert not KafkaConfig.from_settings(SimpleNamespace(bootstrap_servers="", topic_prefix="p")).enabled
    assert KafkaConfig(compression="none").compression_type is None
    with pytest.raises(BadInputError):
        KafkaConfig.from_settings(SimpleNamespace(topic_prefix="bad prefix"))
    with pytest.raises(BadInputError):
        KafkaConfig.from_settings(SimpleNamespace(partitions=0))
