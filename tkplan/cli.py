"""The ``tkplan`` command line: click wiring only; every command calls one library function and renders it.

Exit codes: 0 success; 1 a run or check finished with failures; 2 bad invocation; 3 invalid configuration;
4 a plan that cannot be honoured on the hardware (or a bad hardware spec); 5 a plan refused (edited, other
format, hardware drift, changed data, locked run directory, a damaged run directory); 6 bad data; 7 the disk is
full; 8 an optional part missing or failing (a command's extra not installed, an MLflow store unreachable or refusing a
value, a Ray cluster that does not answer); 128 + N interrupted by signal N (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import click

import tkplan
from tkplan import errors

EXIT_CODES: dict[type[errors.TkplanError], int] = {
    errors.ConfigError: 3,
    errors.PlanningError: 4,
    errors.HardwareError: 4,
    errors.PlanError: 5,
    errors.DriftError: 5,
    errors.DataDriftError: 5,
    errors.RunDirError: 5,
    errors.DataError: 6,
    errors.DiskFullError: 7,
    errors.EngineError: 8,
    errors.AuditError: 2,
    errors.TrackingError: 8,
    errors.ExtraMissingError: 8,
}


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
            fail(f"error: {exc}", next((code for cls, code in EXIT_CODES.items() if isinstance(exc, cls)), 1))


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


def _compile(request: Any, hardware: Any, source: str) -> Any:
    """Resolve ``request``, measure its data file (the digest cache under the compile cache), compile the plan."""
    from tkplan import _compile_cache as cache
    from tkplan._data_digest import measure
    from tkplan.planner import compile_plan, resolve

    resolved = resolve(request)
    files = measure(resolved, request.cwd, cache.cache_dir(os.environ))
    return compile_plan(request, hardware, source, tkplan.__version__, files, resolved=resolved)


def _hardware(spec: str | None) -> tuple[Any, str]:
    from tkplan.planner import load_hardware, probe

    if spec is None:
        return probe(), "probe"
    return load_hardware(spec), Path(spec).name


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
def compile_cmd(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool, output: str | None,
                hardware_spec: str | None, fmt: str, no_cache: bool) -> None:
    """Compile profiles and overrides into a plan; print a summary, save it with -o.

    WORDS are profile names (kaggle_safe), profile files (my/profile.yaml) and overrides
    (families.lightgbm.num_leaves=64; +key=value adds a key, ++key=value adds or sets, ~key removes;
    values may refer to other keys, ${run.name}, and to the environment, ${env:USER}).
    """
    from tkplan import _compile_cache as cache
    from tkplan.planner._sources import SearchPath

    env, cwd = dict(os.environ), Path.cwd()
    search = SearchPath.from_env(cwd, {} if hermetic else env)
    directory = cache.cache_dir(env)
    key = cache.cache_key(tkplan.__version__, [*words, *(f"--set={s}" for s in sets)], env, cwd, hermetic,
                          hardware_spec)
    entry = None if no_cache else cache.lookup(directory, key, search.dirs, {} if hermetic else env)
    if entry is None:
        entry = _compile_fresh(words, sets, hermetic, hardware_spec, search)
        cache.store(directory, key, entry)
    _emit(str(entry["plan"]), str(entry["summary"]), output, fmt,
          f"plan written to {output} (plan_hash {entry['plan_hash']})")


def _emit(text: str, summary: str, output: str | None, fmt: str, written: str) -> None:
    """Write ``text`` to ``output`` (when given) and print it (``--format json``) or its summary and ``written``."""
    from tkplan._io import write_text_atomic

    if output:
        try:
            write_text_atomic(Path(output), text)
        except OSError as exc:
            raise UnusablePath(output, exc) from None
    if fmt == "json":
        click.echo(text, nl=False)
    else:
        click.echo(summary)
        if output:
            click.echo(f"\n{written}")


def _compile_fresh(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool, hardware_spec: str | None,
                   search: Any) -> dict[str, Any]:
    from tkplan import _compile_cache as cache
    from tkplan._data_digest import stat_signature
    from tkplan._render import render_plan_summary
    from tkplan.planner import plan_to_json
    from tkplan.planner._entrypoints import entrypoint_files
    from tkplan.planner._sources import PROJECT_FILE, shipped_dir

    hardware, source = _hardware(hardware_spec)
    plan = _compile(_request(words, sets, hermetic), hardware, source)
    data = {} if plan.data.sha256 is None else {str(p): stat_signature(p) for p in [search.cwd / plan.data.source]}
    prefix = "tkplan:profiles/"
    layer_files = [shipped_dir() / layer.file[len(prefix):] if layer.file.startswith(prefix)
                   else search.cwd / layer.file
                   for layer in plan.inputs.layers]
    layer_files += entrypoint_files(plan.config, [s.family for s in plan.steps], search.cwd)  # checked at compile
    return {"plan": plan_to_json(plan), "summary": render_plan_summary(plan), "plan_hash": plan.plan_hash,
            "files": cache.watched_files(search.dirs, layer_files, search.cwd / PROJECT_FILE),
            "env": cache.referenced_env(plan.provenance, {} if hermetic else os.environ), "data": data}


@main.command("sweep")
@_with_compile_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the sweep file here.")
@click.option("--hardware", "hardware_spec", type=click.Path(exists=True, dir_okay=False),
              help="Plan for the machine in this spec (from `tkplan probe`) instead of this one.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def sweep_cmd(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool, output: str | None,
              hardware_spec: str | None, fmt: str) -> None:
    """Compile every point of a sweep into its own plan; print a summary, save the sweep file with -o.

    Axes are overrides with several values (key=a,b,c; key=range(16,257,16); 'key=choice([64,32],[128,64])')
    and a profile's `sweep:` section (grid: key -> values, or points: a list of key -> value mappings; seeds:
    one more axis over run.base_seed). The points are the cartesian product of the axes, first axis slowest.
    """
    from tkplan._render import render_sweep_summary
    from tkplan.planner import compile_sweep, sweep_to_json

    hardware, source = _hardware(hardware_spec)
    sweep = compile_sweep(_request(words, sets, hermetic), hardware, source, tkplan.__version__)
    _emit(sweep_to_json(sweep), render_sweep_summary(sweep), output, fmt,
          f"sweep written to {output} (sweep_hash {sweep.sweep_hash})")


@main.command("validate")
@_with_compile_options
def validate_cmd(words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool) -> None:
    """Check profiles and overrides against the schema; report every problem at once."""
    from tkplan.planner import resolve

    resolved = resolve(_request(words, sets, hermetic))
    layers = " → ".join(layer.name for layer in resolved.layers if layer.kind != "family")
    click.echo(f"valid: {layers}; {len(resolved.work)} steps")


@main.command("explain")
@click.argument("key")
@_with_compile_options
@click.option("--hardware", "hardware_spec", type=click.Path(exists=True, dir_okay=False),
              help="Explain the plan for the machine in this spec.")
def explain_cmd(key: str, words: tuple[str, ...], sets: tuple[str, ...], hermetic: bool,
                hardware_spec: str | None) -> None:
    """Show where KEY's value came from: every layer that set it (file:line:col), the winner marked.

    KEY is a config path (families.lightgbm.num_leaves) or a prefix of several, or the name of a value the
    planner derives per step (threads, batch_size, precision, gpus, vram_cap_mb, ...). WORDS are those of
    `tkplan compile`, or one saved plan (plan.json): then KEY is explained from that plan's own record.
    """
    from tkplan._render import render_explanation
    from tkplan.planner import explain_config, explain_plan, read_plan, resolve

    saved = [w for w in words if w.endswith(".json")]
    if saved:
        if len(words) > 1 or sets or hardware_spec or hermetic:
            raise click.UsageError("a saved plan is explained alone: tkplan explain KEY plan.json")
        click.echo(render_explanation(explain_plan(key, read_plan(saved[0]))))
        return
    request = _request(words, sets, hermetic)
    resolved = resolve(request)
    explanation = explain_config(key, resolved.provenance)
    if explanation is None:
        hardware, source = _hardware(hardware_spec)
        plan = _compile(request, hardware, source)
        explanation = explain_plan(key, plan, resolved.provenance)
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
    import json

    from tkplan.planner import converter, diff_plans, read_plan

    a, b = read_plan(old), read_plan(new)
    diffs = diff_plans(a, b)
    if fmt == "json":
        click.echo(json.dumps([converter.unstructure(d) for d in diffs], indent=1, sort_keys=True))
    elif not diffs:
        click.echo(f"same plan ({a.plan_hash[:12]})" if a.plan_hash == b.plan_hash else "no semantic difference")
    else:
        click.echo(f"{len(diffs)} difference(s): {old} ({a.plan_hash[:12]}) → {new} ({b.plan_hash[:12]})")
        section = None
        for d in diffs:
            if d.section != section:
                section = d.section
                click.echo(f"\n[{section}]")
            click.echo(f"  {d.key}: {json.dumps(d.old)} → {json.dumps(d.new)}")
            for label, origin in (("was", d.old_origin), ("now", d.new_origin)):
                if origin:
                    click.echo(f"      {label}: {origin}")
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
        from tkplan.runtime._ray import probe_cluster

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
