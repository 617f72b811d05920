"""Atomic writes leave a complete file with the mode a plain ``open`` would give it, and what a killed writer
left half-written is found by its name and removed."""

from __future__ import annotations

import os
import stat

from tkplan._io import atomic_path, remove_partial_writes, write_text_atomic


def test_a_written_file_follows_the_umask_and_leaves_no_temporary(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "plan.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plan.json").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_a_rewrite_replaces_the_whole_content(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "a much longer first version\n")
    write_text_atomic(tmp_path / "a.txt", "second\n")
    assert (tmp_path / "a.txt").read_text() == "second\n"


def test_only_the_temporaries_of_killed_writers_are_removed_and_links_are_not_followed(tmp_path):
    step, elsewhere = tmp_path / "step", tmp_path / "elsewhere"
    (step / "checkpoints").mkdir(parents=True)
    elsewhere.mkdir()
    write_text_atomic(step / "result.json", "{}\n")
    with atomic_path(step / "checkpoints" / "best.npz") as partial:
        partial.write_bytes(b"saved whole")
    left = [step / ".outcome.json.777.b7a95721.tmp", step / "checkpoints" / ".partial-12.0a1b2c3d.last.npz"]
    kept = [step / ".hidden", step / "x.tmp", step / ".a.json.12.not-hex.tmp", elsewhere / ".b.json.3.deadbeef.tmp"]
    for path in [*left, *kept]:
        path.write_text("")
    (step / "linked").symlink_to(elsewhere)

    assert sorted(remove_partial_writes(step)) == sorted(left)
    assert all(p.exists() for p in kept)
    assert (step / "result.json").read_text() == "{}\n"
    assert (step / "checkpoints" / "best.npz").read_bytes() == b"saved whole"
