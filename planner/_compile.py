"""``tkplan compile`` as a library call: layers + overrides → resolved config → plan.

`resolve` stops at the validated configuration (``tkplan validate``, ``tkplan explain``); `compile_plan`
goes on to the hashed plan, whose configuration leaves out ``vars`` (values that exist to be referred to) and
``sweep``, ``search`` and ``tune`` (the declarations of a sweep and of a study). `load_base` and
`resolve_point` are the two halves of `resolve`, so that a sweep or a study reads its layers once and resolves
each point or trial from them. Every problem of one compile is reported together.
The planner reads no data file: the caller measures the one `data_file` names (``tkplan._data_digest``) and
passes its facts in.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from tkplan.errors import ConfigError, HardwareError, Problem
from tkplan.planner._campaign import Work, expand_campaign
from tkplan.planner._convert import converter, first_error, thaw
from tkplan.planner._data import FileFacts, data_identity, file_source, resolve_paths, step_digest
from tkplan.planner._entrypoints import check_entrypoints
from tkplan.planner._forecast import forecast_steps
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._merge import Provenance, merge_layers
from tkplan.planner._overrides import Override, apply_overrides, env_overrides, split_words, sweep_problems
from tkplan.planner._plan import FORMAT, DataIdentity, Derivation, Inputs, LayerInput, Plan, Schedule, Step, plan_hash
from tkplan.planner._refs import Resolution, resolve_references
from tkplan.planner._rules import plan_steps
from tkplan.planner._schemas import HARDWARE_SCHEMA
from tkplan.planner._share import PlanParts
from tkplan.planner._sources import Layer, SearchPath, load_layers
from tkplan.planner._traits import fill_trait_defaults
from tkplan.planner._validate import schema_problems, typed_value, validate_config
from tkplan.planner._yaml import load_path

if TYPE_CHECKING:  # the history module is loaded only when a history is used
    from tkplan.planner._history import History

__all__ = ["SEARCH", "SWEEP", "TUNE", "VARS", "Base", "CompileRequest", "Resolved", "compile_plan", "data_file",
           "finish_point", "load_base", "load_hardware", "plan_resolved", "planned_config", "resolve", "resolve_point",
           "settle"]

VARS = "vars"  # tkplan: ignore[constant]  the section of values that exist to be referred to
SWEEP = "sweep"  # tkplan: ignore[constant]  the section that declares a sweep: read by `tkplan sweep` only
SEARCH = "search"  # tkplan: ignore[constant]  a study's search space: read by `tkplan tune` only
TUNE = "tune"  # tkplan: ignore[constant]  a study's settings: read by `tkplan tune` only
_LEFT_OUT = (VARS, SWEEP, SEARCH, TUNE)
"""The sections of a configuration that no plan holds."""


@attrs.frozen
class CompileRequest:
    """Everything a compile reads: command-line words, ``--set`` values, environment, working directory.

    Attributes:
        words: positional words: profile names, profile files and ``key=value`` overrides.
        sets: values of ``--set key=value``.
        env: the environment (ignored but for nothing when ``hermetic``).
        cwd: the working directory: project ``profiles/`` and ``tkplan.yaml`` are found here.
        hermetic: ignore the environment entirely.
    """

    words: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict)
    cwd: Path = attrs.field(factory=Path.cwd)
    hermetic: bool = False

    @property
    def effective_env(self) -> Mapping[str, str]:
        """The environment the compile may read: empty when hermetic."""
        return {} if self.hermetic else self.env


@attrs.frozen
class Resolved:
    """A validated configuration, the provenance of every leaf, the layers and the work it expands to."""

    config: dict[str, Any]
    provenance: Provenance
    layers: tuple[Layer, ...]
    env_used: dict[str, str]
    work: tuple[Work, ...]
    skipped: tuple[str, ...]


def resolve(request: CompileRequest) -> Resolved:
    """Load, merge, override, resolve references and validate; expand the campaign.

    Raises:
        ConfigError: every problem found, each with its origin.
    """
    base = load_base(request)
    overrides, sweeps = sweep_problems(base.cli_overrides)
    return resolve_point(attrs.evolve(base, cli_overrides=tuple(overrides), problems=(*base.problems, *sweeps)), ())


@attrs.frozen
class Base:
    """What every point of a sweep shares: the layers read and merged once, the overrides parsed once.

    Attributes:
        request: what was asked.
        layers: the layers, lowest first.
        config: the merged layers, before any override (never changed: each point copies it).
        provenance: the provenance of ``config``.
        env_overrides: overrides from the environment.
        env_used: the variables read.
        cli_overrides: overrides from the command line, sweeps included.
        problems: what is already known to be wrong.
    """

    request: CompileRequest
    layers: tuple[Layer, ...]
    config: dict[str, Any]
    provenance: Provenance
    env_overrides: tuple[Override, ...]
    env_used: dict[str, str]
    cli_overrides: tuple[Override, ...]
    problems: tuple[Problem, ...]


def load_base(request: CompileRequest) -> Base:
    """Read and merge the layers and parse the overrides: the part of a compile that no override changes.

    Raises:
        ConfigError: a layer cannot be loaded (with every other problem known by then).
    """
    env = request.effective_env
    profiles, cli_overrides, problems = split_words(request.words, request.sets)
    env_over, env_used, env_problems = env_overrides(env)
    problems += env_problems
    try:
        layers = load_layers(profiles, SearchPath.from_env(request.cwd, env))
    except ConfigError as exc:  # without the layers nothing else can be checked: report what is known
        raise ConfigError([*exc.problems, *problems, *sweep_problems(cli_overrides)[1]]) from None
    config, provenance = merge_layers(layers)
    return Base(request, layers, config, provenance, tuple(env_over), env_used, tuple(cli_overrides), tuple(problems))


def resolve_point(base: Base, point: Sequence[Override]) -> Resolved:
    """Apply the overrides, then ``point`` (a sweep point's overrides), to a copy of ``base``; validate; expand.

    Raises:
        ConfigError: every problem found, each with its origin.
    """
    config, provenance = copy.deepcopy(base.config), {key: list(chain) for key, chain in base.provenance.items()}
    cli_overrides = [*base.cli_overrides, *point]
    problems = [*base.problems, *apply_overrides(config, provenance, [*base.env_overrides, *cli_overrides])]
    return finish_point(base, config, provenance, problems, cli_overrides)


def settle(request: CompileRequest, config: dict[str, Any], provenance: Provenance) -> Resolution:
    """Resolve the references of an overridden configuration, fill its trait defaults and resolve its paths.

    The result is the configuration as it is validated. ``config``'s mappings may be changed in place.
    """
    refs = resolve_references(config, provenance, request.env, hermetic=request.hermetic, typed=typed_value)
    fill_trait_defaults(refs.config, refs.provenance)
    resolve_paths(refs.config, refs.provenance, request.cwd)
    return refs


def finish_point(base: Base, config: dict[str, Any], provenance: Provenance, problems: Sequence[Problem],
                 cli_overrides: Sequence[Override],
                 validate: Callable[[Mapping[str, Any], Provenance], list[Problem]] = validate_config) -> Resolved:
    """Resolve an overridden configuration (`settle`), validate it with ``validate``, expand its campaign.

    Args:
        base: what the configuration was made from.
        config: the layers with every override applied (changed in place).
        provenance: its provenance.
        problems: the problems found so far.
        cli_overrides: the command line's overrides (a removed key that is missing is located at its ``~``).
        validate: `validate_config`, or what gives the same problems for this configuration.

    Raises:
        ConfigError: every problem found, each with its origin.
    """
    problems = list(problems)
    refs = settle(base.request, config, provenance)
    config, provenance, env_used = refs.config, refs.provenance, {**base.env_used, **refs.env_used}
    problems += refs.problems
    # a key whose reference broke is reported once, where it broke, not again for holding the raw ${...}
    schema_problems = [_removed(p, cli_overrides) for p in validate(config, provenance)
                       if p.path not in refs.unresolved]
    problems += schema_problems
    work: tuple[Work, ...] = ()
    skipped: tuple[str, ...] = ()
    if not schema_problems and not refs.problems:
        work, skipped, campaign_problems = expand_campaign(config, provenance)
        problems += campaign_problems
        problems += check_entrypoints(config, [w.family for w in work], provenance, base.request.cwd)
    if problems:
        raise ConfigError(problems)
    return Resolved(config, provenance, base.layers, env_used, work, skipped)


def _removed(problem: Problem, overrides: Sequence[Override]) -> Problem:
    """A key missing because an override removed it is located at that override."""
    for o in overrides:
        key = ".".join(o.path)
        if o.op == "~" and problem.message.startswith("missing") and (problem.path + ".").startswith(key + "."):
            return Problem("missing: this override removed it", problem.path, o.source,
                           "this key is required: remove only keys that have a default, or set another value")
    return problem


def data_file(resolved: Resolved, cwd: Path) -> Path | None:
    """The data file a compile of ``resolved`` reads (for the caller to measure), or ``None`` for a built-in."""
    source = file_source(resolved.config)
    return None if source is None else Path(cwd) / source


def compile_plan(request: CompileRequest, hardware: HardwareSpec, hardware_source: str, version: str,
                 files: Mapping[str, FileFacts] | None = None, *, resolved: Resolved | None = None,
                 history: History | None = None) -> Plan:
    """Compile the plan for ``hardware``.

    Args:
        request: what to compile.
        hardware: the machine to plan for (probed, or loaded from a spec file).
        hardware_source: ``probe`` or the spec file's display path, recorded in the plan's inputs.
        version: the tkplan version, recorded in the plan's inputs and in each step's digest.
        files: the facts of the data file (size, sha256), keyed by ``data.source`` as resolved; needed when
            the source is a file (`data_file` says which).
        resolved: ``resolve(request)``, when the caller already has it.
        history: what earlier runs on this hardware observed (``None``: plan cold); see `plan_resolved`.

    Raises:
        ConfigError: the inputs are invalid.
        PlanningError: the configuration cannot be honoured on ``hardware``, or a data file was not measured.
    """
    return plan_resolved(resolved or resolve(request), (*request.words, *(f"--set={s}" for s in request.sets)),
                         hardware, hardware_source, version, files, history)


def plan_resolved(resolved: Resolved, cli: Sequence[str], hardware: HardwareSpec, hardware_source: str,
                  version: str, files: Mapping[str, FileFacts] | None = None, history: History | None = None, *,
                  parts: PlanParts | None = None) -> Plan:
    """Plan the steps of a resolved configuration and hash the plan; ``cli`` is recorded as its command line.

    ``parts`` freezes the plan's configuration and provenance: the plans of one sweep share one, and with it
    the parts they have in common.

    With ``history`` that matches some step (``tkplan.planner._history.expect``), the steps are planned again
    with what it expects: costs, thread split, order and memory caps are derivations with rule ``history``
    naming the runs they came from, and the schedule records the runs used, the expected makespan and the
    lower bound. A history that matches nothing leaves the plan as a cold compile makes it, byte for byte.

    Raises:
        PlanningError: the configuration cannot be honoured on ``hardware``, or a data file was not measured.
    """
    steps, schedule = plan_steps(resolved.config, hardware, resolved.work, resolved.provenance)
    data = data_identity(resolved.config, {} if files is None else files)
    steps = _identified(steps, data, resolved.config, version)
    constants = {w.id: float(w.traits.get("cost", 1.0)) for w in resolved.work}
    expected = None
    if history:
        from tkplan.planner._history import expect

        expected = expect(resolved.config, hardware, steps, constants, history)
    if expected is not None:  # the digests do not depend on what history changes: plan again with them
        steps, schedule = plan_steps(resolved.config, hardware, resolved.work, resolved.provenance, expected)
        steps = _identified(steps, data, resolved.config, version)
        schedule = _with_forecast(schedule, steps, resolved.config, expected.runs)
    schedule = attrs.evolve(schedule, skipped=resolved.skipped)
    inputs = Inputs(
        tkplan_version=version,
        layers=tuple(LayerInput(layer.name, layer.kind, layer.file, layer.sha256) for layer in resolved.layers),
        env=resolved.env_used,
        cli=tuple(cli),
        hardware_source=hardware_source,
    )
    chains = {key: chain for key, chain in sorted(resolved.provenance.items()) if key.split(".", 1)[0] not in _LEFT_OUT}
    config: Mapping[str, Any] = planned_config(resolved.config)
    provenance: Mapping[str, Any]
    if parts is None:  # one plan: frozen plainly (the same content), quicker than sharing parts with no other plan
        provenance = {key: [thaw(converter.unstructure(s)) for s in chain] for key, chain in chains.items()}
        config_text = None
    else:
        config = parts.config(config)
        provenance, config_text = parts.provenance(chains), parts.text(config)
    draft = Plan(FORMAT, "", inputs, hardware, config, provenance, steps, schedule, data)
    return attrs.evolve(draft, plan_hash=plan_hash(draft, config_text))


def planned_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved configuration that a plan holds: all but `_LEFT_OUT` (``vars``, ``sweep``,
    ``search``, ``tune``)."""
    return {key: value for key, value in config.items() if key not in _LEFT_OUT}


def _with_forecast(schedule: Schedule, steps: tuple[Step, ...], config: Mapping[str, Any],
                   runs: Sequence[str]) -> Schedule:
    """The schedule with the history it was planned from and, where history gave costs in seconds, the expected
    makespan and the lower bound (a history that gave only memory caps leaves the costs relative: no seconds)."""
    from tkplan.planner._history import RULE as HISTORY

    told = forecast_steps(steps, schedule, config)
    whys = [Derivation("history", list(runs), HISTORY, f"planned with the observations of {len(runs)} earlier run(s)")]
    if told.seconds:
        whys += [
            Derivation("expected_makespan_s", told.makespan, HISTORY,
                       f"the schedule played out on the steps' expected times: {told.makespan:.1f} s"),
            Derivation("lower_bound_s", told.lower_bound, HISTORY,
                       f"max({told.work:.1f} single-thread s / {told.cpus} CPUs, longest step {told.longest} "
                       f"{told.longest_s:.1f} s)"),
        ]
    return attrs.evolve(schedule, derivations=(*schedule.derivations, *whys))


def _identified(steps: tuple[Step, ...], data: DataIdentity, config: Mapping[str, Any],
                version: str) -> tuple[Step, ...]:
    """Each step with the data's digest and its own digest (a dependency's digest is computed first)."""
    shared = {"data": {k: v for k, v in config["data"].items() if k != "source"}, "training": config["training"],
              **({"project": config["project"]} if config.get("project") else {})}  # what a trainer of its own reads
    by_id = {s.id: s for s in steps}
    digests: dict[str, str] = {}

    def digest(step_id: str) -> str:
        if step_id not in digests:
            step = by_id[step_id]
            after = {d: digest(d) for d in step.depends_on if d in by_id}
            digests[step_id] = step_digest(step, data, shared, version, after)
        return digests[step_id]

    return tuple(attrs.evolve(s, data=data.digest, digest=digest(s.id)) for s in steps)


def load_hardware(path: str | os.PathLike[str]) -> HardwareSpec:
    """Load a hardware spec saved by ``tkplan probe``.

    Raises:
        HardwareError: unreadable, malformed, or not matching ``hardware.schema.json``.
    """
    try:
        document = load_path(path)
    except ConfigError as exc:
        raise HardwareError([attrs.evolve(p, origin=f"hardware spec {p.origin}" if p.origin else "hardware spec")
                             for p in exc.problems]) from None
    problems = sorted(set(schema_problems(document.data, HARDWARE_SCHEMA, document.where)),
                      key=lambda p: (p.path, p.message))
    if problems:
        raise HardwareError(problems, f"invalid hardware spec {document.source} (write one with `tkplan probe` on "
                                      "that machine)")
    try:
        return converter.structure(document.data, HardwareSpec)
    except Exception as exc:  # cattrs wraps attrs validator errors in exception groups
        raise HardwareError(f"invalid hardware spec {os.fspath(path)}: {first_error(exc)}") from None
