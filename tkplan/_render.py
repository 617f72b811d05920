"""Text renderings for the terminal: plans, sweeps, studies, provenance chains, diffs, hardware specs, run
progress and summaries, leaderboards. Every command renders through here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tkplan._text import aligned, table

__all__ = ["SWEEP_ROWS", "render_chain", "render_derived", "render_diff", "render_explanation", "render_forecast",
           "render_json", "render_leaderboard", "render_outcome", "render_plan_summary", "render_progress",
           "render_study", "render_summary", "render_sweep_leaderboard", "render_sweep_summary", "render_validation",
           "render_yaml", "table"]

_STATUS_WIDTH = 8
_RUNNING_SHOWN = 3
_FEATURES_SHOWN = 12


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
            f"thread budget {sched.thread_budget}, up to {sched.max_parallel} steps at once; "
            + _schedule_line(sweep.schedule),
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


def _schedule_line(schedule: Any) -> str:
    """The sweep's one schedule: its distinct steps, how many several points share, and its hash."""
    shared = sum(len(s.points) > 1 for s in schedule.steps)
    return (f"one schedule {schedule.plan.plan_hash[:12]}: {len(schedule.steps)} distinct steps ({shared} shared by "
            "several points, each run once)")


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
    from tkplan.planner import thaw

    rows = [(where, _short(thaw(d.value)), d.rule, d.why) for where, d in derived]
    return "\n".join([f"{key}: derived by the planner", *(f"  {line}" for line in aligned(rows))])


def render_diff(diffs: Sequence[Any], old: tuple[str, Any], new: tuple[str, Any], fmt: str = "table") -> str:
    """``tkplan diff``: the differences between two plans, each ``(path, plan)``, by section and key with where
    each value came from, or JSON (``fmt="json"``)."""
    import json

    (old_path, a), (new_path, b) = old, new
    if fmt == "json":
        return render_json(list(diffs))
    if not diffs:
        return f"same plan ({a.plan_hash[:12]})" if a.plan_hash == b.plan_hash else "no semantic difference"
    lines = [f"{len(diffs)} difference(s): {old_path} ({a.plan_hash[:12]}) → {new_path} ({b.plan_hash[:12]})"]
    section = None
    for d in diffs:
        if d.section != section:
            section = d.section
            lines.append(f"\n[{section}]")
        lines.append(f"  {d.key}: {json.dumps(d.old)} → {json.dumps(d.new)}")
        for label, origin in (("was", d.old_origin), ("now", d.new_origin)):
            if origin:
                lines.append(f"      {label}: {origin}")
    return "\n".join(lines)


def render_json(value: Any) -> str:
    """``--format json`` for scripts: ``value`` (attrs objects, inside plain data too) unstructured, keys sorted."""
    import json

    from tkplan.planner import converter

    return json.dumps(converter.unstructure(value), indent=1, sort_keys=True)


def render_validation(resolved: Any) -> str:
    """``tkplan validate``: the layers that passed (family profiles left out) and how many steps they make."""
    layers = " → ".join(layer.name for layer in resolved.layers if layer.kind != "family")
    return f"valid: {layers}; {len(resolved.work)} steps"


def render_explanation(explanation: Any) -> str:
    """``tkplan explain``: each configured key's chain, or the derivations per step, or why there are none."""
    if explanation.chains:
        return "\n".join(render_chain(key, chain) for key, chain in explanation.chains)
    if explanation.derived:
        return render_derived(explanation.key, explanation.derived)
    return f"{explanation.key}: no step of this plan derives it: {explanation.absent}"


def render_yaml(data: Any) -> str:
    """Plain data as block YAML."""
    from tkplan.planner import dump_yaml

    return dump_yaml(data)


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


def render_sweep_leaderboard(rows: Sequence[Any], keys: Sequence[str], report: Any) -> str:
    """The ablation leaderboard of a sweep (`tkplan.tools.report.SweepRow`s): one ranked table per target, a row per
    point (family × the values of the swept ``keys``; ``*`` where points sharing the row's steps differ), the
    ranking metric's mean ± sd over the seeds and ``n``, the task's other metrics; ``*`` after the rank marks the
    best."""
    split = report["split"]
    blocks = []
    for target in dict.fromkeys(r.target for r in rows):
        group = [r for r in rows if r.target == target]
        task, metric = group[0].task, group[0].metric
        others = [m for m in _SHOWN[task] if m != metric]
        body = [[f"{i}{'*' if r.best else ''}", r.family, *(r.values[k] for k in keys), r.n, _score(r, False),
                 *(_metric(r.metrics.get(n)) for n in others), r.status] for i, r in enumerate(group, 1)]
        blocks.append(f"{target} ({task}, ranked by {split} {metric}, mean ± sd over seeds)\n"
                      + table(["#", "family", *keys, "n", metric, *others, "status"], body))
    return "\n\n".join(blocks)


def _score(row: Any, per_seed: bool) -> str:
    if row.score is None:
        return "-"
    return _metric(row.score) + ("" if per_seed or row.sd is None else f" ± {row.sd:.4f}")


def _metric(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def render_progress(event: Any) -> str | None:
    """One progress line for an executor event, or ``None`` for an event that shows nothing."""
    from tkplan.runtime import (
        DataReady,
        Heartbeat,
        HistoryRecorded,
        RunStarted,
        StepFinished,
        StepStarted,
    )

    if isinstance(event, HistoryRecorded):
        if event.error:
            return f"warning: this run's observations were not recorded: {event.error}"
        return f"history: {event.steps} step(s) recorded as run {event.run} in {event.store}"

    if isinstance(event, DataReady):
        shown = ", ".join(event.features[:_FEATURES_SHOWN])
        more = f" +{len(event.features) - _FEATURES_SHOWN} more" if len(event.features) > _FEATURES_SHOWN else ""
        lines = [f"data {event.source}: {len(event.features)} features: {shown}{more}"]
        lines += [f"  not a feature: {column}: {reason}" for column, reason in event.dropped]
        if event.dropped:
            lines.append(f"  (kept in {event.directory}/meta.json)")
        return "\n".join(lines)

    if isinstance(event, RunStarted):
        if event.finished:
            return (f"run {event.run_dir}: this plan's run finished already ({event.total} steps); nothing runs again "
                    "(--fresh runs it again in a new directory, --resume re-runs the steps that did not end ok)")
        line = f"run {event.run_dir}: {event.total} steps"
        if event.done:
            line += f", {event.done} already finished"
        if event.adopted:
            line += f" ({', '.join(event.adopted)} finished while no executor watched)"
        for difference in event.drift:
            line += f"\n  drift allowed: {difference}"
        if event.data_drift:
            line += f"\n  data drift allowed: {event.data_drift}"
        return line
    if isinstance(event, StepStarted):
        return (f"{_counter(event.done, event.total)} {'start':<{_STATUS_WIDTH}}{event.step_id}   "
                f"running: {_running(event.running)}   elapsed {_clock(event.elapsed_s)}")
    if isinstance(event, Heartbeat):
        return (f"{_counter(event.done, event.total)} {'running':<{_STATUS_WIDTH}}{_running(event.running)}   "
                f"elapsed {_clock(event.elapsed_s)}")
    if isinstance(event, StepFinished):
        result = event.result
        wall = f"{result.wall_s:.1f}s" if result.wall_s is not None else "-"
        line = (f"{_counter(event.done, event.total)} {result.status:<{_STATUS_WIDTH}}{result.step_id}   {wall}   "
                f"running: {_running(event.running)}   elapsed {_clock(event.elapsed_s)}")
        return line + (f"\n    {result.detail}" if result.detail else "")
    return None


def render_summary(summary: Any) -> str:
    """The summary table: status, usage next to the allowance, thread pools; then what went wrong.

    ``threads used / planned``: the largest thread pool inside the step (OpenMP, BLAS, torch/TF intra-op, the
    library's own) next to the plan's threads, ``!`` when a pool ran more; ``OS threads``: every thread of
    the step's processes (interpreter and helper threads too), not judged.
    """
    from tkplan.tools.report import largest_pool, thread_pools

    header = ("step", "status", "wall s", "cpu s", "peak RSS MB / cap", "threads used / planned", "OS threads",
              "pools")
    rows = []
    for r in summary.results:
        cap = r.allowed.memory_cap_mb
        pools = thread_pools(r)
        used = largest_pool(pools)
        rows.append((
            r.step_id + (" (adopted)" if r.adopted else ""), r.status, _num(r.wall_s), _num(r.cpu_s),
            f"{_num(r.peak_rss_mb, 0)} / {cap if cap is not None else '-'}",
            f"{used if used is not None else '-'} / {r.allowed.threads}"
            + (" !" if used is not None and used > r.allowed.threads else ""),
            r.threads_seen if r.threads_seen is not None else "-",
            " ".join(f"{name}:{size}" for name, size in pools.items()) or "-"))
    lines = [table(header, rows)]
    if any(row[5].endswith("!") for row in rows):
        lines.append("\n! a thread pool inside the step ran more threads than the plan allowed")
    problems = [r for r in summary.results if not r.ok]
    if problems:
        lines.append("")
        for r in problems:
            where = f" (traceback: {summary.run_dir}/steps/{r.step_id}/result.json)" if r.error else ""
            lines.append(f"{r.status:<{_STATUS_WIDTH}}{r.step_id}: {r.detail}{where}")
    counts = ", ".join(f"{n} {status}" for status, n in summary.counts.items() if n)
    lines.append(f"\n{len(summary.results)} steps: {counts}; {_clock(summary.wall_s)}; run directory {summary.run_dir}")
    return "\n".join(lines)


def _counter(done: int, total: int) -> str:
    width = len(str(total))
    return f"[{done:>{width}}/{total}]"


def _running(ids: Sequence[str]) -> str:
    if not ids:
        return "-"
    shown = ", ".join(ids[:_RUNNING_SHOWN])
    return shown + (f" +{len(ids) - _RUNNING_SHOWN}" if len(ids) > _RUNNING_SHOWN else "")


def _clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss`` of ``seconds``, to the nearest second."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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


def render_forecast(told: Any, runs: int | None = None, snapshot: Any = None, what: str = "expected makespan") -> str:
    """``expected makespan …, lower bound …`` for a compile's summary (seconds with history, else cost units), and
    how many runs of other machines the store holds, kept apart; ``what`` names the figure (a sweep's and a
    study's: ``expected total``)."""
    apart = getattr(snapshot, "kept_apart", 0)
    note = (f"\n(the history store holds {apart} run(s) of other hardware: kept apart, timings are not scaled "
            "across machines)") if apart else ""
    return _forecast_line(told, runs, what) + note


def _forecast_line(told: Any, runs: int | None, what: str) -> str:
    if not told.seconds:
        return (f"{what} {told.makespan:g} cost units, lower bound {told.lower_bound:g} (no timings in the "
                "history for these steps on this machine: relative family costs, not seconds; a run teaches the next "
                "compile)")
    source = f" from {runs} earlier run(s)" if runs else ""
    return (f"{what} {_clock(told.makespan)} ({told.makespan:.1f} s){source}, lower bound "
            f"{told.lower_bound:.1f} s = max({told.work:.1f} CPU s / {told.cpus} CPUs, longest step {told.longest} "
            f"{told.longest_s:.1f} s): {told.makespan / told.lower_bound if told.lower_bound else 1:.2f} × the bound")


def render_outcome(plan: Any, wall_s: float) -> str:
    """``tkplan run``'s last line: the makespan the plan expected against the actual one."""
    expected = plan.schedule.expected_makespan_s
    if expected is None:
        return (f"actual {_clock(wall_s)} ({wall_s:.1f} s); no expectation: the plan was compiled without history "
                "(this run's observations teach the next compile)")
    error = (wall_s - expected) / expected * 100 if expected else 0.0
    return f"expected {_clock(expected)} ({expected:.1f} s), actual {_clock(wall_s)} ({wall_s:.1f} s): {error:+.0f} %"
