"""tkplan audits itself: its planner, runtime and families hold no value that belongs in a profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from tkplan.tools.audit import audit, find_pyproject, load_project_config, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tree", ["families", "planner", "runtime", "tools/audit", "tools/bench/audit_speed.py"])
def test_tkplan_itself_reports_nothing(tree: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tkplan audit families/ planner/ runtime/` (and the audit's own code) finds nothing.

    Every setting lives in profiles/; a library constant that is not a setting (a format tag, a file
    name) carries `# tkplan: ignore[constant]` where it is defined.
    """
    monkeypatch.chdir(ROOT)
    settings = load_project_config(find_pyproject(ROOT)).settings

    result = audit([tree], settings=settings)

    assert result.findings == (), render(result, "table")
    assert result.skipped == ()
