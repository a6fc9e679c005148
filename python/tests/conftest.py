"""Shared helpers: real data from ../shared/data (relative to the repository root).

With CI=true (or 1) a missing data file FAILS the test; elsewhere it is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


def shared_data(rel: str) -> Path:
    path = DATA / rel
    if path.exists():
        return path
    if os.environ.get("CI") in ("true", "1"):
        pytest.fail(f"shared data file missing in CI: {path}")
    pytest.skip(f"shared data file {path} not found")
