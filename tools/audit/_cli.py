"""The ``tkplan audit`` click command: parse options, call `audit`, render, write files, set the exit code.

Exit codes: 0 = done (with ``--check``: nothing new); 1 = ``--check`` found findings the baseline does
not accept; 2 = bad invocation (a missing path, a bad baseline, profile or ``[tool.tkplan.audit]``, an output
file that cannot be written).
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import click

from tkplan._io import write_text_atomic
from tkplan.errors import AuditError
from tkplan.tools.audit import (
    FORMATS,
    KINDS,
    NOISE_FILTERS,
    apply_baseline,
    find_pyproject,
    load_project_config,
    render,
    render_profile,
)
from tkplan.tools.audit import audit as run_audit

__all__ = ["audit"]


def _write(path: Path, text: str, option: str) -> None:
    """Write ``text`` to ``path`` atomically, with the usual file mode (umask).

    Raises:
        click.BadParameter: the file cannot be written (exit 2), naming ``option`` and the reason.
    """
    try:
        write_text_atomic(path, text, parents=False)
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {exc.strerror or exc}", param_hint=option) from None


def _version() -> str:
    try:
        from tkplan import __version__
    except ImportError:  # pragma: no cover
        return ""
    return __version__


@click.command("audit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Report format.")
@click.option("--profiles", "profiles", multiple=True, type=click.Path(exists=True),
              help="YAML profile file or directory to compare with (repeatable): marks each finding "
                   "not_centralised, duplicate or drift.")
@click.option("--baseline", type=click.Path(dir_okay=False),
              help="JSON list of accepted finding fingerprints: only findings not in it are reported.")
@click.option("--write-baseline", is_flag=True,
              help="Write every current finding to the --baseline file (accepting them all), then report.")
@click.option("--check", is_flag=True,
              help="Exit 1 if any finding is not in the baseline (any finding at all without a baseline).")
@click.option("--emit-profile", type=click.Path(dir_okay=False),
              help="Write a draft YAML profile of the findings not already in the profiles.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(sorted(KINDS)),
              help="Report only this kind (repeatable).")
@click.option("--keep", "keep", multiple=True, type=click.Choice(sorted(NOISE_FILTERS)),
              help="Switch this noise filter off, reporting what it would drop (repeatable).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="pyproject.toml to read [tool.tkplan.audit] from [default: the nearest one above the first PATH].")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Processes for a large tree [default: the usable CPUs].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write the report to this file [default: stdout].")
@click.pass_context
def audit(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmt: str,
    profiles: tuple[str, ...],
    baseline: str | None,
    write_baseline: bool,
    check: bool,
    emit_profile: str | None,
    kinds: tuple[str, ...],
    keep: tuple[str, ...],
    config_file: str | None,
    workers: int | None,
    output: str,
) -> None:
    """Find configuration values hardcoded in the Python, shell and config files under PATHS.

    Reports literal defaults (dict.setdefault, cfg.get, os.getenv, os.environ writes, signature defaults,
    estimator/optimizer/layer/callback/split keyword arguments, keywords of any call that name a setting,
    layer sizes by position, config dicts, fallbacks, setting-named locals, UPPER_CASE constants, argparse
    defaults, thresholds and tolerances, clamps, process-wide settings, ${VAR:-default}, and each leaf of
    a YAML/JSON/TOML config file in the tree) with file:line:col, kind, key, value, scope and a suggested
    config key. Setting names come from the shipped profiles and schemas and --profiles. Silence one line
    with `# tkplan: ignore[kind]`; configure in [tool.tkplan.audit].
    """
    try:
        project = load_project_config(config_file or find_pyproject(paths[0]))
    except AuditError as exc:
        raise click.UsageError(str(exc)) from None
    settings = project.settings
    if kinds:
        settings = attrs.evolve(settings, kinds=frozenset(kinds))
    if keep:
        settings = attrs.evolve(settings, noise=settings.noise - set(keep))
    if workers is not None:
        settings = attrs.evolve(settings, workers=workers)
    profile_paths = list(profiles) or [str(p) for p in project.profiles]
    baseline_path = Path(baseline) if baseline else project.baseline
    if write_baseline and baseline_path is None:  # checked before the audit runs: a bad invocation
        raise click.UsageError("--write-baseline needs --baseline FILE (or baseline = ... in [tool.tkplan.audit])")

    try:
        result = run_audit(paths, settings=settings, profiles=profile_paths)
    except AuditError as exc:
        param = "--profiles" if profile_paths else "PATHS"
        raise click.BadParameter(str(exc), param_hint=param) from None

    if emit_profile:
        header = f"From: tkplan audit {' '.join(paths)}"
        _write(Path(emit_profile), render_profile(result.findings, header=header), "--emit-profile")
        click.echo(f"wrote draft profile {emit_profile}", err=True)

    try:
        baselined = apply_baseline(result, baseline_path, write=write_baseline)
    except AuditError as exc:
        raise click.BadParameter(str(exc), param_hint="--baseline") from None
    if baselined.written is not None:
        click.echo(f"wrote baseline {baseline_path} ({baselined.written} findings)", err=True)
    shown, known = baselined.result, baselined.known

    text = render(shown, fmt, known=known, version=_version())
    if output == "-":
        click.echo(text, nl=False)
    else:
        _write(Path(output), text, "--output")

    if check and shown.findings:
        what = "not in the baseline" if baseline_path is not None else "found"
        click.echo(f"tkplan audit --check: {len(shown.findings)} finding(s) {what}", err=True)
        ctx.exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(audit())
