"""The ``ray`` engine: each step a Ray task with its planned CPUs, GPUs, memory and environment.

tkplan plans, Ray places. ``tkplan run PLAN --engine ray`` starts a local Ray instance sized to the plan's
hardware (its CPUs, GPUs and memory), or with ``--address ADDR`` joins that cluster, and submits each step
the executor admits as a task with ``num_cpus`` = its threads, ``num_gpus`` = its share of its GPU(s) (VRAM
cap / GPU memory), ``memory`` = its memory cap, and its planned environment in ``runtime_env``. The engine
pins every task to a node it picks (hard node affinity): a node of the step's node class for a cluster's plan
(``tkplan.planner._nodes``), with room for the step by the plan's numbers. So Ray never queues a task the plan
did not admit, a step that fits no live node fails at once instead of waiting forever, and a crash names its
node. Ray never retries a task (``max_retries=0``): rerunning is ``--resume``'s decision.

Inside the task a `LocalEngine` runs the step exactly as on this machine: the child
``python -m tkplan.runtime._child RUN_DIR STEP_ID`` with the step's environment applied before any import,
its RSS watched against the memory cap and its timeout kept on its node, its end classified by the same code,
the child killed if the task's worker dies. An ``inproc`` step runs in a warm worker that its Ray worker keeps
between tasks (as the local engine keeps one per run): the run's ``inproc`` steps that Ray gives the same
worker pay no interpreter start and no imports; that warm worker carries the run's marker and dies with its Ray
worker. ``runtime_env`` holds the step's environment as well (all but
``TKPLAN_SEED``, which only the trainer reads, so that Ray can reuse a worker for steps whose environment is
the same): Ray's own thread defaults (``OMP_NUM_THREADS`` = ``num_cpus``) never reach a step. A task's step
processes carry a marker of their own (`task_token`, derived from the run's): the task stops its step and
nothing else of the run on its node, and ``--resume`` finds them from the journal.

Faults: a step past its timeout is killed by its task (SIGTERM, SIGKILL after the grace), and a task that has
not come back ``cancel_slack_s`` later is cancelled with force (``timeout``); over its memory cap, or its
worker killed by Ray's memory monitor: ``oom``; its node dead: ``crashed``, the node named. Other steps go on.
``--resume`` first runs, on every live node, the local engine's clean-up of whatever the dead run left
(processes running the child for this run directory), then adopts what finished.

The run directory: steps read their ``step.json`` and the prepared data from it and write their results into
it, at the same path on their node: one machine, or a cluster whose nodes mount the run directory on shared
storage. A node that does not see it ends the step ``crashed`` with that said.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tkplan.errors import EngineError, PlanError
from tkplan.planner._convert import converter, thaw
from tkplan.planner._hardware import Gpu, HardwareSpec, Node
from tkplan.planner._nodes import node_classes, same_class, step_node_class
from tkplan.planner._plan import Plan, Step
from tkplan.runtime._engine import Engine, Job, JobEnd
from tkplan.runtime._local import read_outcome
from tkplan.runtime._settings import ExecutorSettings

__all__ = ["RayEngine", "RayOptions", "probe_cluster", "task_token"]

_MIB = 2**20
_RAY_GRAIN = 1e-4  # tkplan: ignore[constant]  Ray's smallest resource quantity: 4 decimal places
_PER_STEP_ONLY = ("TKPLAN_SEED",)
"""Variables of a step's environment that only its trainer reads: the child gets them, ``runtime_env`` not."""


@attrs.frozen
class RayOptions:
    """The Ray engine's options (``tkplan run --engine ray --address ADDR``; ``execute(engine_options=...)``).

    Attributes:
        address: the cluster to join (``ray://…`` or ``HOST:PORT``, as ``ray.init`` takes it); ``None``
            starts a local instance sized to the plan's hardware, shut down when the run ends.
        temp_dir: a local instance's session directory (Ray's default when ``None``); its socket paths must
            stay under 108 characters, so keep it short.
        object_store_mb: a local instance's object store; steps pass nothing through it but their end.
        cancel_slack_s: how long after a step's timeout and kill grace its task may take to come back before
            it is cancelled with force.
        probe_timeout_s: how long probing a cluster's nodes (``tkplan probe --ray``) may take.

    .. versionadded:: 0.1
    """

    address: str | None = None
    temp_dir: str | None = None
    object_store_mb: int = attrs.field(default=256, validator=attrs.validators.gt(0))
    cancel_slack_s: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    probe_timeout_s: float = attrs.field(default=120.0, validator=attrs.validators.gt(0))

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> RayOptions:
        """Read the engine options; an unknown one is a `ValueError` listing the known ones."""
        known = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"the ray engine has no option {', '.join(unknown)}; its options: {', '.join(known)}")
        return cls(**options)


@attrs.define
class _Node:
    """A live Ray node and what the engine's running steps take of it, by the plan's numbers."""

    node_id: str
    name: str
    spec: Node
    gpu_count: int
    address: str
    cpus: float = 0.0
    memory_mb: float = 0.0
    gpus: float = 0.0

    def holds(self, need: tuple[float, float, float]) -> bool:
        cpus, memory, gpus = need
        return (self.cpus + cpus <= self.spec.cpus and self.memory_mb + memory <= self.spec.memory_mb
                and _quantum(self.gpus + gpus) <= self.gpu_count)

    def could_hold(self, need: tuple[float, float, float]) -> bool:
        return need[0] <= self.spec.cpus and need[1] <= self.spec.memory_mb and _quantum(need[2]) <= self.gpu_count

    def take(self, need: tuple[float, float, float], sign: int = 1) -> None:
        self.cpus += sign * need[0]
        self.memory_mb += sign * need[1]
        self.gpus += sign * need[2]


@attrs.define
class _Task:
    """A submitted step: its task, its node, and why the engine stopped it, if it did."""

    job: Job
    ref: Any
    node: _Node
    need: tuple[float, float, float]
    started: float
    killed_for: str | None = None
    kill_detail: str = ""
    force_at: float | None = None


class RayEngine(Engine):
    """Runs steps as Ray tasks (see the module docstring); options: `RayOptions`.

    .. versionadded:: 0.1
    """

    def __init__(self, run_dir: Path, settings: ExecutorSettings, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(run_dir, settings, options)
        self.ray_options = RayOptions.of(self.options)
        self._ray: Any = None
        self._owns = False
        self._plan: Plan | None = None
        self._nodes: dict[str, _Node] = {}
        self._gpus: dict[str, tuple[Gpu, ...]] = {}  # each node's GPUs, as probed there
        self._tasks: dict[str, _Task] = {}
        self._remote: Any = None

    # -- Engine ----------------------------------------------------------------------------------------

    def prepare(self, plan: Plan, hardware: HardwareSpec | None) -> HardwareSpec:
        """Start or join Ray; return the hardware to check drift against.

        A plan for one machine on a local instance: this machine's probe. A cluster's plan: the cluster's spec
        (every node probed, as ``tkplan probe --ray`` writes it). A plan for one machine on a cluster of one
        node: that node's probe.

        Raises:
            PlanError: a cluster's plan without an address (a local instance is one machine).
            EngineError: Ray is not installed, or the cluster cannot be reached.
        """
        if plan.hardware.nodes and self.ray_options.address is None:
            raise PlanError(f"the plan is for a cluster of {len(plan.hardware.nodes)} nodes: give the cluster's "
                            "address (--address ADDR), or compile the plan for this machine")
        self._plan = plan
        self._ray, self._owns = _connect(self.ray_options, plan.hardware)
        self._remote = self._ray.remote(_run_job)
        if self.ray_options.address is None:
            self._gpus = {n.node_id: plan.hardware.gpus for n in _live_nodes(self._ray, {})}
            here = hardware
            if here is None:
                from tkplan.planner._probe import probe

                here = probe()
        else:
            cluster, self._gpus = _cluster_spec(self._ray, self.ray_options.probe_timeout_s)
            here = hardware or cluster
            if hardware is None and not plan.hardware.nodes and len(cluster.nodes) == 1:
                only = _live_nodes(self._ray, {})
                here = _probe_nodes(self._ray, only, self.ray_options.probe_timeout_s)[0]
        self._refresh_nodes()
        return here

    def accepts(self, step: Step) -> bool:
        """Whether a live node for the step has room for it now; also yes when no live node could ever hold
        it (its start then fails and says so, rather than the step waiting forever)."""
        nodes = self._candidates(step)
        need = self._need(step)
        return any(n.holds(need) for n in nodes) or not any(n.could_hold(need) for n in nodes)

    def start(self, job: Job) -> Mapping[str, Any]:
        """Submit the step's task, pinned to the node with the most room of those that hold it.

        Raises:
            OSError: no live node can hold the step (the executor records it ``crashed``).
        """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        step = job.step
        self._refresh_nodes()
        need = self._need(step)
        candidates = self._candidates(step)
        nodes = [n for n in candidates if n.holds(need)]
        if not nodes:
            cls = step_node_class(step)
            offer = "; ".join(f"{n.name}: {n.spec.cpus} CPUs, {n.spec.memory_mb} MB, {n.gpu_count} GPUs"
                              for n in candidates) or "none"
            raise OSError(f"no live Ray node{f' of class {cls}' if cls else ''} can hold it ({need[0]:g} CPUs, "
                          f"{need[1]:g} MB, {need[2]:g} GPUs); live nodes: {offer}")
        node = min(nodes, key=lambda n: (n.cpus / n.spec.cpus, n.name))
        env = {k: v for k, v in step.env.items() if k not in _PER_STEP_ONLY}
        ref = self._remote.options(
            num_cpus=step.resources.threads, num_gpus=need[2], memory=int(need[1] * _MIB) or None,
            runtime_env={"env_vars": env}, max_retries=0, name=f"tkplan {step.id}",
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
        ).remote(str(job.run_dir), str(job.step_dir), converter.unstructure(step), job.timeout_s, job.attempt,
                 task_token(job.token, step.id, job.attempt), attrs.asdict(self.settings),
                 bool(self._plan is not None and self._plan.hardware.nodes), job.token)
        node.take(need)
        self._tasks[step.id] = _Task(job, ref, node, need, time.monotonic())
        return {"engine": "ray", "task_id": ref.task_id().hex(), "node": node.name, "node_id": node.node_id}

    def poll(self, timeout_s: float) -> list[JobEnd]:
        """``ray.wait`` for any task to come back; cancel with force those past their timeout and slack."""
        if not self._tasks:
            time.sleep(timeout_s)
            return []
        ray = self._ray
        refs = [t.ref for t in self._tasks.values()]
        ready, _ = ray.wait(refs, num_returns=1, timeout=max(0.0, min(timeout_s, self._next_check())))
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        done = {ref.task_id() for ref in ready}
        ends = [self._end(t) for t in list(self._tasks.values()) if t.ref.task_id() in done]
        self._enforce_limits()
        return ends

    def cancel(self, step_id: str) -> None:
        """Interrupt the step's task (its local engine kills the step); with force after the kill grace."""
        task = self._tasks.get(step_id)
        if task is not None and task.killed_for is None:
            task.killed_for, task.kill_detail = "cancelled", "cancelled"
            task.force_at = time.monotonic() + self.settings.term_grace_s
            self._ray.cancel(task.ref, force=False)

    def release_orphans(self, started: Sequence[Mapping[str, Any]], *, tokens: Sequence[str] = ()) -> None:
        """On every live node, kill what a dead run left running (the local engine's way: by the runs' markers).

        A dead driver's tasks are ended by Ray itself, and their steps' children with them (they die with
        their worker); this finds any step process that outlived its task. ``tokens``: the markers of the
        earlier runs on this run directory; those of ``started`` are added.

        Raises:
            RuntimeError: a step's processes on a node are still alive after SIGKILL.
        """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self._ray
        markers = sorted({*tokens, *(str(r["token"]) for r in started if r.get("token")),
                          *(task_token(str(r["token"]), str(r["step"]), int(r.get("attempt", 1)))
                            for r in started if r.get("token") and r.get("step"))})
        release = ray.remote(_release)
        refs = [release.options(num_cpus=0, max_retries=0,
                                scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)
                                ).remote(str(self.run_dir), attrs.asdict(self.settings), markers)
                for n in self._nodes.values()]
        try:
            ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            raise RuntimeError(str(exc.cause) if exc.cause is not None else str(exc)) from None

    def close(self) -> None:
        """Cancel every running task with force; shut down the local instance if this engine started it."""
        ray, self._ray = self._ray, None
        if ray is None:
            return
        for task in self._tasks.values():
            ray.cancel(task.ref, force=True)
        self._tasks.clear()
        if self._owns:
            ray.shutdown()

    # -- nodes -----------------------------------------------------------------------------------------

    def _refresh_nodes(self) -> None:
        """The live nodes with CPUs, keeping what the running steps take of each."""
        alive = {n.node_id: n for n in _live_nodes(self._ray, self._gpus)}
        for node_id in list(self._nodes):
            if node_id not in alive:
                del self._nodes[node_id]
        for node_id, node in alive.items():
            self._nodes.setdefault(node_id, node)

    def _candidates(self, step: Step) -> list[_Node]:
        """The live nodes the step may run on: those of its node class (a cluster's plan), else all."""
        assert self._plan is not None
        wanted = step_node_class(step)
        if wanted is None:
            return list(self._nodes.values())
        planned = node_classes(self._plan.hardware).get(wanted)
        if planned is None:
            return []
        tolerance = self.settings.memory_tolerance_pct
        return [n for n in self._nodes.values() if same_class(planned[0], n.spec, tolerance)]

    def _need(self, step: Step) -> tuple[float, float, float]:
        """The step's CPUs, memory (MB) and GPUs, as Ray counts them: GPUs its VRAM cap's share of each GPU."""
        assert self._plan is not None
        gpus = 0.0
        memory = {g.uuid: g.memory_mb for g in self._plan.hardware.gpus}
        for uuid in step.resources.gpus:
            cap = step.limits.vram_cap_mb
            gpus += 1.0 if cap is None else max(_RAY_GRAIN, min(1.0, round(cap / memory.get(uuid, cap), 4)))
        return float(step.resources.threads), float(step.limits.memory_cap_mb or 0), gpus

    # -- ends ------------------------------------------------------------------------------------------

    def _end(self, task: _Task) -> JobEnd:
        """The end of a task that came back: its local engine's `JobEnd`, or Ray's reason it did not come back."""
        ray = self._ray
        del self._tasks[task.job.step.id]
        task.node.take(task.need, -1)
        step_id = task.job.step.id
        wall = round(time.monotonic() - task.started, 4)
        try:
            end = attrs.evolve(JobEnd(**ray.get(task.ref)), wall_s=wall)  # as the driver saw it
        except ray.exceptions.TaskCancelledError:
            if task.killed_for is None:  # not by this engine: the step did not end by its own doing or ours
                return JobEnd(step_id, "crashed", "its Ray task was cancelled from outside tkplan", wall,
                              outcome=read_outcome(task.job.step_dir))
            return JobEnd(step_id, task.killed_for, task.kill_detail, wall, outcome=read_outcome(task.job.step_dir))
        except ray.exceptions.OutOfMemoryError as exc:
            return JobEnd(step_id, "oom", f"killed by Ray's memory monitor on node {task.node.name}: "
                          f"{_first_line(exc)}", wall)
        except ray.exceptions.RayError as exc:
            return JobEnd(step_id, "crashed", self._crash_detail(task, exc), wall,
                          outcome=read_outcome(task.job.step_dir))
        if task.killed_for == "cancelled":
            return attrs.evolve(end, status="cancelled", detail="cancelled")
        return end

    def _crash_detail(self, task: _Task, exc: BaseException) -> str:
        self._refresh_nodes()
        node = task.node
        if node.node_id not in self._nodes:
            return f"node {node.name} ({node.node_id[:12]}) died while the step ran ({type(exc).__name__})"
        return f"its Ray task on node {node.name} failed: {type(exc).__name__}: {_first_line(exc)}"

    def _next_check(self) -> float:
        now = time.monotonic()
        waits = [self.settings.poll_interval_s * 10]
        for task in self._tasks.values():
            if task.force_at is not None:
                waits.append(task.force_at - now)
            elif task.killed_for is None:
                waits.append(self._deadline(task) - now)
        return max(0.0, min(waits))

    def _deadline(self, task: _Task) -> float:
        return task.started + task.job.timeout_s + self.settings.term_grace_s + self.ray_options.cancel_slack_s

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for task in self._tasks.values():
            if task.force_at is not None and now >= task.force_at:
                task.force_at = None
                self._ray.cancel(task.ref, force=True)
            elif task.killed_for is None and now >= self._deadline(task):
                task.killed_for = "timeout"
                task.kill_detail = (f"ran past its {task.job.timeout_s:g} s timeout and its task did not come back; "
                                    "the Ray task was cancelled with force")
                self._ray.cancel(task.ref, force=True)


# -- connecting and probing -------------------------------------------------------------------------------


def _quantum(amount: float) -> float:
    """``amount`` in Ray's resource quanta (4 decimal places), so that sums of fractions compare exactly."""
    return round(amount / _RAY_GRAIN) * _RAY_GRAIN


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EngineError("the ray engine needs Ray: pip install 'tkplan[ray]'") from None
    return ray


def _connect(options: RayOptions, hardware: HardwareSpec | None) -> tuple[Any, bool]:
    """Join ``options.address``, or start a new local instance sized to ``hardware``; whether we own it.

    ``address="local"`` starts a new instance even where another one runs on this machine (``ray start``). Its
    workers run at niceness 0, as the executor does, not Ray's default 15: the steps are the work, and on a
    busy machine a niced step loses its CPU to every other process (Ray's own daemons, the executor's polling).
    """
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if options.address is not None or hardware is None:
            ray.init(address=options.address, **quiet)
        else:
            ray.init(address="local", num_cpus=hardware.cpus_usable, num_gpus=len(hardware.gpus),
                     _memory=hardware.memory_mb * _MIB,
                     object_store_memory=options.object_store_mb * _MIB, include_dashboard=False,
                     _temp_dir=options.temp_dir, _system_config={"worker_niceness": 0}, **quiet)
    except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
        where = f"the Ray cluster at {options.address}" if options.address else "a local Ray instance"
        raise EngineError(f"cannot reach {where}: {_first_line(exc)}; check the address (`ray status --address "
                          "ADDR`) or start the cluster with `ray start --head`", address=options.address) from None
    return ray, True


def _live_nodes(ray: Any, gpus: Mapping[str, tuple[Gpu, ...]]) -> list[_Node]:
    """The live nodes that offer CPUs, as Ray schedules them, with the GPUs ``gpus`` knows of each."""
    nodes = []
    for info in ray.nodes():
        resources = info.get("Resources") or {}
        if not info.get("Alive") or resources.get("CPU", 0) < 1:
            continue
        node_id = info["NodeID"]
        name = f"{info.get('NodeManagerHostname') or info.get('NodeManagerAddress')}-{node_id[:8]}"
        count = int(resources.get("GPU", 0))
        spec = Node(name, int(resources["CPU"]), max(1, int(resources.get("memory", _MIB) // _MIB)),
                    tuple(gpus.get(node_id, ()))[:count], _labels(info))
        nodes.append(_Node(node_id, name, spec, count, str(info.get("NodeManagerAddress", ""))))
    return nodes


def _labels(info: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (info.get("Labels") or {}).items() if not k.startswith("ray.io/")}


def _probe_nodes(ray: Any, nodes: Sequence[_Node], timeout_s: float) -> list[HardwareSpec]:
    """`probe` of each node: its GPUs (models, UUIDs), platform and machine.

    A node on this machine (its address is ours) is probed here; any other by a task pinned to it.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from tkplan.planner._probe import probe

    ours = ray.util.get_node_ip_address()
    remote = ray.remote(_probe_here)
    found: list[Any] = []
    for node in nodes:
        if node.address == ours:
            found.append(probe())
        else:
            found.append(remote.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                node.node_id, soft=False)).remote())
    try:
        specs = [spec if isinstance(spec, HardwareSpec) else converter.structure(ray.get(spec, timeout=timeout_s),
                                                                                 HardwareSpec) for spec in found]
    except ray.exceptions.RayError as exc:
        raise EngineError(f"probing the cluster's nodes failed: {_first_line(exc)}") from None
    return specs


def _cluster_spec(ray: Any, timeout_s: float) -> tuple[HardwareSpec, dict[str, tuple[Gpu, ...]]]:
    """The cluster as a hardware spec with its nodes (the top-level figures are its totals), and each node's GPUs."""
    live = _live_nodes(ray, {})
    if not live:
        raise EngineError("the Ray cluster has no live node with CPUs")
    probes = _probe_nodes(ray, live, timeout_s)
    gpus = {node.node_id: here.gpus[:node.gpu_count] for node, here in zip(live, probes, strict=True)}
    nodes = [attrs.evolve(node.spec, gpus=gpus[node.node_id]) for node in live]
    cpus = sum(n.cpus for n in nodes)
    memory = sum(n.memory_mb for n in nodes)
    every_gpu = [g for n in nodes for g in n.gpus]
    return HardwareSpec(
        cpus_usable=cpus, cpus_logical=cpus, cores_physical=cpus, memory_mb=memory, memory_total_mb=memory,
        gpus=tuple(attrs.evolve(g, index=i) for i, g in enumerate(every_gpu)),
        gpu_driver=next((p.gpu_driver for p in probes if p.gpu_driver), None), mps=False,
        platform=probes[0].platform, machine=probes[0].machine, cgroup=None, nodes=tuple(nodes)), gpus


def probe_cluster(address: str, options: Mapping[str, Any] | None = None) -> HardwareSpec:
    """The spec of the Ray cluster at ``address``: its nodes (CPUs, memory and GPUs as Ray schedules them,
    GPU models probed on each node, labels) and their totals. ``tkplan probe --ray ADDR`` prints it.

    Raises:
        EngineError: Ray is not installed, the cluster cannot be reached, or a node cannot be probed.

    .. versionadded:: 0.1
    """
    settings = RayOptions.of({**(options or {}), "address": address})
    ray, owns = _connect(settings, None)
    try:
        return _cluster_spec(ray, settings.probe_timeout_s)[0]
    finally:
        if owns:
            ray.shutdown()


# -- what runs on the nodes -------------------------------------------------------------------------------


def task_token(run_token: str, step_id: str, attempt: int) -> str:
    """The marker of one task's step processes: its own, so that a task stopping its step stops nothing else
    of the run on its node, and derived from the run's, so that ``--resume`` finds it from the journal."""
    import hashlib

    return hashlib.sha256(f"{run_token}:{step_id}:{attempt}".encode()).hexdigest()[:32]


_WARM: dict[str, Any] = {}
"""This Ray worker's local engine per run directory, kept between tasks: its warm worker runs the run's ``inproc``
steps that come to this Ray worker one after another, without an interpreter start and imports per step."""


def _run_job(run_dir: str, step_dir: str, step_data: dict[str, Any], timeout_s: float, attempt: int, token: str,
             settings: dict[str, Any], cluster: bool, run_token: str = "") -> dict[str, Any]:
    """The task: run one step with a local engine on this node; return its `JobEnd` as a dict.

    A ``process`` step (and a GPU step on a cluster) runs in a child of its own, marked with the task's
    ``token``. An ``inproc`` step runs in this Ray worker's warm worker (`_WARM`), as the local engine runs
    one: marked with the run's token, so that ``--resume`` finds it; it dies with this Ray worker.
    """
    import os

    from tkplan.planner._plan import Isolation
    from tkplan.runtime._local import LocalEngine

    step = converter.structure(step_data, Step)
    if not os.path.isfile(os.path.join(step_dir, "step.json")):
        return attrs.asdict(JobEnd(step.id, "crashed", f"the run directory {run_dir} is not on this node: mount it "
                                   "at the same path on every node (shared storage)", 0.0), recurse=False)
    if cluster and step.resources.gpus:  # on a cluster the GPU is the one Ray gave this task on its node
        import ray

        ids = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
        step = attrs.evolve(step, env={**step.env, "CUDA_VISIBLE_DEVICES": ",".join(ids)})
    warm = step.isolation.mode == "inproc" and not step.resources.gpus and bool(run_token)
    if warm:
        engine = _WARM.get(run_dir) or LocalEngine(Path(run_dir), ExecutorSettings(**settings),
                                                   {"die_with_parent": True})
        _WARM[run_dir] = engine
    else:
        step = attrs.evolve(step, isolation=Isolation("process", "a Ray task runs its step in a child of its own"))
        engine = LocalEngine(Path(run_dir), ExecutorSettings(**settings), {"die_with_parent": True})
    try:
        engine.start(Job(step, Path(run_dir), Path(step_dir), timeout_s, attempt, run_token if warm else token))
        ends: list[JobEnd] = []
        while not ends:
            ends = engine.poll(engine.settings.poll_interval_s)
    except BaseException:  # cancelled: the step stops (an inproc one with its worker), nothing else of the run
        if warm:
            _stop_step(engine, step.id)
        raise
    finally:
        if not warm:
            engine.close()
    end = ends[0]
    return {**attrs.asdict(end, recurse=False), "outcome": thaw(end.outcome) if end.outcome is not None else None}


def _stop_step(engine: Any, step_id: str) -> None:
    """Kill the step running in ``engine``'s warm worker and wait for its end (the worker's with it)."""
    engine.cancel(step_id)
    deadline = time.monotonic() + engine.settings.term_grace_s + engine.settings.orphan_wait_s
    with contextlib.suppress(Exception):
        while not engine.poll(engine.settings.poll_interval_s) and time.monotonic() < deadline:
            pass


def _release(run_dir: str, settings: dict[str, Any], tokens: list[str]) -> None:
    """The task of `RayEngine.release_orphans` on one node."""
    from tkplan.runtime._local import LocalEngine

    LocalEngine(Path(run_dir), ExecutorSettings(**settings)).release_orphans([], tokens=tokens)


def _probe_here() -> dict[str, Any]:
    from tkplan.planner._probe import probe

    return converter.unstructure(probe())




def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
