"""Set-up of the family tests: OpenMP sleeps between parallel regions instead of spinning.

libgomp (LightGBM, XGBoost, scikit-learn) busy-waits between parallel regions; on a shared CI box that
spinning turns a one-second fit into ten. The planned child environment is the runtime's business; these
in-process tests ask OpenMP to sleep, before any test imports an OpenMP library.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """An empty run directory."""
    path = tmp_path / "run"
    path.mkdir()
    return path
