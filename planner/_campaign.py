"""Expand a campaign into work items: families × targets × seeds, per strategy, with resolved hyperparameters.

Pure: a validated configuration in, a tuple of `Work` out (or the problems that stop it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tkplan.errors import Problem, did_you_mean
from tkplan.planner._merge import Provenance, last_where
from tkplan.planner._plan import safe_name, split_step_id

__all__ = ["NETWORK_BACKENDS", "RESERVED_FAMILY_KEYS", "Work", "expand_campaign", "family_key", "network_backend",
           "network_inputs"]

NETWORK_BACKENDS = ("torch", "tf")  # tkplan: ignore[constant]  the frameworks of the shared training loop

# keys of a family section that are not hyperparameters
RESERVED_FAMILY_KEYS = ("runtime", "entrypoint")  # tkplan: ignore[constant]


@attrs.frozen
class Work:
    """One step before the planner sizes it: what to train, on what, with which seed and parameters."""

    id: str
    family: str
    targets: tuple[str, ...]
    task: str
    seed: int
    params: Mapping[str, Any]
    entrypoint: str | None
    traits: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()


def network_inputs(config: Mapping[str, Any], traits: Mapping[str, Any]) -> dict[str, Any]:
    """What a network family's step needs beyond its own hyperparameters, so its adapter reads only the step.

    A family with a ``torch`` or ``tf`` backend gets ``training`` (the shared loop's settings, with
    ``data.safety.exp_bounds`` as ``exp_bounds``); a sequence family also gets ``lookback`` (``data.lookback``).
    """
    if network_backend(config, traits) is None:
        return {}
    inputs: dict[str, Any] = {"training": {**config["training"], "exp_bounds": config["data"]["safety"]["exp_bounds"]}}
    if traits["sequence"]:
        inputs["lookback"] = config["data"]["lookback"]
    return inputs


def network_backend(config: Mapping[str, Any], traits: Mapping[str, Any]) -> str | None:
    """The framework a network family trains with: ``campaign.nn_backend`` when the family lists it, else the
    first framework it lists; ``None`` for a family without one."""
    frameworks = [b for b in traits["backends"] if b in NETWORK_BACKENDS]
    if not frameworks:
        return None
    chosen: str = config["campaign"]["nn_backend"]
    return chosen if chosen in frameworks else frameworks[0]


def family_key(name: str, families: Mapping[str, Any]) -> str | None:
    """Resolve a family name written as its key or its display name (any case) to its key."""
    if name in families:
        return name
    for key, section in families.items():
        display = section.get("runtime", {}).get("display_name", "")
        if name.lower() in (key.lower(), str(display).lower()):
            return key
    return None


def expand_campaign(config: Mapping[str, Any],
                    provenance: Provenance) -> tuple[tuple[Work, ...], tuple[str, ...], list[Problem]]:
    """Turn ``config['campaign']`` into work items.

    Returns:
        (work items, pairs skipped because ``campaign.skip_unsupported`` allows it, problems).
    """
    campaign, families, tasks = config["campaign"], config["families"], config["data"]["tasks"]
    problems: list[Problem] = []

    def where(key: str) -> str:
        return last_where(provenance, key)

    chosen: list[str] = []
    for name in campaign["families"]:
        key = family_key(name, families)
        if key is None:
            problems.append(Problem(f"unknown family {name!r}", "campaign.families", where("campaign.families"),
                                    did_you_mean(name, families) or f"known: {', '.join(sorted(families))}"))
        else:
            chosen.append(key)
    for name in campaign["targets"]:
        if name not in tasks:
            problems.append(Problem(f"target {name!r} is not in data.tasks", "campaign.targets",
                                    where("campaign.targets"),
                                    did_you_mean(name, tasks) or "add it to data.tasks with its kind"))
    splits = config["data"]["splits"]
    if splits["val_ratio"] + splits["test_ratio"] >= 1:
        problems.append(Problem(f"data.splits: val_ratio {splits['val_ratio']:g} + test_ratio {splits['test_ratio']:g} "
                                "leaves no time for training", "data.splits", where("data.splits.test_ratio"),
                                "keep their sum below 1"))
    data = config["data"]
    if data["source"] == "builtin:synthetic_panel" and data["min_cs"] > data["synthetic"]["symbols"]:
        problems.append(Problem(f"data.min_cs = {data['min_cs']} exceeds the {data['synthetic']['symbols']} symbols of "
                                "data.synthetic: every timestamp would be dropped", "data.min_cs", where("data.min_cs"),
                                f"lower data.min_cs to at most {data['synthetic']['symbols']}, or raise "
                                "data.synthetic.symbols"))
    for name in config["isolation"]["process_for"]:
        if family_key(name, families) is None:
            problems.append(Problem(f"unknown family {name!r}", "isolation.process_for", where("isolation.process_for"),
                                    did_you_mean(name, families)))
    if problems:
        return (), (), problems

    stages = _stages(campaign, chosen, families, where, problems)
    for key in dict.fromkeys(key for stage in stages for key in stage):
        problems += _unsafe_names(key, families[key], where)
    if problems:
        return (), (), list(dict.fromkeys(problems))
    work: list[Work] = []
    skipped: list[str] = []
    previous_stage: list[str] = []
    for stage in stages:
        this_stage: list[str] = []
        for seed in campaign["seeds"]:
            for key in stage:
                section = families[key]
                traits = section["runtime"]
                params = {**{k: v for k, v in section.items() if k not in RESERVED_FAMILY_KEYS},
                          **network_inputs(config, traits)}
                for targets in _target_groups(campaign, traits, key):
                    kinds = {tasks[t] for t in targets}
                    task = kinds.pop() if len(targets) == 1 else "multi"
                    unsupported = sorted({tasks[t] for t in targets} - set(traits["tasks"]))
                    if unsupported and campaign["skip_unsupported"]:
                        skipped.append(f"{key} × {'+'.join(targets)}: "
                                       f"{key} cannot train {'/'.join(unsupported)} targets")
                        continue
                    if unsupported:
                        problems.append(Problem(
                            f"family {key!r} cannot train {'/'.join(unsupported)} target(s) {', '.join(targets)}",
                            "campaign.targets", where("campaign.targets"),
                            f"{key} supports {', '.join(traits['tasks'])}; drop it or the target"))
                        continue
                    step_id = f"{key}.{'+'.join(targets)}.s{seed}"
                    try:
                        safe_name(step_id, "step id")
                    except ValueError as exc:
                        problems.append(Problem(str(exc), "campaign.targets", where("campaign.targets"),
                                                "use fewer or shorter targets"))
                        continue
                    work.append(Work(step_id, key, targets, task, seed, params, section.get("entrypoint"), traits,
                                     tuple(s for s in previous_stage if _same_run(s, targets, seed))))
                    this_stage.append(step_id)
        previous_stage = this_stage
    return tuple(work), tuple(dict.fromkeys(skipped)), list(dict.fromkeys(problems))  # once, not once per seed


def _unsafe_names(key: str, section: Mapping[str, Any], where: Any) -> list[Problem]:
    """A family's key and display name become parts of step ids and paths: each must be a `safe_name`."""
    display = f"families.{key}.runtime.display_name"
    first_leaf = where(f"families.{key}.entrypoint") or where(display)  # a key has no position of its own
    problems = []
    for path, origin, value, what in ((f"families.{key}", first_leaf, key, "family name"),
                                      (display, where(display), section["runtime"].get("display_name", key),
                                       "display_name")):
        try:
            safe_name(value, what)
        except ValueError as exc:
            problems.append(Problem(str(exc), path, origin, "rename it"))
    return problems


def _stages(campaign: Mapping[str, Any], chosen: list[str], families: Mapping[str, Any], where: Any,
            problems: list[Problem]) -> list[list[str]]:
    """The families of each stage: one stage unless the strategy is ``cascade``."""
    if campaign["strategy"] != "cascade":
        return [chosen]
    if not campaign["cascade"]:
        problems.append(Problem("strategy cascade needs campaign.cascade stages", "campaign.cascade",
                                where("campaign.strategy"),
                                "e.g. cascade: [{families: [lightgbm]}, {families: [ridge]}]"))
        return []
    stages = []
    for stage in campaign["cascade"]:
        keys = [family_key(name, families) for name in stage["families"]]
        for name, key in zip(stage["families"], keys, strict=True):
            if key is None:
                problems.append(Problem(f"unknown family {name!r}", "campaign.cascade", where("campaign.cascade"),
                                        did_you_mean(name, families)))
        stages.append([k for k in keys if k is not None])
    return stages


def _target_groups(campaign: Mapping[str, Any], traits: Mapping[str, Any], key: str) -> list[tuple[str, ...]]:
    """One group per target, or all targets together for a multi-target family under ``multi_task``."""
    targets = tuple(campaign["targets"])
    if traits["multi_target"] and (campaign["strategy"] == "multi_task" or key == "multi_task") and len(targets) > 1:
        return [targets]
    return [(t,) for t in targets]


def _same_run(step_id: str, targets: tuple[str, ...], seed: int) -> bool:
    """Whether an earlier-stage step feeds this one: same seed, and it trains one of these targets."""
    _family, step_targets, step_seed = split_step_id(step_id)
    return step_seed == f"s{seed}" and bool(set(step_targets) & set(targets))
