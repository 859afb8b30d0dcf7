"""A child process for test_agent_children: tied to its parent as the agent's
consolidation child is, then asleep."""

from __future__ import annotations

import time

from tradevault.agent import die_with_parent


def sleep_tied(parent: int) -> None:
    die_with_parent(parent)
    time.sleep(60)
