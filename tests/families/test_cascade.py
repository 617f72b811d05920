"""The cascade strategy (seed 003): a later stage trains on the earlier stage's predictions."""

from __future__ import annotations

import numpy as np
import pytest

from tkplan.errors import DataError
from tkplan.families import predictions_file, run_step

from .plans import BUILT_IN, compile_small, context

CASCADE = ("campaign.strategy=cascade", "campaign.cascade=[{families: [lightgbm]}, {families: [reward_based]}]",
           "campaign.targets=[fwd_ret_5m]", "families.lightgbm.n_estimators=40")


def test_later_stage_gets_earlier_predictions_as_a_feature(tmp_path, run_dir):
    """Stage 2 sees stage 1's predictions as the column ``pred:<step id>``, on train, val and test rows."""
    plan = compile_small(tmp_path, *CASCADE)
    first, second = plan.steps
    assert second.depends_on == (first.id,)

    stage1 = run_step(context(plan, run_dir, first))
    stage2 = run_step(context(plan, run_dir, second))

    assert stage1["artifacts"] == ["model.txt", predictions_file("train"), predictions_file("val"),
                                   predictions_file("test")]
    assert stage2["data"]["cascade_features"] == [f"pred:{first.id}"]
    assert stage2["data"]["features"] == 12 + 1
    assert stage2["metrics"]["test"]["r2"] > 0
    in_sample = np.load(run_dir / "steps" / first.id / predictions_file("train"))
    assert in_sample.shape == (stage1["data"]["rows"]["train"],)


def test_missing_earlier_predictions_is_an_error(tmp_path, run_dir):
    """A later stage run before its dependency fails before training, naming the step to run first."""
    plan = compile_small(tmp_path, *CASCADE)
    with pytest.raises(DataError, match=r"depends on lightgbm.fwd_ret_5m.s42, .* is missing; run lightgbm"):
        run_step(context(plan, run_dir, plan.steps[1]))


@pytest.mark.slow
def test_cascade_runs_end_to_end_under_the_executor(tmp_path):
    """`execute` runs stage 1 in its child process, then stage 2, which trains on stage 1's saved predictions."""
    from tkplan.runtime import execute, read_journal

    plan = compile_small(tmp_path, *CASCADE, "campaign.targets=[fwd_ret_5m, will_peak_5m]",
                         "campaign.cascade=[{families: [lightgbm]}, {families: [ftrl_proximal]}]")
    assert [(s.id, s.depends_on) for s in plan.steps] == [
        ("lightgbm.fwd_ret_5m.s42", ()),
        ("lightgbm.will_peak_5m.s42", ()),
        ("ftrl_proximal.fwd_ret_5m.s42", ("lightgbm.fwd_ret_5m.s42",)),
        ("ftrl_proximal.will_peak_5m.s42", ("lightgbm.will_peak_5m.s42",)),
    ]

    summary = execute(plan, tmp_path / "run", hardware=plan.hardware, trainers=BUILT_IN)

    results = {r.step_id: r for r in summary.results}
    assert {r.status for r in results.values()} == {"ok"}
    events = [(r["event"], r["step"]) for r in read_journal(tmp_path / "run" / "journal.jsonl") if "step" in r]
    for target in ("fwd_ret_5m", "will_peak_5m"):
        first, second = f"lightgbm.{target}.s42", f"ftrl_proximal.{target}.s42"
        assert events.index(("step_finished", first)) < events.index(("step_started", second))
        assert results[second].output["data"]["cascade_features"] == (f"pred:{first}",)
    assert results["ftrl_proximal.fwd_ret_5m.s42"].metrics["test"]["rank_ic"] > 0
    assert results["ftrl_proximal.will_peak_5m.s42"].metrics["test"]["roc_auc"] > 0.55
