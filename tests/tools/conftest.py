"""Fixtures for the audit tests: the fixture tree and profiles, copied into a temporary directory."""

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
