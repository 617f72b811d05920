"""Plans for a cluster: each step packed onto a node class that holds it, recorded; a step no node holds fails."""

from __future__ import annotations

import collections
from pathlib import Path

import attrs
import pytest

from tkplan.errors import PlanningError
from tkplan.planner import converter, load_hardware, plan_from_json, plan_to_json
from tkplan.planner._nodes import node_class, step_node_class
from tkplan.runtime import hardware_differences

from .test_rules import SPECS, compile_for

CLUSTER = load_hardware(SPECS / "cluster_3node.yaml")
CPU_CLASS, GPU_CLASS = "8cpu-32768mb-pool=cpu", "8cpu-32768mb-1xNVIDIA L4 (23034mb)-pool=gpu"


def derivation(step, key):
    return next(d for d in step.derivations if d.key == key)


class TestNodeClasses:
    def test_nodes_alike_form_one_class_named_by_cpus_memory_gpus_and_labels(self):
        assert [node_class(n) for n in CLUSTER.nodes] == [CPU_CLASS, CPU_CLASS, GPU_CLASS]

    def test_a_spec_without_nodes_is_written_as_before_and_one_with_nodes_round_trips(self):
        single = load_hardware(SPECS / "laptop_2core.yaml")
        assert "nodes" not in converter.unstructure(single)
        assert converter.structure(converter.unstructure(CLUSTER), type(CLUSTER)) == CLUSTER


class TestPacking:
    def test_gpu_steps_go_to_the_gpu_node_and_cpu_steps_spread_by_work_per_cpu(self, tmp_path):
        plan = compile_for(CLUSTER, "campaign.families=[mlp,lightgbm,xgboost,ensemble]", tmp=tmp_path)
        classes = {s.id: step_node_class(s) for s in plan.steps}
        for step in plan.steps:
            if step.resources.device == "cuda":
                assert classes[step.id] == GPU_CLASS
                assert step.resources.gpus == (CLUSTER.nodes[2].gpus[0].uuid,)
            assert derivation(step, "node_class").rule == "node_fit"
        assert collections.Counter(classes.values()).keys() == {CPU_CLASS, GPU_CLASS}

    def test_each_step_gets_its_share_of_its_nodes_memory_by_threads(self, tmp_path):
        plan = compile_for(CLUSTER, "campaign.families=[lightgbm,ensemble]", tmp=tmp_path)
        for step in plan.steps:
            why = derivation(step, "memory_cap_mb")
            assert (why.rule, why.value) == ("node_memory_share", step.limits.memory_cap_mb)
            assert step.limits.memory_cap_mb == int(0.8 * 32768 * step.resources.threads / 8)

    def test_no_step_gets_more_threads_than_the_largest_node_has(self, tmp_path):
        plan = compile_for(CLUSTER, "campaign.families=[ensemble]", "campaign.targets=[fwd_ret_5m]", tmp=tmp_path)
        (step,) = plan.steps
        assert plan.schedule.thread_budget == 24
        assert step.resources.threads == 8
        assert "the largest node has 8 CPUs" in derivation(step, "threads").why

    def test_the_plan_records_the_cluster_and_reads_back_the_same(self, tmp_path):
        plan = compile_for(CLUSTER, tmp=tmp_path)
        again = plan_from_json(plan_to_json(plan))
        assert again.hardware.nodes == CLUSTER.nodes and again.plan_hash == plan.plan_hash


class TestNoNodeHoldsIt:
    def test_a_memory_cap_above_every_node_names_limits_memory_cap_gb(self, tmp_path):
        with pytest.raises(PlanningError) as caught:
            compile_for(CLUSTER, "limits.memory_cap_gb=40", "campaign.families=[lightgbm]", tmp=tmp_path)
        problems = [p for p in caught.value.problems if "no node can hold it" in p.message]
        assert problems and {p.path for p in problems} == {"limits.memory_cap_gb"}
        assert "a 40960 MB memory cap" in problems[0].message
        assert "2 × 8cpu-32768mb-pool=cpu" in problems[0].message
        assert problems[0].hint.startswith("set limits.memory_cap_gb to at most 32")

    def test_a_family_whose_thread_floor_no_node_has_names_its_thread_clamp(self, tmp_path):
        small = attrs.evolve(CLUSTER, nodes=tuple(attrs.evolve(n, cpus=2) for n in CLUSTER.nodes), cpus_usable=6,
                             cpus_logical=6, cores_physical=6)
        (tmp_path / "tkplan.yaml").write_text("families:\n  lightgbm:\n    runtime:\n      threads: {min: 4}\n")
        with pytest.raises(PlanningError) as caught:
            compile_for(small, "campaign.families=[lightgbm]", tmp=tmp_path)
        (problem, *_) = [p for p in caught.value.problems if "no node can hold it" in p.message]
        assert problem.path == "families.lightgbm.runtime.threads.min"
        assert "asks 4 thread(s)" in problem.message
        assert problem.origin == "tkplan.yaml:4:17"  # where the floor was set


class TestClusterDrift:
    def test_the_same_classes_are_no_drift_whatever_the_node_names(self):
        nodes = tuple(attrs.evolve(n, name=f"other-{i}") for i, n in enumerate(CLUSTER.nodes))
        renamed = attrs.evolve(CLUSTER, nodes=nodes)
        assert hardware_differences(CLUSTER, renamed) == []

    def test_a_missing_node_and_a_foreign_one_are_named_by_class(self):
        here = attrs.evolve(CLUSTER, nodes=(CLUSTER.nodes[0], attrs.evolve(CLUSTER.nodes[1], cpus=4), CLUSTER.nodes[2]))
        assert hardware_differences(CLUSTER, here) == [
            f"node class {CPU_CLASS}: plan 2 node(s), here 1",
            "node cpu-2: plan none of class 4cpu-32768mb-pool=cpu, here one",
        ]

    def test_a_single_machine_is_not_a_cluster(self):
        single = load_hardware(Path(SPECS / "laptop_2core.yaml"))
        assert hardware_differences(CLUSTER, attrs.evolve(single, platform="linux", machine="x86_64")) == [
            "nodes: plan 3, here one machine"]
