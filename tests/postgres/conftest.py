"""Fixtures of the PostgreSQL tests; the cluster itself (``pg_cluster``, ``pg``) is in
tests/conftest.py and tests/services.py, shared with the backend conformance suites."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def work_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tradevault-pgtest-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
