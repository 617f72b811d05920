"""A step's environment outside the executor: how an existing pipeline adopts a plan without new trainers.

``tkplan env plan.json STEP`` prints `shell_exports` of `step_environment`; ``tkplan exec plan.json STEP --
CMD`` runs CMD with it. The command then starts with exactly the thread, GPU and seed variables the plan
gave that step.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from tkplan.errors import PlanError
from tkplan.planner._plan import Plan, shell_name

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

    Every value is quoted with `shlex.quote`, so a shell reads it as one word and runs nothing in it.

    Raises:
        PlanError: a name is not a shell identifier (a shell would run part of it).

    .. versionadded:: 0.1
    """
    bad = sorted(name for name in env if not shell_name(name))
    if bad:
        raise PlanError(f"cannot print {', '.join(map(repr, bad))} as shell exports: not a shell variable name")
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items()))
