"""Pack steps onto a cluster's nodes: each step's node class and its memory budget there. Pure.

A cluster's hardware spec lists its nodes (``tkplan probe --ray ADDR``). A step runs on one node, so its
threads, memory cap and GPU must fit one node, not the cluster's totals. Nodes alike (CPUs, memory, GPU
models, labels) form a *node class*; the plan names each step's class as a derivation (``node_class``) and
the engine picks a node of that class with room when the step starts. A step that no node can hold is a
`Problem` naming the rule that asked for what, never a task that waits forever.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from tkplan.errors import Problem
from tkplan.planner._hardware import Gpu, HardwareSpec, Node
from tkplan.planner._merge import Provenance
from tkplan.planner._merge import last_where as _where
from tkplan.planner._plan import Derivation, Step

__all__ = ["NODE_CLASS", "node_class", "node_classes", "place_on_node", "same_class", "step_node_class"]

NODE_CLASS = "node_class"  # tkplan: ignore[constant]  the derivation key the engine reads
"""The key of the derivation that names a step's node class."""


def node_class(node: Node) -> str:
    """The class of ``node``: ``"4cpu-15872mb"``, then ``"-2xNVIDIA A100 (40960mb)"`` per GPU model, then labels."""
    parts = [f"{node.cpus}cpu", f"{node.memory_mb}mb"]
    models = Counter((g.name, g.memory_mb) for g in node.gpus)
    parts += [f"{n}x{name} ({memory}mb)" for (name, memory), n in sorted(models.items())]
    parts += [f"{key}={value}" for key, value in sorted(node.labels.items())]
    return "-".join(parts)


def node_classes(hardware: HardwareSpec) -> dict[str, tuple[Node, ...]]:
    """The cluster's node classes, by name, each with its nodes (sorted by name)."""
    classes: dict[str, list[Node]] = {}
    for node in sorted(hardware.nodes, key=lambda n: n.name):
        classes.setdefault(node_class(node), []).append(node)
    return {name: tuple(nodes) for name, nodes in sorted(classes.items())}


def same_class(planned: Node, here: Node, memory_tolerance_pct: float) -> bool:
    """Whether ``here`` is of ``planned``'s class: CPUs, GPU models and labels equal, memory within the tolerance."""
    return (planned.cpus == here.cpus and dict(planned.labels) == dict(here.labels)
            and abs(planned.memory_mb - here.memory_mb) <= planned.memory_mb * memory_tolerance_pct / 100
            and sorted((g.name, g.memory_mb) for g in planned.gpus) == sorted((g.name, g.memory_mb) for g in here.gpus))


def step_node_class(step: Step) -> str | None:
    """The node class the plan gave ``step``, or ``None`` for a one-machine plan."""
    return next((str(d.value) for d in step.derivations if d.key == NODE_CLASS), None)


def place_on_node(config: Mapping[str, Any], hardware: HardwareSpec, step_id: str, family: str, cost: float,
                  threads: int, assigned: Sequence[Gpu], load: MutableMapping[str, float], provenance: Provenance,
                  problems: list[Problem]) -> tuple[int | None, list[Derivation]]:
    """Choose the node class of one step and its memory cap on a node of that class.

    A GPU step goes to the class of the node that holds its GPU. A CPU step goes to a class whose nodes hold
    its threads and memory cap: the one with the least expected work per CPU (``load``, updated here), then
    one without GPUs, then by name.

    Without ``limits.memory_cap_gb`` the step's memory cap is its share of its node's memory by threads:
    ``memory_threshold × node memory × threads / node CPUs``.

    Returns:
        The memory cap in MB (``None`` when no node holds the step, which is appended to ``problems``) and
        the derivations: ``node_class`` and ``memory_cap_mb``.
    """
    limits = config["limits"]
    cap_gb = limits["memory_cap_gb"]
    need = None if cap_gb is None else int(cap_gb * 1024)
    classes = node_classes(hardware)
    uuids = {g.uuid for g in assigned}
    if uuids:
        candidates = [c for c, nodes in classes.items() if any(uuids <= {g.uuid for g in n.gpus} for n in nodes)]
    else:
        candidates = list(classes)
    fitting = [c for c in candidates if classes[c][0].cpus >= threads
               and (need is None or classes[c][0].memory_mb >= need)]
    if not fitting:
        problems.append(_no_node(step_id, family, threads, need, bool(uuids), classes, config, provenance))
        return None, []
    total_cpus = {c: sum(n.cpus for n in classes[c]) for c in fitting}
    chosen = min(fitting, key=lambda c: (load.get(c, 0.0) / total_cpus[c], bool(classes[c][0].gpus), c))
    node = classes[chosen][0]
    others = len(fitting) - 1
    why = (f"{threads} thread(s){'' if need is None else f', {need} MB'}{', its GPU' if uuids else ''} fit "
           f"{len(classes[chosen])} node(s) of {node.cpus} CPUs, {node.memory_mb} MB")
    if others:
        why += (f"; least expected work per CPU (cost {load.get(chosen, 0.0):g} placed before it) of the "
                f"{len(fitting)} classes that hold it")
    load[chosen] = load.get(chosen, 0.0) + cost
    derivations = [Derivation(NODE_CLASS, chosen, "node_fit", why)]
    if need is None:
        need = int(limits["memory_threshold"] * node.memory_mb * threads / node.cpus)
        derivations.append(Derivation("memory_cap_mb", need, "node_memory_share",
                                      f"{limits['memory_threshold']:g} × {node.memory_mb} MB of its node × "
                                      f"{threads} / {node.cpus} CPUs"))
    return need, derivations


def _no_node(step_id: str, family: str, threads: int, need: int | None, gpu: bool,
             classes: Mapping[str, Sequence[Node]], config: Mapping[str, Any], provenance: Provenance) -> Problem:
    """The problem of a step no node holds, naming the rule that asked for too much."""
    most_cpus = max(nodes[0].cpus for nodes in classes.values())
    most_memory = max(nodes[0].memory_mb for nodes in classes.values())
    offer = "; ".join(f"{len(nodes)} × {name}" for name, nodes in classes.items())
    if threads > most_cpus:
        key = "threading.gpu_step_threads" if gpu else f"families.{family}.runtime.threads.min"
        asked = f"{threads} thread(s) ({key})"
        hint = f"lower {key} to at most {most_cpus}, or add a node with {threads} CPUs"
    elif need is not None and need > most_memory:
        key = "limits.memory_cap_gb"
        asked = f"a {need} MB memory cap (limits.memory_cap_gb = {config['limits']['memory_cap_gb']:g})"
        hint = f"set limits.memory_cap_gb to at most {most_memory // 1024}, or add a node with more memory"
    else:
        key = "threading.gpu_step_threads" if gpu else "limits.memory_cap_gb"
        asked = (f"{threads} thread(s) and {need if need is not None else 'a share of its node'} MB"
                 + (" on the node of its GPU" if gpu else ""))
        hint = "give the GPU nodes more CPUs or memory, or lower what the step asks" if gpu else \
            "lower the step's threads or memory cap, or add a node that holds both"
    return Problem(f"step {step_id}: no node can hold it: it asks {asked}; the cluster offers {offer}",
                   key, _where(provenance, key), hint)
