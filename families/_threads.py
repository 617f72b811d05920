"""Thread pools inside a fit: limit them for a block and read back what the loaded libraries report.

`limited` wraps ``threadpoolctl.threadpool_limits`` (which records the prior state and restores it on exit)
and fills a dict with the thread counts threadpoolctl sees inside the block, per user API. Import the
library first: threadpoolctl only reaches thread pools of libraries already loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["limited", "pool_threads"]


def pool_threads() -> dict[str, int]:
    """The largest thread count threadpoolctl reports per user API (``{"openmp": 4, "blas": 1}``)."""
    from threadpoolctl import threadpool_info

    seen: dict[str, int] = {}
    for pool in threadpool_info():
        api = pool["user_api"]
        seen[api] = max(seen.get(api, pool["num_threads"]), pool["num_threads"])
    return seen


@contextmanager
def limited(*, openmp: int | None = None, blas: int | None = None) -> Iterator[dict[str, int]]:
    """Limit the OpenMP and/or BLAS pools of the loaded libraries for the block.

    Args:
        openmp: threads for every OpenMP runtime loaded (``None``: leave as is).
        blas: threads for every BLAS library loaded (``None``: leave as is).

    Yields:
        a dict that, on entry, holds the thread count threadpoolctl reports inside the block for each user
        API that was limited (absent when no library of that API is loaded).
    """
    from threadpoolctl import threadpool_limits

    limits = {api: n for api, n in (("openmp", openmp), ("blas", blas)) if n is not None}
    with threadpool_limits(limits=limits):
        seen = pool_threads()
        yield {api: seen[api] for api in limits if api in seen}
