"""Check, before the first step, that the plan's data is still what it was compiled from.

A plan records its data's identity (``plan.data``): for a file, its path relative to the project root, its
size and sha256. `check_data` measures the file again (``tkplan._data_digest``: the digest is reused while
the file's path, size, mtime and inode are unchanged) and refuses a changed or missing file with a
`DataDriftError` naming the file and both digests, unless the caller allows drift. `project_root` says where
``tkplan run`` finds the project of a saved plan.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import attrs

from tkplan.errors import DataDriftError, DataError
from tkplan.planner._convert import thaw
from tkplan.planner._plan import Plan

__all__ = ["DataCheck", "check_data", "project_root"]

_PROJECT_FILE = "tkplan.yaml"  # tkplan: ignore[constant]  the project file, as the planner's layering names it


@attrs.frozen
class DataCheck:
    """What `check_data` found.

    Attributes:
        config: the plan's configuration with ``data.source`` made absolute, for the steps to read.
        source: the data file's absolute path, or the built-in source's name.
        sha256: the digest the file has now (``None`` for a built-in source).
        drift: what differs from the plan (allowed by the caller); empty when nothing does.
    """

    config: dict[str, Any]
    source: str
    sha256: str | None
    drift: str = ""


def project_root(plan_file: Path) -> Path:
    """The project a saved plan belongs to: the nearest directory, from the plan file's up, holding
    ``tkplan.yaml``; else the plan file's own directory.

    .. versionadded:: 0.1
    """
    start = Path(plan_file).absolute().parent
    return next((d for d in (start, *start.parents) if (d / _PROJECT_FILE).is_file()), start)


def check_data(plan: Plan, root: Path, cache_dir: Path | None, *, allow_drift: bool = False) -> DataCheck:
    """Measure the plan's data file again and compare it with the plan's record.

    Args:
        plan: the plan.
        root: the project root a relative ``data.source`` is relative to.
        cache_dir: the digest cache (``None``: read the whole file).
        allow_drift: return the changed file's facts instead of refusing it.

    Raises:
        DataDriftError: the file is missing, or its content differs from the plan's, and drift is not allowed.
    """
    config = thaw(plan.config)
    data = plan.data
    if data.sha256 is None:
        return DataCheck(config, data.source, None)
    from tkplan._data_digest import file_facts

    path = (Path(root) / data.source).absolute()
    config = copy.deepcopy(config)
    config["data"]["source"] = str(path)
    try:
        facts = file_facts(path, cache_dir)
    except DataError:
        if not allow_drift:
            raise DataDriftError(f"the plan's data file {data.source} is not at {path} (relative paths in a plan "
                                 f"are relative to its project, here {root}); run the plan from its project, or "
                                 "compile it again", path=str(path), expected=data.sha256) from None
        return DataCheck(config, str(path), None, f"{path}: missing")
    if facts.sha256 == data.sha256:
        return DataCheck(config, str(path), facts.sha256)
    change = (f"{path} changed since the plan was compiled: sha256 {data.sha256} ({data.size} bytes) in the plan, "
              f"{facts.sha256} ({facts.size} bytes) now")
    if not allow_drift:
        raise DataDriftError(f"{change}; compile the plan again for the new data, or pass --allow-data-drift to "
                             "run on the file as it is now", path=str(path), expected=data.sha256, actual=facts.sha256)
    return DataCheck(config, str(path), facts.sha256, change)
