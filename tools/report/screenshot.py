"""Write a run's HTML report and a screenshot of it, for people to look at.

    python tools/report/screenshot.py RUN_DIR [PNG]

The report goes to RUN_DIR/report.html, the screenshot to PNG (default RUN_DIR/report.png); needs Chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tkplan._io import write_text_atomic
from tkplan.tools.report import load_run, render_html
from tkplan.tools.report._browser import chromium, screenshot


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if chromium() is None:
        print("no chromium on PATH; install it (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    html = run_dir / "report.html"
    write_text_atomic(html, render_html(load_run(run_dir)))
    png = screenshot(html, Path(argv[1]) if len(argv) > 1 else run_dir / "report.png")
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
