"""Read a sweep file (``tkplan.sweep/1``), check that it is what ``tkplan sweep`` wrote, and say what its points
run (`run_record`, the run directory's ``sweep.json``).

A sweep file is refused (`PlanError`) when it is not JSON or not a sweep, when its ``sweep_hash`` does not match
its axes and points, when a plan's ``plan_hash`` does not match the plan (or a point names a plan the file does
not hold), or when its schedule is not the one its plans give (`sweep_schedule`): any edit after compiling
shows. The schedule's plan, which the executor runs, is also checked against the plan schema.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import cattrs
import cattrs.gen

from tkplan.errors import PlanError
from tkplan.planner._convert import converter, exact_key, first_error, make_converter
from tkplan.planner._plan import Plan, Step, _schema_problems, check_plan, compute_hash, read_plan
from tkplan.planner._sweep import SWEEP_FORMAT, SweepPlan, _hash
from tkplan.planner._sweep_schedule import sweep_schedule

__all__ = ["read_runnable", "read_sweep", "run_record", "sweep_from_json"]

_AGAIN = "compile the sweep again with `tkplan sweep … -o FILE`"  # tkplan: ignore[constant]  message text


def sweep_from_json(text: str, source: str = "sweep.json") -> SweepPlan:  # tkplan: ignore[signature_default]
    """Read a sweep file's text and check it.

    Raises:
        PlanError: not JSON, not a sweep, or edited after compiling; the message names ``source``.
    """
    with _collector_paused():
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PlanError(f"{source}: not a sweep file (invalid JSON: {str(exc)[:200]})") from None
        return _sweep_from_data(data, source)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a sweep file is read.

    Reading makes millions of containers and no cycles; the collector would scan the growing tree again
    and again as it grows (a tenth of the read of a 200-point file) to free nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sweep_from_data(data: Any, source: str) -> SweepPlan:
    if not isinstance(data, dict) or data.get("format") != SWEEP_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise PlanError(f"{source}: not a {SWEEP_FORMAT} sweep file (format: {found!r}); {_AGAIN}")
    plans = data.get("plans")
    if not isinstance(plans, Mapping) or not isinstance(data.get("schedule"), Mapping):
        raise PlanError(f"{source}: incomplete sweep file (no plans or no schedule); {_AGAIN}")
    for key, plan in plans.items():
        _check_plan(plan, key, f"{source}: plans.{key[:12]}…")
    union = data["schedule"].get("plan")
    _check_plan(union, union.get("plan_hash") if isinstance(union, Mapping) else None, f"{source}: schedule.plan")
    problems = _schema_problems(union)
    if problems:
        raise PlanError(f"{source}: schedule.plan is not a valid plan: {'; '.join(problems[:5])}; {_AGAIN}")
    try:
        sweep = _sharing_converter().structure(data, SweepPlan)
    except Exception as exc:  # cattrs raises exception groups for a wrong structure
        raise PlanError(f"{source}: malformed sweep file ({first_error(exc)[:200]}); {_AGAIN}") from None
    if sweep.sweep_hash != _hash(sweep):
        raise PlanError(f"{source}: sweep_hash does not match its axes and points: the file was edited after "
                        f"compiling (recorded {sweep.sweep_hash[:12]}…, content {_hash(sweep)[:12]}…); {_AGAIN}")
    missing = [p.plan_hash for p in sweep.points if p.plan_hash not in sweep.plans]
    if missing or not sweep.points:
        raise PlanError(f"{source}: a point names a plan the file does not hold ({', '.join(missing) or 'no points'}); "
                        f"{_AGAIN}")
    expected = sweep_schedule([p.plan_hash for p in sweep.points], sweep.plans)
    if expected.plan.plan_hash != sweep.schedule.plan.plan_hash or expected.steps != sweep.schedule.steps:
        which = (f"schedule {sweep.schedule.plan.plan_hash[:12]}…, its plans give {expected.plan.plan_hash[:12]}…"
                 if expected.plan.plan_hash != sweep.schedule.plan.plan_hash else "which points share which step")
        raise PlanError(f"{source}: the schedule is not the one its plans give: the file was edited after compiling "
                        f"({which}); {_AGAIN}")
    return sweep


def _sharing_converter() -> cattrs.Converter:
    """The plan converter for the many plans of one sweep file: what they have in common is made once.

    Configuration, provenance and parameters are frozen with `freeze_shared`, and a step that several plans
    hold as the very same data (`exact_key`) is structured once and shared by them: a 200-point grid's plans
    differ in a few keys and steps only.
    """
    conv = make_converter(shared={})
    structure_step = cattrs.gen.make_dict_structure_fn(Step, conv)
    steps: dict[bytes, Step] = {}

    def shared_step(value: Any, _: Any) -> Step:
        key = exact_key(value)
        step = steps.get(key)
        if step is None:
            step = steps[key] = structure_step(value, Step)
        return step

    conv.register_structure_hook(Step, shared_step)
    return conv


def _check_plan(plan: Any, key: Any, where: str) -> None:
    """One plan of the file: a mapping whose content has the hash it is filed under, valid beyond its schema."""
    if not isinstance(plan, Mapping):
        raise PlanError(f"{where}: not a plan; {_AGAIN}")
    try:
        content = compute_hash(plan)
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise PlanError(f"{where}: incomplete plan ({exc}); {_AGAIN}") from None
    if content != plan.get("plan_hash") or content != key:
        raise PlanError(f"{where}: plan_hash does not match its content: the sweep file was edited after compiling "
                        f"(recorded {str(plan.get('plan_hash'))[:12]}…, content {content[:12]}…); {_AGAIN}")
    try:
        problems = check_plan(plan)
    except (KeyError, TypeError, AttributeError) as exc:
        problems = [f"malformed ({exc})"]
    if problems:
        raise PlanError(f"{where}: invalid plan: {'; '.join(problems[:5])}; {_AGAIN}")


def read_sweep(path: str | os.PathLike[str]) -> SweepPlan:
    """Read the sweep file at ``path`` and check it (see `sweep_from_json`).

    Raises:
        PlanError: unreadable, not UTF-8, not a sweep file, or edited after compiling; the message names ``path``.

    .. versionadded:: 0.1
    """
    source = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except OSError as exc:
        raise PlanError(f"{source}: cannot read the sweep file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PlanError(f"{source}: not a sweep file (not UTF-8 text, byte {exc.start}); {_AGAIN}") from None
    return sweep_from_json(text, source)


def read_runnable(path: str | os.PathLike[str]) -> Plan | SweepPlan:
    """Read what ``tkplan run`` was given: a sweep file (``format: tkplan.sweep/1``) or else a plan, checked.

    Raises:
        PlanError: unreadable, not UTF-8, not a plan or sweep file, or edited after compiling.

    .. versionadded:: 0.1
    """
    with _collector_paused():
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # read_plan says what is wrong with it
            data = None
        if isinstance(data, dict) and data.get("format") == SWEEP_FORMAT:
            return _sweep_from_data(data, os.fspath(path))
    return read_plan(path)


def run_record(sweep: SweepPlan) -> dict[str, Any]:
    """The record of ``sweep``'s points that its run directory keeps as ``sweep.json`` (JSON-ready).

    Keys: ``format`` (``tkplan.sweep-run/1``), ``sweep_hash``; ``axes``: swept key → its values (a ``points:``
    axis gives each key it sets, with the values its points give it); ``points``: per point its ``values``
    (key → value), ``overrides`` (words), ``plan_hash``, ``steps`` (the union ids of its steps) and ``shared``
    (union id → the number of the point the step runs for, for each of its steps an earlier point runs);
    ``shared``: union id → the points that use it, for each step that several points use.
    """
    axes: dict[str, list[Any]] = {}
    for axis in sweep.axes:
        for key, value in _expanded(axis.key, converter.unstructure(axis.values)):
            known = axes.setdefault(key, [])
            if json.dumps(value, sort_keys=True) not in {json.dumps(v, sort_keys=True) for v in known}:
                known.append(value)
    runs_for = {s.id: s.points[0] for s in sweep.schedule.steps}
    by_point: dict[int, list[str]] = {}
    for step in sweep.schedule.steps:
        for number in step.points:
            by_point.setdefault(number, []).append(step.id)
    points = []
    combos = itertools.product(*(converter.unstructure(a.values) for a in sweep.axes))
    for number, (point, combo) in enumerate(zip(sweep.points, combos, strict=True)):
        values = {k: v for axis, value in zip(sweep.axes, combo, strict=True) for k, v in _expanded(axis.key, [value])}
        steps = by_point.get(number, [])
        points.append({"values": values, "overrides": list(point.overrides), "plan_hash": point.plan_hash,
                       "steps": steps, "shared": {s: runs_for[s] for s in steps if runs_for[s] != number}})
    shared = {s.id: list(s.points) for s in sweep.schedule.steps if len(s.points) > 1}
    return {"format": RUN_RECORD_FORMAT, "sweep_hash": sweep.sweep_hash, "axes": axes, "points": points,
            "shared": shared}


RUN_RECORD_FORMAT = "tkplan.sweep-run/1"  # tkplan: ignore[constant]  the run directory's record of a sweep


def _expanded(key: str, values: Any) -> list[tuple[str, Any]]:
    """(key, value) pairs of an axis' values: a ``points:`` axis' value is a mapping of several keys."""
    if key.startswith("points:"):
        return [(k, v) for value in values for k, v in value.items()]
    return [(key, v) for v in values]
