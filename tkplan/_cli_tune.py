"""``tkplan tune``: a hyperparameter study, each trial a plan; click wiring and rendering only.

``tkplan.cli`` loads it when invoked. Progress (a line per trial started and ended) goes to stderr, the
study's table to stdout at the end.

Exit codes: 0 the study ran (whatever its trials' states); 2 bad invocation; 3 an invalid configuration or
search space; 4 a study that cannot be planned on this machine; 5 the study directory refused (locked, not a
study's, holding a study without ``--resume``, a storage that cannot be opened); 6 bad data; 8 Optuna is not
installed (extra ``tune``); 128 + N interrupted by signal N (running trials are stopped and asked again by
``--resume``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["tune_cmd"]

_PARAMS_SHOWN = 60


@click.command("tune")
@click.argument("words", nargs=-1)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one key (repeatable).")
@click.option("--hermetic", is_flag=True, help="Ignore the environment: no TKPLAN__* or legacy variables.")
@click.option("--trials", type=click.IntRange(min=1), help="Trials to finish (default: tune.trials).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Start no trial after S seconds (default: tune.timeout_s).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Study directory (default: <run.output_dir>/<study name>-tune).")
@click.option("--resume", is_flag=True, help="Continue the study the directory holds: finished trials are kept, "
                                             "the ones a kill left running are asked again.")
@click.option("--emit-best", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the best trial's values as a profile that `tkplan compile` takes as it is.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="The study on stdout: a table, or JSON for scripts.")
@click.option("--history", "history", metavar="PATH|none", default=None,
              help="Plan the trials with this history store, or none to plan cold (default: the profile's "
                   "history.store); each finished trial adds to it.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def tune_cmd(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool, trials: int | None,
             timeout: float | None, out: str | None, resume: bool, emit_best: str | None, fmt: str,
             history: str | None, quiet: bool) -> None:
    """Run a hyperparameter study: Optuna asks for trials, each trial is a plan compiled for its values.

    WORDS are profiles and overrides as in `tkplan compile`; a profile's `search:` section maps keys to
    distributions ({int: [16, 256], log: true}, {float: [1e-4, 1e-2], log: true}, {choice: [relu, tanh]})
    and its `tune:` section sets the metric, sampler, pruner, trials and storage. As many trials run at once
    as the thread budget holds; a trial pruned or ended frees its threads for the next one at once. Before the
    first trial it prints the study's expected total, from the history store when it holds such steps.
    """
    import attrs

    import tkplan
    from tkplan import _compile_cache
    from tkplan._compile_cache import read_snapshot, store_path
    from tkplan._data_digest import measure
    from tkplan._entry import Interrupted, interrupts
    from tkplan._render import render_forecast
    from tkplan.planner import (
        CompileRequest,
        compile_trial,
        converter,
        forecast_study,
        load_study,
        probe,
        trials_at_once,
    )
    from tkplan.runtime import StudySpec, run_study

    request = CompileRequest(words=words, sets=sets, env=dict(os.environ), cwd=Path.cwd(), hermetic=hermetic)
    study = load_study(request)
    settings = study.settings
    settings = attrs.evolve(settings, trials=trials or settings.trials,
                            timeout_s=timeout if timeout is not None else settings.timeout_s)
    study = attrs.evolve(study, settings=settings)
    hardware = probe()
    parallel, threads, budget = trials_at_once(study, hardware)
    files = measure(study.resolved, request.cwd, _compile_cache.cache_dir(os.environ))
    store = store_path(history or str(study.resolved.config["history"]["store"]), os.environ, request.cwd)
    snapshot, warning = read_snapshot(store, hardware)
    if warning:
        click.echo(warning, err=True)
    spec = StudySpec(
        name=settings.name, metric=study.metric, direction=study.direction, trials=settings.trials,
        timeout_s=settings.timeout_s, parallel=parallel, sampler=settings.sampler, sampler_seed=settings.sampler_seed,
        sampler_startup_trials=settings.sampler_startup_trials, pruner=settings.pruner,
        pruner_startup_trials=settings.pruner_startup_trials, warmup_steps=settings.warmup_steps,
        storage=settings.storage, space=tuple(converter.unstructure(d) for d in study.space),
        enqueue=settings.enqueue)
    run = study.resolved.config["run"]
    study_dir = Path(out) if out else Path.cwd() / str(run["output_dir"]) / f"{settings.name}-tune"

    isolation: list[str | None] = [None]  # the last trial's: the next is planned once when it is the same

    def compile_one(values: Any, number: int) -> Any:
        plan = compile_trial(study, values, number, threads, hardware, "probe", tkplan.__version__, files,
                             snapshot, isolation=isolation[0])
        isolation[0] = plan.steps[0].isolation.mode if plan.steps else None
        return plan

    if not quiet:
        told = forecast_study(study, threads, parallel, hardware, "probe", tkplan.__version__, files, snapshot)
        click.echo(f"study {settings.name}: {settings.trials} trials, {parallel} at once ({threads} thread(s) "
                   f"each), {spec.direction} val {spec.metric}; {study_dir}\n"
                   f"{render_forecast(told, None, snapshot, 'expected total (without pruning)')}", err=True)
    from tkplan._trainers import family_trainers

    try:
        with interrupts():
            summary = run_study(spec, compile_one, study_dir, thread_budget=max(budget, threads), resume=resume,
                                on_event=None if quiet else _echo_event, project_root=request.cwd,
                                digest_cache=_compile_cache.cache_dir(os.environ), trainers=family_trainers(),
                                history=store)
    except (Interrupted, KeyboardInterrupt) as exc:
        with contextlib.suppress(OSError):
            click.echo(f"interrupted: running trials were stopped; continue the study with --resume --out "
                       f"{study_dir}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, Interrupted) else 128 + signal.SIGINT)
    if emit_best:
        _emit_best(study, summary, emit_best)
    if fmt == "json":
        click.echo(json.dumps(converter.unstructure(summary), indent=1, sort_keys=True))
    else:
        from tkplan._render import render_study

        click.echo(render_study(converter.unstructure(summary)))


def _emit_best(study: Any, summary: Any, path: str) -> None:
    from tkplan._io import write_text_atomic
    from tkplan.cli import UnusablePath
    from tkplan.planner import best_profile

    best = summary.best
    if best is None:
        click.echo(f"warning: no trial completed: {path} not written", err=True)
        return
    target = Path(path)
    where = target.absolute().parent
    extends = [p if "/" not in p and not p.endswith((".yaml", ".yml")) else
               os.path.relpath(Path.cwd() / p, where) for p in study.profiles]
    header = (f"tune: study {summary.name}, trial {best.number} (val {summary.metric} {best.value:.6g}, "
              f"{summary.direction})\nwritten by tkplan tune --emit-best; its model is {summary.study_dir}/"
              f"{best.directory}: compile it as it is, tkplan compile {path}")
    try:
        write_text_atomic(target, best_profile(study, dict(best.params), header, extends))
    except OSError as exc:
        raise UnusablePath(path, exc) from None
    click.echo(f"best trial {best.number} written to {path}", err=True)


def _echo_event(event: Any) -> None:
    trial = event.trial
    params = _params(trial.params)
    if event.kind == "started":
        line = f"trial {trial.number} started: {params}"
    elif event.kind == "requeued":
        line = f"trial {trial.number} was running when the study was killed: asked again"
    else:
        value = "" if trial.value is None else f" {trial.value:.6g}"
        wall = "" if trial.duration_s is None else f" in {trial.duration_s:.1f} s"
        detail = f" ({trial.detail})" if trial.detail and trial.state != "COMPLETE" else ""
        line = f"trial {trial.number} {trial.state}{value}{wall}{detail}"
    running = ", ".join(str(n) for n in event.running) or "none"
    click.echo(f"[{event.finished}/{event.total} {event.elapsed_s:.0f}s] {line}; running: {running}", err=True)


def _params(params: Any) -> str:
    text = " ".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in params.items())
    return text if len(text) <= _PARAMS_SHOWN * 2 else text[:_PARAMS_SHOWN * 2 - 1] + "…"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value) if not isinstance(value, str) else value
