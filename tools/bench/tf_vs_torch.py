"""Seconds per epoch of the MLP and LSTM families on TensorFlow against PyTorch, on the same steps.

Compiles one plan per backend (``campaign.nn_backend=torch`` and ``=tf``) for this machine with the same
data (a synthetic panel of 12 symbols × 500 timestamps = 6,000 rows), target, seed and sizes, runs each with
the executor (every step in its own process, under the plan's threads), and prints each family's median
seconds per epoch after the first (the first also traces and warms up), the first epoch's, and the ratio
TensorFlow / PyTorch. The backends run in turn, ``--rounds`` times (torch, tf, torch, tf, …), and each
figure is the best of its rounds, so that a machine busy with other work slows both alike. The target is a
ratio ≤ 2::

    python tools/bench/tf_vs_torch.py                       # 3 epochs of each family, 2 rounds
    python tools/bench/tf_vs_torch.py --rounds 1 families.lstm.epochs=5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tkplan
from tkplan import execute
from tkplan.planner import CompileRequest, compile_plan, probe

FAMILIES = ("mlp", "lstm")
DEFAULTS = ("campaign.families=[mlp, lstm]", "campaign.targets=[fwd_ret_5m]", "campaign.seeds=[42]",
            "data.synthetic.symbols=12", "data.synthetic.timestamps=500", "data.min_cs=4",
            "run.max_parallel=1", *(f"families.{f}.epochs=3" for f in FAMILIES),
            *(f"families.{f}.patience=50" for f in FAMILIES))
"""6,000 rows, one target and replicate, three epochs that early stopping never cuts, one step at a time."""


def run_backend(backend: str, words: tuple[str, ...], out: Path) -> dict[str, dict[str, Any]]:
    """Compile and run the plan for ``backend``; each family's fit record (epochs, seconds per epoch...)."""
    request = CompileRequest(words=(*DEFAULTS, f"campaign.nn_backend={backend}", *words), cwd=Path.cwd(), env={},
                             hermetic=True)
    plan = compile_plan(request, probe(), "probe", tkplan.__version__)
    summary = execute(plan, out / backend)
    rows = {}
    for result in summary.results:
        step = plan.step(result.step_id)
        fit = dict(result.output.get("fit", {})) if result.output else {}
        if result.status != "ok":
            fit["error"] = (result.error or result.status).strip().splitlines()[-1]
        rows[step.family] = {"threads": step.resources.threads, **fit}
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("words", nargs="*", help="key=value overrides on top of the defaults")
    parser.add_argument("--out", type=Path, help="directory for the run directories (default: a temporary one)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each backend, in turn; the best counts")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="tkplan-tf-vs-torch-"))
    measured: dict[str, dict[str, dict[str, Any]]] = {}
    for round_ in range(args.rounds):
        for backend in ("torch", "tf"):
            start = time.monotonic()
            rows = run_backend(backend, tuple(args.words), out / f"round{round_}")
            print(f"round {round_ + 1}, {backend}: run in {time.monotonic() - start:.1f} s, "
                  + ", ".join(f"{f} {r.get('seconds_per_epoch')} s/epoch" for f, r in rows.items()), file=sys.stderr)
            best = measured.setdefault(backend, rows)
            for family, row in rows.items():
                if "error" in row or "error" in best[family]:
                    best[family] = row if "error" in row else best[family]
                elif row["seconds_per_epoch"] < best[family]["seconds_per_epoch"]:
                    best[family] = row
    print(f"{'family':8} {'threads':>7} {'torch s/epoch':>14} {'tf s/epoch':>11} {'ratio tf/torch':>15} "
          f"{'torch 1st s':>12} {'tf 1st s':>9}")
    worst = 0.0
    for family in FAMILIES:
        torch, tf = measured["torch"].get(family, {}), measured["tf"].get(family, {})
        for name, row in (("torch", torch), ("tf", tf)):
            if "error" in row:
                print(f"{family} on {name} failed: {row['error']}", file=sys.stderr)
                return 1
        ratio = tf["seconds_per_epoch"] / torch["seconds_per_epoch"]
        worst = max(worst, ratio)
        print(f"{family:8} {tf['threads']:>7} {torch['seconds_per_epoch']:>14.3f} {tf['seconds_per_epoch']:>11.3f} "
              f"{ratio:>15.2f} {torch['first_epoch_s']:>12.2f} {tf['first_epoch_s']:>9.2f}")
    print(f"worst ratio {worst:.2f} (target ≤ 2), best of {args.rounds} round(s) each; run directories under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
