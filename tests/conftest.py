"""Fixtures shared across the test packages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tkplan.cli import main
from tkplan.planner._overrides import LEGACY_ENV


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``tkplan`` in ``tmp_path`` with only the environment a test gives (nothing of the developer's)."""
    for name in list(os.environ):
        if name.startswith("TKPLAN") or name in LEGACY_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, list(args), env={"TKPLAN_CACHE_DIR": str(tmp_path / ".cache"), **(env or {})},
                             catch_exceptions=False)

    return invoke
