"""MLflow sync of a large run: batched (``tkplan track``) against one MLflow call per value.

Usage: ``python tools/bench/track.py [--steps N] [--baseline-steps M]``

On a synthetic finished run directory of N steps (default 1,000; see ``tools/bench/report.py``), each in a
fresh SQLite store:
  * ``tkplan track``'s sync: per step one run, its values in ``log_batch`` calls within MLflow's limits;
  * the same content logged one call per value (``log_param``, ``log_metric``, ``set_tag``), as a script
    calling the fluent API does, for the first M steps (default 100: the per-value way is slow), its time
    per step scaled to N;
  * a second sync of the N steps, which finds everything in place and logs nothing.
Artifacts (each step's ``result.json``) are uploaded the same way in both.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def per_value(run_dir: Path, uri: str, steps: int) -> int:
    """Log the first ``steps`` steps of ``run_dir`` one call per value; return the number of calls."""
    from mlflow import MlflowClient

    from tkplan.tools.report import load_run
    from tkplan.tools.track._content import parent_content, step_content

    view = load_run(run_dir)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("per-value", artifact_location=(run_dir / "per-value").as_uri())
    calls = 0

    def log(run_id: str, content: Any) -> int:
        for key, value in content.params.items():
            client.log_param(run_id, key, value)
        for key, value in content.tags.items():
            client.set_tag(run_id, key, value)
        for key, value, step in content.metrics:
            client.log_metric(run_id, key, value, step=step)
        for path in content.artifacts:
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, content.status)
        return len(content.params) + len(content.tags) + len(content.metrics) + len(content.artifacts) + 2

    parent = client.create_run(experiment, run_name="per-value").info.run_id
    calls += log(parent, parent_content(view))
    for step_id in view.plan.schedule.order[:steps]:
        content = step_content(view, view.plan.step(step_id), view.results[step_id])
        run_id = client.create_run(experiment, tags={"mlflow.parentRunId": parent}, run_name=step_id).info.run_id
        calls += log(run_id, content)
    return calls


def main(argv: list[str] | None = None) -> int:
    import argparse
    import logging
    import os
    import tempfile

    from tkplan.tools.bench.report import synthetic_run
    from tkplan.tools.track import sync

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps in the synthetic run (default 1000)")
    parser.add_argument("--baseline-steps", type=int, default=100,
                        help="steps logged one call per value (default 100), scaled to --steps")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory(prefix="tkplan-bench-") as tmp:
        run = synthetic_run(Path(tmp), args.steps)
        sync(run, f"sqlite:///{tmp}/warm.db")  # MLflow's import and the schema's creation, paid once, not timed
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        (run / "mlflow.json").unlink()
        start = time.perf_counter()
        report = sync(run, f"sqlite:///{tmp}/batched.db")
        batched = time.perf_counter() - start
        start = time.perf_counter()
        again = sync(run, f"sqlite:///{tmp}/batched.db")
        second = time.perf_counter() - start
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=f"sqlite:///{tmp}/values.db").search_experiments()  # create the schema
        start = time.perf_counter()
        calls = per_value(run, f"sqlite:///{tmp}/values.db", args.baseline_steps)
        baseline = time.perf_counter() - start
    scaled = baseline / args.baseline_steps * args.steps
    print(f"batched sync, {len(report.created)} steps:            {batched:8.1f} s   "
          f"({batched / args.steps * 1000:.0f} ms per step)")
    print(f"one call per value, {args.baseline_steps} steps ({calls} calls): {baseline:8.1f} s   "
          f"({baseline / args.baseline_steps * 1000:.0f} ms per step; {args.steps} steps ≈ {scaled:.0f} s)")
    print(f"batched is {scaled / batched:.1f}× faster")
    print(f"second sync, nothing changed ({len(again.unchanged)} unchanged, {len(again.created)} created): "
          f"{second:6.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
