"""Reports of a run directory: the leaderboard, the HTML report, the Chrome trace of its timeline.

Everything here reads a run directory (plan, journal, step results) and nothing else; matplotlib and Jinja2
are imported only when a report is written.

.. versionadded:: 0.1
"""

from __future__ import annotations

from tkplan._lazy import lazy_exports

_EXPORTS = {
    "Row": "tkplan.tools.report._board",
    "leaderboard": "tkplan.tools.report._board",
    "render_html": "tkplan.tools.report._render",
    "render_markdown": "tkplan.tools.report._render",
    "RunView": "tkplan.tools.report._run",
    "load_run": "tkplan.tools.report._run",
    "log_tail": "tkplan.tools.report._run",
    "Section": "tkplan.tools.report._sections",
    "SweepRow": "tkplan.tools.report._sweep_board",
    "sweep_columns": "tkplan.tools.report._sweep_board",
    "sweep_leaderboard": "tkplan.tools.report._sweep_board",
    "Bar": "tkplan.tools.report._timeline",
    "chrome_trace": "tkplan.tools.report._timeline",
    "timeline": "tkplan.tools.report._timeline",
    "Usage": "tkplan.tools.report._usage",
    "largest_pool": "tkplan.tools.report._usage",
    "thread_pools": "tkplan.tools.report._usage",
    "usage": "tkplan.tools.report._usage",
}

__all__, __getattr__, __dir__ = lazy_exports("tkplan.tools.report", _EXPORTS)
