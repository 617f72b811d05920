"""A sweep compiles each point with what the points share done once, and gets what a compile from scratch gets.

The oracle is the plain path, point by point: `resolve_point` (a fresh copy of the layers, every override,
references, full validation) and `plan_resolved`. The sweep's path must give the same plan, byte for byte, or the
same problems, in the same order — for values that are valid, out of range, of another type, refused by an
``anyOf`` or an ``enum``, reached through a reference, or that change which keys a mapping holds.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import attrs
import pytest

import tkplan
from tkplan.errors import ConfigError, PlanningError
from tkplan.planner import CompileRequest, compile_sweep, load_hardware, plan_to_json
from tkplan.planner._compile import load_base, plan_resolved, resolve_point
from tkplan.planner._grammar import ChoiceSweep, RangeSweep
from tkplan.planner._merge import changed_paths, same
from tkplan.planner._sweep import Axis, PointCompiler, _overrides, _profile_axes, _values

TESTS = Path(__file__).parent.parent
HARDWARE = load_hardware(TESTS / "specs" / "laptop_2core.yaml")
VERSION = tkplan.__version__


def outcomes(words: tuple[str, ...], cwd: Path) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """Each point's outcome on the sweep's path and on the plain path: ("plan", its JSON) or ("config"/"planning",
    the problems)."""
    base = load_base(CompileRequest(words=words, cwd=cwd, hermetic=True))
    sweeps = [o for o in base.cli_overrides if isinstance(o.value, (ChoiceSweep, RangeSweep))]
    base = attrs.evolve(base, cli_overrides=tuple(o for o in base.cli_overrides if o not in sweeps))
    axes = [*_profile_axes(base.config.get("sweep") or {}, base.provenance)[0],
            *(Axis(".".join(o.path), _values(o.value), o.source) for o in sweeps)]
    compiler = PointCompiler(base)
    pairs = []
    for combo in itertools.product(*(a.values for a in axes)):
        point = [o for axis, value in zip(axes, combo, strict=True) for o in _overrides(axis, value)]
        pairs.append((outcome(lambda p=point: compiler.plan(compiler.resolve(p), words, HARDWARE, "spec", VERSION,
                                                            None)),
                      outcome(lambda p=point: plan_resolved(resolve_point(base, p), words, HARDWARE, "spec", VERSION))))
    return pairs


def outcome(compile_point) -> tuple[str, str]:
    try:
        return "plan", plan_to_json(compile_point())
    except ConfigError as exc:
        return "config", "\n".join(map(str, exc.problems))
    except PlanningError as exc:
        return "planning", "\n".join(map(str, exc.problems))


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shutil.copytree(TESTS / "fixtures" / "profiles" / "sweep", tmp_path, dirs_exist_ok=True)
    (tmp_path / "named.yaml").write_text("run:\n  name: lgb-${families.lightgbm.num_leaves}\n")
    (tmp_path / "fixed.yaml").write_text("families:\n  lightgbm: {num_leaves: 1}\n"
                                         "sweep:\n  grid:\n    families.lightgbm.num_leaves: [15, 31]\n")
    return tmp_path


P, C, G = "plan", "config", "planning"


@pytest.mark.parametrize(("words", "kinds"), [
    (("ci_fast", "families.lightgbm.num_leaves=15,1,31", "run.base_seed=7,8"), [P, P, C, C, P, P]),
    (("ci_fast", "named.yaml", "families.lightgbm.num_leaves=15,2.5,'x'"), [P, C, C]),  # through a reference
    (("ci_fast", "vars.n_estimators=20,0", "families.xgboost.max_depth=3,-1"), [P, C, C, C]),
    (("ci_fast", "run.threads=auto,1,0,'two'", "run.max_parallel=auto,1"), [P, P, P, P, C, C, C, C]),  # anyOf
    (("ci_fast", "campaign.strategy=single_task,bogus", "campaign.targets=choice([fwd_ret_5m],[nope],[])"),
     [P, C, C, C, C, C]),
    (("ci_fast", "families.lightgbm=choice({num_leaves: 7},5)", "families.xgboost.gamma=0.5,.inf"), [P, C, C, C]),
    (("ci_fast", "families.lightgbm.num_leafs=15,31"), [C, C]),
    (("ci_fast", "gpu.devices=auto,[0]", "gpu.require=null,cuda"), [P, G, G, G]),
    (("ci_fast", "ablation.yaml"), [P] * 18),
    (("ci_fast", "bad_weight.yaml", "run.base_seed=1,2"), [P, P, C, C]),
    (("ci_fast", "families.lightgbm.num_leaves=1", "run.base_seed=1,2"), [C, C]),  # every point invalid
    (("ci_fast", "fixed.yaml"), [P, P]),  # no point's values: invalid; each point: valid
])
def test_each_point_gets_what_a_compile_from_scratch_gets(words: tuple[str, ...], kinds: list[str],
                                                          project: Path) -> None:
    pairs = outcomes(words, project)
    assert [fast[0] for fast, _ in pairs] == kinds
    for fast, slow in pairs:
        assert fast == slow


def test_a_sweep_of_several_points_has_the_hashes_compile_gives_for_their_words(project: Path) -> None:
    sweep = compile_sweep(CompileRequest(words=("ci_fast", "named.yaml", "families.lightgbm.num_leaves=15,31,63",
                                                "run.base_seed=1,2"), cwd=project, hermetic=True),
                          HARDWARE, "spec", VERSION)
    assert len(sweep.points) == 6
    for point in sweep.points:
        request = CompileRequest(words=("ci_fast", "named.yaml", *point.overrides), cwd=project, hermetic=True)
        plan = tkplan.planner.compile_plan(request, HARDWARE, "spec", VERSION)
        assert plan.plan_hash == point.plan_hash
        assert plan.config["run"]["name"] == f"lgb-{plan.config['families']['lightgbm']['num_leaves']}"
        assert plan_to_json(sweep.plans[point.plan_hash]).replace("sweep:", "") != ""  # a whole plan, not a part


def test_changed_paths_tell_apart_what_equality_does_not() -> None:
    old = {"a": {"b": 1, "c": [1, 2]}, "d": 0.0, "e": {"f": 1}}
    new = {"a": {"b": True, "c": [1, 2, 3]}, "d": -0.0, "e": {"f": 1, "g": 2}}
    assert list(changed_paths(old, new)) == [("a", "b"), ("a", "c"), ("d",), ("e",)]
    assert list(changed_paths(old, old)) == []
    assert same({"x": [1.0]}, {"x": [1.0]}) and not same({"x": [1.0]}, {"x": [1]})
