"""Atomic writes leave a complete file with the mode a plain ``open`` would give it."""

from __future__ import annotations

import os
import stat

from tkplan._io import write_text_atomic


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
