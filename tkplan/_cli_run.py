"""The executor's commands: ``tkplan run``, ``tkplan env``, ``tkplan exec``. Click wiring and rendering only.

``tkplan.cli`` loads them when invoked; ``register(group)`` adds them to another group. Progress goes to
stderr, the summary to stdout.

Exit codes of ``tkplan run`` (and ``tkplan demo``): 0 every step ended ok; 1 a step did not end ok (failed,
timeout, oom, crashed, skipped); 2 bad invocation; 5 refused (an edited plan, hardware drift, a changed data
file, a run directory that is locked, foreign, unfinished without ``--resume`` or cannot be created, a damaged
plan or run directory, a cluster's plan on the local engine); 6 bad data; 7 the disk is full (nothing is lost:
``--resume`` finishes the run once there is room); 8 the engine cannot reach where steps run; 128 + N
interrupted by signal N: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP, 131 SIGQUIT (running steps are killed and re-run
by ``--resume``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from tkplan._io import write_text_atomic
from tkplan.tools.report._cli import report_cmd

__all__ = ["demo_cmd", "env_cmd", "exec_cmd", "register", "render_progress", "render_summary", "report_cmd", "run_cmd"]

_STATUS_WIDTH = 8
_RUNNING_SHOWN = 3
_FEATURES_SHOWN = 12


def _load_plan(path: str) -> Any:
    from tkplan.planner._plan import read_plan

    return read_plan(path)


_RUN_OPTIONS = [
    click.option("--out", type=click.Path(file_okay=False),
                 help="Run directory (default: <run.output_dir>/<run.name>-<plan_hash[:12]>)."),
    click.option("--resume", is_flag=True, help="Finish the run the directory holds: run again every step that did "
                                                "not end ok."),
    click.option("--fresh", is_flag=True, help="Start a new run in a new directory (<dir>-2, -3, ...) even if the "
                                               "run directory holds this plan's run."),
    click.option("--allow-drift", is_flag=True, help="Run even if this machine differs from the plan's hardware."),
    click.option("--allow-data-drift", is_flag=True,
                 help="Run even if the data file changed since the plan was compiled."),
    click.option("--max-parallel", type=click.IntRange(min=1), help="Run at most N steps at once (≤ the plan's)."),
    click.option("--engine", default=None,
                 help="Where steps run (default: local, child processes on this machine; ray: Ray tasks)."),
    click.option("--address", default=None, metavar="ADDR",
                 help="--engine ray: the Ray cluster to join (default: start a local instance sized to the plan)."),
    click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
                 help="The summary on stdout: a table, or JSON for scripts."),
    click.option("-q", "--quiet", is_flag=True, help="No progress on stderr."),
    click.option("--track", "track", is_flag=False, flag_value="", default=None, metavar="[URI]",
                 help="Log to MLflow as the run goes (default URI: sqlite:///RUN_DIR/mlflow.db; extra 'track')."),
]


def _run_options(func: Any) -> Any:
    for option in reversed(_RUN_OPTIONS):
        func = option(func)
    return func


@click.command("run")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@_run_options
def run_cmd(plan_path: str, fmt: str, **options: Any) -> None:
    """Run PLAN exactly: verify its hash, check the hardware and the data, lock the run directory, run the schedule.

    A run directory that holds this plan's run finished already prints its summary and runs nothing.
    Exits 0 when every step ended ok, 1 when one did not, 5 when the plan, its data or the run directory is
    refused, 6 on bad data.
    """
    from tkplan.runtime import project_root

    plan = _load_plan(plan_path)
    summary = _execute(plan, project_root(Path(plan_path)), **options)
    if fmt == "json":
        from tkplan.planner._convert import converter

        click.echo(json.dumps(converter.unstructure(summary), indent=1, sort_keys=True))
    else:
        from tkplan._cli_history import render_outcome

        click.echo(render_summary(summary))
        click.echo(render_outcome(plan, summary.wall_s))
    if not summary.ok:
        sys.exit(1)


def _execute(plan: Any, root: Path, *, out: str | None, fresh: bool, engine: str | None, quiet: bool,
             track: str | None = None, address: str | None = None, **options: Any) -> Any:
    """Run ``plan`` with progress on stderr (live on a terminal, plain lines otherwise) and, with ``track``
    (a URI, or ``""`` for the default), MLflow tracking; a stopping signal ends it with exit code 128 + the
    signal's number. ``root`` is the plan's project (where a relative data path is)."""
    from tkplan import _compile_cache
    from tkplan._cli_history import store_path
    from tkplan._entry import Interrupted, interrupts
    from tkplan.runtime import DEFAULT_ENGINE, default_run_dir, engine_names, execute, fresh_run_dir

    engine = engine or DEFAULT_ENGINE
    if engine not in engine_names():
        raise click.BadParameter(f"no engine {engine!r}; known: {', '.join(engine_names())}", param_hint="--engine")
    if address is not None and engine != "ray":
        raise click.BadParameter(f"a cluster address is for --engine ray, not {engine}", param_hint="--address")
    run_dir = Path(out) if out else default_run_dir(plan, Path.cwd())
    if fresh:
        run_dir = fresh_run_dir(run_dir)
    listeners: list[Any] = []
    if track is not None:
        listeners.append(_tracking(run_dir, track or None))
    try:
        with interrupts(), _progress(quiet) as show:
            listeners.insert(0, show)
            return execute(plan, run_dir, on_event=_fan_out([x for x in listeners if x is not None]), engine=engine,
                           engine_options={"address": address} if address else None, project_root=root,
                           digest_cache=_compile_cache.cache_dir(os.environ),
                           history=store_path(str((plan.config.get("history") or {}).get("store", "none")),
                                              os.environ, root), **options)
    except (Interrupted, KeyboardInterrupt) as exc:
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            click.echo(f"interrupted: running steps were stopped; finish the run with --resume --out {run_dir}",
                       err=True)
        sys.exit(exc.exit_code if isinstance(exc, Interrupted) else 128 + signal.SIGINT)


@contextmanager
def _progress(quiet: bool) -> Iterator[Any]:
    """The progress listener: none when quiet, the live display on a terminal, plain lines otherwise."""
    if quiet:
        yield None
    elif sys.stderr.isatty():
        from tkplan._live import Progress

        with Progress(render_progress) as live:
            yield live
    else:
        yield _echo_progress


def _tracking(run_dir: Path, uri: str | None) -> Any:
    """An MLflow listener that warns once and steps aside when the store fails: training goes on."""
    from tkplan.errors import ExtraMissingError, TrackingError
    from tkplan.tools.track._live import RunTracker

    tracker = RunTracker(run_dir, uri)
    failed: list[str] = []

    def listen(event: Any) -> None:
        if failed:
            return
        try:
            tracker(event)
        except (TrackingError, ExtraMissingError) as exc:
            failed.append(str(exc))
            click.echo(f"warning: MLflow tracking stopped: {exc}; the run goes on, sync it later with "
                       f"tkplan track {run_dir} --uri {tracker.uri}", err=True)

    return listen


def _fan_out(listeners: Sequence[Any]) -> Any:
    def emit(event: Any) -> None:
        for listener in listeners:
            listener(event)

    return emit


@click.command("demo")
@click.argument("words", nargs=-1)
@_run_options
def demo_cmd(words: tuple[str, ...], fmt: str, **options: Any) -> None:
    """Compile the default campaign for this machine, run it, and print the leaderboard.

    The default campaign is the model families on the built-in synthetic panel (profiles base + laptop);
    WORDS take profiles and overrides as in `tkplan compile`, the options those of `tkplan run`.
    """
    import tkplan
    from tkplan import _compile_cache
    from tkplan._data_digest import measure
    from tkplan._render import render_leaderboard, render_plan_summary
    from tkplan.errors import ExtraMissingError
    from tkplan.planner import CompileRequest, compile_plan, probe, resolve
    from tkplan.tools.report import leaderboard, load_run, render_html

    request = CompileRequest(words=words, env=dict(os.environ), cwd=Path.cwd())
    resolved = resolve(request)
    files = measure(resolved, request.cwd, _compile_cache.cache_dir(os.environ))
    plan = compile_plan(request, probe(), "probe", tkplan.__version__, files, resolved=resolved)
    if not options["quiet"]:
        click.echo(render_plan_summary(plan).split("\nstep ")[0], err=True)
    summary = _execute(plan, request.cwd, **options)
    run_dir = Path(os.path.relpath(summary.run_dir))  # as the user would write it, like --out
    entries = leaderboard(plan, {r.step_id: r for r in summary.results})
    if fmt == "json":
        from tkplan.planner._convert import converter

        click.echo(json.dumps({"summary": converter.unstructure(summary),
                               "leaderboard": [converter.unstructure(e) for e in entries]}, indent=1, sort_keys=True))
    else:
        click.echo(render_summary(summary))
        click.echo("\n" + render_leaderboard(entries, plan.config["report"]))
    report = run_dir / "report.html"
    try:
        write_text_atomic(report, render_html(load_run(run_dir)))
        click.echo(f"\nreport: {report}", err=fmt == "json")
    except ExtraMissingError as exc:
        click.echo(f"\nreport: not written: {exc}", err=fmt == "json")
    if not summary.ok:
        sys.exit(1)


@click.command("env")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@click.argument("step_id", metavar="STEP")
def env_cmd(plan_path: str, step_id: str) -> None:
    """Print STEP's environment as shell exports: eval "$(tkplan env plan.json STEP)"."""
    from tkplan.runtime import shell_exports

    plan = _load_plan(plan_path)
    click.echo(shell_exports(_step_env(plan, step_id, None)), nl=False)


_EXEC_EXIT = {"timeout": 124, "oom": 137}
"""``tkplan exec``'s exit code when it killed the command: 124 at the step's timeout (as ``timeout(1)``), 137 over
its memory cap (SIGKILL, as the kernel's OOM killer)."""


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@click.argument("step_id", metavar="STEP")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_cmd(plan_path: str, step_id: str, command: tuple[str, ...]) -> None:
    """Run COMMAND as STEP of PLAN: tkplan exec plan.json STEP -- python train.py ...

    COMMAND gets the step's environment and TKPLAN_STEP_ID, TKPLAN_PLAN_HASH, TKPLAN_STEP_FILE (JSON: the
    step's params, seed, resources, limits; the plan's config), and runs under the step's timeout and memory
    cap. Exit code: the command's own; 124 when it ran past the timeout, 137 when it passed the memory cap,
    128+N when signal N ended it; 126/127 when it cannot be started.
    """
    from tkplan._entry import interrupts
    from tkplan.runtime._exec import exec_step

    if command[:1] == ("--",):  # positional parsing stops at STEP, so click hands a separating "--" over
        command = command[1:]
    if not command:
        raise click.UsageError("no command given: tkplan exec PLAN STEP -- CMD [ARGS...]")
    plan = _load_plan(plan_path)
    try:
        plan.step(step_id)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="STEP") from None
    try:
        with interrupts():  # a stopping signal kills the command's group, then ends tkplan with 128 + it
            end = exec_step(plan, step_id, command, os.environ)
    except FileNotFoundError:
        _fail(f"command not found: {command[0]}", 127)
    except PermissionError:
        _fail(f"command not executable: {command[0]}", 126)
    if end.status in ("ok", "failed"):
        sys.exit(end.returncode)
    click.echo(f"tkplan exec: {step_id} ended {end.status}: {end.detail}", err=True)
    sys.exit(_EXEC_EXIT.get(end.status, 128 - end.returncode if end.returncode < 0 else end.returncode))


def register(group: click.Group) -> None:
    """Add ``run``, ``demo``, ``report``, ``env`` and ``exec`` to ``group`` (the ``tkplan`` command group)."""
    for command in (run_cmd, demo_cmd, report_cmd, env_cmd, exec_cmd):
        group.add_command(command)


# -- rendering -------------------------------------------------------------------------------------------


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
    from tkplan.tools.report._usage import largest_pool, thread_pools

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
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, tuple("-" * w for w in widths), *rows)]
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


def _echo_progress(event: Any) -> None:
    line = render_progress(event)
    if line is not None:
        with contextlib.suppress(OSError):  # stderr closed (a pipe gone, the terminal hung up): the run goes on
            click.echo(line, err=True)


def _counter(done: int, total: int) -> str:
    width = len(str(total))
    return f"[{done:>{width}}/{total}]"


def _running(ids: Sequence[str]) -> str:
    if not ids:
        return "-"
    shown = ", ".join(ids[:_RUNNING_SHOWN])
    return shown + (f" +{len(ids) - _RUNNING_SHOWN}" if len(ids) > _RUNNING_SHOWN else "")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# -- helpers ---------------------------------------------------------------------------------------------


def _step_env(plan: Any, step_id: str, base: Any) -> dict[str, str]:
    from tkplan.runtime import step_environment

    try:
        return step_environment(plan, step_id, base)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="STEP") from None


def _fail(message: str, code: int) -> None:
    from tkplan.cli import fail

    fail(f"Error: {message}", code)


def main() -> None:
    """``python -m tkplan._cli_run``: the ``tkplan`` group with these commands, whether or not cli.py adds them."""
    from tkplan import cli

    if "run" not in cli.main.list_commands(click.Context(cli.main)):
        register(cli.main)
    cli.run()


if __name__ == "__main__":
    main()
