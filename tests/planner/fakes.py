"""Fake edges for the hardware probe: an NVML module, and /proc + cgroup trees built under a directory.

``probe(root=tmp_path, nvml=FakeNvml(...), host=..., affinity=...)`` then drives the real probe code
against them.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["H100", "T4", "FakeGpu", "FakeNVMLError", "FakeNvml", "cgroup_v1", "cgroup_v2"]

CgroupFiles = Mapping[str, Mapping[str, str]]
"""cgroup directory ("/", "/a", "/a/b") → file name → content, e.g. ``{"/a": {"cpu.max": "max"}}``."""


@attrs.frozen
class FakeGpu:
    """One GPU as the fake NVML reports it."""

    uuid: str
    name: str
    memory_total: int
    compute_capability: tuple[int, int]


H100 = FakeGpu("GPU-5b2c0e7a-1d2f-4a9b-8c3e-000000000001", "NVIDIA H100 80GB HBM3", 85520809984, (9, 0))
T4 = FakeGpu("GPU-0f1e2d3c-4b5a-6978-8a9b-000000000002", "Tesla T4", 15843721216, (7, 5))


class FakeNVMLError(Exception):
    """The fake's ``NVMLError``: what real pynvml raises for any failing call."""


class FakeNvml(types.ModuleType):
    """A module-like stand-in for ``pynvml`` with the calls the probe makes.

    Args:
        gpus: the devices, in NVML index order.
        driver: what ``nvmlSystemGetDriverVersion`` returns.
        fail_init: make ``nvmlInit`` raise ``NVMLError``, as on a machine without the NVIDIA driver.
        as_bytes: return names, UUIDs and the driver as ``bytes``, as older pynvml releases do.
        fail_device: an index whose ``nvmlDeviceGetHandleByIndex`` raises ``NVMLError`` (a lost GPU).

    Attributes:
        calls: the names of the functions called, in order.
    """

    NVMLError = FakeNVMLError

    def __init__(
        self,
        gpus: Sequence[FakeGpu] = (),
        *,
        driver: str = "550.54.15",
        fail_init: bool = False,
        as_bytes: bool = False,
        fail_device: int | None = None,
    ) -> None:
        super().__init__("pynvml")
        self.gpus = tuple(gpus)
        self.driver = driver
        self.fail_init = fail_init
        self.as_bytes = as_bytes
        self.fail_device = fail_device
        self.calls: list[str] = []
        self.initialized = False

    def _text(self, value: str) -> str | bytes:
        return value.encode() if self.as_bytes else value

    def _require_init(self, name: str) -> None:
        self.calls.append(name)
        if not self.initialized:
            raise FakeNVMLError("Uninitialized")

    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.fail_init:
            raise FakeNVMLError("NVML Shared Library Not Found")
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self._require_init("nvmlShutdown")
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._require_init("nvmlSystemGetDriverVersion")
        return self._text(self.driver)

    def nvmlDeviceGetCount(self) -> int:
        self._require_init("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._require_init("nvmlDeviceGetHandleByIndex")
        if index == self.fail_device:
            raise FakeNVMLError("GPU is lost")
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str | bytes:
        self._require_init("nvmlDeviceGetUUID")
        return self._text(handle.uuid)

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str | bytes:
        self._require_init("nvmlDeviceGetName")
        return self._text(handle.name)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> Any:
        self._require_init("nvmlDeviceGetMemoryInfo")
        total = handle.memory_total
        return types.SimpleNamespace(total=total, free=total, used=0)

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeGpu) -> tuple[int, int]:
        self._require_init("nvmlDeviceGetCudaComputeCapability")
        return handle.compute_capability


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _write_tree(root: Path, mount: str, files: CgroupFiles) -> None:
    for directory, contents in files.items():
        base = root / mount.lstrip("/") / directory.lstrip("/")
        base.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            _write(base / name, text + "\n")


def _mountinfo_line(number: int, mount_root: str, point: str, fstype: str, options: str) -> str:
    mount = f"{number} 23 0:{number} {mount_root} {point} rw,nosuid,nodev,noexec,relatime"
    return f"{mount} - {fstype} {fstype} {options}"


def cgroup_v2(
    root: Path,
    path: str,
    files: CgroupFiles,
    *,
    mount: str = "/sys/fs/cgroup",
    mount_root: str = "/",
    mountinfo: bool = True,
) -> Path:
    """Build ``/proc/self/cgroup``, ``/proc/self/mountinfo`` and a cgroup v2 tree under ``root``.

    Args:
        root: the directory that stands for ``/``.
        path: the process's cgroup (the ``0::path`` line).
        files: the limit files of each cgroup directory, paths as seen in the hierarchy.
        mount: where the unified hierarchy is mounted.
        mount_root: the hierarchy path the mount shows (``/`` with a cgroup namespace).
        mountinfo: write ``/proc/self/mountinfo`` (``False``: the probe must fall back to defaults).

    Returns:
        ``root``.
    """
    _write(root / "proc/self/cgroup", f"0::{path}\n")
    if mountinfo:
        lines = [
            "22 1 259:1 / / rw,relatime - ext4 /dev/root rw",
            _mountinfo_line(30, mount_root, mount, "cgroup2", "rw,nsdelegate,memory_recursiveprot"),
        ]
        _write(root / "proc/self/mountinfo", "\n".join(lines) + "\n")
    _write_tree(root, mount, {_below_mount(d, mount_root): f for d, f in files.items()})
    return root


def cgroup_v1(
    root: Path,
    path: str,
    files: Mapping[str, CgroupFiles],
    *,
    mount_root: str = "/",
    unified: bool = False,
) -> Path:
    """Build ``/proc/self/cgroup``, ``/proc/self/mountinfo`` and cgroup v1 trees under ``root``.

    Args:
        root: the directory that stands for ``/``.
        path: the process's cgroup in every hierarchy.
        files: hierarchy (its controllers as ``/proc/self/cgroup`` names them: ``"cpu,cpuacct"``,
            ``"memory"``) → the limit files of each of its cgroup directories. Each hierarchy is mounted at
            ``/sys/fs/cgroup/<controllers>``.
        mount_root: the hierarchy path the mounts show (the process's own cgroup in a container without
            a cgroup namespace).
        unified: add an empty cgroup v2 hierarchy, as in systemd's hybrid mode.

    Returns:
        ``root``.
    """
    cgroup_lines = [f"{n}:{controllers}:{path}" for n, controllers in enumerate(files, start=2)]
    mount_lines = ["22 1 259:1 / / rw,relatime - ext4 /dev/root rw"]
    cgroup_lines.insert(0, "1:name=systemd:" + path)
    systemd = _mountinfo_line(29, mount_root, "/sys/fs/cgroup/systemd", "cgroup", "rw,xattr,name=systemd")
    mount_lines.append(systemd)
    for n, (controllers, tree) in enumerate(files.items(), start=31):
        point = f"/sys/fs/cgroup/{controllers}"
        mount_lines.append(_mountinfo_line(n, mount_root, point, "cgroup", f"rw,{controllers}"))
        _write_tree(root, point, {_below_mount(d, mount_root): f for d, f in tree.items()})
    if unified:
        cgroup_lines.append(f"0::{path}")
        mount_lines.append(_mountinfo_line(40, mount_root, "/sys/fs/cgroup/unified", "cgroup2", "rw"))
        (root / "sys/fs/cgroup/unified").mkdir(parents=True, exist_ok=True)
    _write(root / "proc/self/cgroup", "\n".join(cgroup_lines) + "\n")
    _write(root / "proc/self/mountinfo", "\n".join(mount_lines) + "\n")
    return root


def _below_mount(directory: str, mount_root: str) -> str:
    """Return where hierarchy ``directory`` appears below a mount that shows ``mount_root``."""
    if mount_root == "/":
        return directory
    if directory == mount_root or directory.startswith(mount_root.rstrip("/") + "/"):
        return directory[len(mount_root.rstrip("/")) :] or "/"
    raise ValueError(f"{directory} is not below the mount root {mount_root}")
