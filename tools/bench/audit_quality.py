"""Benchmark: precision and recall of ``tkplan audit`` on the hand-labelled corpus, per kind.

Usage::

    python tools/bench/audit_quality.py [--corpus DIR] [--profiles FILE_OR_DIR]... [--show]

The corpus (``tests/tools/corpus/`` by default) holds realistic training modules, a shell launcher and
config files, and ``labels.yaml``: for every line that holds a literal, ``not`` or the settings on it as
``kind=value``. First the labels are checked to cover every such line (a line with a literal and no
label is an error: the corpus must be labelled in full). Then the corpus is audited and each finding
matched with a setting label of its line and value (each label once):

- recall of a kind: labelled settings of that kind found (by a finding of any kind) / labelled settings;
- precision of a kind: findings of that kind that match a setting label / findings of that kind.

Prints one row per kind and the totals, and with ``--show`` every miss and every false positive.
Targets: recall >= 0.95 with precision >= 0.8; exit 0 when both are met, else 1 (2: bad labels).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from tkplan.planner._yaml import load_path, parse_value
from tkplan.tools.audit import AuditSettings, Finding, audit
from tkplan.tools.audit._profiles import same_value

__all__ = ["Label", "Score", "coverage_gaps", "main", "read_labels", "score"]

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "tools" / "corpus"
TARGET_RECALL = 0.95  # tkplan: ignore[constant]
TARGET_PRECISION = 0.8  # tkplan: ignore[constant]
_LABEL = re.compile(r"^\s*([a-z_]+)=(.+?)\s*$")


@attrs.frozen
class Label:
    """One hand-labelled setting: the file (relative to the corpus), its line, kind and value."""

    path: str
    line: int
    kind: str
    value: Any


@attrs.frozen
class Score:
    """The outcome of matching findings with labels."""

    found: tuple[tuple[Label, Finding], ...]
    missed: tuple[Label, ...]
    false: tuple[Finding, ...]

    def recall(self, kind: str | None = None) -> float:
        hit = sum(1 for label, _ in self.found if kind in (None, label.kind))
        total = hit + sum(1 for label in self.missed if kind in (None, label.kind))
        return hit / total if total else 1.0

    def precision(self, kind: str | None = None) -> float:
        hit = sum(1 for _, finding in self.found if kind in (None, finding.kind))
        total = hit + sum(1 for finding in self.false if kind in (None, finding.kind))
        return hit / total if total else 1.0


def read_labels(corpus: Path) -> tuple[dict[str, set[int]], list[Label]]:
    """Read ``labels.yaml``: the labelled lines per file, and the setting labels."""
    document = load_path(corpus / "labels.yaml")
    lines: dict[str, set[int]] = {}
    labels: list[Label] = []
    for path, entries in document.data.items():
        lines[path] = {int(line) for line in entries}
        for line, text in entries.items():
            if text == "not":
                continue
            for part in str(text).split("; "):
                match = _LABEL.match(part)
                if match is None:
                    raise ValueError(f"labels.yaml: {path}:{line}: {part!r} is neither 'not' nor 'kind=value'")
                value = parse_value(match.group(2), f"labels.yaml:{path}:{line}")
                labels.append(Label(path, int(line), match.group(1), value))
    return lines, labels


def _literal_lines(path: Path) -> set[int]:
    """The lines of ``path`` that hold a literal (Python: a constant that is not a docstring)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return {
            n
            for n, line in enumerate(text.splitlines(), 1)
            if re.search(r"\w", line) and not line.lstrip().startswith("#")
        }
    tree = ast.parse(text)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            found.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return found


def coverage_gaps(corpus: Path, labelled: dict[str, set[int]]) -> list[str]:
    """Every ``file:line`` of the corpus that holds a literal and has no label."""
    gaps: list[str] = []
    for path in sorted(corpus.rglob("*")):
        rel = path.relative_to(corpus).as_posix()
        if not path.is_file() or rel == "labels.yaml" or rel.startswith("profiles/") or "__pycache__" in rel:
            continue
        have = labelled.get(rel, set())
        gaps.extend(f"{rel}:{n}" for n in sorted(_literal_lines(path) - have))
    return gaps


def score(findings: Iterable[Finding], labels: Sequence[Label], corpus: str) -> Score:
    """Match each finding with an unused setting label of the same file, line and value."""
    open_labels: dict[tuple[str, int], list[Label]] = {}
    for label in labels:
        open_labels.setdefault((label.path, label.line), []).append(label)
    found: list[tuple[Label, Finding]] = []
    false: list[Finding] = []
    prefix = f"{corpus}/"
    for finding in findings:
        rel = finding.path[len(prefix):] if finding.path.startswith(prefix) else finding.path
        candidates = open_labels.get((rel, finding.line), [])
        match = next((c for c in candidates if same_value(finding.value, c.value)), None)
        if match is None:
            false.append(finding)
        else:
            candidates.remove(match)
            found.append((match, finding))
    missed = [label for rest in open_labels.values() for label in rest]
    return Score(tuple(found), tuple(missed), tuple(false))


def main(argv: Sequence[str] | None = None) -> int:
    """Check the labels, audit the corpus and print precision and recall per kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the labelled corpus [default: %(default)s]")
    parser.add_argument("--profiles", action="append", default=[], help="profiles to give the audit")
    parser.add_argument("--show", action="store_true", help="list every miss and false positive")
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    labelled, labels = read_labels(corpus)
    gaps = coverage_gaps(corpus, labelled)
    if gaps:
        print("lines with a literal and no label:\n  " + "\n  ".join(gaps), file=sys.stderr)
        return 2
    settings = AuditSettings(exclude=("labels.yaml", "profiles"))  # the answers and the profiles are not the tree
    result = audit([corpus.as_posix()], settings=settings, profiles=args.profiles)
    outcome = score(result.findings, labels, corpus.as_posix())
    kinds = sorted({label.kind for label in labels} | {f.kind for f in result.findings})
    label_count = Counter(label.kind for label in labels)
    finding_count = Counter(f.kind for f in result.findings)
    print(f"corpus {corpus}: {len(labels)} labelled settings, {len(result.findings)} findings")
    print(f"{'kind':<20}{'labels':>7}{'findings':>9}{'recall':>8}{'precision':>10}")
    for kind in kinds:
        print(f"{kind:<20}{label_count[kind]:>7}{finding_count[kind]:>9}"
              f"{outcome.recall(kind):>8.2f}{outcome.precision(kind):>10.2f}")
    recall, precision = outcome.recall(), outcome.precision()
    print(f"{'total':<20}{len(labels):>7}{len(result.findings):>9}{recall:>8.2f}{precision:>10.2f}")
    print(f"targets: recall >= {TARGET_RECALL}, precision >= {TARGET_PRECISION}")
    if args.show:
        for label in outcome.missed:
            print(f"missed  {label.path}:{label.line}  {label.kind}={label.value!r}")
        for finding in outcome.false:
            print(f"false   {finding.location}  {finding.kind} {finding.key}={finding.value!r}")
    return 0 if recall >= TARGET_RECALL and precision >= TARGET_PRECISION else 1


if __name__ == "__main__":
    sys.exit(main())
