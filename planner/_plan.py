"""The plan model: frozen, canonical, hashed. What ``tkplan compile`` writes and ``tkplan run`` reads.

``plan_hash`` is the sha256 of the canonical JSON of the plan's semantic part — ``format``, ``config``,
``hardware``, ``data``, ``steps`` and ``schedule`` — so the same inputs on the same hardware give the same hash in
any directory and on any machine, and an edited plan no longer matches its hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import attrs

from tkplan.errors import PlanError
from tkplan.planner._convert import JsonMap, converter, first_error, freeze
from tkplan.planner._hardware import HardwareSpec

__all__ = [
    "FORMAT",
    "DataIdentity",
    "Derivation",
    "Inputs",
    "Isolation",
    "LayerInput",
    "Limits",
    "Plan",
    "Resources",
    "Schedule",
    "Step",
    "canonical_json",
    "compute_hash",
    "plan_from_json",
    "plan_to_json",
    "read_plan",
]

FORMAT = "tkplan.plan/1"  # tkplan: ignore[constant]  the plan file format


@attrs.frozen
class LayerInput:
    """A profile layer that went into the plan: its name, kind, display path and content digest."""

    name: str
    kind: str
    file: str
    sha256: str


@attrs.frozen
class Inputs:
    """What the plan was compiled from: layers, environment variables used, command-line words, hardware source."""

    tkplan_version: str
    layers: tuple[LayerInput, ...]
    env: JsonMap = attrs.field(converter=freeze)
    cli: tuple[str, ...]
    hardware_source: str


@attrs.frozen
class DataIdentity:
    """What the plan's steps train on.

    Attributes:
        source: a built-in source's name, or the data file's path relative to the project root (absolute when
            it was given so).
        size: the file's size in bytes (``None`` for a built-in source).
        sha256: the sha256 of the file's content (``None`` for a built-in source).
        generator: a built-in source's generator settings (the synthetic panel's sizes and seed), else empty.
    """

    source: str
    size: int | None
    sha256: str | None
    generator: JsonMap = attrs.field(converter=freeze)

    @property
    def digest(self) -> str:
        """The sha256 of this identity: the same data gives the same digest, other data another."""
        return hashlib.sha256(canonical_json(converter.unstructure(self)).encode("utf-8")).hexdigest()


@attrs.frozen
class Derivation:
    """A value the planner derived, with the rule that produced it and why."""

    key: str
    value: Any = attrs.field(converter=freeze)
    rule: str
    why: str


@attrs.frozen
class Isolation:
    """How a step runs: ``process`` (a fresh child interpreter) or ``inproc``, always with a reason."""

    mode: str = attrs.field(validator=attrs.validators.in_(("process", "inproc")))
    reason: str = attrs.field(validator=attrs.validators.min_len(1))


@attrs.frozen
class Resources:
    """What a step may use: CPU threads, device, GPUs (by UUID, in ``CUDA_VISIBLE_DEVICES`` order), precision,
    and for a network family the framework it trains with (``torch`` or ``tf``; ``None`` for other families)."""

    threads: int = attrs.field(validator=attrs.validators.ge(1))
    device: str = attrs.field(validator=attrs.validators.in_(("cpu", "cuda", "mps")))
    gpus: tuple[str, ...] = ()
    precision: str = "fp32"
    backend: str | None = None


@attrs.frozen
class Limits:
    """What a step must stay within; ``None`` means no limit."""

    timeout_s: int
    memory_cap_mb: int | None
    vram_cap_mb: int | None


@attrs.frozen
class Step:
    """One unit of work: a family trained on a target (or several, for multi-task) with one seed.

    Attributes:
        id: unique, filesystem-safe (``lightgbm.fwd_ret_5m.s42``).
        family: the family key.
        target: the target name (``a+b`` for a multi-target step).
        targets: every target the step trains on.
        task: ``regression`` or ``binary`` (``multi`` for a multi-target step).
        seed: the replicate seed this step belongs to.
        params: the family's resolved hyperparameters, planner adjustments applied.
        entrypoint: ``package.module:function`` of a user trainer, or ``None`` for the built-in adapter.
        resources: threads, device, GPUs, precision.
        env: the child's exact environment additions.
        isolation: process or in-process, with the reason.
        limits: timeout, memory cap, VRAM cap.
        derivations: every value the planner derived for this step, with its rule.
        depends_on: ids of steps that must finish first.
        data: the digest of the plan's `DataIdentity`: what the step trains on.
        digest: the sha256 of what decides the step's result (family, params, targets, task, seed, entrypoint,
            data, the shared ``data`` preparation and ``training`` settings, the tkplan version, and the digests
            of the steps it depends on): two steps with one digest are the same work.
    """

    id: str
    family: str
    target: str
    targets: tuple[str, ...]
    task: str
    seed: int
    params: JsonMap = attrs.field(converter=freeze)
    entrypoint: str | None
    resources: Resources
    env: JsonMap = attrs.field(converter=freeze)
    isolation: Isolation
    limits: Limits
    derivations: tuple[Derivation, ...] = ()
    depends_on: tuple[str, ...] = ()
    data: str = ""
    digest: str = ""


@attrs.frozen
class Schedule:
    """How steps share the machine: the thread budget, concurrent slots, the start order, what was left out."""

    thread_budget: int
    max_parallel: int
    order: tuple[str, ...]
    derivations: tuple[Derivation, ...] = ()
    skipped: tuple[str, ...] = ()
    deadline_s: int | None = None


@attrs.frozen
class Plan:
    """A compiled, hashed run plan: everything ``tkplan run`` needs, and why each value is what it is."""

    format: str
    plan_hash: str
    inputs: Inputs
    hardware: HardwareSpec
    config: JsonMap = attrs.field(converter=freeze)
    provenance: JsonMap = attrs.field(converter=freeze)
    steps: tuple[Step, ...]
    schedule: Schedule
    data: DataIdentity

    def step(self, step_id: str) -> Step:
        """Return the step called ``step_id``.

        Raises:
            KeyError: no such step (the message lists the ids).
        """
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"no step {step_id!r} in the plan; steps: {', '.join(s.id for s in self.steps)}")


_SEMANTIC = ("format", "config", "hardware", "data", "steps", "schedule")


def canonical_json(data: Any, *, indent: int | None = None) -> str:
    """Serialise JSON-ready ``data`` canonically: sorted keys, no NaN, shortest round-trip floats."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators)


def compute_hash(data: Mapping[str, Any]) -> str:
    """The sha256 of the semantic part of an unstructured plan."""
    semantic = {key: data[key] for key in _SEMANTIC}
    return hashlib.sha256(canonical_json(semantic).encode("utf-8")).hexdigest()


def plan_to_json(plan: Plan) -> str:
    """The plan as the canonical, human-readable text of ``plan.json`` (ends with a newline)."""
    return canonical_json(converter.unstructure(plan), indent=1) + "\n"


def plan_from_json(text: str, source: str = "plan.json") -> Plan:  # tkplan: ignore[signature_default]
    """Read a plan and check its hash.

    Raises:
        PlanError: not JSON, another format, an invalid structure, or edited after compiling.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanError(f"{source}: not a plan (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise PlanError(f"{source}: not a {FORMAT} plan (format: {found!r}); compile it with this tkplan")
    try:
        expected = compute_hash(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"{source}: incomplete plan ({exc}); compile it again") from None
    if data.get("plan_hash") != expected:
        raise PlanError(f"{source}: plan_hash does not match its content: the plan was edited after compiling "
                        f"(recorded {str(data.get('plan_hash'))[:12]}…, content {expected[:12]}…); "
                        "change the profiles instead and compile again")
    try:
        return converter.structure(data, Plan)
    except Exception as exc:  # cattrs raises several exception groups; all mean a malformed plan
        raise PlanError(f"{source}: malformed plan ({first_error(exc)}); compile it again") from None


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """Read the plan file at ``path`` and check its hash.

    Raises:
        PlanError: unreadable, not UTF-8, not a plan, or edited after compiling; the message names ``path``.
    """
    source = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise PlanError(f"{source}: cannot read the plan: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{source}: not a plan (not UTF-8 text, byte {exc.start}); give the plan.json that "
                        "tkplan compile -o wrote") from None
    return plan_from_json(text, source)
