"""Open a written report in headless Chromium: its DOM after load, what it logged to the console, a screenshot.

For the report's tests and ``tools/report/screenshot.py``; nothing in tkplan needs a browser to write a
report. Chromium runs with a throw-away profile, no network services, no GPU, no sandbox (containers).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs

__all__ = ["Page", "chromium", "load", "screenshot"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0")
_CONSOLE = re.compile(r'CONSOLE\(\d+\)\] "(?P<message>.*)", source: (?P<source>.*)|:CONSOLE:\d+\] "(?P<m2>.*)"')


@attrs.frozen
class Page:
    """A page as Chromium saw it: the DOM after load and the console messages it logged."""

    dom: str
    console: tuple[str, ...]


def chromium() -> str | None:
    """The path of a Chromium (or Chrome) on this machine, or ``None``."""
    return next((path for path in map(shutil.which, _NAMES) if path), None)


def load(html: Path, timeout_s: float = 60) -> Page:
    """Load ``html`` and return its DOM and console messages."""
    done = _run(["--dump-dom", Path(html).resolve().as_uri()], timeout_s)
    console = tuple(m.group("message") or m.group("m2") for m in _CONSOLE.finditer(done.stderr))
    return Page(done.stdout, console)


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 2400, timeout_s: float = 60) -> Path:
    """Write a PNG of ``html`` as a ``width`` × ``height`` window shows it."""
    png = Path(png).resolve()
    _run([f"--screenshot={png}", f"--window-size={width},{height}", "--hide-scrollbars",
          Path(html).resolve().as_uri()], timeout_s)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def _run(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH; install it (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="tkplan-chromium-") as profile:
        return subprocess.run([binary, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout_s, check=False)
