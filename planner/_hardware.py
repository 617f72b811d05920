"""The hardware spec: what a machine offers a run (CPUs, memory, GPUs), as frozen data with no I/O.

``tkplan.planner._probe.probe`` fills a `HardwareSpec` from the machine it runs on; ``tkplan probe >
box.yaml`` saves one and ``tkplan compile --hardware box.yaml`` plans for it elsewhere. Conversion to and
from plain dicts goes through ``tkplan.planner._convert.converter`` only; the dict form is described by
``schema/hardware.schema.json``.

A cluster's spec (``tkplan probe --ray ADDR``) also lists its `Node` s: the top-level fields are then the
cluster's totals (its GPUs numbered across nodes), and the planner packs each step onto one node.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any

import attrs

from tkplan.planner._convert import OMIT_IF_DEFAULT

__all__ = ["Gpu", "HardwareSpec", "Node"]

_COMPUTE_CAPABILITY = re.compile(r"[0-9]+\.[0-9]+")
_CGROUP_VERSIONS = ("v1", "v2", None)


def _int_at_least(minimum: int) -> Any:
    """Return a validator that accepts an ``int`` (not a ``bool``) that is ``>= minimum``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"{attribute.name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})"
            )
        if value < minimum:
            raise ValueError(f"{attribute.name} must be an int >= {minimum}, got {value!r}")

    return check


def _non_empty_str(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a non-empty ``str``."""
    if not isinstance(value, str) or not value:
        raise TypeError(f"{attribute.name} must be a non-empty string, got {value!r}")


def _compute_capability(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept ``"major.minor"``, e.g. ``"9.0"``."""
    if not isinstance(value, str) or not _COMPUTE_CAPABILITY.fullmatch(value):
        raise ValueError(f"{attribute.name} must look like '9.0' (major.minor), got {value!r}")


@attrs.frozen
class Gpu:
    """One GPU as NVML reports it.

    Attributes:
        index: NVML device index (the order NVML enumerates devices, not ``CUDA_VISIBLE_DEVICES`` order).
        uuid: stable device UUID, e.g. ``"GPU-5b2c…"``; the planner orders ``CUDA_VISIBLE_DEVICES`` by it.
        name: product name, e.g. ``"NVIDIA H100 80GB HBM3"``.
        memory_mb: total device memory in MiB (bytes // 2**20).
        compute_capability: CUDA compute capability as ``"major.minor"``, e.g. ``"9.0"``.

    .. versionadded:: 0.1
    """

    index: int = attrs.field(validator=_int_at_least(0))
    uuid: str = attrs.field(validator=_non_empty_str)
    name: str = attrs.field(validator=_non_empty_str)
    memory_mb: int = attrs.field(validator=_int_at_least(1))
    compute_capability: str = attrs.field(validator=_compute_capability)


def _gpus(instance: HardwareSpec, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a tuple of `Gpu` with distinct indices and UUIDs."""
    if not isinstance(value, tuple) or not all(isinstance(g, Gpu) for g in value):
        raise TypeError(f"{attribute.name} must be a tuple of Gpu, got {value!r}")
    for field in ("index", "uuid"):
        seen = [getattr(g, field) for g in value]
        if len(set(seen)) != len(seen):
            raise ValueError(f"{attribute.name} must have distinct {field}es, got {seen!r}")


def _labels(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a mapping of strings to strings."""
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TypeError(f"{attribute.name} must map strings to strings, got {dict(value)!r}")


def _read_only(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


@attrs.frozen
class Node:
    """One machine of a cluster, as its Ray node offers it to a run.

    Attributes:
        name: the node's name in the spec (its host name and Ray node id prefix); informational.
        cpus: the CPUs Ray schedules on the node.
        memory_mb: the memory Ray schedules on the node, in MiB.
        gpus: the node's GPUs in NVML index order, as probed on the node.
        labels: the node's Ray labels (``ray.io/*`` left out).

    Nodes with the same CPUs, memory, GPU models and labels form one *node class*
    (``tkplan.planner._nodes.node_class``): a plan says which class each step runs on, not which node.

    .. versionadded:: 0.1
    """

    name: str = attrs.field(validator=_non_empty_str)
    cpus: int = attrs.field(validator=_int_at_least(1))
    memory_mb: int = attrs.field(validator=_int_at_least(1))
    gpus: tuple[Gpu, ...] = attrs.field(default=(), validator=_gpus)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only, validator=_labels)


def _nodes(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a tuple of `Node` with distinct names."""
    if not isinstance(value, tuple) or not all(isinstance(n, Node) for n in value):
        raise TypeError(f"{attribute.name} must be a tuple of Node, got {value!r}")
    names = [n.name for n in value]
    if len(set(names)) != len(names):
        raise ValueError(f"{attribute.name} must have distinct names, got {names!r}")


def _at_most(other: str) -> Any:
    """Return a validator that requires the value to be ``<=`` the field named ``other``."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        bound = getattr(instance, other)
        if isinstance(bound, int) and isinstance(value, int) and value > bound:
            raise ValueError(f"{attribute.name} must be <= {other} ({bound}), got {value!r}")

    return check


def _optional_str(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept ``None`` or a non-empty ``str``."""
    if value is not None:
        _non_empty_str(instance, attribute, value)


def _cgroup(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept ``"v1"``, ``"v2"`` or ``None``."""
    if value not in _CGROUP_VERSIONS:
        raise ValueError(f"{attribute.name} must be one of 'v1', 'v2' or None, got {value!r}")


def _bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Accept a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be a bool, got {value!r} ({type(value).__name__})")


@attrs.frozen
class HardwareSpec:
    """What a machine offers a run: the facts the planner sizes threads, memory and GPUs by.

    Attributes:
        cpus_usable: CPUs the run may use: the process's CPU affinity intersected with the cgroup CPU
            quota (at least 1, at most ``cpus_logical``).
        cpus_logical: logical CPUs of the host.
        cores_physical: physical cores of the host (at most ``cpus_logical``).
        memory_mb: memory the run may use in MiB: host RAM, or the cgroup memory limit when lower.
        memory_total_mb: host RAM in MiB.
        gpus: NVIDIA GPUs in NVML index order; ``()`` when there is no GPU or no NVML.
        gpu_driver: NVIDIA driver version, e.g. ``"550.54.15"``; ``None`` when NVML is unavailable.
        mps: whether an Apple Metal (MPS) device is present (Apple silicon, macOS >= 12.3).
        platform: ``sys.platform`` of the machine: ``"linux"``, ``"darwin"``, ``"win32"``, ...
        machine: ``platform.machine()``, e.g. ``"x86_64"``, ``"arm64"``, ``"aarch64"``.
        cgroup: the cgroup version (``"v1"`` or ``"v2"``) whose limit lowered ``cpus_usable`` or
            ``memory_mb`` below the host's figure; ``None`` when no cgroup limit did.
        nodes: the nodes of a cluster; ``()`` for one machine (and then left out of the spec and the plan).

    .. versionadded:: 0.1
    """

    cpus_usable: int = attrs.field(validator=[_int_at_least(1), _at_most("cpus_logical")])
    cpus_logical: int = attrs.field(validator=_int_at_least(1))
    cores_physical: int = attrs.field(validator=[_int_at_least(1), _at_most("cpus_logical")])
    memory_mb: int = attrs.field(validator=[_int_at_least(1), _at_most("memory_total_mb")])
    memory_total_mb: int = attrs.field(validator=_int_at_least(1))
    gpus: tuple[Gpu, ...] = attrs.field(validator=_gpus)
    gpu_driver: str | None = attrs.field(validator=_optional_str)
    mps: bool = attrs.field(validator=_bool)
    platform: str = attrs.field(validator=_non_empty_str)
    machine: str = attrs.field(validator=_non_empty_str)
    cgroup: str | None = attrs.field(validator=_cgroup)
    nodes: tuple[Node, ...] = attrs.field(default=(), validator=_nodes, metadata={OMIT_IF_DEFAULT: True})
