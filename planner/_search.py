"""A study's declaration: the ``search:`` space and the ``tune:`` settings, checked; each trial its own plan.

``search:`` maps dotted keys to distributions: ``{int: [16, 256], log: true}``, ``{float: [1e-4, 1e-2], log:
true}``, ``{choice: [relu, tanh]}`` (``step:`` samples on a grid). A distribution is checked like a sweep's
values: the key must exist (a "did you mean" otherwise), the distribution must fit the key's schema type (a
``float`` range on an integer key is refused), both ends of a range and every choice must be values the key
takes, and a range must not be empty. Each problem is located where the distribution was written.

`load_study` reads the layers once (``load_base``); `compile_trial` applies a trial's values as overrides with
the provenance ``tune: trial N`` (after the study's own overrides: ``run.threads`` for the trials that run at
once, and ``isolation.force``: ``inproc`` in a warm worker per trial slot when every step trains on the CPU
with the same threads, else ``process``), and plans it. ``search:``
and ``tune:`` stay out of every plan, as ``sweep:`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from tkplan.errors import ConfigError, PlanningError, Problem, did_you_mean
from tkplan.planner._compile import (
    SEARCH,
    TUNE,
    Base,
    CompileRequest,
    Resolved,
    load_base,
    resolve_point,
)
from tkplan.planner._data import FileFacts
from tkplan.planner._forecast import Forecast, forecast
from tkplan.planner._grammar import format_value
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._merge import Provenance
from tkplan.planner._overrides import Override, split_words, sweep_problems
from tkplan.planner._plan import Plan
from tkplan.planner._rules import thread_budget
from tkplan.planner._sweep import PointCompiler
from tkplan.planner._validate import accepted_types

if TYPE_CHECKING:  # the history module is loaded only when a history is used
    from tkplan.planner._history import History

__all__ = ["Distribution", "Study", "TuneSettings", "best_profile", "compile_trial", "forecast_study", "load_study",
           "study_budget", "trial_overrides", "trials_at_once"]

_KINDS = ("int", "float", "choice")  # tkplan: ignore[constant]  the distribution grammar
_LOWER_IS_BETTER = ("rmse", "mae")  # tkplan: ignore[constant]  the step metrics (families/_metrics.py)
_ISOLATION_WHY = {  # tkplan: ignore[constant]  the reasons a study gives for its isolation
    "inproc": "every trial has the same CPU threads: a warm worker per trial slot runs them, a pruned one is killed",
    "process": "a pruned trial's process is stopped"}
_LOGGED_ROUNDS = ("lightgbm", "quantile_lightgbm", "xgboost")  # tkplan: ignore[constant]  families with log_every


@attrs.frozen
class Distribution:
    """One searched key.

    Attributes:
        key: the dotted key.
        kind: ``int``, ``float`` or ``choice``.
        low, high: the range's ends, both included (``int`` and ``float``).
        log: sample on a log scale.
        step: sample on a grid of this step from ``low``, or ``None``.
        choices: the values of a ``choice``.
        source: where it was written (``file:line:col``).
    """

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    source: str = ""

    @property
    def middle(self) -> Any:
        """A typical value: the middle of the range (geometric on a log scale, on the grid of ``step``, whole
        for ``int``), or the first choice."""
        if self.kind == "choice":
            return self.choices[0]
        low, high = float(self.low or 0.0), float(self.high or 0.0)
        value = math.sqrt(low * high) if self.log else (low + high) / 2
        if self.step:
            value = low + round((value - low) / self.step) * self.step
        return round(value) if self.kind == "int" else value


@attrs.frozen
class TuneSettings:
    """The ``tune:`` section, with its defaults resolved (see ``schema/config.schema.json``)."""

    name: str
    metric: str | None
    direction: str
    trials: int
    timeout_s: float | None
    parallel: str | int
    sampler: str
    sampler_seed: int
    sampler_startup_trials: int
    pruner: str
    pruner_startup_trials: int
    warmup_steps: int
    storage: str | None
    report_every: int | None
    enqueue: tuple[Mapping[str, Any], ...] = ()

    def direction_for(self, metric: str) -> str:
        """``minimize`` or ``maximize``: the setting, or for ``auto`` what ``metric`` calls for."""
        if self.direction != "auto":
            return self.direction
        return "minimize" if metric in _LOWER_IS_BETTER else "maximize"


@attrs.frozen
class Study:
    """A study ready to compile trials: the layers read once, the space and settings checked.

    Attributes:
        base: the layers and overrides every trial shares.
        space: the searched keys, in the order written.
        settings: the ``tune:`` section.
        resolved: the configuration without any trial's values (its campaign, its ``report`` settings).
        metric: the metric on the validation split that a trial's value is.
        direction: ``minimize`` or ``maximize``.
        points: what plans each trial, doing once what the trials share (as a sweep's points are planned).
    """

    base: Base
    space: tuple[Distribution, ...]
    settings: TuneSettings
    resolved: Resolved
    metric: str
    direction: str
    points: PointCompiler = attrs.field(eq=False, repr=False)

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profile names and files named on the study's command line, as written."""
        return tuple(split_words(self.base.request.words, self.base.request.sets)[0])


def load_study(request: CompileRequest) -> Study:
    """Read the layers once, then check the ``search:`` space and the ``tune:`` settings.

    Raises:
        ConfigError: an input is invalid, the space is empty, or a distribution does not fit its key (every
            problem, each located where it was written).
    """
    base = load_base(request)
    overrides, sweeps = sweep_problems(base.cli_overrides)
    base = attrs.evolve(base, cli_overrides=tuple(overrides), problems=(*base.problems, *sweeps))
    points = PointCompiler(base)
    resolved = points.resolve(())
    section = resolved.config.get(SEARCH) or {}
    problems: list[Problem] = []
    space = []
    for key, spec in section.items():
        dist, found = _distribution(key, spec, _where(resolved.provenance, f"{SEARCH}.{key}"))
        problems += found or _fits(base, dist)
        space.append(dist)
    if not space:
        problems.append(Problem("the study searches nothing", SEARCH, "",
                                "add a search: section to a profile: dotted key -> {int: [low, high]}, "
                                "{float: [low, high], log: true} or {choice: [a, b]}"))
    settings = _settings(resolved.config)
    metric, found = _metric(settings, resolved)
    problems += found
    problems += _enqueued_problems(base, settings, {d.key: d for d in space}, resolved.provenance)
    if problems:
        raise ConfigError(problems)
    return Study(base, tuple(space), settings, resolved, metric, settings.direction_for(metric), points)


def trials_at_once(study: Study, hardware: HardwareSpec) -> tuple[int, int, int]:
    """How many trials run at once, the thread budget each is planned with, and the budget of them all.

    ``tune.parallel: auto`` runs one trial per thread of the run's budget (``run.threads``: the usable CPUs, or
    the profile's cap), at most ``tune.trials``; a number runs that many, each with an equal share of the budget
    (at least one thread).
    """
    budget = study_budget(study, hardware)
    asked = study.settings.parallel
    parallel = min(budget if asked == "auto" else int(asked), study.settings.trials)
    return max(1, parallel), max(1, budget // max(1, parallel)), budget


def study_budget(study: Study, hardware: HardwareSpec) -> int:
    """The threads the steps of every trial running at once may use together: the run's thread budget."""
    problems: list[Problem] = []
    budget, _why = thread_budget(study.resolved.config, hardware, study.resolved.provenance, problems)
    if problems:
        raise PlanningError(problems)
    return budget


def trial_overrides(study: Study, values: Mapping[str, Any], number: int, threads: int | None, *,
                    isolation: str | None = None) -> list[Override]:
    """The overrides of trial ``number``: the study's own (threads, isolation, reporting), then its values.

    Args:
        study: the study.
        values: the sampled value of each searched key.
        number: the trial's number (Optuna's), for the provenance.
        threads: the run's thread budget for this trial (the budget shared among the trials at once), or
            ``None`` to keep ``run.threads``.
        isolation: ``isolation.force`` for every step of the trial, or ``None`` to keep the plan's.
    """
    tune = "tune: the study"
    overrides = []
    if isolation is not None:
        overrides.append(Override(("isolation", "force"), isolation, f"{tune} ({_ISOLATION_WHY[isolation]})"))
    if threads is not None:
        overrides.append(Override(("run", "threads"), threads, f"{tune} (its thread budget shared by the trials "
                                                                "at once)"))
    every = study.settings.report_every
    families = study.resolved.config["families"]
    if every is not None:
        overrides += [Override(("families", family, "log_every"), every, f"{tune} (tune.report_every)")
                      for family in _LOGGED_ROUNDS if "log_every" in (families.get(family) or {})]
    overrides += [Override(tuple(key.split(".")), value, f"tune: trial {number}") for key, value in values.items()]
    return overrides


def compile_trial(study: Study, values: Mapping[str, Any], number: int, threads: int | None, hardware: HardwareSpec,
                  hardware_source: str, version: str, files: Mapping[str, FileFacts] | None = None,
                  history: History | None = None, *, isolation: str | None = None) -> Plan:
    """Compile trial ``number`` of ``study`` into its own plan; its values are recorded as words of its command
    line, so ``tkplan compile WORDS… KEY=VALUE…`` gives the same steps (the same digests; the isolation's
    reason names the study).

    A trial whose steps all train on the CPU with the same threads runs ``inproc`` (a warm worker per trial
    slot: no interpreter start and library import per trial); any other runs each step in its own process.
    Either way the trial's plan sets ``isolation.force``, so its plan does not depend on the guess.

    Args:
        history: the history store's snapshot: the trial is planned with what it expects, as `tkplan compile`
            plans (``tkplan.planner._compile.plan_resolved``).
        isolation: a guess of the trial's isolation (the one the previous trial got): a right guess plans the
            trial once, a wrong one twice; ``None`` plans it twice.

    Raises:
        ConfigError: a value does not fit (cannot happen for values drawn from the checked space).
        PlanningError: the trial cannot be honoured on ``hardware``.
    """
    request = study.base.request

    def planned(forced: str | None) -> Plan:
        overrides = trial_overrides(study, values, number, threads, isolation=forced)
        words = (*request.words, *(f"--set={s}" for s in request.sets),
                 *(f"{'.'.join(o.path)}={format_value(o.value)}" for o in overrides))
        return study.points.plan(study.points.resolve(overrides), words, hardware, hardware_source, version, files,
                                 history)

    plan = planned(isolation)
    wanted = _trial_isolation(plan)
    return plan if wanted == isolation else planned(wanted)


def forecast_study(study: Study, threads: int | None, at_once: int, hardware: HardwareSpec, hardware_source: str,
                   version: str, files: Mapping[str, FileFacts] | None = None,
                   history: History | None = None) -> Forecast:
    """The study's expected total before any trial starts: a typical trial (the first enqueued one, else every
    searched key at the `Distribution.middle` of its range) planned as a trial is, then ``tune.trials`` such
    trials ``at_once`` at a time. At most: a pruned trial ends sooner.

    Raises:
        PlanningError: the typical trial cannot be honoured on ``hardware``.
    """
    values = {**{d.key: d.middle for d in study.space}, **(study.settings.enqueue[0] if study.settings.enqueue else {})}
    one = forecast(compile_trial(study, values, 0, threads, hardware, hardware_source, version, files, history))
    trials = study.settings.trials
    cpus = one.cpus * max(1, at_once)
    return attrs.evolve(one, makespan=one.makespan * math.ceil(trials / max(1, at_once)), work=one.work * trials,
                        cpus=cpus, lower_bound=max(one.work * trials / cpus, one.longest_s))


def _trial_isolation(plan: Plan) -> str:
    """``inproc`` when every step of the trial trains on the CPU with the same threads (a warm worker per trial
    slot serves them all: the thread settings a library reads at load are the same for every trial), else
    ``process``."""
    cpu = {s.resources.threads for s in plan.steps if s.resources.device == "cpu"}
    return "inproc" if len(cpu) == 1 and all(s.resources.device == "cpu" for s in plan.steps) else "process"


def best_profile(study: Study, values: Mapping[str, Any], header: str, extends: Sequence[str]) -> str:
    """A profile layer of a trial's values that ``tkplan compile`` takes as it is.

    It extends the study's profiles (``extends``: as the caller rewrote them for where the file goes) and
    sets what the study's command line set, then each searched key to ``values``; ``header`` becomes its
    first comment lines (``tune: study NAME, trial N``). A removal (``~key``) cannot be written in a
    profile: it is named in a comment.
    """
    tree: dict[str, Any] = {}
    removed = []
    for o in study.base.cli_overrides:
        if o.op == "~":
            removed.append(f"~{'.'.join(o.path)} ({o.source})")
        else:
            _put(tree, o.path, o.value)
    for key, value in values.items():
        _put(tree, tuple(key.split(".")), value)
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"# the study's command line also removed {r}: remove it again when compiling" for r in removed]
    if extends:
        lines.append(f"extends: {json.dumps(list(extends), ensure_ascii=False)}")
    lines += _yaml(tree, 0)
    return "\n".join(lines) + "\n"


def _put(tree: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for part in path[:-1]:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[path[-1]] = value


def _yaml(tree: Mapping[str, Any], depth: int) -> list[str]:
    """Block mappings of ``tree``; every leaf a JSON value (JSON is YAML 1.2's flow syntax)."""
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            lines.append(f"{'  ' * depth}{key}:")
            lines += _yaml(value, depth + 1)
        else:
            lines.append(f"{'  ' * depth}{key}: {json.dumps(value, ensure_ascii=False)}")
    return lines


def _where(provenance: Provenance, key: str) -> str:
    chain = provenance.get(key) or [s for k, c in provenance.items() if k.startswith(key + ".") for s in c]
    return chain[0].where if chain else SEARCH


def _distribution(key: str, spec: Mapping[str, Any], where: str) -> tuple[Distribution, list[Problem]]:
    """The distribution written as ``spec`` (its shape already checked by the schema), and what is wrong with it."""
    path = f"{SEARCH}.{key}"
    kinds = [k for k in _KINDS if k in spec]
    if len(kinds) != 1:
        return Distribution(key, "choice", source=where), [Problem(
            f"a distribution is one of int, float or choice; got {', '.join(kinds) or 'none of them'}", path, where,
            "write {int: [low, high]}, {float: [low, high]} or {choice: [a, b, ...]}")]
    kind = kinds[0]
    log, step = bool(spec.get("log", False)), spec.get("step")
    if kind == "choice":
        extra = [k for k in ("log", "step") if k in spec]
        problems = [Problem(f"{', '.join(extra)} applies to int and float ranges, not to a choice", path, where,
                            "remove it")] if extra else []
        return Distribution(key, kind, choices=tuple(spec["choice"]), source=where), problems
    low, high = spec[kind]
    problems = []
    if low > high:
        problems.append(Problem(f"the range [{low}, {high}] is empty: low is above high", path, where,
                                "write [low, high] with low ≤ high"))
    if log and low <= 0:
        problems.append(Problem(f"a log scale needs low > 0; got {low}", path, where, "raise low, or drop log"))
    if log and step is not None:
        problems.append(Problem("step and log do not go together", path, where, "drop one of them"))
    if kind == "int" and step is not None and step != int(step):
        problems.append(Problem(f"an int range steps by an integer; got {step}", path, where, "write an integer"))
    return Distribution(key, kind, low, high, log, step, source=where), problems


def _fits(base: Base, dist: Distribution) -> list[Problem]:
    """Whether the distribution's values are values its key takes: type, and each end or choice checked as an
    override of the key would be (unknown key with "did you mean", range, enum)."""
    path = tuple(dist.key.split("."))
    accepted = accepted_types(path)
    where = f"{SEARCH}.{dist.key}"
    if dist.kind == "float" and accepted and "number" not in accepted:
        return [Problem(f"{dist.key} takes {' or '.join(sorted(accepted))} values, not a float range", where,
                        dist.source, "search it with {int: [low, high]}" if "integer" in accepted else
                        "search it with {choice: [...]}")]
    if dist.kind == "int" and accepted and not {"integer", "number"} & accepted:
        return [Problem(f"{dist.key} takes {' or '.join(sorted(accepted))} values, not an int range", where,
                        dist.source, "search it with {choice: [...]}")]
    values: Sequence[Any] = dist.choices if dist.kind == "choice" else (dist.low, dist.high)
    problems: dict[Problem, None] = {}
    for value in values:
        try:
            resolve_point(base, [Override(path, value, dist.source)])
        except ConfigError as exc:
            for p in exc.problems:
                if not p.path and p.origin == dist.source:  # the override names no key
                    problems[Problem(f"{dist.key} is not a key of the configuration", where, dist.source,
                                     p.hint)] = None
                elif p.path == dist.key or p.path.startswith(dist.key + "."):
                    problems[Problem(f"{format_value(value)}: {p.message}", where if p.path == dist.key else p.path,
                                     dist.source, p.hint)] = None
    return list(problems)


def _metric(settings: TuneSettings, resolved: Resolved) -> tuple[str, list[Problem]]:
    """The trial's metric: ``tune.metric``, or the leaderboard's ``report.rank_by`` for the targets' task."""
    if settings.metric is not None:
        return settings.metric, []
    tasks = sorted({w.task for w in resolved.work})
    rank_by = resolved.config["report"]["rank_by"]
    if len(tasks) == 1:
        return str(rank_by[tasks[0]]), []
    where = _where(resolved.provenance, "campaign.targets")
    return "", [Problem(f"the study trains {' and '.join(tasks) or 'no'} targets, so tune.metric cannot follow "
                        "report.rank_by", "tune.metric", where,
                        "set tune.metric, or tune one kind of target (campaign.targets)")]


def _enqueued_problems(base: Base, settings: TuneSettings, space: Mapping[str, Distribution],
                       provenance: Provenance) -> list[Problem]:
    """Each enqueued trial sets searched keys only, to values in their distributions."""
    problems: list[Problem] = []
    for i, values in enumerate(settings.enqueue):
        where = _where(provenance, f"{TUNE}.enqueue.{i}")
        for key, value in values.items():
            dist = space.get(key)
            if dist is None:
                problems.append(Problem(f"enqueued trial {i + 1} sets {key}, which the study does not search",
                                        f"{TUNE}.enqueue", where, did_you_mean(key, space) or
                                        f"searched: {', '.join(space)}"))
                continue
            inside = (value in dist.choices if dist.kind == "choice" else
                      isinstance(value, (int, float)) and not isinstance(value, bool)
                      and dist.low is not None and dist.high is not None and dist.low <= value <= dist.high
                      and (dist.kind == "float" or isinstance(value, int)))
            if not inside:
                problems.append(Problem(f"enqueued trial {i + 1}: {key}={format_value(value)} is outside its "
                                        "distribution", f"{TUNE}.enqueue", where, f"written at {dist.source}"))
    return problems


def _settings(config: Mapping[str, Any]) -> TuneSettings:
    tune = config.get(TUNE) or {}
    sampler, pruner = tune["sampler"], tune["pruner"]
    seed = sampler["seed"]
    return TuneSettings(
        name=str(tune["name"] or config["run"]["name"]), metric=tune["metric"], direction=tune["direction"],
        trials=int(tune["trials"]), timeout_s=tune["timeout_s"], parallel=tune["parallel"],
        sampler=sampler["name"], sampler_seed=int(config["run"]["base_seed"] if seed is None else seed),
        sampler_startup_trials=int(sampler["n_startup_trials"]), pruner=pruner["name"],
        pruner_startup_trials=int(pruner["n_startup_trials"]), warmup_steps=int(pruner["n_warmup_steps"]),
        storage=tune["storage"], report_every=tune["report_every"],
        enqueue=tuple(dict(v) for v in tune.get("enqueue") or ()))
