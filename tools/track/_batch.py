"""MLflow's limits on one ``log_batch`` call, and values cut to fit them.

A call takes at most 1000 entities in all, of which at most 1000 metrics, 100 params and 100 tags; a param
value holds at most 6000 characters, a tag value 8000, a key 250. The limits are MLflow's own
(``mlflow.utils.validation``) where the installed MLflow has them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["Limits", "batches", "fit_value"]


class Limits:
    """MLflow's per-call limits: read from ``mlflow.utils.validation``, else MLflow 2's documented values."""

    def __init__(self) -> None:
        v: Any
        try:
            from mlflow.utils import validation as v
        except ImportError:  # MLflow's defaults, for planning calls without it
            v = None
        self.entities = getattr(v, "MAX_ENTITIES_PER_BATCH", 1000)
        self.metrics = getattr(v, "MAX_METRICS_PER_BATCH", 1000)
        self.params_tags = getattr(v, "MAX_PARAMS_TAGS_PER_BATCH", 100)
        self.param_value = getattr(v, "MAX_PARAM_VAL_LENGTH", 6000)
        self.tag_value = getattr(v, "MAX_TAG_VAL_LENGTH", 8000)
        self.key = getattr(v, "MAX_ENTITY_KEY_LENGTH", 250)


def fit_value(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with a closing ``…`` when longer."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def batches(metrics: Sequence[Any], params: Sequence[Any], tags: Sequence[Any],
            limits: Limits) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    """Split metrics, params and tags into as few ``log_batch`` calls as the limits allow."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        p, params = params[:limits.params_tags], params[limits.params_tags:]
        t, tags = tags[:limits.params_tags], tags[limits.params_tags:]
        room = min(limits.metrics, limits.entities - len(p) - len(t))
        m, metrics = metrics[:room], metrics[room:]
        yield m, p, t
