"""``tkplan history``: look at and prune the history store (`tkplan._compile_cache.store_path` says where it is).

The store is ``history.store`` (a profile key): ``auto`` is ``history.sqlite`` in the cache directory's root
(``$TKPLAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/tkplan`` or ``~/.cache/tkplan``), a path is relative to the
project, ``none`` turns history off. ``tkplan compile --history PATH|none`` and ``tkplan history --store PATH``
name another for one command.

Exit codes of ``tkplan history``: 0 done; 2 bad invocation (forget without what to forget, a bad age); 8 the store
cannot be read or written (locked, damaged, not a history store).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import click

from tkplan._compile_cache import store_path

__all__ = ["history_group"]

_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@click.group("history")
@click.option("--store", type=click.Path(dir_okay=False), default=None,
              help="The history store (default: history.sqlite in the cache directory).")
@click.pass_context
def history_group(ctx: click.Context, store: str | None) -> None:
    """Look at and prune what earlier runs observed, which `tkplan compile` plans with.

    \b
    tkplan history list                    every run: when, plan, steps, wall, expected
    tkplan history show STEP               every observation of a step (its id or a digest prefix)
    tkplan history forget --family ngboost | --step DIGEST | --older-than 30d | --run RUN | --all
    """
    ctx.obj = Path(store) if store else store_path("auto", os.environ, Path.cwd())


@history_group.command("list")
@click.pass_obj
def list_cmd(store: Path) -> None:
    """Every run in the store, oldest first: when it ended, its plan, its steps, its wall time and expectation."""
    from tkplan._render import table
    from tkplan.runtime import list_runs

    runs = list_runs(store)
    if not runs:
        click.echo(f"history store {store}: no runs")
        return
    rows = [[r.run, _when(r.finished_at), r.plan_hash[:12], r.fingerprint, r.steps,
             " ".join(f"{n} {s}" for s, n in sorted(r.counts.items())), _num(r.wall_s), _num(r.expected_s),
             _error(r.expected_s, r.wall_s), r.run_dir] for r in runs]
    click.echo(f"history store {store}: {len(runs)} run(s)\n"
               + table(["run", "finished", "plan", "hardware", "steps", "ended", "wall s", "expected s", "error",
                        "run directory"], rows))


@history_group.command("show")
@click.argument("step")
@click.pass_obj
def show_cmd(store: Path, step: str) -> None:
    """Every observation of STEP (a step id, or a prefix of a step digest), oldest first."""
    from tkplan._render import table
    from tkplan.runtime import step_observations

    found = step_observations(store, step)
    if not found:
        raise click.BadParameter(f"no observation of {step!r} in {store} (see tkplan history list)",
                                 param_hint="STEP")
    rows = [[o.run, _when(o.finished_at), o.step, o.digest[:12], o.status, o.threads, _num(o.wall_s),
             _num(o.cpu_s), _num(o.peak_rss_mb, 0), o.memory_cap_mb or "-", _num(o.gpu_peak_mb, 0),
             f"{o.rows}×{o.features}" if o.rows and o.features else "-"] for o in found]
    click.echo(table(["run", "finished", "step", "digest", "status", "threads", "wall s", "cpu s", "peak RSS MB",
                      "cap MB", "GPU MB", "rows×features"], rows))


@history_group.command("forget")
@click.option("--step", "digest", metavar="DIGEST", help="Observations of this step digest (or a prefix of it).")
@click.option("--family", help="Observations of this family.")
@click.option("--older-than", "age", metavar="AGE", help="Observations older than AGE: 30d, 12h, 90m, 2w, 45s.")
@click.option("--run", help="The observations of one run (its id in `tkplan history list`).")
@click.option("--all", "everything", is_flag=True, help="Every observation.")
@click.pass_obj
def forget_cmd(store: Path, digest: str | None, family: str | None, age: str | None, run: str | None,
               everything: bool) -> None:
    """Delete observations: those that match every criterion given (or --all). Runs left empty go too."""
    from tkplan.runtime import forget

    if not (digest or family or age or run or everything):
        raise click.UsageError("say what to forget: --step DIGEST, --family NAME, --older-than AGE, --run RUN or --all")
    older = _seconds(age) if age else None
    gone = forget(store, digest=digest, family=family, older_than_s=older, run=run, everything=everything)
    click.echo(f"forgot {gone} observation(s) in {store}")


def _seconds(age: str) -> float:
    match = _AGE.fullmatch(age.strip())
    if not match:
        raise click.BadParameter(f"{age!r} is not an age: write a number and a unit, as 30d, 12h, 90m, 2w or 45s",
                                 param_hint="--older-than")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _error(expected: float | None, actual: float | None) -> str:
    if not expected or actual is None:
        return "-"
    return f"{(actual - expected) / expected * 100:+.0f} %"
