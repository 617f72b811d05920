"""Build real plans for the executor's tests: a project directory with user families, compiled on this machine."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tkplan
from tkplan.planner import CompileRequest, Plan, compile_plan, plan_to_json, probe

REPO = Path(__file__).resolve().parents[2]
TKPLAN = [sys.executable, "-c", "from tkplan.cli import run; run()"]
"""The ``tkplan`` console script (``tkplan = "tkplan.cli:run"``), run with this interpreter."""


def family(entrypoint: str, *, isolation: str = "process", threads: int = 1, policy: str = "blas",
           backends: tuple[str, ...] = ("numpy",), **params: Any) -> dict[str, Any]:
    """A family of one's own: the trainer ``tests.runtime.trainers:<entrypoint>`` and full runtime traits."""
    return {
        "entrypoint": f"tests.runtime.trainers:{entrypoint}",
        **params,
        "runtime": {
            "display_name": entrypoint,
            "backends": list(backends),
            "thread_policy": policy,
            "cost": 1,
            "threads": {"min": threads, "max": threads, "reserve": 0},
            "gpu": "none",
            "isolation": {"mode": isolation, "reason": f"the executor's tests run {entrypoint} this way"},
            "vram_cap_mb": None,
            "tasks": ["regression", "binary"],
            "multi_target": False,
            "sequence": False,
            "nan_ok": True,
            "env": {},
        },
    }


def write_project(directory: Path, families: Mapping[str, Mapping[str, Any]], *, timeout_s: int = 30,
                  memory_cap_gb: float | None = None, seeds: tuple[int, ...] = (42,),
                  after: Mapping[str, Mapping[str, Any]] | None = None, **config: Any) -> Path:
    """Write ``tkplan.yaml`` for a campaign over ``families`` (then ``after``, as a second cascade stage).

    The children import ``tests.runtime.trainers``: the project's ``env`` puts the repository on their path
    (before this process's own ``PYTHONPATH``, which a non-editable install may need).
    """
    stages = [{"families": list(families)}] + ([{"families": list(after)}] if after else [])
    document = {
        "run": {"name": "test", "threads": 2, "output_dir": "runs"},
        "env": {"PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])},
        "limits": {"timeout_s": timeout_s, "memory_cap_gb": memory_cap_gb},
        "campaign": {"families": [*families, *(after or {})], "targets": ["y"], "seeds": list(seeds),
                     "strategy": "cascade", "cascade": stages},
        "data": {"tasks": {"y": "regression"}},
        "families": {**families, **(after or {})},
        **config,
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tkplan.yaml").write_text(json.dumps(document, indent=1))  # JSON is YAML
    return directory


def compile_project(directory: Path, *words: str) -> Plan:
    """Compile the project in ``directory`` for this machine, hermetically."""
    request = CompileRequest(words=words, cwd=directory, env={}, hermetic=True)
    return compile_plan(request, probe(), "probe", tkplan.__version__)


def save_plan(plan: Plan, path: Path) -> Path:
    path.write_text(plan_to_json(plan))
    return path
