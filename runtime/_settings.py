"""The executor's own knobs: how often it watches a step, how long a killed step is given, what counts as drift.

These are not plan values (they do not change what a step computes); they are documented defaults that a
caller may replace, gathered here so that no threshold is a literal scattered through the runtime.
"""

from __future__ import annotations

import attrs

__all__ = ["ExecutorSettings"]


@attrs.frozen
class ExecutorSettings:
    """How the executor watches and stops steps.

    Attributes:
        poll_interval_s: the longest the executor waits between two looks at its running steps: the RSS
            watchdog's sampling period, and how late a timeout may be noticed. A step's end is seen at once
            (its exit wakes the executor); only limits are checked on this period.
        heartbeat_s: while steps run and none starts or ends, how often the executor reports progress anyway
            (a ``Heartbeat`` event: ``tkplan run`` prints which steps are running and the time elapsed).
        term_grace_s: after SIGTERM to a timed-out or cancelled step's process group, how long before SIGKILL.
        oom_grace_s: the same grace for a group over its memory cap; 0 kills it with SIGKILL at once, so a
            runaway allocation gets no time to grow further.
        memory_tolerance_pct: a machine whose memory differs from the plan's by at most this share is not
            drifted (usable memory moves by a few MB between boots and kernels).
        orphan_wait_s: ``--resume``: how long to wait for the processes a dead executor left running to
            vanish after SIGKILL.

    .. versionadded:: 0.1
    """

    poll_interval_s: float = attrs.field(default=0.1, validator=attrs.validators.gt(0))
    heartbeat_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    term_grace_s: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    oom_grace_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    memory_tolerance_pct: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    orphan_wait_s: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
