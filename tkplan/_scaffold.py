"""``tkplan init family NAME``: write a family of one's own — a profile and a trainer that compile and run.

The profile (``profiles/families/NAME.yaml``) holds the entrypoint and one hyperparameter, its runtime traits
left to their defaults; the trainer (``trainers/NAME.py``) fits a ridge regression on the run's prepared data
and returns the held-out metrics the leaderboard ranks, as a starting point to replace with one's own model.
"""

from __future__ import annotations

import re
from pathlib import Path

from tkplan._io import write_text_atomic

__all__ = ["FAMILY_NAME", "family_files", "write_family"]

FAMILY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
"""A family's key: lower case, digits and underscores, a letter first (it is also the trainer's module name)."""

_PROFILE = """\
# yaml-language-server: $schema=../../schemas/config.schema.json
#
# {name}: a family of your own. Its trainer is `entrypoint` (found from the project directory, where
# `tkplan run` starts each step); every other key is a hyperparameter the trainer reads from ctx.step.params.
# Train it with: tkplan compile campaign.families=[{name}] -o plan.json && tkplan run plan.json
families:
  {name}:
    entrypoint: trainers.{name}:fit
    alpha: 1.0                  # the ridge penalty of the example trainer
    # Runtime traits are optional; each has a documented default (`tkplan schema --export schemas/`,
    # family_runtime.json). For example:
    # runtime:
    #   tasks: [regression, binary]       # the target kinds it trains
    #   thread_policy: blas               # planned threads go to BLAS (numpy); openmp for OpenMP libraries
    #   isolation: {{mode: process}}        # its own process per step; inproc shares one worker process
"""

_TRAINER = '''\
"""The trainer of the family {name}: a ridge regression on the run's prepared data. Replace the model with yours.

tkplan calls `fit(ctx)` in the step's process, its environment and thread limits already applied:
``ctx.step.params`` holds the hyperparameters of profiles/families/{name}.yaml, ``ctx.step.seed`` the step's
seed, ``ctx.step.target`` the target, ``ctx.out_dir`` the step's directory. Return JSON-ready results with at
least ``{{"metrics": {{...}}}}``; ``metrics["val"]`` and ``metrics["test"]`` as `evaluate` scores them are what
the leaderboard ranks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tkplan.families import evaluate, prepare


def fit(ctx: Any) -> dict[str, Any]:
    data = prepare(ctx.config, ctx.run_dir)  # cleaned and split by time once per run, memory-mapped
    target = ctx.step.target
    task = data.tasks[target]
    train = data.part("train", target)  # .x features, .y target, .times, .symbols of the train split
    alpha = float(ctx.step.params["alpha"])
    x = np.column_stack([train.x, np.ones(len(train.x))])
    weights = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ train.y)
    metrics = {{}}
    for split in ("val", "test"):
        part = data.part(split, target)
        predicted = np.column_stack([part.x, np.ones(len(part.x))]) @ weights
        if task == "binary":
            predicted = np.clip(predicted, 0.0, 1.0)  # a probability of the positive class
        metrics[split] = evaluate(task, part.y, predicted, part.times, cross_sectional=data.cross_sectional)
    np.save(ctx.out_dir / "weights.npy", weights)
    return {{"metrics": metrics, "artifacts": ["weights.npy"]}}
'''


def family_files(name: str) -> dict[Path, str]:
    """The files of family ``name``, relative to the project directory, with their text."""
    return {
        Path("profiles") / "families" / f"{name}.yaml": _PROFILE.format(name=name),
        Path("trainers") / f"{name}.py": _TRAINER.format(name=name),
    }


def write_family(project: Path, name: str) -> list[Path]:
    """Write family ``name``'s profile and trainer under ``project``; return the paths written.

    Raises:
        ValueError: ``name`` is not a valid family key, or names a shipped family.
        FileExistsError: one of the files is already there (nothing is written then).
    """
    if not FAMILY_NAME.match(name):
        raise ValueError(f"{name!r} is not a family name: use lower case letters, digits and _, a letter first")
    from tkplan.planner import shipped_dir

    if (shipped_dir() / "families" / f"{name}.yaml").is_file():
        raise ValueError(f"{name!r} is a family tkplan ships; pick another name")
    files = {project / path: text for path, text in family_files(name).items()}
    existing = [path for path in files if path.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} already exists; remove it or pick another name")
    for path, text in files.items():
        write_text_atomic(path, text)
    return list(files)
