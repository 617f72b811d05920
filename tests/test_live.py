"""The live progress of ``tkplan run`` on a terminal, and plain lines when stderr is not one."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from pathlib import Path

from tests.runtime.projects import (
    TKPLAN,
    compile_project,
    family,
    save_plan,
    write_project,
)
from tkplan._live import Progress, last_epoch
from tkplan._render import render_progress
from tkplan.runtime import RunStarted, StepStarted
from tkplan.runtime._context import log_epoch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_running_network_shows_its_epoch_and_validation_loss(tmp_path):
    step_dir = tmp_path / "steps" / "mlp.y.s1"
    step_dir.mkdir(parents=True)
    clock = Clock()
    progress = Progress(render_progress, clock=clock)
    progress(RunStarted(str(tmp_path), "0" * 64, total=3, done=0))
    progress(StepStarted("lightgbm.y.s1", ("lightgbm.y.s1",), 0, 3, 0.0))
    clock.now += 5
    progress(StepStarted("mlp.y.s1", ("lightgbm.y.s1", "mlp.y.s1"), 0, 3, 5.0))
    log_epoch(step_dir, 1, 5, val_loss=0.9, epoch_s=0.1)
    log_epoch(step_dir, 2, 5, val_loss=0.75, epoch_s=0.1)
    clock.now += 7
    rows = progress.rows()
    assert [(r.step_id, r.elapsed_s, r.epoch, r.epochs, r.val_loss) for r in rows] == [
        ("lightgbm.y.s1", 12.0, None, None, None), ("mlp.y.s1", 7.0, 2, 5, 0.75)]
    assert last_epoch(step_dir) == {"epoch": 2, "epochs": 5, "val_loss": 0.75, "epoch_s": 0.1}
    assert progress.renderable().title == "[0/3] done · 2 running · 0:12"


def run_plan(tmp_path: Path, terminal: bool) -> str:
    project = write_project(tmp_path / "project", {"works": family("ok"), "more": family("ok")})
    plan = save_plan(compile_project(project), tmp_path / "plan.json")
    args = [*TKPLAN, "run", str(plan), "--out", str(tmp_path / "run")]
    if not terminal:
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stderr
    controller, terminal_fd = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=terminal_fd, stdin=subprocess.DEVNULL)
    os.close(terminal_fd)
    chunks = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_the_display_is_live(tmp_path):
    shown = run_plan(tmp_path, terminal=True)
    assert "done · " in shown and " running · " in shown  # the live area's title
    assert "\x1b[" in shown  # redrawn in place
    assert "ok      works.y.s42" in shown and "start   " not in shown


def test_without_a_terminal_progress_is_plain_lines(tmp_path):
    shown = run_plan(tmp_path, terminal=False)
    assert "start   works.y.s42" in shown and "[2/2] ok" in shown
    assert "\x1b[" not in shown and "done · " not in shown
