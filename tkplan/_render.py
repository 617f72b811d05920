"""Text renderings of plans, provenance chains and hardware specs for the terminal."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["SWEEP_ROWS", "render_chain", "render_derived", "render_explanation", "render_leaderboard",
           "render_plan_summary", "render_sweep_summary", "render_yaml", "table"]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_plan_summary(plan: Any) -> str:
    """What a reader checks first: the machine, the budget, then one row per step."""
    hw, sched = plan.hardware, plan.schedule
    gpus = ", ".join(f"{g.name} ({g.memory_mb} MB, cc {g.compute_capability})" for g in hw.gpus) or "none"
    head = [
        f"plan {plan.plan_hash[:12]}  ({len(plan.steps)} steps, format {plan.format})",
        f"hardware: {hw.cpus_usable} usable CPUs of {hw.cpus_logical}, {hw.memory_mb} MB memory, GPUs: {gpus}"
        + (", MPS" if hw.mps else ""),
        f"layers: {' → '.join(layer.name for layer in plan.inputs.layers if layer.kind != 'family')} "
        f"(+{sum(layer.kind == 'family' for layer in plan.inputs.layers)} family profiles)",
        f"thread budget {sched.thread_budget}, up to {sched.max_parallel} steps at once",
        "",
    ]
    gpu_index = {g.uuid: g.index for g in hw.gpus}
    if sched.deadline_s is not None:
        head.insert(-1, f"deadline: {sched.deadline_s / 3600:g} h for the whole run")
    if sched.skipped:
        head.insert(-1, f"skipped (campaign.skip_unsupported): {'; '.join(sched.skipped)}")
    rows = []
    for step_id in sched.order:
        s = plan.step(step_id)
        limits = s.limits
        rows.append([
            s.id, s.task, s.resources.threads,
            s.resources.device + "".join(f":{gpu_index[u]}" for u in s.resources.gpus),
            s.resources.precision, s.isolation.mode, f"{limits.timeout_s}s",
            f"{limits.memory_cap_mb}" if limits.memory_cap_mb else "-",
            f"{limits.vram_cap_mb}" if limits.vram_cap_mb else "-",
            s.params.get("batch_size", "-"), s.seed, ",".join(s.depends_on) or "-",
        ])
    headers = ["step", "task", "threads", "device", "prec", "isolation", "timeout", "mem MB", "vram MB", "batch",
               "seed", "after"]
    return "\n".join(head) + table(headers, rows)


SWEEP_ROWS = 10  # tkplan: ignore[constant]  points shown at each end of a long sweep's summary


def render_sweep_summary(sweep: Any) -> str:
    """The sweep at a glance, as compile's summary is the plan's: points × steps, the machine, the layers and the
    budget, the axes, then one row per point with its value on each axis, its steps and its plan hash (a long
    sweep shows its first and last `SWEEP_ROWS` points and how many it leaves out)."""
    import itertools

    from tkplan.planner import format_value

    plans, points, axes = sweep.plans, sweep.points, sweep.axes
    counts = [len(plans[p.plan_hash].steps) for p in points]
    each = f" × {counts[0]} steps" if len(set(counts)) == 1 else " × their steps"
    plan = plans[points[0].plan_hash]
    hw, sched = plan.hardware, plan.schedule
    layers = " → ".join(layer.name for layer in plan.inputs.layers if layer.kind != "family")
    families = sum(layer.kind == "family" for layer in plan.inputs.layers)
    head = [f"sweep {sweep.sweep_hash[:12]}  ({len(points)} points{each} = {sum(counts)} steps, {len(plans)} distinct "
            f"plans, format {sweep.format})",
            f"hardware: {hw.cpus_usable} usable CPUs of {hw.cpus_logical}, {hw.memory_mb} MB memory, GPUs: "
            f"{', '.join(g.name for g in hw.gpus) or 'none'}" + (", MPS" if hw.mps else ""),
            f"layers: {layers} (+{families} family profiles)",
            f"thread budget {sched.thread_budget}, up to {sched.max_parallel} steps at once",
            "axes: " + ("; ".join(f"{a.key} ({len(a.values)} from {a.source})" for a in axes) or "none"), ""]
    names = _short_names([a.key for a in axes])

    def cell(axis: Any, value: Any) -> str:
        if not axis.key.startswith("points:"):
            return format_value(value)
        keys = _short_names(list(value))
        return " ".join(f"{keys[k]}={format_value(v)}" for k, v in value.items())

    combos = itertools.product(*(a.values for a in axes))  # the points' order: first axis slowest
    rows = [[i, *(cell(a, v) for a, v in zip(axes, combo, strict=True)), count, p.plan_hash[:12]]
            for i, (p, combo, count) in enumerate(zip(points, combos, counts, strict=True))]
    left_out = len(rows) - 2 * SWEEP_ROWS
    if left_out > 1:
        rows = [*rows[:SWEEP_ROWS], *rows[-SWEEP_ROWS:]]
    lines = table(["point", *(names[a.key] for a in axes), "steps", "plan"], rows).split("\n")
    if left_out > 1:
        lines.insert(2 + SWEEP_ROWS, f"… {left_out} more points …")
    return "\n".join([*head, *lines])


def _short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key by its shortest ending that no other key shares (``num_leaves`` for
    ``families.lightgbm.num_leaves``); a ``points:`` axis is ``points``."""
    names = {}
    for key in keys:
        if key.startswith("points:"):
            names[key] = "points"
            continue
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            name = ".".join(parts[-n:])
            if not any(other != key and (other == name or other.endswith("." + name)) for other in keys):
                break
        names[key] = name
    return names


def render_chain(key: str, chain: Sequence[Any]) -> str:
    """Every setting of ``key``, lowest first, the one in force marked with ``*``.

    A setting written with references shows what was written, then each key (or variable) it resolved
    through, with its value as written there and where that was set.
    """
    lines = [f"{key} = {_short(chain[-1].value)}"] if chain else [f"{key}: not set"]
    for i, setting in enumerate(chain):
        mark = "*" if i == len(chain) - 1 else " "
        state = "" if i == len(chain) - 1 else "  (overridden)"
        layer = setting.source if setting.file else ""
        shown = _short(setting.value)
        if setting.written is not None:
            shown = f"{_short(setting.written)} → {shown}"
        lines.append(f"  {mark} {setting.where:<60} {layer:<22} {shown}{state}")
        for hop in setting.via:
            if hop.where == "default":
                origin = "not set: the default"
            else:
                origin = ", ".join(filter(None, [hop.where, hop.source if hop.source != hop.where else ""]))
            lines.append(f"      via {hop.key} = {_short(hop.written)}  ({origin})")
    return "\n".join(lines)


def render_derived(key: str, derived: Sequence[tuple[str, Any]]) -> str:
    """A value the planner derives, per step (or for the schedule): the value, the rule, and why."""
    from tkplan.planner._convert import thaw

    rows = [(where, _short(thaw(d.value)), d.rule, d.why) for where, d in derived]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{key}: derived by the planner"]
    lines += [f"  {w:<{width[0]}}  {v:<{width[1]}}  {r:<{width[2]}}  {why}" for w, v, r, why in rows]
    return "\n".join(lines)


def render_explanation(explanation: Any) -> str:
    """``tkplan explain``: each configured key's chain, or the derivations per step, or why there are none."""
    if explanation.chains:
        return "\n".join(render_chain(key, chain) for key, chain in explanation.chains)
    if explanation.derived:
        return render_derived(explanation.key, explanation.derived)
    return f"{explanation.key}: no step of this plan derives it: {explanation.absent}"


def render_yaml(data: Any) -> str:
    """Plain data as block YAML."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # typed None, takes a bool
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_SHOWN = {"regression": ("rank_ic", "r2", "rmse", "mae"), "binary": ("roc_auc", "f1", "precision", "recall")}


def render_leaderboard(rows: Sequence[Any], report: Any, *, per_seed: bool = False) -> str:
    """One ranked table per target (`tkplan.tools.report.Row`s): the ranking metric first — mean ± sd over
    the seeds and their number ``n``, or each seed with ``per_seed`` — then the task's other metrics; ``*``
    marks the best."""
    split = report["split"]
    blocks = []
    for target in dict.fromkeys(r.target for r in rows):
        group = [r for r in rows if r.target == target]
        task, metric = group[0].task, group[0].metric
        others = [m for m in _SHOWN[task] if m != metric]
        body = [[f"{i}{'*' if r.best else ''}", r.family + (f" ({r.variant})" if r.variant else ""),
                 r.seeds[0] if per_seed else r.n, _score(r, per_seed), *(_metric(r.metrics.get(n)) for n in others),
                 r.status] for i, r in enumerate(group, 1)]
        how = "" if per_seed else ", mean ± sd over seeds"
        blocks.append(f"{target} ({task}, ranked by {split} {metric}{how})\n"
                      + table(["#", "family", "seed" if per_seed else "n", metric, *others, "status"], body))
    return "\n\n".join(blocks)


def _score(row: Any, per_seed: bool) -> str:
    if row.score is None:
        return "-"
    return _metric(row.score) + ("" if per_seed or row.sd is None else f" ± {row.sd:.4f}")


def _metric(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4f}"
    return "-" if value is None else str(value)
