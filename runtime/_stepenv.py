"""A step's environment outside the executor: how an existing pipeline adopts a plan without new trainers.

``tkplan env plan.json STEP`` prints `shell_exports` of `step_environment`; ``tkplan exec plan.json STEP --
CMD`` runs CMD with it. The command then starts with exactly the thread, GPU and seed variables the plan
gave that step.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from tkplan.planner._plan import Plan

__all__ = ["shell_exports", "step_environment"]


def step_environment(plan: Plan, step_id: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a step's process gets: ``base`` (e.g. ``os.environ``) with the step's variables over it.

    Raises:
        KeyError: no such step (the message lists the plan's steps).

    .. versionadded:: 0.1
    """
    step = plan.step(step_id)
    return {**(base or {}), **{str(k): str(v) for k, v in step.env.items()}}


def shell_exports(env: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines, sorted by name, quoted for POSIX shells (``eval "$(tkplan env ...)"``).

    .. versionadded:: 0.1
    """
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items()))
