"""The plan model: frozen, canonical, hashed. What ``tkplan compile`` writes and ``tkplan run`` reads.

``plan_hash`` is the sha256 of the canonical JSON of the plan's semantic part — ``format``, ``config``,
``hardware``, ``data``, ``steps`` and ``schedule`` — so the same inputs on the same hardware give the same hash in
any directory and on any machine, and an edited plan no longer matches its hash. ``inputs`` and
``provenance`` are left out on purpose: they hold file paths and origins that differ between checkouts of
the same campaign, and the executor never acts on them (they explain a plan; they do not change a run).

A plan read from a file is checked in full before it is used: the schema (``schema/plan.schema.json``),
then what a schema cannot say (`check_plan`): unique step ids that are safe file names, dependencies that
exist and form no cycle, a schedule that orders each step once, environment names that are shell
identifiers.

When a step may start is part of the model too (`can_start`, `fits_alone`): the one rule the executor follows
and the planner's schedule is tested against. A step starts only if, with it, the steps running at once stay
within the plan's slots and thread budget, and the VRAM caps of the steps on each GPU within that GPU's memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tkplan.errors import PlanError
from tkplan.planner._convert import JsonMap, converter, first_error, freeze
from tkplan.planner._hardware import HardwareSpec

__all__ = [
    "FORMAT",
    "POOL_VARIABLES",
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
    "ThreadLimits",
    "can_start",
    "canonical_json",
    "check_plan",
    "compute_hash",
    "fits_alone",
    "plan_from_json",
    "plan_hash",
    "plan_to_json",
    "read_plan",
    "safe_name",
    "shell_name",
    "split_step_id",
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


POOL_VARIABLES: Mapping[str, tuple[str, ...]] = {  # tkplan: ignore[constant]  the libraries' own variable names
    "openmp": ("OMP_NUM_THREADS",),
    "blas": ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"),
    "numexpr": ("NUMEXPR_NUM_THREADS",),
    "tf_intra": ("TF_NUM_INTRAOP_THREADS",),
    "tf_inter": ("TF_NUM_INTEROP_THREADS",),
}
"""The environment variables that size each thread pool before its library loads: the one list of them."""

_POOL = attrs.validators.optional(attrs.validators.ge(1))


@attrs.frozen
class ThreadLimits:
    """How many threads each pool of a step may run: the plan's typed thread contract.

    The step's environment is derived from it (`environment`); the child applies the pools once, before the
    trainer runs (threadpoolctl for OpenMP and BLAS, torch's and TensorFlow's own setters); adapters only
    read them.

    Attributes:
        openmp: OpenMP's pool (LightGBM, XGBoost, HistGradientBoosting).
        blas: the BLAS pool (MKL, OpenBLAS, BLIS, vecLib).
        numexpr: NumExpr's pool.
        torch_intra: torch's intra-op threads, for a step that trains with torch; else ``None``.
        torch_inter: torch's inter-op threads, likewise.
        tf_intra: TensorFlow's intra-op threads, for a step that trains with TensorFlow; else ``None``.
        tf_inter: TensorFlow's inter-op threads, likewise.
    """

    openmp: int = attrs.field(validator=attrs.validators.ge(1))
    blas: int = attrs.field(validator=attrs.validators.ge(1))
    numexpr: int = attrs.field(validator=attrs.validators.ge(1))
    torch_intra: int | None = attrs.field(default=None, validator=_POOL)
    torch_inter: int | None = attrs.field(default=None, validator=_POOL)
    tf_intra: int | None = attrs.field(default=None, validator=_POOL)
    tf_inter: int | None = attrs.field(default=None, validator=_POOL)

    def environment(self) -> dict[str, str]:
        """The variables (`POOL_VARIABLES`) that size these pools in a fresh process; torch has none."""
        sizes = {"openmp": self.openmp, "blas": self.blas, "numexpr": self.numexpr, "tf_intra": self.tf_intra,
                 "tf_inter": self.tf_inter}
        return {name: str(size) for pool, size in sizes.items() if size is not None for name in POOL_VARIABLES[pool]}


@attrs.frozen
class Resources:
    """What a step may use: CPU threads, device, GPUs (by UUID, in ``CUDA_VISIBLE_DEVICES`` order), precision,
    for a network family the framework it trains with (``torch`` or ``tf``; ``None`` for other families), and
    how its ``threads`` divide among the thread pools (``pools``)."""

    threads: int = attrs.field(validator=attrs.validators.ge(1))
    device: str = attrs.field(validator=attrs.validators.in_(("cpu", "cuda", "mps")))
    gpus: tuple[str, ...] = ()
    precision: str = "fp32"
    backend: str | None = None
    pools: ThreadLimits = attrs.field(kw_only=True)


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
        id: unique, a `safe_name` (``lightgbm.fwd_ret_5m.s42``): it names the step's directory.
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
            data, the shared ``data`` preparation and ``training`` settings, the ``project`` section when it has
            one, the tkplan version, and the digests of the steps it depends on): two steps with one digest are
            the same work.
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

    @property
    def expected_makespan_s(self) -> float | None:
        """The makespan the plan expects (its ``expected_makespan_s`` derivation); ``None``: planned without
        history."""
        return next((float(d.value) for d in self.derivations if d.key == "expected_makespan_s"), None)


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
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]{0,199}")  # tkplan: ignore[constant]  the file-name alphabet
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # tkplan: ignore[constant]  POSIX shell variable names


def split_step_id(step_id: str) -> tuple[str, tuple[str, ...], str]:
    """A step id's parts: ``lightgbm.fwd_ret_5m+will_peak_5m.s42`` → ``("lightgbm", ("fwd_ret_5m",
    "will_peak_5m"), "s42")`` (family or cascade key, targets, seed part)."""
    family, targets, seed = step_id.rsplit(".", 2)
    return family, tuple(targets.split("+")), seed


def safe_name(value: Any, what: str) -> str:
    """Return ``value`` if it can be one file name inside a run directory, else raise.

    Safe: 1-200 characters of ``A-Z a-z 0-9 _ . + -``, not starting with a dot (so never ``.``, ``..``, a hidden
    file, a path separator or an absolute path).

    Raises:
        PlanError: ``value`` is not such a name; the message says ``what`` it is.

    .. versionadded:: 0.1
    """
    if isinstance(value, str) and _SAFE_NAME.fullmatch(value):
        return value
    raise PlanError(f"{what} {value!r} is not a safe file name: use 1-200 of A-Z a-z 0-9 _ . + -, "
                    "not starting with '.'")


_RUNTIME_KEYS = (  # tkplan: ignore[constant]  what the executor reads from a plan's config
    "run.name", "run.output_dir", "report.rank_by.regression", "report.rank_by.binary", "report.split", "data.tasks",
    "threading.inter_op_threads", "gpu.tf_allow_growth")


def shell_name(value: Any) -> bool:
    """Whether ``value`` is a POSIX shell variable name (what ``export NAME=...`` accepts)."""
    return isinstance(value, str) and _SHELL_NAME.fullmatch(value) is not None


def check_plan(data: Mapping[str, Any]) -> list[str]:
    """What is wrong with an unstructured plan beyond its schema: each problem as a sentence (none: ``[]``).

    The config holds what the executor reads; step ids are unique safe names; ``run.name`` is a safe name;
    ``depends_on`` names steps of the plan and has no cycle; each target is in ``data.tasks``;
    ``schedule.order`` holds each step exactly once; every ``env`` name is a shell identifier.
    """
    problems: list[str] = []
    for key in _RUNTIME_KEYS:
        node: Any = data["config"]
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            problems.append(f"config.{key} is missing; the executor needs it")
    if problems:
        return problems
    steps = data["steps"]
    ids = [step["id"] for step in steps]
    for name, what in [(i, "step id") for i in ids] + [(data["config"]["run"]["name"], "run.name")]:
        try:
            safe_name(name, what)
        except PlanError as exc:
            problems.append(str(exc))
    seen: set[str] = set()
    for step_id in ids:
        if step_id in seen:
            problems.append(f"step id {step_id!r} is used twice")
        seen.add(step_id)
    for step in steps:
        problems += [f"step {step['id']} depends on {d!r}, which is not in the plan"
                     for d in step["depends_on"] if d not in seen]
        problems += [f"step {step['id']}: env name {name!r} is not a shell identifier"
                     for name in step["env"] if not shell_name(name)]
        problems += [f"step {step['id']}: target {target!r} is not in config.data.tasks"
                     for target in step["targets"] if target not in data["config"]["data"]["tasks"]]
    cycle = _cycle({step["id"]: [d for d in step["depends_on"] if d in seen] for step in steps})
    if cycle:
        problems.append(f"the steps depend on each other in a cycle: {' -> '.join(cycle)}")
    order = data["schedule"]["order"]
    if sorted(order) != sorted(seen) or len(order) != len(ids):
        extra = sorted(set(order) - seen)
        missing = sorted(seen - set(order))
        twice = sorted({i for i in order if order.count(i) > 1})
        problems.append("schedule.order must list each step exactly once"
                        + (f"; not steps: {', '.join(extra)}" if extra else "")
                        + (f"; missing: {', '.join(missing)}" if missing else "")
                        + (f"; twice: {', '.join(twice)}" if twice else ""))
    return problems


def _cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """One dependency cycle of ``graph`` (id → ids it depends on) as a path that ends where it starts, or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if state.get(root):
            continue
        path, stack = [root], [iter(graph[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph.get(nxt, ())))
    return []


def canonical_json(data: Any, *, indent: int | None = None) -> str:
    """Serialise JSON-ready ``data`` canonically: sorted keys, no NaN, shortest round-trip floats.

    ``data`` may hold frozen parts (read-only mappings, tuples): they give the text their plain form gives.
    """
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators,
                      default=_plain_mapping)


def _plain_mapping(value: Any) -> dict[str, Any]:
    """A read-only mapping as the dict `json` writes (anything else is not JSON-ready)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


def compute_hash(data: Mapping[str, Any]) -> str:
    """The sha256 of the semantic part of an unstructured plan."""
    semantic = {key: data[key] for key in _SEMANTIC}
    return hashlib.sha256(canonical_json(semantic).encode("utf-8")).hexdigest()


def plan_hash(plan: Plan, config_text: str | None = None) -> str:
    """The hash of ``plan``'s semantic part: `compute_hash` of the unstructured plan, without unstructuring the rest.

    Args:
        plan: the plan (its ``plan_hash`` is not read).
        config_text: ``canonical_json(plan.config)``, when the caller has it.
    """
    fields = {key: canonical_json(converter.unstructure(getattr(plan, key))) for key in _SEMANTIC if key != "config"}
    fields["config"] = canonical_json(plan.config) if config_text is None else config_text
    text = "{" + ",".join(f"{canonical_json(key)}:{fields[key]}" for key in sorted(fields)) + "}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()  # = compute_hash: canonical JSON composes


def plan_to_json(plan: Plan) -> str:
    """The plan as the canonical, human-readable text of ``plan.json`` (ends with a newline)."""
    return canonical_json(converter.unstructure(plan), indent=1) + "\n"


def plan_from_json(text: str, source: str = "plan.json") -> Plan:  # tkplan: ignore[signature_default]
    """Read a plan and check its hash.

    Raises:
        PlanError: not JSON, another format, an invalid structure, or edited after compiling.
    """
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise PlanError(f"{source}: not a plan (nested too deeply); compile it again") from None
    except ValueError as exc:
        raise PlanError(f"{source}: not a plan (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise PlanError(f"{source}: not a {FORMAT} plan (format: {found!r}); compile it with this tkplan")
    try:
        expected = compute_hash(data)
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise PlanError(f"{source}: incomplete plan ({exc}); compile it again") from None
    if data.get("plan_hash") != expected:
        raise PlanError(f"{source}: plan_hash does not match its content: the plan was edited after compiling "
                        f"(recorded {str(data.get('plan_hash'))[:12]}…, content {expected[:12]}…); "
                        "change the profiles instead and compile again")
    problems = _schema_problems(data) or check_plan(data)
    if problems:
        listed = "".join(f"\n  - {p}" for p in problems[:_SHOWN])
        more = f"\n  ... and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise PlanError(f"{source}: invalid plan:{listed}{more}\ncompile it again")
    try:
        return converter.structure(data, Plan)
    except Exception as exc:  # cattrs raises several exception groups; all mean a malformed plan
        raise PlanError(f"{source}: malformed plan ({first_error(exc)}); compile it again") from None


_SHOWN = 10  # tkplan: ignore[constant]  how many problems an error lists


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a plan may hold")


def _schema_problems(data: Mapping[str, Any]) -> list[str]:
    """Where ``data`` breaks ``schema/plan.schema.json``: ``message @ $.path`` lines."""
    from tkplan.planner._schemas import PLAN_SCHEMA, validator

    try:
        errors = sorted(validator(PLAN_SCHEMA).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    except RecursionError:
        return ["nested too deeply"]
    return [f"{_short(e.message)} @ {e.json_path}" for e in errors]


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:200] + "…"


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


def can_start(step: Step, running: Sequence[Step], schedule: Schedule, hardware: HardwareSpec,
              max_parallel: int | None = None) -> bool:
    """Whether ``step`` may start while ``running`` run.

    Args:
        step: the candidate.
        running: the steps running now.
        schedule: the plan's schedule (thread budget, slots).
        hardware: the plan's hardware (GPU memory).
        max_parallel: a lower slot count asked at run time (``tkplan run --max-parallel``).
    """
    slots = min(schedule.max_parallel, max_parallel or schedule.max_parallel)
    if len(running) >= slots:
        return False
    if sum(s.resources.threads for s in running) + step.resources.threads > schedule.thread_budget:
        return False
    memory = {g.uuid: g.memory_mb for g in hardware.gpus}
    for uuid in step.resources.gpus:
        used = sum(s.limits.vram_cap_mb or 0 for s in running if uuid in s.resources.gpus)
        if used + (step.limits.vram_cap_mb or 0) > memory.get(uuid, 0):
            return False
    return True


def fits_alone(step: Step, schedule: Schedule, hardware: HardwareSpec) -> bool:
    """Whether ``step`` could ever start: it fits the machine with nothing else running."""
    return can_start(step, (), schedule, hardware)
