"""The planner's rules: size every work item for the hardware and record why each value is what it is.

Pure: (configuration, hardware, work) in; steps and schedule out, or a `PlanningError` naming what to
change. Every derived value is written into the step as a `Derivation` with its rule and reason.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from tkplan.errors import PlanningError, Problem
from tkplan.planner._campaign import Work, network_backend
from tkplan.planner._hardware import Gpu, HardwareSpec
from tkplan.planner._merge import Provenance
from tkplan.planner._merge import last_where as _where
from tkplan.planner._nodes import place_on_node
from tkplan.planner._plan import Derivation, Isolation, Limits, Resources, Schedule, Step, ThreadLimits

if TYPE_CHECKING:  # the history module is loaded only when a history is used
    from tkplan.planner._history import Expectation, Expected

__all__ = ["plan_steps", "start_order", "thread_budget"]
_BUILTIN_FEATURES = {"builtin:breast_cancer": 30, "builtin:diabetes": 10}


def thread_budget(config: Mapping[str, Any], hardware: HardwareSpec, provenance: Provenance,
                  problems: list[Problem]) -> tuple[int, Derivation]:
    """The run's total thread budget: usable CPUs, or the profile's cap when lower.

    A cap above the usable CPUs is appended to ``problems`` (fail is fail: no silent lowering), and
    planning goes on with the usable CPUs so that every other problem is found too.
    """
    asked = config["run"]["threads"]
    usable = hardware.cpus_usable
    if asked == "auto":
        return usable, Derivation("thread_budget", usable, "usable_cpus",
                                  f"affinity ∩ cgroup quota = {usable} of {hardware.cpus_logical} logical CPUs")
    if asked > usable:
        problems.append(Problem(f"run.threads = {asked} exceeds the {usable} usable CPUs of this machine",
                                "run.threads", _where(provenance, "run.threads"),
                                f"set run.threads to at most {usable}, or auto"))
        return usable, Derivation("thread_budget", usable, "usable_cpus", f"run.threads = {asked} is refused")
    return asked, Derivation("thread_budget", asked, "profile_cap", f"run.threads = {asked} ≤ {usable} usable CPUs")


def plan_steps(config: Mapping[str, Any], hardware: HardwareSpec, work: Sequence[Work],
               provenance: Provenance, expected: Expected | None = None) -> tuple[tuple[Step, ...], Schedule]:
    """Size every work item for ``hardware``: device, threads, env, isolation, limits, precision, batch.

    With ``expected`` (what earlier runs observed, ``tkplan.planner._history``), the costs that split the threads
    and order the schedule are its seconds, each thread split follows the family's measured speed-up, and its
    memory caps replace the cold ones (on one machine; a cluster's node packing keeps its own).

    Raises:
        PlanningError: the plan cannot be honoured here (every such problem together).
    """
    problems: list[Problem] = []
    budget, budget_why = thread_budget(config, hardware, provenance, problems)
    gpus = _usable_gpus(config, hardware, provenance, problems)
    devices = {w.id: _device(config, hardware, gpus, w, provenance, problems) for w in work}
    ceiling = min(budget, max((n.cpus for n in hardware.nodes), default=budget))  # a step runs on one node
    learned = expected.steps if expected is not None else {}
    costs = {w.id: _cost(w) for w in work}
    if expected is not None and expected.seconds:
        costs.update({w.id: cpu for w in work if (cpu := learned[w.id].cpu_s) is not None})
    threads = _allocate_threads(config, budget, work, devices, ceiling, costs, expected)
    parallel, parallel_why = _parallel(config, budget, [t for t, _ in threads.values()], hardware, provenance, problems)
    placement = _place_on_gpus(config, gpus, [w for w in work if devices[w.id][0] == "cuda"], costs)
    node_load: dict[str, float] = {}
    steps = []
    for w in work:
        device, device_why = devices[w.id]
        derivations = [device_why, *threads[w.id][1]]
        assigned: tuple[Gpu, ...] = ()
        if device == "cuda":
            gpu, gpu_why = placement[w.id]
            assigned = (gpu,)
            derivations.append(gpu_why)
        precision, why = _precision(config, device, assigned, w, provenance, problems)
        derivations.append(why)
        limits, limit_whys = _limits(config, hardware, device, assigned, w, parallel, provenance, problems)
        if hardware.nodes:
            memory, node_whys = place_on_node(config, hardware, w.id, w.family, costs[w.id], threads[w.id][0],
                                              assigned, node_load, provenance, problems)
            limits = attrs.evolve(limits, memory_cap_mb=memory if memory is not None else limits.memory_cap_mb)
            limit_whys = [d for d in limit_whys if d.rule != "memory_share"] + node_whys
        elif w.id in learned and learned[w.id].memory_cap_mb is not None:
            limits = attrs.evolve(limits, memory_cap_mb=learned[w.id].memory_cap_mb)
        derivations += limit_whys
        if w.id in learned:
            derivations += [d for d in learned[w.id].derivations if d.key != "memory_cap_mb" or not hardware.nodes]
        params, param_whys = _scale_batch(config, w)
        derivations += param_whys
        seed, seed_why = _derived_seed(config["run"]["base_seed"], w)
        derivations.append(seed_why)
        isolation = _isolation(config, w, device, provenance)
        t = threads[w.id][0]
        backend, backend_why = _backend(config, w, provenance)
        derivations += backend_why
        pools = _thread_pools(config, w, t, backend)
        env, env_why = _child_env(config, w, t, device, assigned, seed, backend, pools)
        derivations.append(env_why)
        steps.append(Step(
            id=w.id, family=w.family, target="+".join(w.targets), targets=w.targets, task=w.task, seed=seed,
            params=params, entrypoint=w.entrypoint,
            resources=Resources(threads=t, device=device, gpus=tuple(g.uuid for g in assigned), precision=precision,
                                backend=backend, pools=pools),
            env=env, isolation=isolation, limits=limits, derivations=tuple(derivations), depends_on=w.depends_on))
    if problems:
        raise PlanningError(dict.fromkeys(problems))  # each once, not once per step
    runtime = {w.id: _expected_wall(w, threads[w.id][0], costs, expected) for w in work}
    schedule = _schedule(config, budget, (budget_why, parallel_why), parallel, steps, runtime)
    return tuple(steps), schedule


def _usable_gpus(config: Mapping[str, Any], hardware: HardwareSpec, provenance: Provenance,
                 problems: list[Problem]) -> tuple[Gpu, ...]:
    """GPUs the run may use, ordered by UUID so ``CUDA_VISIBLE_DEVICES`` is stable across reboots."""
    wanted = config["gpu"]["devices"]
    if wanted == "auto":
        chosen = list(hardware.gpus)
    else:
        found = {name: _find_gpu(name, hardware.gpus) for name in wanted}
        missing = [name for name, gpu in found.items() if gpu is None]
        if missing:
            has = ", ".join(f"{g.index} ({g.uuid})" for g in hardware.gpus) or "none"
            hint = "list only GPUs this machine has, by NVML index or GPU UUID"
            if any(str(name).startswith("MIG-") for name in missing):
                hint += ("; MIG instances are not in the hardware spec (a MIG-enabled GPU is planned as its whole "
                         "device)")
            problems.append(Problem(f"GPU(s) {', '.join(map(str, missing))} not on this machine (it has {has})",
                                    "gpu.devices", _where(provenance, "gpu.devices"), hint))
        chosen = list(dict.fromkeys(gpu for gpu in found.values() if gpu is not None))
    require = config["gpu"]["require"]
    if require == "cuda" and not chosen:
        problems.append(Problem("this profile requires a CUDA GPU and none is available", "gpu.require",
                                _where(provenance, "gpu.require"),
                                "compile on (or --hardware for) a machine with an NVIDIA GPU, or pick another profile"))
    if require == "mps" and not hardware.mps:
        problems.append(Problem("this profile requires Apple's MPS device and this machine has none", "gpu.require",
                                _where(provenance, "gpu.require"),
                                "run it on an Apple-silicon Mac, or pick another profile"))
    return tuple(sorted(chosen, key=lambda g: g.uuid))


def _find_gpu(name: int | str, gpus: Sequence[Gpu]) -> Gpu | None:
    """The GPU an NVML index or a ``GPU-<uuid>`` names (a unique prefix of the UUID, as CUDA accepts); else ``None``."""
    if isinstance(name, int):
        return next((g for g in gpus if g.index == name), None)
    matches = [g for g in gpus if g.uuid.startswith(name)]
    return matches[0] if len(matches) == 1 else None


def _device(config: Mapping[str, Any], hardware: HardwareSpec, gpus: tuple[Gpu, ...], w: Work,
            provenance: Provenance, problems: list[Problem]) -> tuple[str, Derivation]:
    use = w.traits["gpu"]
    if use == "none":
        return "cpu", Derivation("device", "cpu", "family_cpu_only", f"{w.family} runs on the CPU (runtime.gpu: none)")
    if gpus:
        return "cuda", Derivation("device", "cuda", "gpu_available",
                                  f"{w.family} uses a GPU ({use}) and {len(gpus)} is/are available")
    if hardware.mps and config["campaign"]["nn_backend"] == "torch":
        return "mps", Derivation("device", "mps", "mps_available", f"{w.family} uses a GPU ({use}); Apple MPS found")
    if use == "required" and not config["gpu"]["fallback_to_cpu"]:
        problems.append(Problem(f"family {w.family} requires a GPU and none is available",
                                f"families.{w.family}.runtime.gpu",
                                _where(provenance, f"families.{w.family}.runtime.gpu"),
                                "drop the family, or set gpu.fallback_to_cpu: true to run it on the CPU"))
    if use == "required":  # only reached when the profile allows the fallback
        return "cpu", Derivation("device", "cpu", "gpu_fallback_to_cpu", f"{w.family} requires a GPU and none is "
                                 f"available; gpu.fallback_to_cpu (set at {_where(provenance, 'gpu.fallback_to_cpu')}) "
                                 "allows the CPU")
    return "cpu", Derivation("device", "cpu", "no_gpu_found", f"{w.family} uses a GPU when there is one ({use}); "
                             "none is available")


def _cost(w: Work) -> float:
    return float(w.traits.get("cost", 1.0))


def _expected_wall(w: Work, threads: int, costs: Mapping[str, float], expected: Expected | None) -> float:
    """A step's expected run time at ``threads``: history's speed-up model, else cost over threads."""
    if expected is not None and expected.seconds and expected.steps[w.id].cpu_s is not None:
        return expected.steps[w.id].wall(threads)
    return costs[w.id] / threads


def _vram_request(config: Mapping[str, Any], w: Work) -> int | None:
    """The VRAM a GPU step asks for before it is placed: the family's cap under the profile's budget; ``None`` = a
    whole GPU."""
    caps = [c for c in (w.traits["vram_cap_mb"], config["gpu"]["vram_budget_mb"]) if c is not None]
    return min(caps) if caps else None


def _place_on_gpus(config: Mapping[str, Any], gpus: Sequence[Gpu], work: Sequence[Work],
                   costs: Mapping[str, float]) -> dict[str, tuple[Gpu, Derivation]]:
    """Put each GPU step on one GPU: longest first, onto the GPU with the least expected work that holds its VRAM cap.

    Longest-first onto the least-loaded device balances the GPUs' total work (LPT); a GPU too small for the
    step's cap is passed over, so a mixed box never refuses a step that another of its GPUs holds. A step no
    GPU holds is placed on the largest, where `_limits` reports it.
    """
    load = {g.uuid: 0.0 for g in gpus}
    placed: dict[str, tuple[Gpu, Derivation]] = {}
    for w in sorted(work, key=lambda w: (-costs[w.id], w.id)):
        need = _vram_request(config, w)
        fitting = ([g for g in gpus if need is None or need <= g.memory_mb]
                   or [max(gpus, key=lambda g: (g.memory_mb, g.uuid))])
        gpu = min(fitting, key=lambda g: (load[g.uuid], g.uuid))
        if len(gpus) == 1:
            why = f"GPU {gpu.index} ({gpu.name}): the only usable GPU"
        else:
            cap = "a whole GPU" if need is None else f"its {need} MB VRAM cap"
            why = (f"GPU {gpu.index} ({gpu.name}): least expected work (cost {load[gpu.uuid]:g} placed before it, "
                   f"longest first) of the {len(fitting)} GPU(s) that hold {cap}")
        placed[w.id] = (gpu, Derivation("gpus", [gpu.uuid], "gpu_least_loaded", why))
        load[gpu.uuid] += costs[w.id]
    return placed


def _clamp(value: int, w: Work, ceiling: int) -> int:
    rule = w.traits["threads"]
    value -= rule["reserve"]
    if rule["max"] is not None:
        value = min(value, rule["max"])
    lowest: int = rule["min"]
    return max(lowest, min(value, ceiling))


def _allocate_threads(config: Mapping[str, Any], budget: int, work: Sequence[Work],
                      devices: Mapping[str, tuple[str, Derivation]], ceiling: int, costs: Mapping[str, float],
                      expected: Expected | None) -> dict[str, tuple[int, list[Derivation]]]:
    """Threads per step: long CPU steps get more lanes of the budget, short ones one; GPU steps few.

    No step gets more than ``ceiling`` threads: the budget, or on a cluster the CPUs of its largest node.

    Each CPU step's share is its cost over the cost per lane (total cost / budget), rounded up, so a step
    that alone needs more than one lane's worth of time gets the threads to finish with the others. With
    history (costs in seconds and the family's measured parallel fraction p), the share is the fewest threads
    n that minimise max(the step's time at n, (the CPU steps' work + its (n - 1) · (1 - p) idle share) / budget):
    a step that scales gets threads until it fits one lane, one that does not scale keeps its threads for others.
    """
    cpu = [w for w in work if devices[w.id][0] == "cpu"]
    total = sum(costs[w.id] for w in cpu) or 1.0
    lane = total / budget
    result: dict[str, tuple[int, list[Derivation]]] = {}
    for w in work:
        if devices[w.id][0] != "cpu":
            t = min(config["threading"]["gpu_step_threads"], budget)
            result[w.id] = (t, [Derivation("threads", t, "gpu_bound", f"GPU step: {t} CPU threads feed the device")])
            continue
        cost = costs[w.id]
        share = max(1, math.ceil(cost / lane - 1e-9))
        learned = expected.steps[w.id] if expected is not None and expected.seconds else None
        rule = "cost_share"
        if learned is not None and learned.cpu_s is not None:
            p = learned.parallel
            share = _fastest_share(learned, cost, total, budget, ceiling)
            from tkplan.planner._history import RULE as HISTORY  # loaded: ``expected`` came from it

            rule = HISTORY
            why = (f"expected {cost:.2f} single-thread s, parallel fraction {p:.2f}: {share} thread(s) take "
                   f"{learned.wall(share):.2f} s, the fewest for the shortest max(its time, (the CPU steps' "
                   f"{total:.2f} s + {cost * (1 - p) * (share - 1):.2f} s its extra threads idle) / {budget} threads)")
        else:
            why = (f"cost {cost:g} of the CPU steps' {total:g} over {budget} thread(s) = {cost / lane:.2f} "
                   f"thread(s) of work → {share}")
        t = _clamp(share, w, ceiling)
        if t != share:
            clamp = w.traits["threads"]
            why += f", clamped to [{clamp['min']}, {clamp['max'] or ceiling}] minus reserve {clamp['reserve']} → {t}"
            if t == ceiling < budget:
                why += f" (the largest node has {ceiling} CPUs)"
        result[w.id] = (t, [Derivation("threads", t, rule, why)])
    return result


def _fastest_share(learned: Expectation, cost: float, total: float, budget: int, ceiling: int) -> int:
    """The fewest threads that minimise max(the step's time, the CPU steps' work and its idle threads / budget)."""
    def span(n: int) -> float:
        return max(learned.wall(n), (total + cost * (1 - learned.parallel) * (n - 1)) / budget)

    return min(range(1, ceiling + 1), key=lambda n: (round(span(n), 6), n))


def _precision(config: Mapping[str, Any], device: str, assigned: tuple[Gpu, ...], w: Work,
               provenance: Provenance, problems: list[Problem]) -> tuple[str, Derivation]:
    asked = config["gpu"]["precision"]
    if device != "cuda":
        return "fp32", Derivation("precision", "fp32", "cpu_fp32" if device == "cpu" else "mps_fp32",
                                  f"{device} step: full precision")
    floor = config["gpu"]["bf16_min_compute_capability"]
    cc = min((g.compute_capability for g in assigned), key=_cc)
    bf16_ok = _cc(cc) >= _cc(floor)
    if asked == "auto":
        chosen = "bf16" if bf16_ok else "fp16"
        return chosen, Derivation("precision", chosen, "compute_capability",
                                  f"compute capability {cc} {'≥' if bf16_ok else '<'} {floor}")
    if asked == "bf16" and not bf16_ok:
        problems.append(Problem(f"bf16 needs compute capability ≥ {floor}; the GPU has {cc}", "gpu.precision",
                                _where(provenance, "gpu.precision"), "set gpu.precision to fp16 or auto"))
    return asked, Derivation("precision", asked, "profile", f"gpu.precision = {asked} (compute capability {cc})")


def _cc(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _limits(config: Mapping[str, Any], hardware: HardwareSpec, device: str, assigned: tuple[Gpu, ...], w: Work,
            parallel: int, provenance: Provenance, problems: list[Problem]) -> tuple[Limits, list[Derivation]]:
    limits = config["limits"]
    whys = []
    timeout = limits["timeout_s"]
    budget_h = limits["total_time_budget_h"]
    if budget_h is not None and timeout > budget_h * 3600:
        timeout = int(budget_h * 3600)
        whys.append(Derivation("timeout_s", timeout, "time_budget",
                               f"limits.timeout_s capped by the {budget_h:g} h run budget"))
        if timeout < 1:
            problems.append(Problem(f"limits.total_time_budget_h = {budget_h:g} leaves each step a timeout of 0 s",
                                    "limits.total_time_budget_h", _where(provenance, "limits.total_time_budget_h"),
                                    "give the run at least a second: 0.0003 h or more"))
    else:
        whys.append(Derivation("timeout_s", timeout, "profile", f"limits.timeout_s = {timeout} "
                               f"({_where(provenance, 'limits.timeout_s')})"))
    cap_gb = limits["memory_cap_gb"]
    if cap_gb is None:
        memory = int(hardware.memory_mb * limits["memory_threshold"] / parallel)
        whys.append(Derivation("memory_cap_mb", memory, "memory_share",
                               f"{limits['memory_threshold']:g} × {hardware.memory_mb} MB usable memory / "
                               f"{parallel} steps at once"))
        if memory < 1:
            threshold = limits["memory_threshold"]
            problems.append(Problem(f"limits.memory_threshold {threshold:g} × {hardware.memory_mb} MB usable memory "
                                    f"/ {parallel} steps at once leaves each step a memory cap of 0 MB",
                                    "limits.memory_threshold", _where(provenance, "limits.memory_threshold"),
                                    "raise limits.memory_threshold, or plan for a machine with more memory"))
    else:
        memory = int(cap_gb * 1024)
        if memory < 1:
            problems.append(Problem(f"limits.memory_cap_gb = {cap_gb:g} is a memory cap of 0 MB",
                                    "limits.memory_cap_gb", _where(provenance, "limits.memory_cap_gb"),
                                    "set at least 0.001 (1 MB), or null"))
        whys.append(Derivation("memory_cap_mb", memory, "profile", f"limits.memory_cap_gb = {cap_gb:g} "
                               f"({_where(provenance, 'limits.memory_cap_gb')})"))
        if memory > hardware.memory_mb:
            problems.append(Problem(f"limits.memory_cap_gb = {cap_gb:g} exceeds the machine's "
                                    f"{hardware.memory_mb / 1024:.1f} GB",
                                    "limits.memory_cap_gb", _where(provenance, "limits.memory_cap_gb"),
                                    f"set it to at most {hardware.memory_mb // 1024}"))
    vram = None
    if device == "cuda":
        vram = w.traits["vram_cap_mb"]
        gpu_mb = min(g.memory_mb for g in assigned)
        profile_cap = config["gpu"]["vram_budget_mb"]
        if vram is None:
            vram = profile_cap or gpu_mb
            whys.append(Derivation("vram_cap_mb", vram, "whole_gpu", "the family sets no VRAM cap"))
        elif profile_cap is None or vram <= profile_cap:
            whys.append(Derivation("vram_cap_mb", vram, "family_cap", f"families.{w.family}.runtime.vram_cap_mb = "
                                   f"{vram} ({_where(provenance, f'families.{w.family}.runtime.vram_cap_mb')})"))
        if profile_cap is not None and vram > profile_cap:
            whys.append(Derivation("vram_cap_mb", profile_cap, "profile_vram_budget",
                                   f"family cap {vram} MB > gpu.vram_budget_mb {profile_cap} MB"))
            vram = profile_cap
        if vram > gpu_mb:
            problems.append(Problem(f"VRAM cap {vram} MB of {w.family} exceeds the GPU's {gpu_mb} MB",
                                    f"families.{w.family}.runtime.vram_cap_mb",
                                    _where(provenance, f"families.{w.family}.runtime.vram_cap_mb"),
                                    f"set it to at most {gpu_mb}"))
    return Limits(timeout_s=timeout, memory_cap_mb=memory, vram_cap_mb=vram), whys


def _feature_count(config: Mapping[str, Any]) -> int | None:
    data = config["data"]
    if data["source"] == "builtin:synthetic_panel":
        generated: int = data["synthetic"]["features"]
        return generated
    if data["source"] in _BUILTIN_FEATURES:
        return _BUILTIN_FEATURES[data["source"]]
    named = data["columns"]["features"]
    return len(named) if named else None


def _scale_batch(config: Mapping[str, Any], w: Work) -> tuple[dict[str, Any], list[Derivation]]:
    """Transformer batch scaling: sequence length above the threshold → max(floor, base × threshold / length).

    Attention memory grows with the square of the sequence length. tkplan's Transformer families attend
    across features, one token per feature (built from its lookback window, or from its one value for
    TabTransformer), as the seed's transformer did: the sequence length is the feature count.
    """
    params = dict(w.params)
    if "seq_batch_threshold" not in params:
        return params, []
    length = _feature_count(config)
    threshold, floor, base = params["seq_batch_threshold"], params["seq_batch_floor"], params["batch_size"]
    if length is None:
        return params, [Derivation("batch_size", base, "seq_batch_scaling",
                                   "feature count unknown until the data is read; "
                                   "list data.columns.features to plan it")]
    if length <= threshold:
        return params, [Derivation("batch_size", base, "seq_batch_scaling",
                                   f"seq_len {length} (features) ≤ {threshold}: unchanged")]
    scaled = max(floor, int(base * threshold / length))
    params["batch_size"] = scaled
    return params, [Derivation("batch_size", scaled, "seq_batch_scaling",
                               f"seq_len {length} (features) > {threshold}: max({floor}, {base}·{threshold}/{length})")]


def _derived_seed(base_seed: int, w: Work) -> tuple[int, Derivation]:
    text = f"{base_seed}:{w.seed}:{w.family}:{'+'.join(w.targets)}"
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % 2**31
    return seed, Derivation("seed", seed, "derived_seed", f"sha256(base {base_seed}, replicate {w.seed}, {w.family}, "
                                                          f"{'+'.join(w.targets)}) mod 2^31")


def _isolation(config: Mapping[str, Any], w: Work, device: str, provenance: Provenance) -> Isolation:
    forced = config["isolation"]["force"]
    if forced is not None:
        return Isolation(forced, f"isolation.force = {forced} (set at {_where(provenance, 'isolation.force')})")
    listed = config["isolation"]["process_for"]
    names = {w.family, str(w.traits.get("display_name", "")).lower()}
    if any(n.lower() in names for n in listed):
        return Isolation("process", f"listed in isolation.process_for ({_where(provenance, 'isolation.process_for')})")
    if device != "cpu":
        return Isolation("process", f"{device} step: its own process gets its own device context and VRAM cap")
    default = w.traits["isolation"]
    return Isolation(default["mode"], default["reason"])


def _backend(config: Mapping[str, Any], w: Work, provenance: Provenance) -> tuple[str | None, list[Derivation]]:
    """The framework of a network step, and why: the campaign's choice, or the only one the family has."""
    backend = network_backend(config, w.traits)
    if backend is None:
        return None, []
    asked = config["campaign"]["nn_backend"]
    if backend == asked:
        return backend, [Derivation("backend", backend, "nn_backend",
                                    f"campaign.nn_backend = {asked} ({_where(provenance, 'campaign.nn_backend')})")]
    return backend, [Derivation("backend", backend, "family_backend",
                                f"campaign.nn_backend = {asked}, but {w.family} has no {asked} implementation "
                                f"(runtime.backends: {list(w.traits['backends'])})")]


def _thread_pools(config: Mapping[str, Any], w: Work, threads: int, backend: str | None) -> ThreadLimits:
    """How the step's ``threads`` divide among its thread pools, by the family's thread policy."""
    th = config["threading"]
    omp, blas = {
        "openmp": (threads, 1), "blas": (1, threads), "joblib": (1, 1),
        "torch": (threads, threads), "tf": (threads, threads), "gpu": (threads, threads),
    }[w.traits["thread_policy"]]
    inter = th["inter_op_threads"]
    return ThreadLimits(
        openmp=omp, blas=blas, numexpr=min(th["numexpr_threads"], threads),
        torch_intra=threads if backend == "torch" else None, torch_inter=inter if backend == "torch" else None,
        tf_intra=threads if backend == "tf" else None, tf_inter=inter if backend == "tf" else None)


def _child_env(config: Mapping[str, Any], w: Work, threads: int, device: str, assigned: tuple[Gpu, ...],
               seed: int, backend: str | None, pools: ThreadLimits) -> tuple[dict[str, str], Derivation]:
    """The exact variables the step's process gets, set before any library loads; the thread pools' are
    derived from ``pools``."""
    policy = w.traits["thread_policy"]
    th = config["threading"]
    omp, blas = pools.openmp, pools.blas
    env = {
        **pools.environment(),
        "OMP_DYNAMIC": th["omp_dynamic"],
        "OMP_PROC_BIND": th["omp_proc_bind"],
        "KMP_BLOCKTIME": th["kmp_blocktime"],
        "OMP_WAIT_POLICY": th["omp_wait_policy"],
        "MKL_THREADING_LAYER": th["mkl_threading_layer"],
        "PYTHONHASHSEED": str(config["determinism"]["python_hash_seed"]),
        "TKPLAN_SEED": str(seed),
        "CUDA_VISIBLE_DEVICES": ",".join(g.uuid for g in assigned) if device == "cuda" else "-1",
    }
    if backend == "tf":
        env.update({
            "TF_CPP_MIN_LOG_LEVEL": config["logging"]["tf_log_level"],
            "TF_DETERMINISTIC_OPS": "1" if config["determinism"]["tf_deterministic_ops"] else "0",
        })
        if device == "cuda":
            env["TF_GPU_ALLOCATOR"] = config["gpu"]["tf_allocator"]
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true" if config["gpu"]["tf_allow_growth"] else "false"
    if device == "cuda":
        env["PYTORCH_CUDA_ALLOC_CONF"] = config["gpu"]["torch_alloc_conf"]
    env.update(config["env"])
    env.update(w.traits["env"])
    inter = th["inter_op_threads"]
    meaning = {
        "openmp": f"OpenMP runs the {threads} thread(s), BLAS 1, so the two never multiply",
        "blas": f"BLAS runs the {threads} thread(s), OpenMP 1",
        "joblib": f"n_jobs = {threads} joblib worker(s) with OpenMP and BLAS 1 inside each; an OpenMP phase "
                  f"(Ensemble's HistGradientBoosting) gets the {threads} thread(s) through threadpoolctl "
                  "while no worker runs",
        "torch": f"intra-op {threads} thread(s), inter-op {inter}",
        "tf": f"intra-op {threads} thread(s), inter-op {inter}",
        "gpu": f"{threads} CPU thread(s) feed the device",
    }[policy]
    return env, Derivation("env", f"OMP={omp} BLAS={blas}", f"thread_policy_{policy}",
                           f"{w.family} thread policy {policy}: {meaning}")


def _parallel(config: Mapping[str, Any], budget: int, threads: Sequence[int], hardware: HardwareSpec,
              provenance: Provenance, problems: list[Problem]) -> tuple[int, Derivation]:
    """The most steps at once: as many as the thread budget holds at the smallest step's threads, and, with a
    per-step memory cap, no more than the usable memory holds at that cap (``memory_threshold`` of it).

    An explicit ``run.max_parallel`` whose steps' memory caps together exceed the machine is a problem.
    """
    asked = config["run"]["max_parallel"]
    limits = config["limits"]
    cap_mb = None if limits["memory_cap_gb"] is None else max(1, int(limits["memory_cap_gb"] * 1024))  # 0: `_limits`
    if asked != "auto":
        if cap_mb is not None and asked * cap_mb > hardware.memory_mb:
            problems.append(Problem(f"run.max_parallel = {asked} steps × limits.memory_cap_gb "
                                    f"{limits['memory_cap_gb']:g} GB exceeds the machine's "
                                    f"{hardware.memory_mb / 1024:.1f} GB", "run.max_parallel",
                                    _where(provenance, "run.max_parallel"),
                                    f"lower run.max_parallel to {max(1, hardware.memory_mb // cap_mb)}, or the cap"))
        return asked, Derivation("max_parallel", asked, "profile", f"run.max_parallel = {asked}")
    smallest = min(threads, default=1)
    fits = max(1, budget // max(1, smallest))
    parallel = max(1, min(fits, len(threads)))
    why = f"{budget} threads / {smallest} thread(s) of the smallest step, at most {len(threads)} steps"
    if cap_mb is not None:
        memory_slots = max(1, int(hardware.memory_mb * limits["memory_threshold"]) // cap_mb)
        if memory_slots < parallel:
            return memory_slots, Derivation(
                "max_parallel", memory_slots, "memory_budget",
                f"{limits['memory_threshold']:g} × {hardware.memory_mb} MB usable memory / {cap_mb} MB cap per step "
                f"= {memory_slots} (the thread budget would allow {parallel})")
    return parallel, Derivation("max_parallel", parallel, "thread_budget", why)


def _schedule(config: Mapping[str, Any], budget: int, whys: Sequence[Derivation], parallel: int,
              steps: Sequence[Step], runtime: Mapping[str, float]) -> Schedule:
    """Start order (`start_order`) and the run's deadline."""
    order = start_order(steps, runtime)
    budget_h = config["limits"]["total_time_budget_h"]
    deadline = None if budget_h is None else int(budget_h * 3600)
    derivations = list(whys)
    if deadline is not None:
        derivations.append(Derivation("deadline_s", deadline, "time_budget",
                                      f"limits.total_time_budget_h = {budget_h:g}: no step starts or runs past it"))
    return Schedule(thread_budget=budget, max_parallel=parallel, order=order, derivations=tuple(derivations),
                    deadline_s=deadline)


def start_order(steps: Sequence[Step], runtime: Mapping[str, float]) -> tuple[str, ...]:
    """The planner's start order: dependencies first, then the longest expected run (``runtime``) first, then by id.

    ``steps`` lists a step's dependencies before it (the order the planner makes them in).
    """
    depth: dict[str, int] = {}
    for s in steps:
        depth[s.id] = 1 + max((depth[d] for d in s.depends_on), default=-1)
    return tuple(s.id for s in sorted(steps, key=lambda s: (depth[s.id], -runtime[s.id], s.id)))
