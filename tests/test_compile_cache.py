"""``tkplan compile`` answers unchanged inputs from its cache, and any change of an input misses it.

The inputs: every profile file on the search path (and the layers loaded), the command line, the
environment variables tkplan reads, the tkplan version, and the hardware (a probe's sources, or the content
of the ``--hardware`` spec). A counter on the fresh-compile path tells a hit from a miss.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import tkplan
from tkplan import _compile_cache
from tkplan import cli as cli_module
from tkplan.planner import LEGACY_ENV

TESTS = Path(__file__).parent
SPEC = TESTS / "specs" / "laptop_2core.yaml"


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture project as the working directory, with a spec file of its own and no developer environment."""
    for name in list(os.environ):
        if name.startswith("TKPLAN") or name in LEGACY_ENV:
            monkeypatch.delenv(name)
    shutil.copytree(TESTS / "fixtures" / "profiles" / "project", tmp_path, dirs_exist_ok=True)
    shutil.copyfile(SPEC, tmp_path / "box.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def compile_(project: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``tkplan compile ARGS``; return (output, whether it compiled afresh)."""
    fresh: list[int] = []
    real = _compile_cache.compile_fresh

    def counting(*args, **kwargs):
        fresh.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_compile_cache, "compile_fresh", counting)

    def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[str, bool]:
        before = len(fresh)
        result = CliRunner().invoke(cli_module.main, ["compile", "--format", "json", *args],
                                    env={"TKPLAN_CACHE_DIR": str(project / ".cache"), **(env or {})},
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout, len(fresh) > before

    return invoke


def test_unchanged_inputs_are_answered_from_the_cache(compile_):
    first, compiled = compile_("--hardware", "box.yaml", "families.lightgbm.num_leaves=40")
    again, recompiled = compile_("--hardware", "box.yaml", "families.lightgbm.num_leaves=40")
    assert (compiled, recompiled) == (True, False)
    assert again == first
    scratch, _ = compile_("--hardware", "box.yaml", "families.lightgbm.num_leaves=40", "--no-cache")
    assert scratch == first


def edit(path: str, old: str, new: str) -> None:
    text = Path(path).read_text()
    assert old in text
    Path(path).write_text(text.replace(old, new, 1))


CHANGES = {
    "a layer file": lambda project, env: edit("tkplan.yaml", "num_leaves: 48", "num_leaves: 49"),
    "a layer reached through extends": lambda project, env: edit("shared/team.yaml", "learning_rate: 0.05",
                                                                  "learning_rate: 0.06"),
    "a whitespace-only edit of a layer": lambda project, env: Path("tkplan.yaml").write_text(
        Path("tkplan.yaml").read_text() + "\n"),
    "a profile that now shadows a shipped one": lambda project, env: Path("profiles/machines/laptop.yaml").write_text(
        "run: {name: shadow}\n"),
    "the hardware spec's content": lambda project, env: edit("box.yaml", "memory_mb: 16384", "memory_mb: 8192"),
    "a TKPLAN__ variable": lambda project, env: env.update(TKPLAN__families__lightgbm__num_leaves="33"),
    "a legacy variable": lambda project, env: env.update(THREADS="1"),
    "TKPLAN_PROFILE_PATH": lambda project, env: env.update(TKPLAN_PROFILE_PATH="elsewhere"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_input_misses_the_cache(compile_, project, change):
    env: dict[str, str] = {}
    compile_("--hardware", "box.yaml")
    CHANGES[change](project, env)
    _, recompiled = compile_("--hardware", "box.yaml", env=env)
    assert recompiled


def test_a_changed_command_line_misses_the_cache(compile_):
    compile_("--hardware", "box.yaml", "families.lightgbm.num_leaves=40")
    assert compile_("--hardware", "box.yaml", "families.lightgbm.num_leaves=41")[1]
    assert compile_("--hardware", "box.yaml", "--set", "families.lightgbm.num_leaves=41")[1]
    assert compile_("--hardware", "box.yaml", "--set", "families.lightgbm.num_leaves=41", "--hermetic")[1]


def test_another_tkplan_version_misses_the_cache(compile_, monkeypatch):
    compile_("--hardware", "box.yaml")
    monkeypatch.setattr(tkplan, "__version__", "999.0")
    assert compile_("--hardware", "box.yaml")[1]


def test_a_changed_machine_misses_the_cache(compile_, monkeypatch):
    """Without --hardware the key holds a fingerprint of what the probe reads: another machine, another key."""
    import tkplan.planner

    compile_()
    assert not compile_()[1]
    monkeypatch.setattr(tkplan.planner, "probe_fingerprint", lambda root="/": "another machine")
    assert compile_()[1]


def test_a_variable_tkplan_does_not_read_keeps_the_cache(compile_):
    compile_("--hardware", "box.yaml")
    assert not compile_("--hardware", "box.yaml", env={"SOMETHING_ELSE": "1"})[1]


def edit_entry(project: Path, change) -> None:
    """Apply ``change`` to the one cache entry's JSON."""
    (path,) = (project / ".cache").glob("*.json")
    entry = json.loads(path.read_text())
    change(entry)
    path.write_text(json.dumps(entry))


ENTRY_EDITS = {
    "the plan's text": lambda e: e.update(plan=e["plan"].replace('"num_leaves": 40', '"num_leaves": 41')),
    "the plan, re-hashed": lambda e: e.update(plan=e["plan"].replace(e["plan_hash"], "0" * 64), plan_hash="0" * 64),
    "the summary": lambda e: e.update(summary="nothing to see"),
    "the watched files": lambda e: e.update(files={}),
    "the digest": lambda e: e.update(digest="0" * 64),
    "no digest": lambda e: e.pop("digest"),
}


@pytest.mark.parametrize("change", ENTRY_EDITS)
def test_an_edited_or_damaged_entry_is_compiled_again_never_served(compile_, project, change):
    first, _ = compile_("--hardware", "box.yaml", "families.lightgbm.num_leaves=40")
    edit_entry(project, ENTRY_EDITS[change])
    again, recompiled = compile_("--hardware", "box.yaml", "families.lightgbm.num_leaves=40")
    assert recompiled
    assert again == first


def test_a_truncated_entry_is_compiled_again(compile_, project):
    first, _ = compile_("--hardware", "box.yaml")
    (path,) = (project / ".cache").glob("*.json")
    path.write_bytes(path.read_bytes()[:100])
    assert compile_("--hardware", "box.yaml") == (first, True)
    assert compile_("--hardware", "box.yaml") == (first, False)  # and stored afresh
