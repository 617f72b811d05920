"""The data a plan trains on: path-valued keys resolved where they were set, and the data's identity.

Paths. A relative path in a path-valued key (`PATH_KEYS`) set in a profile file is relative to that file's
directory; one set on the command line, in the environment or in a shipped profile is relative to the working
directory. The plan stores it relative to the project root (the directory the plan is compiled in, where
``tkplan.yaml`` lives), so a plan's bytes do not depend on where its profiles sit. An absolute path stays as
written.

Identity. A plan records what its steps train on (`DataIdentity`): a file source's stored path, size and
sha256 — measured at the edge (``tkplan._data_digest``, like the hardware probe) and passed in as
`FileFacts` — or a built-in source's name and generator settings. ``plan_hash`` covers it, and so does each
step's digest (`step_digest`): two steps with one digest are the same work.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from tkplan.errors import PlanningError, Problem
from tkplan.planner._convert import thaw
from tkplan.planner._merge import Provenance
from tkplan.planner._plan import DataIdentity, Step, canonical_json
from tkplan.planner._sources import SHIPPED_PREFIX

__all__ = ["PATH_KEYS", "FileFacts", "data_identity", "file_source", "resolve_paths", "step_digest"]

PATH_KEYS = ("data.source",)  # tkplan: ignore[constant]  the keys whose values are paths
_BUILTIN = "builtin:"  # tkplan: ignore[constant]  the prefix of built-in sources


@attrs.frozen
class FileFacts:
    """A data file as measured at the edge: its size in bytes and the sha256 of its content."""

    size: int
    sha256: str


def resolve_paths(config: dict[str, Any], provenance: Provenance, root: Path) -> None:
    """Rewrite every relative path of `PATH_KEYS` in ``config`` as a path relative to ``root``, in place.

    Args:
        config: the merged configuration.
        provenance: who set each key; the last setting's file anchors a relative path.
        root: the project root (the compile's working directory); layer files are shown relative to it.
    """
    for key in PATH_KEYS:
        *parents, leaf = key.split(".")
        section: Any = config
        for part in parents:
            section = section.get(part) if isinstance(section, dict) else None
        value = section.get(leaf) if isinstance(section, dict) else None
        if not isinstance(section, dict) or not isinstance(value, str) or value.startswith(_BUILTIN) \
                or os.path.isabs(value):
            continue
        chain = provenance.get(key) or []
        file = chain[-1].file if chain else None
        anchor = Path(os.path.dirname(file)) if file and not file.startswith(SHIPPED_PREFIX) else Path()
        section[leaf] = PurePosixPath(os.path.relpath(os.path.normpath(root / anchor / value), root)).as_posix()


def file_source(config: Mapping[str, Any]) -> str | None:
    """The data file ``config`` reads (relative to the project root, or absolute), or ``None`` for a built-in."""
    source = str(config["data"]["source"])
    return None if source.startswith(_BUILTIN) else source


def data_identity(config: Mapping[str, Any], files: Mapping[str, FileFacts]) -> DataIdentity:
    """The identity of the data ``config`` trains on.

    Args:
        config: the resolved configuration (``data.source`` already resolved by `resolve_paths`).
        files: facts of the data files, by the path `file_source` gives.

    Raises:
        PlanningError: a file source that ``files`` has no facts for (the caller did not measure it).
    """
    source = file_source(config)
    if source is None:
        generator = {"base_seed": config["run"]["base_seed"], "synthetic": config["data"]["synthetic"]}
        name = str(config["data"]["source"])
        return DataIdentity(name, None, None, generator if name == f"{_BUILTIN}synthetic_panel" else {})
    facts = files.get(source)
    if facts is None:
        raise PlanningError([Problem(f"the data file {source} was not measured", path="data.source",
                                     hint="compile with `tkplan compile`, which reads the file's size and digest")])
    return DataIdentity(source, facts.size, facts.sha256, {})


def step_digest(step: Step, data: DataIdentity, shared: Mapping[str, Any], version: str,
                after: Mapping[str, str]) -> str:
    """The sha256 of what decides a step's result.

    Args:
        step: the step: family, params, targets, task, seed, entrypoint.
        data: the data's identity.
        shared: the settings every step trains with (the ``data`` section's preparation, ``training``).
        version: the tkplan version.
        after: digest of each step this one depends on (a cascade's inputs).
    """
    what = {"family": step.family, "params": thaw(step.params), "targets": list(step.targets),
            "task": step.task, "seed": step.seed, "entrypoint": step.entrypoint, "data": data.digest,
            "shared": shared, "tkplan": version, "after": [after.get(d, d) for d in step.depends_on]}
    return hashlib.sha256(canonical_json(what).encode("utf-8")).hexdigest()
