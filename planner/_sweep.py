"""A sweep: axes of values from the command line and a profile's ``sweep:`` section, each point its own plan.

Axes come from sweep values on the command line (``key=a,b``, ``range(...)``, ``choice(...)``) and from the
``sweep:`` section (``grid:`` key → values, or ``points:`` a list of key → value mappings, and ``seeds:`` one
more axis over ``run.base_seed``). A plain command-line override of a key the profile sweeps wins over that
axis, as the command line wins everywhere. Points are the cartesian product of the axes in the order given,
the first axis slowest. The layers are read and merged once (`load_base`); each point applies its overrides,
with the source ``sweep:KEY (where the axis was written)``, and is resolved and planned on its own, doing once
what the points share (`PointCompiler`): validated only where it differs from the configuration without the points'
values, its plan sharing its unchanged parts with the others'. The sweep file is written plan by plan.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from tkplan.errors import ConfigError, PlanningError, Problem
from tkplan.planner._compile import (
    SWEEP,
    Base,
    CompileRequest,
    Resolved,
    finish_point,
    load_base,
    plan_resolved,
    planned_config,
    settle,
)
from tkplan.planner._convert import converter
from tkplan.planner._data import FileFacts
from tkplan.planner._grammar import ChoiceSweep, RangeSweep, format_value
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._merge import Provenance, changed_paths, dotted
from tkplan.planner._overrides import Override, apply_overrides
from tkplan.planner._plan import Plan, canonical_json
from tkplan.planner._share import PlanParts, canonical_text
from tkplan.planner._sweep_schedule import SweepSchedule, sweep_schedule
from tkplan.planner._validate import validate_changes, validate_config

if TYPE_CHECKING:  # the history module is loaded only when a history is used
    from tkplan.planner._history import History

__all__ = ["SWEEP_FORMAT", "Axis", "Point", "SweepPlan", "compile_sweep", "sweep_chunks", "sweep_to_json"]

SWEEP_FORMAT = "tkplan.sweep/1"  # tkplan: ignore[constant]  the sweep file format
SEED_KEY = "run.base_seed"  # tkplan: ignore[constant]  the key that a `seeds:` axis sets


@attrs.frozen
class Axis:
    """One swept key and its values, in order.

    Attributes:
        key: the dotted key (a ``points:`` axis names every key its points set, joined by ``+``).
        values: the values, in order (for ``points:``, one mapping of key → value per point).
        source: where the axis was written: ``cli:arg N``, ``cli:--set N`` or ``file:line:col``.
    """

    key: str
    values: tuple[Any, ...]
    source: str


@attrs.frozen
class Point:
    """One point of a sweep: its overrides, as words of the override grammar, and its plan's hash."""

    overrides: tuple[str, ...]
    plan_hash: str


@attrs.frozen
class SweepPlan:
    """A compiled sweep: its axes, its points and their plans (one per distinct ``plan_hash``), hashed.

    Attributes:
        format: ``tkplan.sweep/1``.
        sweep_hash: sha256 over the semantic part: format, axes (keys and values), points.
        axes: the axes, in the order the points are crossed.
        points: the points, first axis slowest.
        plans: plan_hash → plan.
        schedule: one schedule for every point: the union of their steps, each distinct step once
            (`tkplan.planner._sweep_schedule`); a function of ``plans``, which the sweep hash covers.
    """

    format: str
    sweep_hash: str
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    plans: Mapping[str, Plan]
    schedule: SweepSchedule


def compile_sweep(request: CompileRequest, hardware: HardwareSpec, hardware_source: str, version: str,
                  files: Mapping[str, FileFacts] | None = None, history: History | None = None) -> SweepPlan:
    """Compile every point of the sweep that ``request`` declares into its own plan (each with ``history``, as
    `plan_resolved` uses it).

    Args:
        request: the sweep's words: profiles, overrides, sweep values.
        hardware: the machine to plan for.
        hardware_source: ``probe`` or the spec file's display path.
        version: the tkplan version.
        files: the facts of the data files the points read, by ``data.source`` as resolved; looked up only for
            a point whose source is a file, so a mapping that measures a file when first asked for serves a
            swept ``data.source`` (the command line's ``tkplan._data_digest.MeasuredFiles``).
        history: the observations of earlier runs (`tkplan.planner._history`), or ``None`` to plan cold.

    Raises:
        ConfigError: an input, an axis or an axis value is invalid (every problem, each located once).
        PlanningError: a point cannot be honoured on ``hardware`` (the point is named).
    """
    base = load_base(request)
    sweeps = [o for o in base.cli_overrides if isinstance(o.value, (ChoiceSweep, RangeSweep))]
    plain = tuple(o for o in base.cli_overrides if o not in sweeps)
    base = attrs.evolve(base, cli_overrides=plain)
    profile_axes, problems = _profile_axes(base.config.get(SWEEP) or {}, base.provenance)
    fixed = {dotted(o.path) for o in plain}
    axes = [a for a in profile_axes if a.key not in fixed and a.key not in {dotted(o.path) for o in sweeps}]
    axes += [Axis(dotted(o.path), _values(o.value), o.source) for o in sweeps]
    problems += [Problem(f"{a.key} is swept more than once", a.key, a.source, "sweep each key on one axis only")
                 for i, a in enumerate(axes) if a.key in {b.key for b in axes[:i]}]
    if problems:
        raise ConfigError([*base.problems, *problems])
    words = _plain_words(request, {o.source for o in sweeps})
    compiler = PointCompiler(base)
    plans: dict[str, Plan] = {}
    points: list[Point] = []
    found: dict[Problem, None] = {}
    for combo in itertools.product(*(a.values for a in axes)):
        overrides = [o for axis, value in zip(axes, combo, strict=True) for o in _overrides(axis, value)]
        point_words = tuple(f"{dotted(o.path)}={format_value(o.value)}" for o in overrides)
        try:
            resolved = compiler.resolve(overrides)
        except ConfigError as exc:
            found.update(dict.fromkeys(exc.problems))
            continue
        if found:  # an invalid point was seen: only collect the problems of the rest
            continue
        try:
            plan = compiler.plan(resolved, (*words, *point_words), hardware, hardware_source, version, files,
                                 history)
        except PlanningError as exc:
            where = " ".join(point_words)
            raise PlanningError([attrs.evolve(p, message=f"{p.message} (sweep point {where})")
                                 for p in exc.problems]) from None
        plans.setdefault(plan.plan_hash, plan)
        points.append(Point(point_words, plan.plan_hash))
    if found:
        raise ConfigError(found)
    if not points:
        raise ConfigError([Problem("the sweep has no points", hint="give an axis at least one value")])
    schedule = sweep_schedule([p.plan_hash for p in points], plans)
    draft = SweepPlan(SWEEP_FORMAT, "", tuple(axes), tuple(points), plans, schedule)
    return attrs.evolve(draft, sweep_hash=_hash(draft))


class PointCompiler:
    """Resolves and plans the points of one sweep, doing once what they share.

    Each result is exactly what `resolve_point` and `plan_resolved` give for the point. The environment's and
    the command line's overrides are applied once; each point applies its own to a copy of the result, and
    resolves its references (which may reach a swept key), trait defaults and paths. The configuration with no
    point's values — the *reference* — is validated in full once; while it is valid, a point is validated only
    where its configuration differs from it (`validate_changes`), else in full. The plans share one `PlanParts`.
    """

    def __init__(self, base: Base) -> None:
        config, provenance = copy.deepcopy(base.config), {key: list(chain) for key, chain in base.provenance.items()}
        self.problems = [*base.problems, *apply_overrides(config, provenance, [*base.env_overrides,
                                                                                *base.cli_overrides])]
        self.base, self.config, self.provenance = base, config, provenance
        reference = settle(base.request, _copy(config), {key: list(chain) for key, chain in provenance.items()})
        valid = not validate_config(reference.config, reference.provenance)
        self.reference = reference.config if valid else None
        self.parts = PlanParts(planned_config(reference.config))

    def resolve(self, point: Sequence[Override]) -> Resolved:
        """`resolve_point` of the base and ``point``.

        Raises:
            ConfigError: every problem found, each with its origin.
        """
        config, provenance = _copy(self.config), {key: list(chain) for key, chain in self.provenance.items()}
        problems = [*self.problems, *apply_overrides(config, provenance, point)]
        reference = self.reference
        validate = validate_config if reference is None else \
            lambda c, p: validate_changes(c, p, changed_paths(reference, c))
        return finish_point(self.base, config, provenance, problems, [*self.base.cli_overrides, *point], validate)

    def plan(self, resolved: Resolved, cli: Sequence[str], hardware: HardwareSpec, hardware_source: str,
             version: str, files: Mapping[str, FileFacts] | None, history: History | None = None) -> Plan:
        """`plan_resolved` of a point, sharing the parts its plan has in common with the others'.

        Raises:
            PlanningError: the point cannot be honoured on ``hardware``.
        """
        return plan_resolved(resolved, cli, hardware, hardware_source, version, files, history,
                             parts=self.parts)


def _copy(value: Any) -> Any:
    """A deep copy of configuration data (mappings, lists, scalars), quicker than ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in (str, int, float, bool, type(None)):
        return value
    return copy.deepcopy(value)


def sweep_to_json(sweep: SweepPlan) -> str:
    """The sweep as the canonical text of a sweep file: compact JSON on one line, ending with a newline.

    Unlike ``plan.json`` the text is not indented: a sweep file holds a plan per point, for tkplan to read. The
    text is ``canonical_json`` of the unstructured sweep. `sweep_chunks` gives it in pieces, to be written
    without holding it whole.
    """
    return "".join(sweep_chunks(sweep))


def sweep_chunks(sweep: SweepPlan) -> Iterator[str]:
    """The text of `sweep_to_json`, in pieces (one per plan, with the other fields around them).

    Each frozen part that the plans share (a provenance chain, a section of the configuration) is written once
    and its text reused.
    """
    texts: dict[int, tuple[Any, str]] = {}
    fields = {key: canonical_json(value) for key, value in converter.unstructure(attrs.evolve(sweep, plans={})).items()}
    for i, key in enumerate(sorted(fields)):
        yield ("{" if i == 0 else ",") + canonical_json(key) + ":"
        if key != "plans":
            yield fields[key]
            continue
        for j, plan_hash in enumerate(sorted(sweep.plans)):
            yield ("{" if j == 0 else ",") + canonical_json(plan_hash) + ":" + _plan_text(sweep.plans[plan_hash], texts)
        yield "}" if sweep.plans else "{}"
    yield "}\n"


def _plan_text(plan: Plan, texts: dict[int, tuple[Any, str]]) -> str:
    """``canonical_json`` of the unstructured plan; its frozen configuration and provenance through
    `canonical_text`."""
    data = converter.unstructure(attrs.evolve(plan, config={}, provenance={}))
    fields = {key: canonical_json(value) for key, value in data.items()}
    fields.update(config=canonical_text(plan.config, texts, keep=False),
                  provenance=canonical_text(plan.provenance, texts, keep=False))
    return _object(fields)


def _object(fields: Mapping[str, str]) -> str:
    """The canonical text of a JSON object, from its keys and the texts of their values."""
    return "{" + ",".join(f"{canonical_json(key)}:{fields[key]}" for key in sorted(fields)) + "}"


def _hash(sweep: SweepPlan) -> str:
    semantic = {"format": sweep.format,
                "axes": [{"key": a.key, "values": converter.unstructure(a.values)} for a in sweep.axes],
                "points": [converter.unstructure(p) for p in sweep.points]}
    return hashlib.sha256(canonical_json(semantic).encode("utf-8")).hexdigest()


def _values(value: ChoiceSweep | RangeSweep) -> tuple[Any, ...]:
    return value.values() if isinstance(value, RangeSweep) else value.values


def _overrides(axis: Axis, value: Any) -> list[Override]:
    """The overrides of one axis value; a ``points:`` value is a mapping of several keys."""
    items = value.items() if axis.key.startswith("points:") else [(axis.key, value)]
    return [Override(tuple(key.split(".")), val, f"sweep:{key} ({axis.source})") for key, val in items]


def _plain_words(request: CompileRequest, swept: set[str]) -> tuple[str, ...]:
    """The command line without its sweep words: each point's plan records these and its own overrides."""
    words = [w for i, w in enumerate(request.words, 1) if f"cli:arg {i}" not in swept]
    return (*words, *(f"--set={s}" for i, s in enumerate(request.sets, 1) if f"cli:--set {i}" not in swept))


def _profile_axes(section: Mapping[str, Any], provenance: Provenance) -> tuple[list[Axis], list[Problem]]:
    """The axes of a profile's ``sweep:`` section (already checked against the schema's shape)."""
    def where(key: str) -> str:
        chain = provenance.get(key) or [s for k, c in provenance.items() if k.startswith(key + ".") for s in c]
        return chain[-1].where if chain else SWEEP

    axes: list[Axis] = []
    problems: list[Problem] = []
    if not isinstance(section, Mapping):  # the schema reports the wrong shape, located
        return axes, problems
    grid, points, seeds = section.get("grid") or {}, section.get("points") or [], section.get("seeds") or []
    grid = grid if isinstance(grid, Mapping) else {}
    points = points if isinstance(points, list) else []
    seeds = seeds if isinstance(seeds, list) else []
    if grid and points:
        problems.append(Problem("a sweep has a grid or a list of points, not both", SWEEP, where(f"{SWEEP}.points"),
                                "move the grid's keys into each point, or drop the points"))
    for key, values in grid.items():
        if isinstance(values, list):
            axes.append(Axis(key, tuple(values), where(f"{SWEEP}.grid.{key}")))
    if points:
        keys = "+".join(dict.fromkeys(k for p in points if isinstance(p, dict) for k in p))
        axes.append(Axis(f"points:{keys}", tuple(p for p in points if isinstance(p, dict)), where(f"{SWEEP}.points")))
    if seeds:
        axes.append(Axis(SEED_KEY, tuple(seeds), where(f"{SWEEP}.seeds")))
    return axes, problems
