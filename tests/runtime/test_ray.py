"""The ``ray`` engine on real Ray: a local instance, a one-node cluster joined by address, a two-node cluster.

Every Ray here runs in a short temporary directory (its socket paths must stay under 108 characters) with a
small object store and no dashboard, and is shut down by its fixture.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tkplan[ray]')")

import tkplan  # noqa: E402
from tkplan._render import render_yaml  # noqa: E402
from tkplan.planner import CompileRequest, compile_plan, converter, load_hardware, probe  # noqa: E402
from tkplan.runtime import execute  # noqa: E402

from .projects import TKPLAN, compile_project, family, save_plan, write_project  # noqa: E402
from .test_resume import finished, journal, start_executor, unfinished, wait_for  # noqa: E402
from .test_threads import pools_by_api  # noqa: E402

pytestmark = pytest.mark.ray

MIB = 2**20
SMALL: dict[str, Any] = {"object_store_memory": 200 * MIB, "include_dashboard": False}


@contextlib.contextmanager
def short_temp_dir():
    """A short directory for Ray's files, also its default (``RAY_TMPDIR``) while Ray runs, removed afterwards."""
    temp = tempfile.mkdtemp(prefix="tkr-", dir="/tmp")
    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    try:
        yield temp
    finally:
        if before is None:
            del os.environ["RAY_TMPDIR"]
        else:
            os.environ["RAY_TMPDIR"] = before
        shutil.rmtree(temp, ignore_errors=True)


def started(run_dir):
    return {r["step"]: r for r in journal(run_dir) if r["event"] == "step_started"}


@pytest.fixture(scope="module")
def one_node():
    """A Ray cluster of one node the size of this machine (its CPUs and memory), joined by its address."""
    from ray.cluster_utils import Cluster

    here = probe()
    with short_temp_dir():
        cluster = Cluster(initialize_head=True, head_node_args={
            **SMALL, "num_cpus": here.cpus_usable, "memory": here.memory_mb * MIB})
        yield cluster
        cluster.shutdown()


@pytest.fixture(scope="module")
def two_nodes():
    """A simulated cluster on this machine: a head without CPUs, node 'a' (1 CPU, 2 GiB), node 'b' (2 CPUs, 3 GiB)."""
    from ray.cluster_utils import Cluster

    with short_temp_dir():
        cluster = Cluster(initialize_head=True, head_node_args={**SMALL, "num_cpus": 0})
        nodes = {
            "a": cluster.add_node(num_cpus=1, memory=2048 * MIB, labels={"zone": "a"}, **SMALL),
            "b": cluster.add_node(num_cpus=2, memory=3072 * MIB, labels={"zone": "b"}, **SMALL),
        }
        yield cluster, nodes
        cluster.shutdown()


def test_a_plan_runs_on_a_local_ray_instance_each_step_with_its_planned_threads(tmp_path):
    """No address: a local instance sized to the plan; inside each task the child sees its planned pools and env."""
    project = write_project(tmp_path, {
        "omp": family("report_threads", threads=2, policy="openmp"),
        "blas": family("report_threads", threads=2, policy="blas"),
    })
    plan = compile_project(project)
    with short_temp_dir() as temp:
        summary = execute(plan, tmp_path / "run", engine="ray",
                          engine_options={"temp_dir": temp, "object_store_mb": 200})
    assert not ray.is_initialized()  # the engine shut down the instance it started
    by_family = {r.step_id.split(".")[0]: r for r in summary.results}
    assert {r.status for r in summary.results} == {"ok"}, [r.detail for r in summary.results]
    omp, blas = by_family["omp"], by_family["blas"]
    assert pools_by_api(blas.output["pools"])["blas"] == {2}
    assert pools_by_api(omp.output["pools"])["blas"] == {1}
    if "openmp" in pools_by_api(omp.output["pools"]):
        assert pools_by_api(omp.output["pools"])["openmp"] == {2}
    step = plan.step(omp.step_id)
    assert omp.output["env"]["OMP_NUM_THREADS"] == "2"  # not Ray's num_cpus default: the plan's
    assert omp.output["env"]["TKPLAN_SEED"] == str(step.seed)
    assert omp.applied["thread_limits"] == {"openmp": 2, "blas": 1}
    assert omp.output["niceness"] == os.nice(0)  # not Ray's worker niceness 15: the steps are the work
    records = started(tmp_path / "run")
    assert {r["engine"] for r in records.values()} == {"ray"}
    assert len({r["node_id"] for r in records.values()}) == 1


def test_inproc_steps_on_ray_run_in_the_warm_worker_their_ray_worker_keeps(tmp_path, one_node):
    """Four ``inproc`` steps on two CPUs: a Ray worker's second step runs in the warm worker its first started,
    with no interpreter start; a ``process`` step still gets a child of its own."""
    project = write_project(tmp_path, {"warm": family("report_threads", isolation="inproc"),
                                       "cold": family("report_threads")}, seeds=(1, 2, 3, 4))
    plan = compile_project(project)
    summary = execute(plan, tmp_path / "run", engine="ray", engine_options={"address": one_node.address})
    assert {r.status for r in summary.results} == {"ok"}, [r.detail for r in summary.results]
    pids = collections.defaultdict(list)
    for r in summary.results:
        pids[r.step_id.split(".")[0]].append(r.output["pid"])
    assert len(set(pids["warm"])) < 4  # some Ray worker ran two of them in its warm worker
    assert len(set(pids["cold"])) == 4 and not set(pids["cold"]) & set(pids["warm"])


FAULTS = {
    "works": family("ok"),
    "inproc_works": family("ok", isolation="inproc"),
    "raises": family("raise_error"),
    "sleeps": family("sleep_forever"),
    "hogs": family("allocate", allocate_mb=600),
    "segfaults": family("segfault"),
}


def test_faults_are_contained_and_classified_as_on_the_local_engine(tmp_path, one_node):
    """Timeout, memory cap, crash and exception each end their own step; the ok step and the journal are whole."""
    project = write_project(tmp_path, FAULTS, timeout_s=4, memory_cap_gb=0.15)
    plan = compile_project(project)
    summary = execute(plan, tmp_path / "run", engine="ray", engine_options={"address": one_node.address})
    status = {r.step_id.split(".")[0]: (r.status, r.detail) for r in summary.results}
    assert status["works"] == status["inproc_works"] == ("ok", "")
    works = next(r for r in summary.results if r.step_id.startswith("works."))
    assert (tmp_path / "run" / "steps" / works.step_id / "model.txt").read_text() == f"model of {works.step_id}\n"
    assert status["raises"] == ("failed", "ValueError: bad input in raises.y.s42")
    assert status["sleeps"][0] == "timeout" and "4 s timeout" in status["sleeps"][1]
    assert status["hogs"][0] == "oom" and "153 MB cap" in status["hogs"][1]
    assert status["segfaults"] == ("crashed", "killed by SIGSEGV")
    ends = collections.Counter(r["step"] for r in journal(tmp_path / "run") if r["event"] == "step_finished")
    assert ends == collections.Counter(plan.schedule.order)


def test_a_step_killed_by_rays_memory_monitor_ends_oom_naming_it(tmp_path):
    """Ray's memory monitor kills a task once the node's memory passes its threshold: the step ends ``oom``, and
    its detail says that Ray's monitor killed it (the step's own cap is far above what it takes)."""
    import psutil
    from ray._private.utils import get_system_memory, get_used_memory

    # The threshold sits 1 GiB above the memory in use now, as psutil or Ray count it (whichever is more): the
    # step's 2.5 GiB pass it whatever else this machine does meanwhile, and nothing of ours passes it before.
    total = get_system_memory()
    used = max(get_used_memory(), psutil.virtual_memory().total - psutil.virtual_memory().available)
    threshold = round(min(0.99, (used + 1024 * MIB) / total), 4)
    project = write_project(tmp_path, {"hogs": family("allocate", allocate_mb=2560)}, timeout_s=120, memory_cap_gb=8)
    plan = compile_project(project)
    with short_temp_dir() as temp:
        ray.init(address="local", num_cpus=2, _temp_dir=temp, log_to_driver=False, **SMALL,
                 _system_config={"memory_usage_threshold": threshold, "memory_monitor_refresh_ms": 100})
        try:
            summary = execute(plan, tmp_path / "run", engine="ray")
        finally:
            ray.shutdown()
    (result,) = summary.results
    assert result.status == "oom", result.detail
    assert result.detail.startswith("killed by Ray's memory monitor on node "), result.detail


def test_kill_9_of_the_driver_then_resume_runs_the_rest_exactly_once(tmp_path, one_node):
    """The driver dies with SIGKILL mid-run; ``--resume`` adopts what finished and runs what did not, once."""
    project = write_project(tmp_path / "project", {"count": family("count", sleep_s=0.5)}, seeds=(1, 2, 3, 4, 5, 6))
    plan = compile_project(project)
    plan_path, run_dir = save_plan(plan, tmp_path / "plan.json"), tmp_path / "run"
    driver = start_executor(plan_path, run_dir, "--engine", "ray", "--address", one_node.address)
    wait_for(lambda: (run_dir / "journal.jsonl").exists() and len(finished(run_dir)) >= 2, timeout_s=120)
    driver.kill()
    driver.wait()
    interrupted = unfinished(run_dir)
    done_before = {r["step"] for r in finished(run_dir)}
    records_before = len(journal(run_dir))

    resumed = subprocess.run([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "--resume", "--engine", "ray",
                              "--address", one_node.address, "--format", "json"],
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert {r["status"] for r in summary["results"]} == {"ok"}
    ends = collections.Counter(r["step"] for r in journal(run_dir) if r["event"] == "step_finished")
    assert ends == collections.Counter(plan.schedule.order)
    lines = collections.Counter((run_dir / "counts.txt").read_text().split())
    assert set(lines) == set(plan.schedule.order)
    assert {step for step, n in lines.items() if n > 1} <= set(interrupted)
    started_after = [r["step"] for r in journal(run_dir)[records_before:] if r["event"] == "step_started"]
    assert not set(started_after) & done_before, "a finished step was started again"


def test_a_cluster_of_another_shape_is_refused_as_drift(tmp_path, two_nodes):
    """A cluster's plan checked against another cluster shape is refused with each node class named."""
    from tkplan.errors import DriftError

    cluster, _ = two_nodes
    spec = converter.unstructure(load_spec(cluster.address))
    spec["nodes"] = [n for n in spec["nodes"] if n["cpus"] == 2]
    (tmp_path / "smaller.yaml").write_text(render_yaml(spec))
    project = write_project(tmp_path / "project", {"wide": family("ok", threads=2)},
                            run={"name": "cluster", "threads": "auto", "output_dir": "runs"})
    plan = compile_plan(CompileRequest(cwd=project, env={}, hermetic=True), load_hardware(tmp_path / "smaller.yaml"),
                        "smaller.yaml", tkplan.__version__)
    with pytest.raises(DriftError, match=r"node class 1cpu|plan none of class 1cpu"):
        execute(plan, tmp_path / "run", engine="ray", engine_options={"address": cluster.address})


def test_probe_ray_writes_the_clusters_nodes_and_compile_packs_steps_onto_them(tmp_path, two_nodes):
    """``tkplan probe --ray`` → cluster.yaml → compile: each step's node class; the run puts it on such a node;
    a node removed mid-step ends that step ``crashed`` naming the node, and the other steps go on."""
    cluster, nodes = two_nodes
    probed = subprocess.run([*TKPLAN, "probe", "--ray", cluster.address], capture_output=True, text=True, timeout=120)
    assert probed.returncode == 0, probed.stderr
    (tmp_path / "cluster.yaml").write_text(probed.stdout)
    spec = load_hardware(tmp_path / "cluster.yaml")
    shapes = sorted((n.cpus, n.memory_mb, dict(n.labels)) for n in spec.nodes)
    assert shapes == [(1, 2048, {"zone": "a"}), (2, 3072, {"zone": "b"})]
    assert (spec.cpus_usable, spec.memory_mb) == (3, 5120)

    project = write_project(tmp_path / "project", {
        "narrow": family("count", sleep_s=0.2),
        "wide": family("count", threads=2, sleep_s=0.2),
        "long": family("count_when_released", threads=2, sleep_s=120),
    }, timeout_s=300, run={"name": "cluster", "threads": "auto", "output_dir": "runs"})
    request = CompileRequest(cwd=project, env={}, hermetic=True)
    plan = compile_plan(request, spec, "cluster.yaml", tkplan.__version__)
    classes = {s.family: next(d.value for d in s.derivations if d.key == "node_class") for s in plan.steps}
    assert classes == {"narrow": "1cpu-2048mb-zone=a", "wide": "2cpu-3072mb-zone=b", "long": "2cpu-3072mb-zone=b"}
    assert {s.family: s.limits.memory_cap_mb for s in plan.steps} == {"narrow": 1638, "wide": 2457, "long": 2457}

    plan_path, run_dir = save_plan(plan, tmp_path / "plan.json"), tmp_path / "run"
    driver = subprocess.Popen([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "-q", "--engine", "ray",
                               "--address", cluster.address, "--format", "json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    long_id = next(s.id for s in plan.steps if s.family == "long")
    wait_for(lambda: (run_dir / "steps" / long_id / "stdout.log").exists(), timeout_s=120)  # its child runs
    cluster.remove_node(nodes["b"])
    out, err = driver.communicate(timeout=180)
    assert driver.returncode == 1, err
    results = {r["step_id"].split(".")[0]: r for r in json.loads(out)["results"]}
    where = {r["step"].split(".")[0]: r["node"] for r in started(run_dir).values()}
    zone_of = {n.name: n.labels["zone"] for n in spec.nodes}
    assert zone_of[where["narrow"]] == "a"
    assert zone_of[where["long"]] == "b"
    assert results["narrow"]["status"] == "ok"
    assert results["long"]["status"] == "crashed"
    assert f"node {where['long']}" in results["long"]["detail"] and "died" in results["long"]["detail"]
    if "wide" in where:  # it ran on b before b went, or could not start for want of a live node of its class
        assert zone_of[where["wide"]] == "b"
    else:
        assert results["wide"]["status"] == "crashed"
        assert "no live Ray node of class 2cpu-3072mb-zone=b can hold it" in results["wide"]["detail"]

    cluster.add_node(num_cpus=2, memory=3072 * MIB, labels={"zone": "b"}, **SMALL)
    (run_dir / "release").touch()  # the long step, run again, need not be long now
    resumed = subprocess.run([*TKPLAN, "run", str(plan_path), "--out", str(run_dir), "--resume", "--engine", "ray",
                              "--address", cluster.address, "--format", "json"],
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr  # resume runs again what did not end ok: the dead node's steps
    again = {r["step_id"].split(".")[0]: r["status"] for r in json.loads(resumed.stdout)["results"]}
    assert again == {"narrow": "ok", "wide": "ok", "long": "ok"}
    starts = [r["step"].split(".")[0] for r in journal(run_dir) if r["event"] == "step_started"]
    assert (starts.count("narrow"), starts.count("long")) == (1, 2)  # what ended ok never runs twice


def load_spec(address):
    from tkplan.runtime._ray import probe_cluster

    return probe_cluster(address)
