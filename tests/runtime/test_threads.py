"""The child really runs with the planned thread settings: seen from inside it, with threadpoolctl."""

from __future__ import annotations

import importlib.util

import pytest

from tkplan.runtime import execute

from .projects import compile_project, family, write_project


def pools_by_api(pools):
    """{"openmp": {2}, "blas": {1}}: the sizes of the loaded pools of each kind."""
    sizes: dict[str, set[int]] = {}
    for pool in pools:
        sizes.setdefault(pool["user_api"], set()).add(pool["num_threads"])
    return sizes


def test_a_process_step_sees_its_planned_thread_pools(tmp_path):
    """openmp policy with 2 threads: OpenMP pools of 2, BLAS pools of 1, in the child and in its report."""
    project = write_project(tmp_path, {"omp": family("report_threads", threads=2, policy="openmp")})
    plan = compile_project(project)
    step = plan.steps[0]
    assert (step.env["OMP_NUM_THREADS"], step.env["OPENBLAS_NUM_THREADS"]) == ("2", "1")

    (result,) = execute(plan, tmp_path / "run").results
    assert result.status == "ok", result.error
    seen = pools_by_api(result.output["pools"])
    assert seen["blas"] == {1}
    if "openmp" in seen:  # libgomp is found on most Linux machines
        assert seen["openmp"] == {2}
    assert result.output["env"]["OMP_NUM_THREADS"] == "2"
    assert result.output["env"]["TKPLAN_SEED"] == str(step.seed)
    assert result.applied["thread_limits"] == {"openmp": 2, "blas": 1}
    assert pools_by_api(result.pools) == seen  # the executor's record of the pools loaded
    assert (result.allowed.threads, result.threads_seen >= 1) == (2, True)


def test_in_process_steps_get_their_own_limits_in_the_shared_worker(tmp_path):
    """Two inproc steps in one worker, with opposite policies: threadpoolctl gives each its own pool sizes."""
    project = write_project(tmp_path, {
        "a_blas": family("report_threads", isolation="inproc", threads=2, policy="blas"),
        "b_omp": family("report_threads", isolation="inproc", threads=2, policy="openmp"),
    })
    summary = execute(compile_project(project), tmp_path / "run")
    by_family = {r.step_id.split(".")[0]: r for r in summary.results}
    assert {r.status for r in summary.results} == {"ok"}
    assert by_family["a_blas"].output["pid"] == by_family["b_omp"].output["pid"]  # the same worker process
    assert pools_by_api(by_family["a_blas"].output["pools"])["blas"] == {2}
    assert pools_by_api(by_family["b_omp"].output["pools"])["blas"] == {1}
    if "openmp" in pools_by_api(by_family["b_omp"].output["pools"]):
        assert pools_by_api(by_family["a_blas"].output["pools"])["openmp"] == {1}
        assert pools_by_api(by_family["b_omp"].output["pools"])["openmp"] == {2}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_a_torch_step_gets_torchs_intra_and_inter_op_threads_set(tmp_path):
    project = write_project(tmp_path, {"net": family("report_torch", threads=2, policy="torch",
                                                     backends=("torch",))})
    plan = compile_project(project)
    (result,) = execute(plan, tmp_path / "run").results
    assert result.status == "ok", result.error
    inter = plan.config["threading"]["inter_op_threads"]
    assert (result.output["num_threads"], result.output["num_interop_threads"]) == (2, inter)
    assert result.applied["torch"] == {"num_threads": 2, "num_interop_threads": inter}
