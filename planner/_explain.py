"""``tkplan explain KEY``: where a configured value came from, or how the planner derived a value per step.

Pure: a provenance (from a compile, or a saved plan's own) and a plan in; an `Explanation` out. A value the
planner derives (`DERIVED`) that no step of this plan derives is explained too: which steps would get it,
and why this campaign on this machine has none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from tkplan.errors import ConfigError, Problem, did_you_mean
from tkplan.planner._convert import converter, thaw
from tkplan.planner._merge import Provenance, Setting
from tkplan.planner._plan import Derivation, Plan

__all__ = ["DERIVED", "Explanation", "explain_config", "explain_plan", "plan_provenance"]

DERIVED = {  # tkplan: ignore[constant]  the names of the planner's rules' outputs, not settings
    "thread_budget": "the run's total threads",
    "max_parallel": "the most steps at once",
    "deadline_s": "the whole run's deadline, under limits.total_time_budget_h",
    "device": "each step's device",
    "threads": "each step's CPU threads",
    "gpus": "each GPU step's GPU",
    "precision": "each step's precision",
    "timeout_s": "each step's timeout",
    "memory_cap_mb": "each step's memory cap",
    "vram_cap_mb": "each GPU step's VRAM cap",
    "batch_size": "the batch size of the Transformer families (those with seq_batch_threshold)",
    "seed": "each step's seed",
    "backend": "each network step's framework",
    "env": "each step's thread variables",
    "expected_cpu_s": "each step's expected single-thread work, from history",
    "parallel_fraction": "each family's measured parallel fraction, from history",
    "history": "the earlier runs the plan was compiled with",
    "expected_makespan_s": "the makespan the plan expects, from history",
    "lower_bound_s": "the lower bound of the makespan, from history",
}
"""Every value the planner derives, with what it is."""


@attrs.frozen
class Explanation:
    """What ``tkplan explain KEY`` shows.

    Attributes:
        key: the key asked about.
        chains: each configured key under ``key`` with its settings, lowest first.
        derived: (step id or ``schedule``, derivation) for a value the planner derives.
        absent: why no step of the plan derives ``key`` (a derived value this campaign does not need).
    """

    key: str
    chains: tuple[tuple[str, tuple[Setting, ...]], ...] = ()
    derived: tuple[tuple[str, Derivation], ...] = ()
    absent: str | None = None


def explain_config(key: str, provenance: Provenance) -> Explanation | None:
    """The settings of ``key`` and of every key under it; ``None`` when no configured key matches."""
    keys = [k for k in sorted(provenance) if k == key or k.startswith(key + ".")]
    if not keys:
        return None
    return Explanation(key, chains=tuple((k, tuple(provenance[k])) for k in keys))


def explain_plan(key: str, plan: Plan, provenance: Provenance | None = None) -> Explanation:
    """Explain ``key`` from ``plan``: its configured settings, else the planner's derivations of it.

    Args:
        key: a configuration path (or a prefix of several), or a name in `DERIVED`.
        plan: the compiled plan.
        provenance: the settings behind the plan's configuration; by default the plan's own.

    Raises:
        ConfigError: ``key`` is neither configured nor derived (with a "did you mean").
    """
    provenance = plan_provenance(plan) if provenance is None else provenance
    configured = explain_config(key, provenance)
    if configured is not None:
        return configured
    derived = [(s.id, d) for s in plan.steps for d in s.derivations if d.key == key]
    derived += [("schedule", d) for d in plan.schedule.derivations if d.key == key]
    if derived:
        return Explanation(key, derived=tuple(derived))
    if key in DERIVED:
        return Explanation(key, absent=_why_absent(key, plan))
    prefixes = {".".join(k.split(".")[:n]) for k in provenance for n in range(1, k.count(".") + 2)}
    raise ConfigError([Problem(f"no such key: {key}", hint=did_you_mean(key, prefixes | set(DERIVED)) or
                               f"try a prefix such as families.lightgbm, or a derived value: {', '.join(DERIVED)}")])


def plan_provenance(plan: Plan) -> Provenance:
    """The provenance a saved plan records, as settings."""
    return {key: [converter.structure(s, Setting) for s in chain] for key, chain in thaw(plan.provenance).items()}


def _why_absent(key: str, plan: Plan) -> str:
    families = sorted({s.family for s in plan.steps})
    trained = f"this campaign trains {', '.join(families)}" if families else "this campaign has no step"
    reasons: dict[str, Callable[[], str]] = {
        "gpus": lambda: _no_gpu_step(plan, families),
        "vram_cap_mb": lambda: _no_gpu_step(plan, families),
        "batch_size": lambda: _no_scaled_batch(plan, trained),
        "backend": lambda: f"only network families (runtime.backends torch or tf) train on a framework; {trained}",
        "deadline_s": lambda: "limits.total_time_budget_h is null: the run has no deadline",
        **dict.fromkeys(("expected_cpu_s", "parallel_fraction", "history", "expected_makespan_s", "lower_bound_s"),
                        lambda: "the plan was compiled without history: no earlier run on this machine matches "
                                "its steps (or --history none, or history.store: none)"),
    }
    return reasons.get(key, lambda: trained)()


def _no_gpu_step(plan: Plan, families: Sequence[str]) -> str:
    config: Mapping[str, Any] = plan.config
    if not plan.hardware.gpus:
        return (f"only steps on a CUDA GPU get one, and the machine this plan is for has no NVIDIA GPU "
                f"(hardware: {plan.inputs.hardware_source}); compile with --hardware SPEC to plan for one that has")
    devices = {s.resources.device for s in plan.steps}
    if "mps" in devices:
        return "the network steps run on Apple's MPS device, which is not a CUDA GPU"
    if config["gpu"]["devices"] != "auto" and not config["gpu"]["devices"]:
        return "gpu.devices lists no GPU: every step runs on the CPU"
    cpu_only = [f for f in families if config["families"][f]["runtime"]["gpu"] == "none"]
    return (f"no family of this campaign uses a GPU ({', '.join(cpu_only)}: runtime.gpu none); add a network "
            "family to campaign.families")


def _no_scaled_batch(plan: Plan, trained: str) -> str:
    config: Mapping[str, Any] = plan.config
    scaled = sorted(f for f, section in config["families"].items() if "seq_batch_threshold" in section)
    networks = sorted({s.family for s in plan.steps if "batch_size" in s.params})
    fixed = (f"; the batch size of {', '.join(networks)} is a hyperparameter "
             f"(tkplan explain families.{networks[0]}.batch_size)") if networks else ""
    return (f"only network families have a batch size, and the planner scales it only for {', '.join(scaled)} "
            f"(seq_batch_threshold); {trained}{fixed}")
