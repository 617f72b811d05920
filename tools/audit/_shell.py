"""Find the defaults written into shell scripts: ``${VAR:-default}`` and ``export NAME=value``.

Shell is not Python, so a small line tokenizer does the job instead of `ast`: it follows single and
double quotes (also across lines), ``\\`` escapes, ``#`` comments and here-documents (a quoted
delimiter, ``<<'EOF'``, turns expansion off, so its body is skipped). A default that itself expands
something (``${A:-$B}``, ``${A:-$(nproc)}``) is not a literal and is not reported; the inner expansion
is still scanned.

Kinds: ``shell_default`` for ``${VAR:-word}``, ``${VAR-word}``, ``${VAR:=word}`` and ``${VAR=word}``;
``env_write`` for ``export NAME=literal``.
"""

from __future__ import annotations

import re

from ._config import AuditSettings
from ._findings import Finding
from ._keys import suggest
from ._rules import Rules
from ._scan import FileScan
from ._source import parse_ignores

__all__ = ["scan_shell"]

_NAME_OP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-=])")
_EXPORT = re.compile(r"(?:^|[;&|]\s*|\s)export\s+")
_ASSIGN = re.compile(r"""([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|[^\s;&|#]*)""")
_HEREDOC = re.compile(r"""<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1""")
_COMMENT_START = frozenset(" \t;|&(")


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word.replace('"', "").replace("'", "")


def _closing_braces(line: str) -> dict[int, int]:
    """For each ``${`` of ``line``, by the index of its ``$``, the index of the ``}`` that closes it.

    One pass with a stack (every ``{`` opens, every ``}`` closes, ``\\`` escapes the next character),
    so nested expansions such as ``${A:-${A:-...}}`` cost linear time, not a scan per ``${``.
    """
    closes: dict[int, int] = {}
    stack: list[int] = []  # the index of the `$` of a `${`, or -1 for a plain `{`
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i - 1 if i and line[i - 1] == "$" else -1)
        elif c == "}" and stack:
            start = stack.pop()
            if start >= 0:
                closes[start] = i
        i += 1
    return closes


class _ShellScanner:
    def __init__(self, path: str, settings: AuditSettings) -> None:
        self.path = path
        self.rules = Rules(settings, path)
        self.found: list[tuple[int, int, str, str, str]] = []  # line, col, kind, key, value

    def add(self, line: int, col: int, kind: str, key: str, value: str) -> None:
        if kind in self.rules.kinds and not self.rules.is_noise(kind, key, value):
            self.found.append((line, col, kind, key, value))

    def scan(self, lines: list[str]) -> None:
        quote = ""
        heredoc: tuple[str, bool] | None = None  # (delimiter, expands)
        for number, line in enumerate(lines, 1):
            if heredoc is not None:
                delimiter, expands = heredoc
                if line.strip() == delimiter:
                    heredoc = None
                elif expands:
                    self.expansions(number, line, in_heredoc=True)
                continue
            quote, code = self.expansions(number, line, quote=quote)
            if not quote:
                match = _HEREDOC.search(code)
                if match:
                    heredoc = (match.group(2), not match.group(1))
                self.exports(number, code)

    def expansions(self, number: int, line: str, *, quote: str = "", in_heredoc: bool = False) -> tuple[str, str]:
        """Report the defaults of one line; return the open quote at its end and the line without its comment."""
        i = 0
        n = len(line)
        closes: dict[int, int] | None = None
        expanding = [0]  # expanding[k]: how many `$` and backquotes line[:k] holds
        for ch in line:
            expanding.append(expanding[-1] + (ch == "$" or ch == "`"))
        while i < n:
            c = line[i]
            if quote == "'":
                if c == "'":
                    quote = ""
                i += 1
                continue
            if c == "\\":
                i += 2
                continue
            if not in_heredoc:
                if c == "'" and not quote:
                    quote = "'"
                    i += 1
                    continue
                if c == '"':
                    quote = "" if quote else '"'
                    i += 1
                    continue
                if c == "#" and not quote and (i == 0 or line[i - 1] in _COMMENT_START):
                    return quote, line[:i]
            if c == "$" and line.startswith("{", i + 1):
                if closes is None:
                    closes = _closing_braces(line)
                end = closes.get(i, -1)
                if end < 0:
                    return quote, line
                match = _NAME_OP.match(line, i + 2, end)
                if match and expanding[end] == expanding[match.end()]:  # a default that expands nothing
                    self.add(number, i + 1, "shell_default", match.group(1), _unquote(line[match.end() : end]))
                    i = end + 1
                    continue
                i += 2
                continue
            i += 1
        return quote, line

    def exports(self, number: int, code: str) -> None:
        for export in _EXPORT.finditer(code):
            pos = export.end()
            while True:
                match = _ASSIGN.match(code, pos)
                if match is None:
                    break
                raw = match.group(2)
                if raw.startswith("'") or ("$" not in raw and "`" not in raw):
                    self.add(number, match.start() + 1, "env_write", match.group(1), _unquote(raw))
                pos = match.end()
                while pos < len(code) and code[pos] in " \t":
                    pos += 1


def scan_shell(path: str, data: bytes, settings: AuditSettings) -> FileScan:
    """Scan the shell script ``data`` of the file shown as ``path``; raises nothing for bad input."""
    text = data.decode("utf-8", "replace")
    lines = re.split(r"\r\n|\r|\n", text)
    scanner = _ShellScanner(path, settings)
    scanner.scan(lines)
    ignores, notes = parse_ignores((n, lines[n - 1]) for n in sorted({f[0] for f in scanner.found}))
    findings = []
    for line, col, kind, key, value in scanner.found:
        silenced = ignores.get(line, ())
        if silenced is None or kind in silenced:
            continue
        findings.append(Finding(path, line, col, kind, key, value, "", suggest(kind, key, "")))
    return FileScan(path, tuple(findings), notes=tuple(f"{path}: {n}" for n in notes))
