"""``tkplan.errors``: one exit code per error, structured hardware-spec problems, context added at a layer's edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tkplan import errors
from tkplan.planner import load_hardware


class TestExitCode:
    """`exit_code` is the one mapping from an error to the code README documents."""

    @pytest.mark.parametrize(("error", "code"), [
        (errors.ConfigError("bad key"), 3),
        (errors.ProfileNotFoundError("nope", ["profiles"]), 3),
        (errors.HardwareError("bad spec"), 4),
        (errors.PlanningError("no GPU"), 4),
        (errors.PlanError("edited"), 5),
        (errors.DriftError(["cpus 2 → 4"]), 5),
        (errors.RunDirError("locked"), 5),
        (errors.DataError("empty split"), 6),
        (errors.DiskFullError("ENOSPC"), 7),
        (errors.EngineError("no cluster"), 8),
        (errors.ExtraMissingError("report", "report", "jinja2"), 8),
        (errors.AuditError("no such path"), 2),
        (errors.TkplanError("anything else"), 1),
    ])
    def test_each_error_has_its_documented_code(self, error, code):
        assert errors.exit_code(error) == code

    def test_a_subclass_takes_its_nearest_base_class_code(self):
        class Stale(errors.PlanError):
            pass

        assert errors.exit_code(Stale("stale")) == 5


class TestHardwareError:
    """A bad hardware spec carries its problems one by one, as a bad configuration does."""

    def test_every_problem_of_a_spec_is_kept_located(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.chdir(tmp_path)
        Path("box.yaml").write_text("cpus_usable: many\n")
        with pytest.raises(errors.HardwareError) as caught:
            load_hardware("box.yaml")
        problems = {(p.path, p.origin) for p in caught.value.problems}
        assert ("cpus_usable", "box.yaml:1:1") in problems and ("memory_mb", "box.yaml") in problems
        assert str(caught.value).splitlines()[0] == ("invalid hardware spec box.yaml (write one with `tkplan probe` "
                                                     "on that machine):")

    def test_one_problem_reads_as_one_line(self):
        error = errors.HardwareError([errors.Problem("nested deeper than 32 levels", origin="box.yaml:1:45")])
        assert str(error) == "box.yaml:1:45: nested deeper than 32 levels"


class TestErrorContext:
    """`error_context` adds the file and the plan's hash to an error that leaves the block, without its own."""

    def test_the_source_and_plan_hash_are_added(self):
        with pytest.raises(errors.PlanError) as caught, errors.error_context(source="plan.json", plan_hash="ab12"):
            raise errors.PlanError("edited after compiling")
        assert (caught.value.source, caught.value.plan_hash, str(caught.value)) == (
            "plan.json", "ab12", "edited after compiling")

    def test_an_inner_context_wins(self):
        with pytest.raises(errors.RunDirError) as caught, errors.error_context(source="outer.json"):
            with errors.error_context(source="runs/x"):
                raise errors.RunDirError("locked")
        assert caught.value.source == "runs/x"

    def test_other_exceptions_pass_unchanged(self):
        with pytest.raises(KeyError), errors.error_context(source="plan.json"):
            raise KeyError("x")
