"""Text renderings of plans, provenance chains, hardware specs and studies for the terminal."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["render_chain", "render_derived", "render_explanation", "render_leaderboard", "render_plan_summary",
           "render_study", "render_yaml", "table"]


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


def render_sweep_summary(sweep: Any) -> str:
    """The sweep at a glance: points × steps, the axes, then one row per point with its values and plan hash."""
    plans = sweep.plans
    steps = sum(len(plans[p.plan_hash].steps) for p in sweep.points)
    axes = "; ".join(f"{a.key} ({len(a.values)} from {a.source})" for a in sweep.axes) or "none"
    head = [f"sweep {sweep.sweep_hash[:12]}  ({len(sweep.points)} points × their steps = {steps} steps, "
            f"{len(plans)} distinct plans, format {sweep.format})", f"axes: {axes}", ""]
    rows = [[i, " ".join(p.overrides) or "-", len(plans[p.plan_hash].steps), p.plan_hash[:12]]
            for i, p in enumerate(sweep.points)]
    return "\n".join(head) + table(["point", "values", "steps", "plan"], rows)


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


_NOTE_WIDTH = 60


def render_study(study: Any) -> str:
    """A study as text: its best trial and values, one line per trial, the parameters' importances.

    Args:
        study: the content of a study's ``study.json``, or an unstructured ``StudySummary`` (the same keys).
    """
    trials = list(study.get("trials") or ())
    counts = {s: sum(t.get("state") == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    states = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    lines = [f"study {study.get('name')}: {len(trials)} trials ({states}), {study.get('direction')} "
             f"val {study.get('metric')}"]
    best = study.get("best")
    if best:
        values = " ".join(f"{k}={_value(v)}" for k, v in best["params"].items())
        lines.append(f"best: trial {best['number']} = {best['value']:.6g} with {values}"
                     + (f"  ({best['directory']})" if best.get("directory") else ""))
    keys = list(dict.fromkeys(k for t in trials for k in t.get("params", {})))
    rows = [[t["number"], str(t["state"]).lower(), "" if t.get("value") is None else f"{t['value']:.6g}",
             "" if t.get("duration_s") is None else f"{t['duration_s']:.1f}",
             *(_value(t["params"][k]) if k in t.get("params", {}) else "" for k in keys), _note(t)] for t in trials]
    lines += ["", table(["trial", "state", "value", "wall s", *(k.rsplit(".", 1)[-1] for k in keys), "note"], rows)]
    importances = study.get("importances") or {}
    if importances:
        ranked = sorted(importances.items(), key=lambda kv: -kv[1])
        lines += ["", "importance: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked)]
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def _note(trial: Any) -> str:
    """Why a trial did not complete, and whether it asks an interrupted one again."""
    notes = [] if trial.get("state") == "COMPLETE" else [str(trial.get("detail") or "")]
    if trial.get("retry_of") is not None:
        notes.append(f"asks trial {trial['retry_of']} again")
    text = "; ".join(n for n in notes if n)
    return text if len(text) <= _NOTE_WIDTH else text[:_NOTE_WIDTH - 1] + "…"
