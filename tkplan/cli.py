"""The ``tkplan`` command line: click wiring only; every command calls one library function and renders it.

Exit codes: 0 success; 1 a run or check finished with failures; 2 bad invocation; 3 invalid configuration;
4 a plan that cannot be honoured on the hardware (or a bad hardware spec); 5 a plan refused (edited, other
format, hardware drift, changed data, locked run directory, a damaged run directory); 6 bad data; 7 the disk is
full; 8 an optional part missing or failing (a command's extra not installed, an MLflow store unreachable or refusing a
value, a Ray cluster that does not answer, a history store that cannot be read or written); 128 + N interrupted
by signal N (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import click

import tkplan
from tkplan import errors

EXIT_CODES = errors.EXIT_CODES  # the one table of error → exit code (tkplan.errors)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``.

    (click declares ``exit_code`` on its exception classes, so a code chosen per error leaves through ``Exit``.)
    """
    click.echo(message, err=True)
    raise click.exceptions.Exit(code)


class UnusablePath(click.FileError):
    """A path given on the command line that cannot be written or created: a bad invocation (exit 2)."""

    exit_code = 2

    def __init__(self, path: str | os.PathLike[str], exc: OSError) -> None:
        hint = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):  # mkdir of the parents met a file
            hint = "a part of the path is a file, not a directory"
        super().__init__(os.fspath(path), hint=hint)


class TkplanGroup(click.Group):
    """Turns library errors into messages and exit codes; no traceback reaches the user.

    Commands living outside this module load only when invoked, so ``tkplan compile`` stays light.
    """

    lazy: ClassVar[dict[str, str]] = {
        "audit": "tkplan.tools.audit._cli:audit",
        "run": "tkplan._cli_run:run_cmd",
        "env": "tkplan._cli_run:env_cmd",
        "exec": "tkplan._cli_run:exec_cmd",
        "demo": "tkplan._cli_run:demo_cmd",
        "report": "tkplan.tools.report._cli:report_cmd",
        "track": "tkplan.tools.track._cli:track_cmd",
        "history": "tkplan._cli_history:history_group",
        "tune": "tkplan._cli_tune:tune_cmd",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module, _, attr = self.lazy[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.TkplanError as exc:
            fail(f"error: {exc}", errors.exit_code(exc))


@click.group(cls=TkplanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(tkplan.__version__, prog_name="tkplan")
def main() -> None:
    """Compile an ML training campaign into one validated, hashed plan, and run it exactly.

    \b
    tkplan compile [PROFILES...] [key=value...] -o plan.json   see and save a plan
    tkplan sweep [PROFILES...] key=a,b [key2=range(1,4)] -o sweep.json   one plan per point
    tkplan tune [PROFILES...] --trials N                     a hyperparameter study, each trial a plan
    tkplan explain KEY                                       where a value came from
    tkplan validate [PROFILES...]                            check profiles and overrides
    tkplan probe                                             this machine's hardware spec
    """


def _request(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool) -> Any:
    from tkplan.planner import CompileRequest

    return CompileRequest(words=words, sets=sets, env=dict(os.environ), cwd=Path.cwd(), hermetic=hermetic)


_HISTORY_OPTION = click.option(
    "--history", "history", metavar="PATH|none", default=None,
    help="Plan with this history store, or none to plan cold (default: the profile's history.store).")

compile_options = [
    click.argument("words", nargs=-1),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one key (repeatable)."),
    click.option("--hermetic", is_flag=True, help="Ignore the environment: no TKPLAN__* or legacy variables."),
]


def _with_compile_options(func: Any) -> Any:
    for option in reversed(compile_options):
        func = option(func)
    return func


@main.command("compile")
@_with_compile_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the plan here.")
@click.option("--hardware", "hardware_spec", type=click.Path(exists=True, dir_okay=False),
              help="Plan for the machine in this spec (from `tkplan probe`) instead of this one.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--no-cache", is_flag=True, help="Compile from scratch, ignoring the compile cache.")
@_HISTORY_OPTION
def compile_cmd(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool, output: str | None,
                hardware_spec: str | None, fmt: str, no_cache: bool, history: str | None) -> None:
    """Compile profiles and overrides into a plan; print a summary, save it with -o.

    WORDS are profile names (kaggle_safe), profile files (my/profile.yaml) and overrides
    (families.lightgbm.num_leaves=64; +key=value adds a key, ++key=value adds or sets, ~key removes;
    values may refer to other keys, ${run.name}, and to the environment, ${env:USER}).

    The plan learns from earlier runs on this machine (the history store, see `tkplan history`): expected
    costs order the steps and split the threads, observed peaks size the memory caps; the summary ends with
    the expected makespan and its lower bound. --history none plans cold.
    """
    from tkplan._compile_cache import compile_cached

    entry = compile_cached(words, sets, dict(os.environ), Path.cwd(), hermetic, hardware_spec, tkplan.__version__,
                           use_cache=not no_cache, history=history)
    if entry.get("warning"):
        click.echo(str(entry["warning"]), err=True)
    _emit(str(entry["plan"]), str(entry["summary"]), output, fmt,
          f"plan written to {output} (plan_hash {entry['plan_hash']})")


def _emit(text: str | Callable[[], Iterable[str]], summary: str, output: str | None, fmt: str, written: str) -> None:
    """Write ``text`` to ``output`` (when given) and print it (``--format json``) or its summary and ``written``.

    ``text`` may be a function that gives the text in pieces (a sweep file), written and printed as they come.
    """
    from tkplan._io import write_bytes_atomic

    def chunks() -> Iterable[str]:
        return [text] if isinstance(text, str) else text()

    if output:
        try:
            write_bytes_atomic(Path(output), (chunk.encode("utf-8") for chunk in chunks()))
        except OSError as exc:
            raise UnusablePath(output, exc) from None
    if fmt == "json":
        for chunk in chunks():
            click.echo(chunk, nl=False)
    else:
        click.echo(summary)
        if output:
            click.echo(f"\n{written}")


@main.command("sweep")
@_with_compile_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the sweep file here.")
@click.option("--hardware", "hardware_spec", type=click.Path(exists=True, dir_okay=False),
              help="Plan for the machine in this spec (from `tkplan probe`) instead of this one.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_HISTORY_OPTION
def sweep_cmd(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool, output: str | None,
              hardware_spec: str | None, fmt: str, history: str | None) -> None:
    """Compile every point of a sweep into its own plan; print a summary, save the sweep file with -o.

    Axes are overrides with several values (key=a,b,c; key=range(16,257,16); 'key=choice([64,32],[128,64])')
    and a profile's `sweep:` section (grid: key -> values, or points: a list of key -> value mappings; seeds:
    one more axis over run.base_seed). The points are the cartesian product of the axes, first axis slowest.
    Each point is planned with the history store as `tkplan compile` plans; the summary ends with the expected
    total of every distinct step.
    """
    from tkplan import _compile_cache as cache
    from tkplan._compile_cache import read_snapshot, store_path
    from tkplan._data_digest import MeasuredFiles
    from tkplan._render import render_forecast, render_sweep_summary
    from tkplan.planner import compile_sweep, forecast_sweep, load_base, sweep_chunks

    hardware, source = cache.hardware_for(hardware_spec)
    request = _request(words, sets, hermetic)
    setting = history or load_base(request).config["history"]["store"]
    snapshot, warning = read_snapshot(store_path(setting, os.environ, request.cwd), hardware)
    if warning:
        click.echo(warning, err=True)
    files = MeasuredFiles(request.cwd, cache.cache_dir(os.environ))
    sweep = compile_sweep(request, hardware, source, tkplan.__version__, files, history=snapshot)
    told = forecast_sweep(list(sweep.plans.values()))
    summary = render_sweep_summary(sweep) + "\n\n" + render_forecast(told, None, snapshot, "expected total")
    _emit(lambda: sweep_chunks(sweep), summary, output, fmt,
          f"sweep written to {output} (sweep_hash {sweep.sweep_hash})")


@main.command("validate")
@_with_compile_options
def validate_cmd(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool) -> None:
    """Check profiles and overrides against the schema; report every problem at once."""
    from tkplan._render import render_validation
    from tkplan.planner import resolve

    click.echo(render_validation(resolve(_request(words, sets, hermetic))))


@main.command("explain")
@click.argument("key")
@_with_compile_options
@click.option("--hardware", "hardware_spec", type=click.Path(exists=True, dir_okay=False),
              help="Explain the plan for the machine in this spec.")
@_HISTORY_OPTION
def explain_cmd(key: str, words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool,
                hardware_spec: str | None, history: str | None) -> None:
    """Show where KEY's value came from: every layer that set it (file:line:col), the winner marked.

    KEY is a config path (families.lightgbm.num_leaves) or a prefix of several, or the name of a value the
    planner derives per step (threads, batch_size, precision, gpus, vram_cap_mb, ...). WORDS are those of
    `tkplan compile`, or one saved plan (plan.json): then KEY is explained from that plan's own record.
    """
    from tkplan._compile_cache import explain_key
    from tkplan._render import render_explanation
    from tkplan.planner import explain_plan, read_plan

    saved = [w for w in words if w.endswith(".json")]
    if saved:
        if len(words) > 1 or sets or hardware_spec or hermetic or history:
            raise click.UsageError("a saved plan is explained alone: tkplan explain KEY plan.json")
        click.echo(render_explanation(explain_plan(key, read_plan(saved[0]))))
        return
    explanation, warning = explain_key(key, _request(words, sets, hermetic), hardware_spec, tkplan.__version__,
                                       history)
    if warning:
        click.echo(warning, err=True)
    click.echo(render_explanation(explanation))


@main.group("init")
def init_group() -> None:
    """Write starting points into the project directory."""


@init_group.command("family")
@click.argument("name")
def init_family_cmd(name: str) -> None:
    """Write a family of your own: profiles/families/NAME.yaml and its trainer trainers/NAME.py.

    Both compile and run as written: tkplan compile campaign.families=[NAME] -o plan.json && tkplan run plan.json
    """
    from tkplan._scaffold import write_family

    try:
        written = write_family(Path.cwd(), name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    except OSError as exc:
        raise UnusablePath(exc.filename or name, exc) if exc.filename else click.UsageError(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path.relative_to(Path.cwd())}")
    click.echo(f"next: tkplan compile campaign.families=[{name}] -o plan.json && tkplan run plan.json")


@main.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def diff_cmd(old: str, new: str, fmt: str) -> None:
    """Show what differs between two plans, key by key, with where each value came from.

    Exits 0 when the plans are the same, 1 when they differ.
    """
    from tkplan._render import render_diff
    from tkplan.planner import diff_plans, read_plan

    a, b = read_plan(old), read_plan(new)
    diffs = diff_plans(a, b)
    click.echo(render_diff(diffs, (old, a), (new, b), fmt))
    if diffs:
        sys.exit(1)


@main.command("probe")
@click.option("--ray", "address", metavar="ADDR", help="Probe the Ray cluster at ADDR instead: its nodes and totals.")
def probe_cmd(address: str | None) -> None:
    """Print this machine's hardware spec as YAML (save it to compile for this machine elsewhere).

    With --ray ADDR, the cluster's spec: each node's CPUs, memory and GPUs as Ray schedules them (GPU models
    probed on the node) and its labels; `tkplan compile --hardware cluster.yaml` packs steps onto its nodes.
    """
    from tkplan._render import render_yaml
    from tkplan.planner import converter, probe

    if address is None:
        spec = probe()
    else:
        from tkplan.runtime import probe_cluster

        spec = probe_cluster(address)
    click.echo(render_yaml(converter.unstructure(spec)), nl=False)


@main.command("schema")
@click.option("--export", "directory", type=click.Path(file_okay=False), required=True,
              help="Write every JSON Schema into this directory (for editors).")
def schema_cmd(directory: str) -> None:
    """Export the JSON Schemas for editors (yaml-language-server, VS Code, JetBrains)."""
    from tkplan.planner import export_schemas

    try:
        written = export_schemas(Path(directory))
    except OSError as exc:
        raise UnusablePath(exc.filename or directory, exc) from None
    for path in written:
        click.echo(path)


def run() -> NoReturn:
    """Entry point that never shows a traceback for a signal (see ``tkplan._entry``)."""
    from tkplan._entry import run as entry

    entry()


if __name__ == "__main__":
    run()
