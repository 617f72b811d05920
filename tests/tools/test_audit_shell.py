"""Shell scripts: `${VAR:-default}` and `export NAME=value`, with quotes, comments and here-documents."""

from __future__ import annotations

import os
from pathlib import Path

from tkplan.tools.audit import audit


def findings_of(tmp_path: Path, script: str) -> list[tuple]:
    (tmp_path / "job.sh").write_text(script, encoding="utf-8")
    os.chdir(tmp_path)
    return [(f.location, f.kind, f.key, f.value) for f in audit(["job.sh"]).findings]


def test_every_default_form_is_found(tmp_path: Path) -> None:
    script = 'A=${A:-1x}\nB="${B-2}" C=${C:=three} D=${D=4.5}\n: "${E:-"quoted value"}"\n'

    assert findings_of(tmp_path, script) == [
        ("job.sh:1:3", "shell_default", "A", "1x"),
        ("job.sh:2:4", "shell_default", "B", "2"),
        ("job.sh:2:14", "shell_default", "C", "three"),
        ("job.sh:2:28", "shell_default", "D", "4.5"),
        ("job.sh:3:4", "shell_default", "E", "quoted value"),
    ]


def test_quoted_here_documents_do_not_expand(tmp_path: Path) -> None:
    script = (
        "cat <<'EOF'\n${NOT_EXPANDED:-1x}\nEOF\n"
        "cat <<EOF\n${EXPANDED:-2x}\nEOF\n"
        "echo ${AFTER:-3x}\n"
    )

    assert findings_of(tmp_path, script) == [
        ("job.sh:5:1", "shell_default", "EXPANDED", "2x"),
        ("job.sh:7:6", "shell_default", "AFTER", "3x"),
    ]


def test_nested_defaults_report_only_the_literal_one(tmp_path: Path) -> None:
    script = "X=${OUTER:-${INNER:-8}}\nY=${COUNT:-$(nproc)}\n"

    assert findings_of(tmp_path, script) == [("job.sh:1:12", "shell_default", "INNER", "8")]


def test_exports_of_literals_are_env_writes(tmp_path: Path) -> None:
    script = "export A=1 B='two words' C=\"$HOME\"\nexport D=`date`\n  export E=e # export F=f\n"

    assert findings_of(tmp_path, script) == [
        ("job.sh:1:8", "env_write", "A", "1"),
        ("job.sh:1:12", "env_write", "B", "two words"),
        ("job.sh:3:10", "env_write", "E", "e"),
    ]


def test_an_ignore_comment_silences_a_shell_line(tmp_path: Path) -> None:
    script = "T=${THREADS:-4}  # tkplan: ignore[shell_default]\nexport OMP_NUM_THREADS=2  # tkplan: ignore\n"

    assert findings_of(tmp_path, script) == []
