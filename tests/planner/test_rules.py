"""The planner's rules: budgets hold on any machine, every value is explained, plans read as intended."""

from __future__ import annotations

import heapq
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tkplan.errors import PlanningError
from tkplan.planner import (
    CompileRequest,
    Gpu,
    HardwareSpec,
    can_start,
    compile_plan,
    fits_alone,
    load_hardware,
    plan_to_json,
)

SPECS = Path(__file__).parent.parent / "specs"
GOLDEN = Path(__file__).parent.parent / "golden"
FAMILIES = ["lightgbm", "quantile_lightgbm", "xgboost", "ngboost", "ensemble", "gmm_regime", "change_point",
            "ftrl_proximal", "reward_based", "mlp", "cnn1d", "lstm", "transformer", "tab_cnn", "tab_lstm",
            "tab_transformer", "vae", "gan", "meta_learning", "multi_task"]


def compile_for(hardware: HardwareSpec, *words: str, tmp: Path | None = None):
    request = CompileRequest(words=words, env={}, cwd=tmp or Path("/nonexistent-project"), hermetic=True)
    return compile_plan(request, hardware, "spec", "test")


def spec(cpus: int, memory_mb: int, gpus: list[tuple[int, str]], logical: int | None = None) -> HardwareSpec:
    """A machine with ``cpus`` usable CPUs (of ``logical``, when a cgroup quota leaves fewer) and these GPUs."""
    logical = logical or cpus
    return HardwareSpec(
        cpus_usable=cpus, cpus_logical=logical, cores_physical=logical, memory_mb=memory_mb, memory_total_mb=memory_mb,
        gpus=tuple(Gpu(i, f"GPU-{i:04d}-test", f"Test GPU {i}", mem, cc) for i, (mem, cc) in enumerate(gpus)),
        gpu_driver="550.0" if gpus else None, mps=False, platform="linux", machine="x86_64",
        cgroup="v2" if logical > cpus else None)


def simulate(plan, rng: random.Random) -> list[tuple[float, list]]:
    """Run the plan's admission rule over random step durations; return every set of steps running at once."""
    pending = list(plan.schedule.order)
    running: list = []
    finished: set[str] = set()
    clock = 0.0
    events: list[tuple[Any, ...]] = []
    snapshots: list[Any] = []
    while pending or running:
        for step_id in list(pending):
            step = plan.step(step_id)
            if all(d in finished for d in step.depends_on) and can_start(step, running, plan.schedule, plan.hardware):
                running.append(step)
                pending.remove(step_id)
                heapq.heappush(events, (clock + rng.uniform(0.1, 10.0), step_id))
                snapshots.append((clock, list(running)))
        assert events, "a step can never start"
        clock, done = heapq.heappop(events)
        running = [s for s in running if s.id != done]
        finished.add(done)
    return snapshots


gpu_strategy = st.tuples(st.sampled_from([8192, 16384, 24576, 40960, 81559]),
                         st.sampled_from(["7.0", "7.5", "8.0", "8.6", "9.0"]))


class TestBudgetsHoldOnAnyMachine:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cpus=st.integers(1, 64), hidden_cpus=st.integers(0, 32), memory=st.integers(2048, 262144),
           gpus=st.lists(gpu_strategy, max_size=3),
           families=st.lists(st.sampled_from(FAMILIES), min_size=1, max_size=8, unique=True),
           targets=st.sampled_from(["[fwd_ret_5m]", "[fwd_ret_5m, will_peak_5m]", "[will_peak_5m, fwd_ret_15m]"]),
           seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=3, unique=True),
           profile=st.sampled_from(["laptop", "ci_fast", "kaggle_safe", "h100_full"]),
           thread_cap=st.one_of(st.none(), st.integers(1, 64)), mlp_vram=st.sampled_from([4096, 1024, 12000]),
           memory_cap_gb=st.sampled_from([None, 1, 4, 12]), seed=st.integers(0, 2**32 - 1))
    def test_concurrent_threads_and_vram_never_exceed_the_machine(self, cpus, hidden_cpus, memory, gpus, families,
                                                                  targets, seeds, profile, thread_cap, mlp_vram,
                                                                  memory_cap_gb, seed):
        """Whatever the machine and campaign, steps running at once fit the CPUs, the memory and each GPU's memory.

        The machine may have CPUs its cgroup quota withholds, 0-3 GPUs of mixed sizes; the campaign any
        families, targets and seeds under any shipped profile that can run there, a thread, VRAM and memory cap.
        """
        # h100_full refuses a machine without a CUDA GPU, or one too old for its bf16 (tested below); kaggle_safe
        # one without a CUDA GPU
        assume(profile != "h100_full" or (gpus and all(float(cc) >= 8.0 for _, cc in gpus)))
        assume(profile != "kaggle_safe" or gpus)
        assume(not gpus or mlp_vram <= max(mem for mem, _ in gpus))
        assume(memory_cap_gb is None or memory_cap_gb * 1024 <= memory)
        hardware = spec(cpus, memory, gpus, logical=cpus + hidden_cpus)
        words = (profile, f"campaign.families=[{', '.join(families)}]", f"campaign.targets={targets}",
                 f"campaign.seeds={seeds}", f"run.threads={'auto' if thread_cap is None else min(thread_cap, cpus)}",
                 f"families.mlp.runtime.vram_cap_mb={mlp_vram}",
                 f"limits.memory_cap_gb={'null' if memory_cap_gb is None else memory_cap_gb}")
        plan = compile_for(hardware, *words)
        assert plan.schedule.thread_budget <= cpus
        for step in plan.steps:
            assert fits_alone(step, plan.schedule, plan.hardware)
            assert step.isolation.mode in ("process", "inproc") and step.isolation.reason.strip()
            assert 1 <= step.resources.threads <= plan.schedule.thread_budget
            assert ({int(step.env["OMP_NUM_THREADS"]), int(step.env["OPENBLAS_NUM_THREADS"])}
                    <= {1, step.resources.threads})
            if step.resources.device == "cuda":
                assert step.env["CUDA_VISIBLE_DEVICES"] == ",".join(step.resources.gpus)
                assert step.limits.vram_cap_mb <= min(g.memory_mb for g in hardware.gpus
                                                      if g.uuid in step.resources.gpus)
            else:
                assert step.env["CUDA_VISIBLE_DEVICES"] == "-1" and step.limits.vram_cap_mb is None
        for _clock, running in simulate(plan, random.Random(seed)):
            assert sum(s.resources.threads for s in running) <= cpus
            assert sum(s.limits.memory_cap_mb for s in running) <= memory
            for gpu in hardware.gpus:
                assert sum(s.limits.vram_cap_mb for s in running if gpu.uuid in s.resources.gpus) <= gpu.memory_mb
        again = compile_for(hardware, *words)
        assert again.plan_hash == plan.plan_hash
        assert plan_to_json(again) == plan_to_json(plan)


class TestRules:
    def test_quantile_lightgbm_threads_are_clamped_to_8(self):
        """The seed's clamp max(1, min(8, t)) holds: 16 CPUs and a long step still give 8 threads."""
        plan = compile_for(spec(16, 65536, []), "campaign.families=[quantile_lightgbm]",
                           "campaign.targets=[fwd_ret_5m]")
        (step,) = plan.steps
        assert step.resources.threads == 8
        assert step.env["OMP_NUM_THREADS"] == "8" and step.env["MKL_NUM_THREADS"] == "1"
        why = next(d for d in step.derivations if d.key == "threads")
        assert why.rule == "cost_share" and "clamped to [1, 8]" in why.why

    def test_change_point_blas_rule_never_exceeds_the_machine(self):
        """ChangePoint's max(12, n-2) became n-2 within [1, budget]: 2 CPUs give 1 BLAS thread, never 12."""
        plan = compile_for(spec(2, 8192, []), "campaign.families=[change_point]", "campaign.targets=[fwd_ret_5m]")
        (step,) = plan.steps
        assert step.resources.threads == 1
        assert step.env["OPENBLAS_NUM_THREADS"] == "1" and step.env["OMP_NUM_THREADS"] == "1"
        assert step.env["MKL_THREADING_LAYER"] == "SEQUENTIAL"

    def test_ensemble_splits_its_threads_between_joblib_workers_and_openmp(self):
        """joblib policy: n_jobs = t RandomForest workers with OpenMP and BLAS 1 each; HGB's OpenMP phase gets t."""
        plan = compile_for(spec(8, 32768, []), "campaign.families=[ensemble]", "campaign.targets=[fwd_ret_5m]")
        (step,) = plan.steps
        assert step.resources.threads == 8
        assert (step.env["OMP_NUM_THREADS"], step.env["OPENBLAS_NUM_THREADS"],
                step.env["MKL_NUM_THREADS"]) == ("1", "1", "1")
        why = next(d for d in step.derivations if d.key == "env")
        assert (why.rule, why.value) == ("thread_policy_joblib", "OMP=1 BLAS=1")
        assert why.why == ("ensemble thread policy joblib: n_jobs = 8 joblib worker(s) with OpenMP and BLAS 1 inside "
                           "each; an OpenMP phase (Ensemble's HistGradientBoosting) gets the 8 thread(s) through "
                           "threadpoolctl while no worker runs")

    def test_long_steps_get_the_threads(self):
        """A costly step among cheap ones gets more lanes of the budget; the cheap ones one each."""
        plan = compile_for(spec(8, 32768, []), "campaign.families=[ensemble, ftrl_proximal, reward_based, gmm_regime]",
                           "campaign.targets=[fwd_ret_5m]")
        threads = {s.family: s.resources.threads for s in plan.steps}
        assert threads["ensemble"] > 1
        assert threads["ftrl_proximal"] == threads["reward_based"] == 1
        assert plan.schedule.order[0] == "ensemble.fwd_ret_5m.s42"

    def test_thread_override_above_the_machine_is_a_compile_error(self):
        with pytest.raises(PlanningError, match=r"run.threads = 32 exceeds the 4 usable CPUs.*at most 4, or auto"):
            compile_for(spec(4, 8192, []), "run.threads=32")

    def test_every_problem_of_the_plan_is_reported_together(self):
        """A thread cap, a memory cap and a GPU requirement the machine cannot honour: three problems, one error."""
        with pytest.raises(PlanningError) as info:
            compile_for(spec(4, 8192, []), "h100_full", "run.threads=32", "limits.memory_cap_gb=64")
        assert [(p.path, p.origin) for p in info.value.problems] == [
            ("run.threads", "cli:arg 2"),
            ("gpu.require", "tkplan:profiles/machines/h100_full.yaml:16:3"),
            ("limits.memory_cap_gb", "cli:arg 3"),
        ]
        assert str(info.value).splitlines()[0] == "the plan cannot be honoured on this hardware:"

    def test_memory_cap_above_the_machine_is_a_compile_error(self):
        with pytest.raises(PlanningError, match=r"memory_cap_gb = 64 exceeds the machine's 8.0 GB"):
            compile_for(spec(4, 8192, []), "limits.memory_cap_gb=64")

    def test_memory_caps_of_steps_at_once_fit_the_machine(self):
        """A 6 GB cap per step on a 16 GB box: 0.8 × 16 GB holds 2 of them at once, though 8 CPUs would run 8."""
        plan = compile_for(spec(8, 16384, []), "limits.memory_cap_gb=6")
        assert plan.schedule.max_parallel == 2
        why = next(d for d in plan.schedule.derivations if d.key == "max_parallel")
        assert (why.rule, why.why) == ("memory_budget", "0.8 × 16384 MB usable memory / 6144 MB cap per step = 2 "
                                                        "(the thread budget would allow 8)")
        with pytest.raises(PlanningError, match=r"run.max_parallel = 4 steps × limits.memory_cap_gb 6 GB exceeds "
                                                r"the machine's 16.0 GB @ run.max_parallel \(lower run.max_parallel "
                                                r"to 2, or the cap\)"):
            compile_for(spec(8, 16384, []), "limits.memory_cap_gb=6", "run.max_parallel=4")

    def test_h100_full_without_a_gpu_fails_and_says_what_to_change(self):
        with pytest.raises(PlanningError, match=r"h100_full.yaml:\d+:\d+: this profile requires a CUDA GPU"):
            compile_for(spec(16, 65536, []), "h100_full")

    def test_a_family_that_requires_a_gpu_fails_without_one_unless_the_profile_allows_the_cpu(self):
        """Fail is fail; the fallback happens only where gpu.fallback_to_cpu says so, and the step records it."""
        words = ("campaign.families=[mlp]", "campaign.targets=[fwd_ret_5m]", "families.mlp.runtime.gpu=required")
        with pytest.raises(PlanningError) as info:
            compile_for(spec(4, 16384, []), *words)
        assert [str(p) for p in info.value.problems] == [
            "cli:arg 3: family mlp requires a GPU and none is available @ families.mlp.runtime.gpu (drop the family, "
            "or set gpu.fallback_to_cpu: true to run it on the CPU)"]
        (step,) = compile_for(spec(4, 16384, []), *words, "gpu.fallback_to_cpu=true").steps
        device = next(d for d in step.derivations if d.key == "device")
        assert (step.resources.device, device.rule) == ("cpu", "gpu_fallback_to_cpu")
        assert device.why == ("mlp requires a GPU and none is available; gpu.fallback_to_cpu (set at cli:arg 4) "
                              "allows the CPU")

    def test_bf16_only_where_compute_capability_allows(self):
        """auto picks bf16 on an H100 (9.0) and fp16 on a T4 (7.5); asking bf16 on a T4 is an error."""
        h100 = compile_for(spec(16, 65536, [(81559, "9.0")]), "campaign.families=[mlp]",
                           "campaign.targets=[fwd_ret_5m]")
        t4 = compile_for(spec(4, 16384, [(15360, "7.5")]), "campaign.families=[mlp]", "campaign.targets=[fwd_ret_5m]")
        assert h100.steps[0].resources.precision == "bf16"
        assert t4.steps[0].resources.precision == "fp16"
        with pytest.raises(PlanningError, match=r"bf16 needs compute capability ≥ 8\.0; the GPU has 7\.5"):
            compile_for(spec(4, 16384, [(15360, "7.5")]), "campaign.families=[mlp]", "gpu.precision=bf16")

    def test_gpu_step_gets_a_gpu_by_uuid_its_vram_cap_and_few_cpu_threads(self):
        plan = compile_for(spec(16, 65536, [(81559, "9.0")]), "campaign.families=[mlp]",
                           "campaign.targets=[fwd_ret_5m]")
        (step,) = plan.steps
        assert step.resources.device == "cuda"
        assert step.env["CUDA_VISIBLE_DEVICES"] == "GPU-0000-test" == step.resources.gpus[0]
        assert step.limits.vram_cap_mb == 4096
        assert step.resources.threads == 2
        assert step.isolation.mode == "process"

    def test_gpu_steps_spread_over_the_gpus_longest_first(self):
        """Two equal GPUs: longest step first onto the GPU with the least expected work, so both get the same."""
        plan = compile_for(spec(16, 65536, [(40960, "8.0"), (40960, "8.0")]), "campaign.families=[transformer, mlp]",
                           "campaign.targets=[fwd_ret_5m, will_peak_5m]")
        assert {s.id: s.resources.gpus for s in plan.steps} == {
            "transformer.fwd_ret_5m.s42": ("GPU-0000-test",),
            "transformer.will_peak_5m.s42": ("GPU-0001-test",),
            "mlp.fwd_ret_5m.s42": ("GPU-0000-test",),
            "mlp.will_peak_5m.s42": ("GPU-0001-test",),
        }
        why = next(d for d in plan.step("mlp.fwd_ret_5m.s42").derivations if d.key == "gpus")
        assert (why.rule, why.why) == ("gpu_least_loaded", "GPU 0 (Test GPU 0): least expected work (cost 8 placed "
                                                           "before it, longest first) of the 2 GPU(s) that hold its "
                                                           "4096 MB VRAM cap")

    def test_a_step_goes_to_a_gpu_that_holds_its_vram_cap(self):
        """On a mixed box a 10 GB cap passes over the 8 GB GPU instead of failing the compile."""
        plan = compile_for(spec(16, 65536, [(8192, "8.6"), (24576, "8.6")]), "campaign.families=[mlp]",
                           "families.mlp.runtime.vram_cap_mb=10000")
        assert {s.resources.gpus for s in plan.steps} == {("GPU-0001-test",)}
        assert {s.limits.vram_cap_mb for s in plan.steps} == {10000}

    def test_cpu_steps_hide_the_gpus(self):
        plan = compile_for(spec(16, 65536, [(81559, "9.0")]), "campaign.families=[lightgbm]",
                           "campaign.targets=[fwd_ret_5m]")
        assert plan.steps[0].env["CUDA_VISIBLE_DEVICES"] == "-1"

    def test_kaggle_safe_caps_vram_and_time(self):
        """kaggle_safe: ≤ 16 GB of GPU memory per step and a 9 h deadline for the whole run."""
        plan = compile_for(spec(4, 32768, [(24576, "8.6")]), "kaggle_safe", "families.mlp.runtime.vram_cap_mb=20000",
                           "campaign.families=[mlp]", "campaign.targets=[fwd_ret_5m]")
        (step,) = plan.steps
        assert step.limits.vram_cap_mb == 16384
        why = [d for d in step.derivations if d.key == "vram_cap_mb"][-1]
        assert why.rule == "profile_vram_budget"
        assert plan.schedule.deadline_s == 9 * 3600

    def test_vram_cap_above_the_gpu_is_a_compile_error(self):
        with pytest.raises(PlanningError, match=r"VRAM cap 20000 MB of mlp exceeds the GPU's 15360 MB"):
            compile_for(spec(4, 16384, [(15360, "7.5")]), "campaign.families=[mlp]",
                        "families.mlp.runtime.vram_cap_mb=20000")

    def test_transformer_batch_scales_with_many_features(self):
        """300 features (the Transformer's tokens) > 200 → max(32, 128·200/300) = 85, recorded with its rule."""
        plan = compile_for(spec(4, 16384, []), "campaign.families=[transformer]", "campaign.targets=[fwd_ret_5m]",
                           "data.synthetic.features=300")
        (step,) = plan.steps
        assert step.params["batch_size"] == 85
        why = next(d for d in step.derivations if d.key == "batch_size")
        assert (why.rule, why.why) == ("seq_batch_scaling", "seq_len 300 (features) > 200: max(32, 128·200/300)")

    def test_the_lookback_window_does_not_scale_the_batch(self):
        """h100_full's 250-step lookback lengthens each token, not the sequence: 32 features leave 128."""
        h100 = compile_for(spec(16, 131072, [(81559, "9.0")]), "h100_full", "campaign.families=[transformer]",
                           "campaign.targets=[fwd_ret_5m]", "campaign.seeds=[42]")
        assert h100.steps[0].params["batch_size"] == 128
        why = next(d for d in h100.steps[0].derivations if d.key == "batch_size")
        assert why.why == "seq_len 32 (features) ≤ 200: unchanged"

    def test_tab_transformer_scales_with_the_feature_count_too(self):
        plan = compile_for(spec(4, 16384, []), "campaign.families=[tab_transformer]", "campaign.targets=[fwd_ret_5m]",
                           "data.synthetic.features=400")
        why = next(d for d in plan.steps[0].derivations if d.key == "batch_size")
        assert plan.steps[0].params["batch_size"] == 64
        assert why.why == "seq_len 400 (features) > 200: max(32, 128·200/400)"

    def test_every_step_has_env_seed_and_isolation_reason(self):
        plan = compile_for(spec(4, 16384, []))
        for step in plan.steps:
            assert step.env["PYTHONHASHSEED"] == "42"
            assert step.env["TKPLAN_SEED"] == str(step.seed)
            assert step.isolation.reason
            assert {d.key for d in step.derivations} >= {"device", "threads", "seed", "env", "precision"}

    def test_isolation_forced_by_the_legacy_variable_is_explained(self):
        request = CompileRequest(words=("campaign.families=[lightgbm]",), env={"TRAINER_NO_ISOLATION": "1"},
                                 cwd=Path("/nonexistent-project"))
        plan = compile_plan(request, spec(4, 16384, []), "spec", "test")
        assert plan.steps[0].isolation.mode == "inproc"
        assert "env:TRAINER_NO_ISOLATION" in plan.steps[0].isolation.reason


@pytest.mark.parametrize("name, profile", [("laptop_2core", "laptop"), ("kaggle_t4", "kaggle_safe"),
                                           ("h100_16core", "h100_full"), ("mac_m2", "mac_test")])
def test_golden_plan_summaries(name, profile):
    """Each machine profile's own campaign planned for its machine, checked in and reviewed by eye: the laptop
    trains the CPU families; kaggle_safe and h100_full add the eleven networks on the GPU (fp16 on the T4,
    bf16 on the H100) within their budgets; mac_test the networks on MPS.

    The summary table is compared, not the hash: a hyperparameter the table does not show changes the hash
    (other tests pin that) but not how the run is laid out. ``TKPLAN_UPDATE_GOLDEN=1`` rewrites the files;
    read the diff before committing it.
    """
    from tkplan._render import render_plan_summary

    plan = compile_for(load_hardware(SPECS / f"{name}.yaml"), profile)
    text = re.sub(r"^plan [0-9a-f]{12} ", "plan <hash> ", render_plan_summary(plan)) + "\n"
    golden = GOLDEN / f"{name}.{profile}.txt"
    if os.environ.get("TKPLAN_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), (f"{golden.name} differs: review the plan, "
                                        "then TKPLAN_UPDATE_GOLDEN=1 rewrites it")


class TestNetworkBackend:
    """Each network step records the framework it trains with; only a TensorFlow step gets TensorFlow's env."""

    def test_the_campaign_picks_the_framework_where_the_family_has_it(self):
        plan = compile_for(spec(4, 16384, []), "campaign.families=[mlp, gan, lightgbm]",
                           "campaign.targets=[fwd_ret_5m]", "campaign.nn_backend=tf")
        steps = {s.family: s for s in plan.steps}
        assert {f: s.resources.backend for f, s in steps.items()} == {"mlp": "tf", "gan": "torch", "lightgbm": None}
        why = {f: next(d for d in s.derivations if d.key == "backend") for f, s in steps.items() if f != "lightgbm"}
        assert why["mlp"].rule == "nn_backend"
        assert (why["gan"].rule, why["gan"].why) == (
            "family_backend",
            "campaign.nn_backend = tf, but gan has no tf implementation (runtime.backends: ['torch'])")
        assert steps["mlp"].env["TF_NUM_INTRAOP_THREADS"] == str(steps["mlp"].resources.threads)
        assert "TF_NUM_INTRAOP_THREADS" not in steps["gan"].env

    def test_torch_by_default(self):
        plan = compile_for(spec(4, 16384, []), "campaign.families=[lstm]", "campaign.targets=[fwd_ret_5m]")
        assert {s.resources.backend for s in plan.steps} == {"torch"}
        assert not any(name.startswith("TF_") for name in plan.steps[0].env)
