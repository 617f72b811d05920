"""The executor loop with a fake engine: admission, dependencies, interruption, resume — no processes needed."""

from __future__ import annotations

import pytest

from tkplan._render import render_progress
from tkplan.runtime import (
    ExecutorSettings,
    Heartbeat,
    StepStarted,
    _engine,
    engine_names,
    execute,
    get_engine,
    read_journal,
    register_engine,
)

from .fakes import FakeEngine
from .projects import compile_project, family, write_project


@pytest.fixture()
def fake(monkeypatch):
    """Register the fake engine as "fake" for one test."""
    monkeypatch.setitem(_engine._ENGINES, "fake", FakeEngine)
    monkeypatch.setattr(FakeEngine, "statuses", {})
    return FakeEngine


def run(plan, run_dir, **kwargs):
    return execute(plan, run_dir, engine="fake", hardware=plan.hardware, **kwargs)


class TestAdmission:
    def test_steps_run_at_most_as_many_at_once_as_the_thread_budget_allows(self, fake, tmp_path):
        plan = compile_project(write_project(tmp_path, {"a": family("ok")}, seeds=(1, 2, 3, 4, 5)))
        assert (plan.schedule.thread_budget, plan.schedule.max_parallel) == (2, 2)
        summary = run(plan, tmp_path / "run")
        assert summary.ok and fake.last.most_at_once == 2
        assert fake.last.started == list(plan.schedule.order)

    def test_max_parallel_lowers_the_slots(self, fake, tmp_path):
        plan = compile_project(write_project(tmp_path, {"a": family("ok")}, seeds=(1, 2, 3)))
        assert run(plan, tmp_path / "run", max_parallel=1).ok
        assert fake.last.most_at_once == 1

    def test_a_wide_step_waits_while_narrow_ones_fill_the_budget(self, fake, tmp_path):
        """Work-conserving: a step that does not fit now is passed over for one that does."""
        plan = compile_project(write_project(tmp_path, {"narrow": family("ok"), "wide": family("ok", threads=2)},
                                             seeds=(1, 2)))
        summary = run(plan, tmp_path / "run")
        assert summary.ok
        assert sorted(fake.last.started) == sorted(plan.schedule.order)
        for running in fake.last.at_start:
            threads = sum(plan.step(s).resources.threads for s in running)
            assert threads <= plan.schedule.thread_budget
            if any(s.startswith("wide.") for s in running):
                assert len(running) == 1


class TestDependencies:
    def test_steps_after_a_failure_are_skipped_and_the_rest_runs(self, fake, tmp_path, monkeypatch):
        monkeypatch.setattr(FakeEngine, "statuses", {"first": "failed"})
        plan = compile_project(write_project(tmp_path, {"first": family("ok"), "other": family("ok")},
                                             after={"then": family("ok")}, seeds=(1, 2)))
        summary = run(plan, tmp_path / "run")
        statuses = {r.step_id: (r.status, r.detail) for r in summary.results}
        assert statuses["then.y.s1"] == ("skipped", "dependency first.y.s1 ended failed")
        assert statuses["other.y.s1"] == ("ok", "")
        assert not any(s.startswith("then.") for s in fake.last.started)
        assert dict(summary.counts) == {"ok": 2, "failed": 2, "timeout": 0, "oom": 0, "crashed": 0, "skipped": 2,
                                        "pruned": 0}

    def test_a_step_starts_only_after_its_dependencies_ended_ok(self, fake, tmp_path):
        plan = compile_project(write_project(tmp_path, {"first": family("ok")}, after={"then": family("ok")}))
        assert run(plan, tmp_path / "run").ok
        assert fake.last.started == ["first.y.s42", "then.y.s42"]


class TestInterruption:
    def test_an_interrupt_closes_the_engine_and_resume_runs_what_did_not_finish(self, fake, tmp_path):
        plan = compile_project(write_project(tmp_path, {"a": family("ok")}, seeds=(1, 2, 3, 4)))

        def interrupt_on_third_start(event):
            if isinstance(event, StepStarted) and len(fake.last.started) == 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run(plan, tmp_path / "run", on_event=interrupt_on_third_start)
        assert fake.last.closed
        records = read_journal(tmp_path / "run" / "journal.jsonl")
        assert records[-1]["event"] == "run_interrupted"
        finished = {r["step"] for r in records if r["event"] == "step_finished"}

        summary = run(plan, tmp_path / "run", resume=True)
        assert summary.ok
        assert set(fake.last.started) == set(plan.schedule.order) - finished
        assert {r["step"] for r in fake.last.orphan_records} == set(records[-1]["running"])


def test_an_unknown_engine_is_named_with_the_known_ones():
    with pytest.raises(KeyError, match=r"no engine 'dask'; known: local, ray"):
        get_engine("dask")


def test_an_engine_is_registered_by_import_string(monkeypatch):
    monkeypatch.setitem(_engine._ENGINES, "fake2", "tests.runtime.fakes:FakeEngine")
    assert get_engine("fake2") is FakeEngine
    register_engine("fake3", FakeEngine)
    try:
        assert get_engine("fake3") is FakeEngine
    finally:
        del _engine._ENGINES["fake3"]


def test_an_engine_declared_by_an_installed_package_is_found_by_name(tmp_path, monkeypatch):
    """Another package ships an engine (a Ray one, say) through the ``tkplan.engines`` entry-point group."""
    dist = tmp_path / "tkplan_fake_engine-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tkplan-fake-engine\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tkplan.engines]\nfake_installed = tests.runtime.fakes:FakeEngine\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_engine, "_ENGINES", dict(_engine._ENGINES))

    assert "fake_installed" in engine_names()
    assert get_engine("fake_installed") is FakeEngine
    plan = compile_project(write_project(tmp_path / "project", {"a": family("ok")}))
    summary = execute(plan, tmp_path / "run", engine="fake_installed", hardware=plan.hardware)
    assert summary.ok and FakeEngine.last is not None and FakeEngine.last.started == ["a.y.s42"]


def test_long_steps_get_heartbeats_naming_what_runs(fake, tmp_path):
    """While nothing starts or ends for ``heartbeat_s``, the executor still reports what is running."""

    class Slow(FakeEngine):
        def poll(self, timeout_s):
            self.polls = getattr(self, "polls", 0) + 1
            return super().poll(timeout_s) if self.polls % 3 == 0 else []

    _engine._ENGINES["fake"] = Slow
    plan = compile_project(write_project(tmp_path, {"a": family("ok")}))
    events: list[object] = []
    run(plan, tmp_path / "run", on_event=events.append, settings=ExecutorSettings(heartbeat_s=1e-9))
    beats = [e for e in events if isinstance(e, Heartbeat)]
    assert [(b.running, b.done, b.total) for b in beats] == [(("a.y.s42",), 0, 1)] * 2
    line = render_progress(beats[0])
    assert line is not None and line.startswith("[0/1] running a.y.s42   elapsed 0:00")
