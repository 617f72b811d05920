"""Compare the machine a plan was compiled for with the one it is about to run on.

A plan sized for 16 CPUs and an H100 is wrong on a 2-CPU laptop: its thread budget oversubscribes and its
VRAM caps do not fit. `hardware_differences` lists what differs, one readable line per fact, and
`check_drift` refuses to run on a different machine unless asked to.
"""

from __future__ import annotations

from collections.abc import Sequence

from tkplan.errors import DriftError
from tkplan.planner._hardware import Gpu, HardwareSpec
from tkplan.planner._nodes import node_class, node_classes, same_class
from tkplan.runtime._settings import ExecutorSettings

__all__ = ["check_drift", "hardware_differences"]

_EXACT = ("cpus_usable", "cpus_logical", "cores_physical", "mps", "platform", "machine")
_MEMORY = ("memory_mb", "memory_total_mb")


def hardware_differences(planned: HardwareSpec, here: HardwareSpec,
                         settings: ExecutorSettings = ExecutorSettings()) -> list[str]:
    """What differs between the plan's hardware and this machine's, as ``"field: plan X, here Y"`` lines.

    CPU counts, MPS, platform and machine must be equal; memory may differ by
    ``settings.memory_tolerance_pct``; GPUs are matched by UUID (name, memory and compute capability must
    agree). The driver version and the cgroup version are not compared: they do not change what a plan does.
    A cluster (a spec with nodes) is compared node class by node class: as many nodes of each class, memory
    within the tolerance; which nodes they are does not matter.

    Args:
        planned: ``plan.hardware``.
        here: the probe of this machine.
        settings: the memory tolerance.

    Returns:
        One line per difference; empty when the machines match.

    .. versionadded:: 0.1
    """
    if planned.nodes or here.nodes:
        return _node_differences(planned, here, settings)
    lines = []
    for field in _EXACT:
        a, b = getattr(planned, field), getattr(here, field)
        if a != b:
            lines.append(f"{field}: plan {a}, here {b}")
    for field in _MEMORY:
        a, b = getattr(planned, field), getattr(here, field)
        if abs(a - b) > a * settings.memory_tolerance_pct / 100:
            lines.append(f"{field}: plan {a} MB, here {b} MB (more than {settings.memory_tolerance_pct:g}% apart)")
    lines += _gpu_differences(planned.gpus, here.gpus)
    return lines


def _node_differences(planned: HardwareSpec, here: HardwareSpec, settings: ExecutorSettings) -> list[str]:
    lines = [f"{field}: plan {getattr(planned, field)}, here {getattr(here, field)}"
             for field in ("platform", "machine") if getattr(planned, field) != getattr(here, field)]
    if not planned.nodes or not here.nodes:
        return [*lines, f"nodes: plan {len(planned.nodes) or 'one machine'}, here {len(here.nodes) or 'one machine'}"]
    unmatched = list(here.nodes)
    for name, nodes in node_classes(planned).items():
        found = [n for n in unmatched if same_class(nodes[0], n, settings.memory_tolerance_pct)]
        for node in found[:len(nodes)]:
            unmatched.remove(node)
        if len(found) < len(nodes):
            lines.append(f"node class {name}: plan {len(nodes)} node(s), here {len(found)}")
    lines += [f"node {n.name}: plan none of class {node_class(n)}, here one" for n in unmatched]
    return lines


def _gpu_differences(planned: Sequence[Gpu], here: Sequence[Gpu]) -> list[str]:
    lines = []
    found = {g.uuid: g for g in here}
    for g in planned:
        h = found.pop(g.uuid, None)
        if h is None:
            lines.append(f"gpu {g.uuid}: plan {g.name} ({g.memory_mb} MB), here missing")
            continue
        for field in ("name", "memory_mb", "compute_capability"):
            a, b = getattr(g, field), getattr(h, field)
            if a != b:
                lines.append(f"gpu {g.uuid} {field}: plan {a}, here {b}")
    for h in found.values():
        lines.append(f"gpu {h.uuid}: plan none, here {h.name} ({h.memory_mb} MB)")
    return lines


def check_drift(planned: HardwareSpec, here: HardwareSpec, settings: ExecutorSettings = ExecutorSettings()) -> None:
    """Refuse a machine that differs from the plan's.

    Raises:
        DriftError: with one line per difference.

    .. versionadded:: 0.1
    """
    differences = hardware_differences(planned, here, settings)
    if differences:
        raise DriftError(differences)
