"""The report's charts, drawn by matplotlib (Agg, no display) and returned as inline SVG text.

Text stays text in the SVG (``svg.fonttype: none``: no embedded glyphs, the page's fonts), and the same
input draws the same bytes (a fixed hash salt, no date).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from tkplan.tools.report._timeline import Bar

__all__ = ["STATUS_COLOURS", "gantt_svg", "study_svgs", "sweep_svg"]

STATUS_COLOURS = {  # tkplan: ignore[constant]  the report's palette
    "ok": "#2e7d32", "failed": "#c62828", "timeout": "#ef6c00", "oom": "#6a1b9a", "crashed": "#212121",
    "skipped": "#9e9e9e", "pruned": "#f9a825", "interrupted": "#90a4ae", "running": "#1565c0"}
_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "tkplan", "font.size": 9, "axes.spines.top": False,
          "axes.spines.right": False}
_INCH_PER_LANE = 0.32
_WIDTH_IN = 11.0


def gantt_svg(bars: Sequence[Bar]) -> str:
    """Each bar on its lane, coloured by status; lanes top to bottom GPUs then slots."""
    plt = _pyplot()
    lanes = sorted({(b.lane_group != "GPU", _lane_order(b.lane), b.lane) for b in bars})
    row = {lane: i for i, (_, _, lane) in enumerate(lanes)}
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(_WIDTH_IN, 1.2 + _INCH_PER_LANE * max(1, len(lanes))))
        for status in dict.fromkeys(b.status for b in bars):
            for lane in row:
                spans = [(b.start, max(b.duration, 1e-3)) for b in bars if b.status == status and b.lane == lane]
                if spans:
                    ax.broken_barh(spans, (row[lane] - 0.4, 0.8), facecolors=STATUS_COLOURS.get(status, "#607d8b"),
                                   edgecolor="white", linewidth=0.3)
        ax.set_yticks(range(len(lanes)), [lane for _, _, lane in lanes])
        ax.invert_yaxis()
        ax.set_xlabel("seconds since the run started")
        ax.set_xlim(left=0)
        handles = [plt.Rectangle((0, 0), 1, 1, color=STATUS_COLOURS.get(s, "#607d8b"))
                   for s in dict.fromkeys(b.status for b in bars)]
        ax.legend(handles, list(dict.fromkeys(b.status for b in bars)), loc="upper center", ncols=8, frameon=False,
                  bbox_to_anchor=(0.5, 1.0 + 0.35 / fig.get_figheight()))
        return _svg(fig, plt)


def sweep_svg(axes: Mapping[str, Sequence[Any]], points: Sequence[Mapping[str, Any]], metric: str) -> str:
    """The metric against each swept key: one panel per key, one series per target.

    Args:
        axes: swept key → its values.
        points: ``{"values": {key: value}, "scores": {target: score}}`` per point.
        metric: the ranking metric's name (the y label).
    """
    plt = _pyplot()
    keys = list(axes)
    targets = list(dict.fromkeys(t for p in points for t in p["scores"]))
    with plt.rc_context(_STYLE):
        fig, panels = plt.subplots(1, max(1, len(keys)), figsize=(min(_WIDTH_IN, 3.6 * len(keys) + 1), 3.2),
                                   squeeze=False)
        for ax, key in zip(panels[0], keys, strict=False):
            values = [str(v) for v in axes[key]]
            for target in targets:
                xs = [values.index(str(p["values"][key])) for p in points if p["scores"].get(target) is not None]
                ys = [p["scores"][target] for p in points if p["scores"].get(target) is not None]
                ax.plot(xs, ys, "o", alpha=0.7, label=target)
            ax.set_xticks(range(len(values)), values, rotation=30 if max(map(len, values), default=0) > 6 else 0)
            ax.set_xlabel(key)
            ax.set_ylabel(metric)
        if panels[0][0].get_legend_handles_labels()[0]:
            panels[0][0].legend(frameon=False)
        fig.tight_layout()
        return _svg(fig, plt)


def study_svgs(trials: Sequence[Mapping[str, Any]], importances: Mapping[str, float], direction: str,
               metric: str) -> tuple[str, str | None]:
    """The optimisation history (each trial's value, the best so far) and the parameters' importances."""
    plt = _pyplot()
    done = [t for t in trials if t.get("value") is not None]
    better = max if direction == "maximize" else min
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(_WIDTH_IN * 0.6, 3.2))
        ax.plot([t["number"] for t in done], [t["value"] for t in done], "o", alpha=0.6, label="trial")
        best, running = [], None
        for t in done:
            running = t["value"] if running is None else better(running, t["value"])
            best.append(running)
        ax.step([t["number"] for t in done], best, where="post", color="#c62828", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(metric)
        ax.legend(frameon=False)
        fig.tight_layout()
        history = _svg(fig, plt)
        if not importances:
            return history, None
        names = sorted(importances, key=importances.__getitem__)
        fig, ax = plt.subplots(figsize=(_WIDTH_IN * 0.6, 0.6 + 0.3 * len(names)))
        ax.barh(names, [importances[n] for n in names], color="#1565c0")
        ax.set_xlabel("importance")
        fig.tight_layout()
        return history, _svg(fig, plt)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any, plt: Any) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]  # inline in HTML: without the XML prologue and DOCTYPE


def _lane_order(lane: str) -> int:
    number = lane.rpartition(" ")[2].split(",")[0]
    return int(number) if number.isdigit() else 0
