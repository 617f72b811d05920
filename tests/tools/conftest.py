"""Fixtures for the tools' tests: the audit's fixture tree and profiles, a real small run for reports and tracking."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working directory (no pyproject.toml above it) holding audit_tree/ and audit_profiles/."""
    shutil.copytree(FIXTURES / "audit_tree", tmp_path / "audit_tree", symlinks=True)
    shutil.copytree(FIXTURES / "audit_profiles", tmp_path / "audit_profiles", symlinks=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished real run (see `tests.tools.runs`), shared by the report and tracking tests: treat it as read-only."""
    from tests.tools.runs import small_run as run

    return run(tmp_path_factory.mktemp("small_run"))
