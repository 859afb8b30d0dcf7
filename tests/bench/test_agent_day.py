"""The compressed agent day end to end at a tiny size: a real agent on SeaweedFS while a bot
trades; the incrementals it logs and its memory are read back, and the goals use them."""

from __future__ import annotations

import pytest

from bench import agent_day

pytestmark = pytest.mark.xdist_group("s3")


def test_a_compressed_hour_of_the_agent_is_measured(tmp_path):
    m = agent_day.run(speed=360, hours=1, rate=20, root=tmp_path)  # 10 s, incrementals every 83 ms
    assert len(m["incrementals"]) >= 10, m["incrementals"]
    assert all(i["seconds"] is not None and i["events"] > 0 for i in m["incrementals"])
    seqs = [i["last_seq"] for i in m["incrementals"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len(m["rss"]) >= 5 and all(s["rss_mb"] > 0 for s in m["rss"])
    names = [g["name"] for g in agent_day.goals(m)]
    assert any("incremental time" in n for n in names) and any("RSS" in n for n in names)
