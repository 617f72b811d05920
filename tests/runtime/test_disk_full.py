"""A full disk stops a run with exit 7 and a clear message; nothing is lost and ``--resume`` finishes the run.

This machine's disk cannot be filled for a test, so the failure is made where the OS reports it: ``os.write``,
``os.fsync`` and ``os.pwrite`` raise ``ENOSPC`` (or write short) for the file under test.
"""

from __future__ import annotations

import collections
import errno
import json
import os

import pytest
from click.testing import CliRunner

from tkplan import cli
from tkplan.runtime import read_journal

from .projects import compile_project, family, save_plan, write_project


@pytest.fixture()
def plan_path(tmp_path):
    project = write_project(tmp_path / "project", {"works": family("ok")}, seeds=(1, 2, 3))
    return save_plan(compile_project(project), tmp_path / "plan.json")


def path_of(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def run(*args):
    return CliRunner().invoke(cli.main, ["run", *map(str, args)], catch_exceptions=False)


def assert_whole_records(journal):
    data = journal.read_bytes()
    assert data.endswith(b"}\n")
    assert all(json.loads(line)["event"] for line in data.splitlines())


def test_a_short_journal_write_is_cut_off_and_the_run_stops_with_exit_7(plan_path, tmp_path, monkeypatch):
    real_write, appends = os.write, []

    def full_after_three(fd, data):
        if path_of(fd).endswith("journal.jsonl"):
            appends.append(data)
            if len(appends) == 4:
                return real_write(fd, data[: len(data) // 2])  # the disk filled up mid-record
            if len(appends) > 4:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_after_three)
    result = run(plan_path, "--out", tmp_path / "run", "-q")
    monkeypatch.setattr(os, "write", real_write)

    assert result.exit_code == 7
    assert "no space left on the device" in result.stderr and "--resume --out" in result.stderr
    assert_whole_records(tmp_path / "run" / "journal.jsonl")

    resumed = run(plan_path, "--out", tmp_path / "run", "--resume", "-q")
    assert resumed.exit_code == 0, resumed.stderr
    records = read_journal(tmp_path / "run" / "journal.jsonl")
    ends = collections.Counter(r["step"] for r in records if r["event"] == "step_finished")
    assert sorted(ends.values()) == [1, 1, 1]


@pytest.mark.parametrize("victim", ["result.json", "plan.json"])
def test_a_failed_atomic_write_leaves_no_torn_file_and_exits_7(plan_path, tmp_path, monkeypatch, victim):
    real_fsync = os.fsync

    def full(fd):
        if f".{victim}." in path_of(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    result = run(plan_path, "--out", tmp_path / "run", "-q")
    assert result.exit_code == 7
    assert f"{victim}: no space left on the device" in result.stderr
    assert not [p for p in (tmp_path / "run").rglob("*.tmp")]
    if victim == "result.json":
        assert_whole_records(tmp_path / "run" / "journal.jsonl")


def test_a_full_disk_when_taking_the_lock_exits_7(plan_path, tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    result = run(plan_path, "--out", tmp_path / "run", "-q")
    assert result.exit_code == 7
    assert "no space left on the device" in result.stderr


def test_a_full_disk_while_preparing_the_data_stops_before_any_step_with_exit_7(tmp_path, monkeypatch):
    """The built-in trainer's data is written once before the first step (``numpy.save``, faked full here)."""
    import numpy as np

    from tkplan.errors import DiskFullError
    from tkplan.runtime import execute

    from ..families.plans import BUILT_IN, MACHINE, compile_small

    plan = compile_small(tmp_path, "campaign.families=[lightgbm]", "campaign.targets=[fwd_ret_5m]")

    def full(path, array, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(DiskFullError, match="no space left on the device; every finished step is kept"):
        execute(plan, tmp_path / "run", hardware=MACHINE, trainers=BUILT_IN)
    records = read_journal(tmp_path / "run" / "journal.jsonl")
    assert [r["event"] for r in records] == ["run_started", "run_interrupted"]


def test_a_run_stopped_by_a_full_disk_removes_what_its_killed_steps_were_half_way_through_writing(
        tmp_path, monkeypatch):
    """The disk fills while one step is inside an atomic write: the run stops (exit 7), that step is killed, and
    its temporary file goes with it."""
    project = write_project(tmp_path / "project", {"ends": family("count_when_released", sleep_s=60),
                                                    "writes": family("write_half_then_sleep")})
    plan_path = save_plan(compile_project(project), tmp_path / "plan.json")
    real_fsync = os.fsync

    def full(fd):
        if ".result.json." in path_of(fd):  # the first step to end cannot record its result
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    result = run(plan_path, "--out", tmp_path / "run", "-q")
    monkeypatch.setattr(os, "fsync", real_fsync)

    assert result.exit_code == 7, result.stderr
    writes = next((tmp_path / "run" / "steps").glob("writes.*"))
    assert (writes / "notes.txt").read_text() == "complete\n"
    assert [p.name for p in (tmp_path / "run").rglob("*.tmp")] == []
