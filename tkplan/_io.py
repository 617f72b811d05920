"""Atomic file writes: a reader sees the old content or the new, never a torn file.

The new file gets the mode of any file created here (``0o666`` less the umask), as a plain ``open`` would.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "remove_partial_writes", "write_bytes_atomic", "write_text_atomic"]

# The temporary names the writers below make: ``.NAME.PID.HEX.tmp`` and ``.partial-PID.HEX.NAME``.
_TEMPORARY = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp|\.partial-\d+\.[0-9a-f]{8}\..+")


def write_bytes_atomic(path: Path, data: bytes | Iterable[bytes], *, parents: bool = True) -> None:
    """Write ``data`` (or its chunks, in order) to ``path`` through a temporary file in the same directory,
    fsync'd, then renamed.

    Args:
        parents: create the missing directories above ``path`` (else a missing one is an error).

    Raises:
        OSError: the write failed (``ENOSPC``...); ``path`` is untouched, no temporary file is left, and the
            error's ``filename`` is ``path``.
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in [data] if isinstance(data, bytes) else data:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)
        raise


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name next to ``path``, with its extension, for a library that writes files itself
    (``np.save``, ``torch.save``): renamed onto ``path`` when the block ends, removed when it raises."""
    path = Path(path)
    tmp = path.with_name(f".partial-{os.getpid()}.{secrets.token_hex(4)}.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str, *, parents: bool = True) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (``parents`` as `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"), parents=parents)


def remove_partial_writes(directory: Path) -> list[Path]:
    """Remove what atomic writes under ``directory`` left behind when their writer was killed mid-write: files
    with the temporary names `write_bytes_atomic` and `atomic_path` make, and nothing else (links are not
    followed). Call it once nothing writes there any more.

    Returns:
        The files removed.
    """
    removed = []
    for parent, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(parent, name)
            if _TEMPORARY.fullmatch(name) and not path.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed
