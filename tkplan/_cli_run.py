"""The executor's commands: ``tkplan run``, ``tkplan env``, ``tkplan exec``. Click wiring and rendering only.

``tkplan.cli`` loads them when invoked; ``register(group)`` adds them to another group. Progress goes to
stderr, the summary to stdout (both rendered by ``tkplan._render``).

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
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from tkplan._io import write_text_atomic
from tkplan._render import render_progress, render_summary
from tkplan.tools.report._cli import report_cmd

__all__ = ["EngineName", "demo_cmd", "env_cmd", "exec_cmd", "register", "report_cmd", "run_cmd"]

class EngineName(click.ParamType):
    """An engine registered with the runtime (``local``, ``ray``, or one an installed package declares)."""

    name = "engine"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from tkplan.runtime import engine_names

        if value not in engine_names():
            self.fail(f"no engine {value!r}; known: {', '.join(engine_names())}", param, ctx)
        return str(value)


def _load_plan(path: str) -> Any:
    from tkplan.errors import error_context
    from tkplan.planner import read_plan

    with error_context(source=path):
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
    click.option("--engine", type=EngineName(), default=None,
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

    PLAN is a plan (tkplan compile -o) or a sweep file (tkplan sweep -o): a sweep runs its one schedule, each
    step its points share once, and ends with the ablation leaderboard (default run directory
    <run.output_dir>/<run.name>-sweep-<sweep_hash[:12]>; --out of an earlier, smaller sweep extends it).
    A run directory that holds this plan's run finished already prints its summary and runs nothing.
    Exits 0 when every step ended ok, 1 when one did not, 5 when the plan, its data or the run directory is
    refused, 6 on bad data.
    """
    from tkplan.errors import error_context
    from tkplan.planner import SweepPlan, read_runnable
    from tkplan.runtime import project_root

    with error_context(source=plan_path):
        runnable = read_runnable(plan_path)
    sweep = _sweep_run(runnable) if isinstance(runnable, SweepPlan) else None
    plan = sweep.plan if sweep else runnable
    with error_context(source=plan_path, plan_hash=plan.plan_hash):
        summary = _execute(plan, project_root(Path(plan_path)), sweep=sweep, **options)
    board = _sweep_board(summary.run_dir) if sweep else None
    if fmt == "json":
        from tkplan._render import render_json
        from tkplan.planner import converter

        if board is None:
            click.echo(render_json(summary))
        else:
            rows = [{**converter.unstructure(row), "status": row.status} for row in board[0]]
            click.echo(render_json({"summary": summary, "leaderboard": rows}))
    else:
        from tkplan._render import render_outcome

        click.echo(render_summary(summary))
        click.echo(render_outcome(plan, summary.wall_s))
        if board is not None:
            from tkplan._render import render_sweep_leaderboard

            click.echo("\n" + render_sweep_leaderboard(*board, plan.config["report"]))
    if not summary.ok:
        sys.exit(1)


def _sweep_run(sweep: Any) -> Any:
    """What the executor runs of a sweep file: its schedule, each step's home plan, the run directory's record."""
    from tkplan.planner import run_record
    from tkplan.runtime import SweepRun

    return SweepRun(sweep.schedule.plan, {s.id: sweep.plans[s.home] for s in sweep.schedule.steps}, run_record(sweep))


def _sweep_board(run_dir: str) -> tuple[Any, list[str]]:
    """The ablation leaderboard of a sweep's run directory, and its columns."""
    from tkplan.tools.report import load_run, sweep_columns, sweep_leaderboard

    view = load_run(Path(run_dir))
    return sweep_leaderboard(view), sweep_columns(view)


def _execute(plan: Any, root: Path, *, out: str | None, fresh: bool, engine: str | None, quiet: bool,
             track: str | None = None, address: str | None = None, sweep: Any = None, **options: Any) -> Any:
    """Run ``plan`` with progress on stderr (live on a terminal, plain lines otherwise) and, with ``track``
    (a URI, or ``""`` for the default), MLflow tracking; a stopping signal ends it with exit code 128 + the
    signal's number. ``root`` is the plan's project (where a relative data path is); ``sweep``: a
    `tkplan.runtime.SweepRun` whose union ``plan`` is."""
    from tkplan import _compile_cache
    from tkplan._compile_cache import store_path
    from tkplan._entry import Interrupted, interrupts
    from tkplan._trainers import execute
    from tkplan.runtime import DEFAULT_ENGINE, default_run_dir, default_sweep_dir, fresh_run_dir

    engine = engine or DEFAULT_ENGINE
    if address is not None and engine != "ray":
        raise click.BadParameter(f"a cluster address is for --engine ray, not {engine}", param_hint="--address")
    if out:
        run_dir = Path(out)
    else:
        run_dir = default_sweep_dir(sweep, Path.cwd()) if sweep else default_run_dir(plan, Path.cwd())
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
                           digest_cache=_compile_cache.cache_dir(os.environ), sweep=sweep,
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
    from tkplan.tools.track import RunTracker

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
    from tkplan._compile_cache import compile_measured, hardware_for
    from tkplan._render import render_leaderboard, render_plan_summary
    from tkplan.errors import ExtraMissingError
    from tkplan.planner import CompileRequest
    from tkplan.tools.report import leaderboard, load_run, render_html

    request = CompileRequest(words=words, env=dict(os.environ), cwd=Path.cwd())
    plan = compile_measured(request, *hardware_for(None), tkplan.__version__)
    if not options["quiet"]:
        click.echo(render_plan_summary(plan).split("\nstep ")[0], err=True)
    summary = _execute(plan, request.cwd, **options)
    run_dir = Path(os.path.relpath(summary.run_dir))  # as the user would write it, like --out
    entries = leaderboard(plan, {r.step_id: r for r in summary.results})
    if fmt == "json":
        from tkplan._render import render_json

        click.echo(render_json({"summary": summary, "leaderboard": entries}))
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
    from tkplan.runtime import exec_step

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


def _echo_progress(event: Any) -> None:
    line = render_progress(event)
    if line is not None:
        with contextlib.suppress(OSError):  # stderr closed (a pipe gone, the terminal hung up): the run goes on
            click.echo(line, err=True)


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
