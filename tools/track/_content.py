"""What a run directory logs to MLflow, as plain values: no MLflow here, so it can be checked without a store.

The parent run (one per run directory: a campaign, a sweep or a study): tags ``plan_hash``, ``tkplan.kind``,
``tkplan.run_name`` (a sweep's also ``tkplan.sweep_hash``, ``tkplan.points`` and its ``sweep.json`` as an
artifact; a step several points share names them in ``tkplan.sweep_points``); the resolved configuration as
params (dotted keys, JSON values); ``plan.json`` (and ``summary.json`` once the run ended) as artifacts. A
step's run: its params (the family's parameters, seed, threads, device, precision, limits), its metrics
(``val.rmse``, ``test.roc_auc``; ``test.<target>.<metric>`` for a step with several targets; ``usage.*`` for
what it used; per-epoch curves as ``curve.val_loss`` with the epoch as MLflow's step), tags
(``tkplan.status``, ``tkplan.detail``, its derivations as ``derived.<key>``), and its model, predictions and
result as artifacts; a step that did not end ok ends ``FAILED`` (``KILLED`` when skipped) with its traceback
and log tail as ``error.txt``.

A study (``tkplan tune``) has a run of its own (tags ``tkplan.kind=study``, ``tkplan.study``,
``tkplan.metric``, ``tkplan.direction``, ``tkplan.best_trial``; the metrics ``best_value`` and
``trials.<state>``, a count per trial state; ``study.json`` as an artifact), with a nested run per trial: the
trial's run directory's parent run (tagged ``tkplan.kind=trial``, ``tkplan.trial``, ``tkplan.state``,
``tkplan.detail``; its sampled params; the metric ``value``), ending ``FINISHED`` when ``COMPLETE``, ``KILLED``
when ``PRUNED``, ``FAILED`` when ``FAIL``, its steps nested in it. A trial never compiled has the same run
with no steps.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tkplan.planner._convert import thaw
from tkplan.planner._plan import Step
from tkplan.runtime import StepResult
from tkplan.tools.report import RunView, log_tail, usage

__all__ = ["RunContent", "parent_content", "step_content", "study_content", "trial_content"]

_MLFLOW_STATUS = {"ok": "FINISHED", "skipped": "KILLED", "pruned": "KILLED"}
_TRIAL_STATUS = {"COMPLETE": _MLFLOW_STATUS["ok"], "PRUNED": _MLFLOW_STATUS["pruned"], "RUNNING": "RUNNING"}
_LOG_LINES = 40
_INTERNAL = ("step.json", "outcome.json", "stdout.log", "stderr.log")


@attrs.frozen
class RunContent:
    """One MLflow run's content.

    Attributes:
        name: the run's name.
        params, tags: key → text; metrics: ``(key, value, step)`` triples.
        artifacts: files to upload (paths in the run directory); texts: artifact name → text to upload.
        status: MLflow's run status; start_ms / end_ms: its times (``None``: unknown).
    """

    name: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metrics: tuple[tuple[str, float, int], ...]
    artifacts: tuple[Path, ...]
    texts: Mapping[str, str]
    status: str
    start_ms: int | None
    end_ms: int | None

    def digest(self) -> str:
        """A digest of everything logged: a re-sync skips a run whose digest did not change."""
        stamp = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in self.artifacts if p.is_file()]
        data = [self.name, sorted(self.params.items()), sorted(self.tags.items()), list(self.metrics), stamp,
                sorted(self.texts.items()), self.status, self.start_ms, self.end_ms]
        return hashlib.sha256(json.dumps(data, default=str).encode()).hexdigest()


def parent_content(view: RunView) -> RunContent:
    """The parent run of ``view``: RUNNING until the journal says the run finished."""
    plan = view.plan
    finished = next((r for r in reversed(view.journal) if r["event"] in ("run_finished", "run_started")), None)
    done = finished is not None and finished["event"] == "run_finished"
    ok = done and all(r.ok for r in view.results.values()) and len(view.results) == len(plan.steps)
    times = [r["time"] for r in view.journal]
    artifacts = [view.path / "plan.json"] + ([view.path / "summary.json"] if done else [])
    sweep = view.extras.get("sweep") or {}
    extra = {"tkplan.sweep_hash": str(sweep.get("sweep_hash")), "tkplan.points": str(len(sweep.get("points", ())))}
    return RunContent(
        name=f"{plan.config['run']['name']}-{plan.plan_hash[:12]}",
        params={k: _text(v) for k, v in _flatten(thaw(plan.config))},
        tags={"plan_hash": plan.plan_hash, "tkplan.run_dir": str(view.path.resolve()), "tkplan.kind": view.kind,
              "tkplan.run_name": plan.config["run"]["name"],
              "tkplan.steps": str(len(plan.steps)), "tkplan.tkplan_version": plan.inputs.tkplan_version,
              **(extra if sweep else {})},
        metrics=tuple((f"steps.{status}", float(sum(r.status == status for r in view.results.values())), 0)
                      for status in ("ok", "failed", "timeout", "oom", "crashed", "skipped")),
        artifacts=tuple(p for p in [*artifacts, view.path / "sweep.json"] if p.is_file()), texts={},
        status=("FINISHED" if ok else "FAILED") if done else "RUNNING",
        start_ms=_ms(times[0]) if times else None, end_ms=_ms(times[-1]) if done and times else None)


def step_content(view: RunView, step: Step, result: StepResult) -> RunContent:
    """The run of one step that has ended."""
    params = {k: _text(v) for k, v in _flatten(thaw(step.params))}
    params.update({"seed": str(step.seed), "threads": str(step.resources.threads), "device": step.resources.device,
                   "precision": step.resources.precision, "isolation": step.isolation.mode,
                   "timeout_s": str(step.limits.timeout_s), "memory_cap_mb": _text(step.limits.memory_cap_mb),
                   "vram_cap_mb": _text(step.limits.vram_cap_mb)})
    tags = {"plan_hash": view.plan.plan_hash, "tkplan.run_dir": str(view.path.resolve()), "tkplan.step": step.id,
            "tkplan.family": step.family,
            "tkplan.target": step.target, "tkplan.task": step.task, "tkplan.status": result.status,
            "tkplan.detail": result.detail, "tkplan.attempt": str(result.attempt)}
    tags.update({f"derived.{d.key}": f"{_text(thaw(d.value))} ({d.rule}: {d.why})" for d in step.derivations})
    points = ((view.extras.get("sweep") or {}).get("shared") or {}).get(step.id)
    if points:  # a step that several points of a sweep share
        tags["tkplan.sweep_points"] = ",".join(map(str, points))
    end = None if result.started_at is None or result.wall_s is None else result.started_at + result.wall_s
    at = 0
    metrics = [*_metric_values(result.metrics, step, at)]
    used = usage(step, result)
    for key, value in (("wall_s", used.wall_s), ("cpu_s", used.cpu_s), ("peak_rss_mb", used.peak_rss_mb),
                       ("threads_used", used.threads_used), ("os_threads", used.os_threads),
                       ("gpu_peak_mb", used.gpu_peak_mb)):
        if isinstance(value, (int, float)):
            metrics.append((f"usage.{key}", float(value), at))
    fit = result.output.get("fit")
    curves = fit.get("curves") if isinstance(fit, Mapping) else None
    for name, values in (curves or {}).items():
        metrics += [(f"curve.{name}", float(v), epoch) for epoch, v in enumerate(values, 1) if v is not None]
    step_dir = view.path / "steps" / step.id
    declared = result.output.get("artifacts")
    if isinstance(declared, (list, tuple)):
        names = [*map(str, declared), "result.json"]
    else:  # a trainer of one's own that declares nothing: what it left in its directory
        names = sorted(p.name for p in step_dir.iterdir() if p.is_file() and p.name not in _INTERNAL
                       and not p.name.startswith(".")) if step_dir.is_dir() else []
    texts = {}
    if not result.ok:
        tail = log_tail(view.path, step.id, _LOG_LINES)
        texts["error.txt"] = "\n\n".join(x for x in (result.detail, result.error or "", tail) if x) + "\n"
    return RunContent(name=step.id, params=params, tags=tags, metrics=tuple(metrics),
                      artifacts=tuple(step_dir / n for n in names if (step_dir / str(n)).is_file()), texts=texts,
                      status=_MLFLOW_STATUS.get(result.status, "FAILED"),
                      start_ms=_ms(result.started_at) if result.started_at else None,
                      end_ms=_ms(end) if end else None)


def study_content(study_dir: Path, study: Mapping[str, Any], journal: list[dict[str, Any]]) -> RunContent:
    """The run of a study (``study``: its ``study.json``; ``journal``: its journal's records)."""
    ended = next((r for r in reversed(journal) if str(r["event"]).startswith("study_")), None)
    event = ended["event"] if ended else "study_started"
    best = study.get("best") or {}
    times = [r["time"] for r in journal]
    metrics = [(f"trials.{state.lower()}", float(n), 0) for state, n in sorted((study.get("counts") or {}).items())]
    if _number(best.get("value")):
        metrics.append(("best_value", float(best["value"]), 0))
    tags = {"tkplan.run_dir": str(Path(study_dir).resolve()), "tkplan.kind": "study", "tkplan.study": study["name"],
            "tkplan.metric": f"{study.get('split', 'val')}.{study['metric']}", "tkplan.direction": study["direction"],
            "tkplan.trials": str(len(study["trials"]))}
    if best:
        tags.update({"tkplan.best_trial": str(best["number"]), "tkplan.best_plan_hash": str(best.get("plan_hash"))})
    status = {"study_finished": "FINISHED", "study_interrupted": "KILLED"}.get(event, "RUNNING")
    return RunContent(name=f"study-{study['name']}", params={}, tags=tags, metrics=tuple(metrics),
                      artifacts=(Path(study_dir) / "study.json",), texts={}, status=status,
                      start_ms=_ms(times[0]) if times else None,
                      end_ms=_ms(times[-1]) if times and status != "RUNNING" else None)


def trial_content(study_dir: Path, trial: Mapping[str, Any], view: RunView | None,
                  journal: list[dict[str, Any]]) -> RunContent:
    """The run of one trial (``trial``: its entry in ``study.json``): its run directory's parent run (``view``)
    with what the study recorded of it; a trial never compiled (``view`` ``None``): that record alone, timed by
    the study's journal."""
    if view is not None:
        base = parent_content(view)
    else:
        times = [r["time"] for r in journal if r.get("trial") == trial["number"]
                 and r["event"] in ("trial_started", "trial_finished")]
        base = RunContent(name="", params={}, tags={"tkplan.run_dir": str(Path(study_dir).resolve())}, metrics=(),
                          artifacts=(), texts={}, status="FAILED", start_ms=_ms(times[0]) if times else None,
                          end_ms=_ms(times[-1]) if times else None)
    params = {**base.params, **{k: _text(v) for k, v in (trial.get("params") or {}).items()}}
    tags = {**base.tags, "tkplan.kind": "trial", "tkplan.trial": str(trial["number"]),
            "tkplan.state": trial["state"],
            "tkplan.detail": str(trial.get("detail") or "")}
    if trial.get("retry_of") is not None:
        tags["tkplan.retry_of"] = str(trial["retry_of"])
    metrics = [*base.metrics, *([("value", float(trial["value"]), 0)] if _number(trial.get("value")) else [])]
    if _number(trial.get("duration_s")):
        metrics.append(("duration_s", float(trial["duration_s"]), 0))
    status = _TRIAL_STATUS.get(trial["state"], "FAILED")
    return attrs.evolve(base, name=f"trial-{trial['number']:04d}", params=params, tags=tags, metrics=tuple(metrics),
                        status=status, end_ms=base.end_ms if status != "RUNNING" else None)


def _metric_values(metrics: Mapping[str, Any], step: Step, at: int) -> list[tuple[str, float, int]]:
    out = []
    for split, values in metrics.items():
        if not isinstance(values, Mapping):  # a trainer of one's own may return flat metrics
            out += [(split, float(values), at)] if _number(values) else []
            continue
        for name, value in values.items():
            if isinstance(value, Mapping):  # several targets: split → target → metric
                out += [(f"{split}.{name}.{k}", float(v), at) for k, v in value.items() if _number(v)]
            elif _number(value):
                out.append((f"{split}.{name}", float(value), at))
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Leaves as (dotted key, value); an empty mapping below the top is a leaf, the top one has none."""
    if isinstance(data, Mapping) and (data or not prefix):
        return [item for k, v in data.items() for item in _flatten(v, f"{prefix}{k}.")]
    return [(prefix[:-1], data)]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
