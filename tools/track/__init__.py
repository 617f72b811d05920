"""Track a run directory in MLflow: ``tkplan track RUN_DIR`` and ``tkplan run ... --track``.

MLflow is imported only when a sync runs (the extra ``track``).

.. versionadded:: 0.1
"""

from __future__ import annotations

from tkplan._lazy import lazy_exports

_EXPORTS = {
    "RunTracker": "tkplan.tools.track._live",
    "STATE_FILE": "tkplan.tools.track._sync",
    "StudySyncReport": "tkplan.tools.track._sync",
    "SyncReport": "tkplan.tools.track._sync",
    "Tracker": "tkplan.tools.track._sync",
    "default_uri": "tkplan.tools.track._sync",
    "sync": "tkplan.tools.track._sync",
}

__all__, __getattr__, __dir__ = lazy_exports("tkplan.tools.track", _EXPORTS)
