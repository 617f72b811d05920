"""Plans that learn from earlier runs: what each step is expected to cost, and the memory it needs. Pure.

The CLI reads a `History` snapshot from the store (``tkplan.runtime._history``) for the machine it plans for
(observations of other hardware are kept apart: the snapshot holds only the runs whose `hardware_fingerprint`
is the plan's) and passes it in as data, like the hardware spec. `expect` turns it into one `Expectation`
per step:

- **cost** (single-thread CPU seconds): the same step's observations first (its digest), then the same family
  on other data (same parameters first), scaled by rows × features; a step with neither keeps its family's
  constant cost, turned into seconds by the ratio of seconds to constant the matched steps showed;
- **speed-up**: each family's parallel fraction (Amdahl), measured from its runs at more than one thread
  (CPU seconds ÷ wall seconds is the speed-up a run reached at its thread count); a family never run at
  more than one thread is assumed to scale linearly, as the cold planner does;
- **memory cap**: the same step's observed peak RSS × ``history.memory_headroom``; a step whose latest run
  ended ``oom`` gets ``history.oom_growth`` × the larger of its cap then and its peak. Never above
  ``limits.memory_threshold`` of the machine's memory.

A snapshot that matches no step gives ``None``: the plan is the cold plan, byte for byte.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from tkplan.planner._convert import thaw
from tkplan.planner._hardware import HardwareSpec
from tkplan.planner._plan import Derivation, Step, canonical_json

__all__ = ["RULE", "Expectation", "Expected", "History", "Observation", "data_size", "expect",
           "hardware_fingerprint", "params_digest"]

RULE = "history"  # tkplan: ignore[constant]  the rule name of every value derived from history
_SYNTHETIC = "builtin:synthetic_panel"  # tkplan: ignore[constant]  the built-in source whose size the config gives
_SHOWN_RUNS = 3  # tkplan: ignore[constant]  how many run ids a derivation names before "+N more"


@attrs.frozen
class Observation:
    """One step of one earlier run, as the store keeps it.

    Attributes:
        run: the run's id in the store.
        step: the step's id in that run's plan.
        digest: the step's digest (the same work has the same digest).
        family: the family key.
        params: `params_digest` of the step's parameters.
        data: the digest of the data it trained on.
        rows: rows of the prepared data (``None``: unknown).
        features: features of the prepared data (``None``: unknown).
        threads: the threads the plan gave it.
        memory_cap_mb: the memory cap it ran under (``None``: none).
        status: how it ended (``ok``, ``oom``, ...).
        wall_s: its wall time.
        cpu_s: its CPU time (user + system, all its processes).
        peak_rss_mb: the peak RSS of its process group.
        gpu_peak_mb: the most GPU memory it held (``None``: no GPU, or not measured).
        finished_at: when it ended (seconds since the epoch).
    """

    run: str
    step: str
    digest: str
    family: str
    params: str
    data: str
    rows: int | None
    features: int | None
    threads: int
    memory_cap_mb: int | None
    status: str
    wall_s: float | None
    cpu_s: float | None
    peak_rss_mb: float | None
    gpu_peak_mb: float | None
    finished_at: float

    @property
    def work_s(self) -> float | None:
        """Its single-thread work: the wall time of a one-thread run, else the CPU seconds; ``None`` if not ok."""
        if self.status != "ok" or self.wall_s is None:
            return None
        if self.threads == 1 or self.cpu_s is None:
            return self.wall_s
        return max(self.cpu_s, self.wall_s)

    @property
    def size(self) -> int | None:
        """Rows × features of the data it trained on, where known."""
        return self.rows * self.features if self.rows and self.features else None


@attrs.frozen
class History:
    """A snapshot of the history store for one machine: what the planner may learn from.

    Attributes:
        source: where it was read (shown, never hashed: the plan names the runs it used instead).
        fingerprint: the `hardware_fingerprint` its observations were made on.
        observations: the steps earlier runs on that hardware recorded, oldest first.
        kept_apart: how many runs of other hardware the store holds (not used: timings are not scaled across
            machines).
    """

    source: str
    fingerprint: str
    observations: tuple[Observation, ...] = ()
    kept_apart: int = 0


@attrs.frozen
class Expectation:
    """What one step is expected to cost, and the memory cap history gives it.

    Attributes:
        cpu_s: single-thread work in seconds; ``None`` when no run gave a cost (the cold cost stays).
        parallel: the family's parallel fraction (1: linear speed-up).
        memory_cap_mb: the cap history gives, or ``None`` to keep the cold cap.
        derivations: how each value was found, with rule `RULE`.
    """

    cpu_s: float | None
    parallel: float
    memory_cap_mb: int | None
    derivations: tuple[Derivation, ...]

    def wall(self, threads: int) -> float:
        """The expected wall seconds at ``threads`` threads (Amdahl)."""
        work = self.cpu_s or 0.0
        return work * ((1 - self.parallel) + self.parallel / max(1, threads))


@attrs.frozen
class Expected:
    """The expectation of every step of a plan, and what history it came from.

    Attributes:
        steps: one `Expectation` per step id.
        seconds: whether costs are in seconds (some step matched); when false only memory caps changed.
        runs: every run an expectation came from, sorted.
        source: where the snapshot was read.
    """

    steps: Mapping[str, Expectation]
    seconds: bool
    runs: tuple[str, ...]
    source: str


def hardware_fingerprint(hardware: HardwareSpec) -> str:
    """What makes timings comparable between machines: CPUs, memory, platform, GPU models (16 hex digits).

    GPU UUIDs, the driver version and the cgroup's name are left out: the same box after a reboot or a driver
    update has the same fingerprint.
    """
    facts = {"cpus_usable": hardware.cpus_usable, "cpus_logical": hardware.cpus_logical,
             "cores_physical": hardware.cores_physical, "memory_total_mb": hardware.memory_total_mb,
             "platform": hardware.platform, "machine": hardware.machine,
             "gpus": sorted([g.name, g.memory_mb] for g in hardware.gpus),
             "nodes": sorted([n.cpus, n.memory_mb, sorted([g.name, g.memory_mb] for g in n.gpus)]
                             for n in hardware.nodes)}
    return hashlib.sha256(canonical_json(facts).encode("utf-8")).hexdigest()[:16]


def params_digest(params: Mapping[str, Any]) -> str:
    """The sha256 of a step's parameters (16 hex digits): steps of one family with the same settings."""
    return hashlib.sha256(canonical_json(thaw(params)).encode("utf-8")).hexdigest()[:16]


def data_size(config: Mapping[str, Any], data_digest: str, history: History | None) -> int | None:
    """Rows × features of the data a plan trains on: as an earlier run of the same data saw it, else (for the
    synthetic panel) symbols × timestamps × features; ``None`` when unknown until the data is read."""
    for o in reversed(history.observations if history else ()):
        if o.data == data_digest and o.size:
            return o.size
    data = config["data"]
    if data["source"] == _SYNTHETIC:
        synthetic = data["synthetic"]
        return int(synthetic["symbols"] * synthetic["timestamps"] * synthetic["features"])
    return None


def expect(config: Mapping[str, Any], hardware: HardwareSpec, steps: Sequence[Step], constants: Mapping[str, float],
           history: History) -> Expected | None:
    """Each step's expected cost and memory cap from ``history``; ``None`` when no observation matches.

    Args:
        config: the resolved configuration (``history`` and ``limits`` sections).
        hardware: the machine planned for (the memory ceiling).
        steps: the plan's steps, digests computed.
        constants: each step's constant cost (the family profile's ``runtime.cost``), by step id.
        history: the snapshot for this machine.
    """
    settings = config["history"]
    ok = [o for o in history.observations if o.work_s is not None]
    size = data_size(config, steps[0].data, history) if steps else None
    parallel = {family: _parallel_fraction(family, ok) for family in {s.family for s in steps}}
    costs: dict[str, tuple[float, tuple[str, ...], str]] = {}
    for s in steps:
        found = _cost(s, ok, size)
        if found is not None:
            costs[s.id] = found
    memory = {s.id: m for s in steps if (m := _memory(s, history.observations, settings, config, hardware))}
    if not costs and not memory:
        return None
    ratios = [costs[s.id][0] / constants[s.id] for s in steps if s.id in costs and constants[s.id] > 0]
    per_unit = _median(ratios) if ratios else None
    calibrated_from = sorted({r for c in costs.values() for r in c[1]})
    result: dict[str, Expectation] = {}
    used: set[str] = set()
    for s in steps:
        p, p_why, p_runs = parallel[s.family]
        whys: list[Derivation] = []
        cpu: float | None = None
        if s.id in costs:
            cpu, runs, why = costs[s.id]
            used.update(runs)
            whys.append(Derivation("expected_cpu_s", round(cpu, 3), RULE, f"{why} ({_runs(runs)})"))
        elif per_unit is not None:
            cpu = constants[s.id] * per_unit
            used.update(calibrated_from)
            whys.append(Derivation("expected_cpu_s", round(cpu, 3), "cost_constant",
                                   f"no run of this step or of {s.family} on data of a known size: constant cost "
                                   f"{constants[s.id]:g} × {per_unit:.3g} s per unit, the median the matched steps "
                                   f"showed ({_runs(tuple(calibrated_from))})"))
        if cpu is not None:
            used.update(p_runs)
            whys.append(Derivation("parallel_fraction", round(p, 3), RULE if p_runs else "linear_speedup",
                                   f"{p_why} ({_runs(p_runs)})" if p_runs else p_why))
        cap = memory.get(s.id)
        if cap is not None:
            used.update(cap[1])
            whys.append(Derivation("memory_cap_mb", cap[0], RULE, f"{cap[2]} ({_runs(cap[1])})"))
        result[s.id] = Expectation(cpu, p, cap[0] if cap else None, tuple(whys))
    return Expected(result, per_unit is not None, tuple(sorted(used)), history.source)


def _cost(step: Step, ok: Sequence[Observation], size: int | None) -> tuple[float, tuple[str, ...], str] | None:
    """The step's single-thread work from the same step's runs, else its family's scaled by data size."""
    same = [o for o in ok if o.digest == step.digest]
    if same:
        work = _median(o.work_s or 0.0 for o in same)
        return work, _run_ids(same), f"median single-thread work of this step's {len(same)} run(s): {work:.2f} s"
    if size is None:
        return None
    family = [o for o in ok if o.family == step.family and o.size]
    same_params = [o for o in family if o.params == params_digest(step.params)]
    alike = same_params or family
    if not alike:
        return None
    work = _median((o.work_s or 0.0) * size / (o.size or 1) for o in alike)
    which = "same parameters" if same_params else "other parameters"
    where = "on other data" if any(o.data != step.data for o in alike) else "on this data"
    return work, _run_ids(alike), (f"{step.family} ({which}) {where}: median of {len(alike)} run(s) scaled by "
                                   f"rows × features {size} / theirs = {work:.2f} s")


def _parallel_fraction(family: str, ok: Sequence[Observation]) -> tuple[float, str, tuple[str, ...]]:
    """The family's Amdahl parallel fraction from its runs at more than one thread, and why."""
    measured = [o for o in ok if o.family == family and o.threads > 1 and o.cpu_s and o.wall_s]
    if not measured:
        return 1.0, f"{family} has no run at more than one thread here: linear speed-up assumed", ()
    fractions = []
    for o in measured:
        speedup = (o.cpu_s or 0.0) / (o.wall_s or 1.0)
        fractions.append(min(1.0, max(0.0, (1 - 1 / speedup) / (1 - 1 / o.threads))) if speedup > 0 else 0.0)
    p = _mean(fractions)
    counts = sorted({o.threads for o in measured})
    return p, (f"{family}'s speed-up at {', '.join(map(str, counts))} thread(s) (CPU s ÷ wall s of {len(measured)} "
               f"run(s)) fits a parallel fraction of {p:.2f}"), _run_ids(measured)


def _memory(step: Step, observations: Sequence[Observation], settings: Mapping[str, Any],
            config: Mapping[str, Any], hardware: HardwareSpec) -> tuple[int, tuple[str, ...], str] | None:
    """The step's memory cap from its own runs' peaks, raised after an ``oom``; ``None`` without such runs."""
    same = [o for o in observations if o.digest == step.digest and o.peak_rss_mb is not None]
    if not same:
        return None
    latest = max(same, key=lambda o: o.finished_at)
    ceiling = int(hardware.memory_mb * config["limits"]["memory_threshold"])
    if latest.status == "oom":
        before = max(latest.peak_rss_mb or 0.0, float(latest.memory_cap_mb or 0))
        cap = math.ceil(before * settings["oom_growth"])
        why = (f"its latest run ended oom at {before:.0f} MB: history.oom_growth {settings['oom_growth']:g} × "
               f"{before:.0f} MB")
        runs: tuple[str, ...] = (latest.run,)
    else:
        ended = [o for o in same if o.status == "ok"]
        if not ended:
            return None
        peak = max(o.peak_rss_mb or 0.0 for o in ended)
        cap = math.ceil(peak * settings["memory_headroom"])
        why = (f"peak RSS {peak:.0f} MB of its {len(ended)} run(s) × history.memory_headroom "
               f"{settings['memory_headroom']:g}")
        runs = _run_ids(ended)
    if cap > ceiling:
        cap, why = ceiling, why + f", held to limits.memory_threshold of the machine's memory: {ceiling} MB"
    return max(1, cap), runs, why


def _run_ids(observations: Sequence[Observation]) -> tuple[str, ...]:
    return tuple(sorted({o.run for o in observations}))


def _runs(runs: Sequence[str]) -> str:
    shown = ", ".join(runs[:_SHOWN_RUNS])
    more = f" +{len(runs) - _SHOWN_RUNS} more" if len(runs) > _SHOWN_RUNS else ""
    return f"run {shown}{more}" if len(runs) == 1 else f"runs {shown}{more}"


def _median(values: Iterable[float]) -> float:
    import statistics  # here, not at the top: a compile without history never needs it (10 ms of imports)

    return statistics.median(values)


def _mean(values: Iterable[float]) -> float:
    import statistics

    return statistics.mean(values)
