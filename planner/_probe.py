"""Probe the machine this process runs on into a `HardwareSpec`, and fingerprint it cheaply.

`probe` reads the process's CPU affinity, the cgroup (v1 or v2) CPU quota and memory limit, host facts from
psutil, and the GPUs from NVML (``nvidia-ml-py``, import name ``pynvml``). No NVML, no driver or no GPU is a
normal result (``gpus == ()``), not an error. Every OS edge can be replaced for tests: ``root`` points the
file reads at a fake ``/proc`` and cgroup tree, ``nvml`` takes a fake NVML module, ``host`` fake host facts.

`probe_fingerprint` hashes the raw facts a probe depends on without importing psutil or pynvml, so that a
compile cache can tell cheaply whether a fresh probe could differ.

psutil and pynvml are imported inside the functions that need them, never at module import, so that
``tkplan compile`` with a saved spec stays fast and import-light.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform as _platform
import posixpath
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from tkplan.errors import HardwareError
from tkplan.planner._hardware import Gpu, HardwareSpec

__all__ = ["HostFacts", "probe", "probe_fingerprint"]

_MIB = 2**20
_DEFAULT_PERIOD_US = 100_000
_NO_MEMORY_LIMIT = 2**62
"""cgroup v1 reports "no limit" as a huge page-aligned number (9223372036854771712 with 4 KiB pages)."""
_MPS_MIN_MACOS = (12, 3)
_FINGERPRINT_VERSION = "tkplan.probe/1"
_V1_FILES = {"cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us"), "memory": ("memory.limit_in_bytes",)}
_V2_FILES = ("cpu.max", "memory.max")


@attrs.frozen
class HostFacts:
    """Host facts the probe takes from psutil and ``platform`` rather than from files under ``root``.

    Attributes:
        cpus_logical: logical CPUs of the host.
        cores_physical: physical cores, or ``None`` where psutil cannot tell (some VMs, containers and
            non-Linux platforms); the probe then reports the logical count.
        memory_total: host RAM in bytes.
        machine: ``platform.machine()``, e.g. ``"x86_64"``, ``"arm64"``.
        mac_version: ``platform.mac_ver()[0]`` (``"14.2.1"``), ``""`` off macOS.

    .. versionadded:: 0.1
    """

    cpus_logical: int
    cores_physical: int | None
    memory_total: int
    machine: str
    mac_version: str = ""

    @classmethod
    def current(cls) -> HostFacts:
        """Read the facts of the machine this process runs on (imports psutil)."""
        import psutil

        logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
        return cls(
            cpus_logical=logical,
            cores_physical=psutil.cpu_count(logical=False),
            memory_total=int(psutil.virtual_memory().total),
            machine=_platform.machine() or "unknown",
            mac_version=_platform.mac_ver()[0],
        )


def probe(
    *,
    root: str | os.PathLike[str] = "/",  # tkplan: ignore[signature_default]  the real machine
    nvml: ModuleType | None = None,
    platform_name: str | None = None,
    affinity: Callable[[], set[int]] | None = None,
    host: HostFacts | None = None,
) -> HardwareSpec:
    """Describe the CPUs, memory and GPUs this process may use.

    CPUs: ``cpus_usable`` is the size of the CPU affinity set, lowered by the smallest cgroup CPU quota
    found walking from the process's cgroup up to the hierarchy's mount point (v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``, v2 ``cpu.max``). A quota converts to ``max(1, floor(quota / period))`` CPUs, as
    Go's automaxprocs does: threads beyond the quota only get throttled, so rounding up (as the JVM does)
    would oversubscribe. Memory: ``memory_mb`` is host RAM, lowered by the smallest cgroup memory limit
    on the same walk (v1 ``memory.limit_in_bytes``, v2 ``memory.max``). cgroups are read on Linux only.

    GPUs come from NVML in its index order, with the driver version. ``pynvml`` missing, or ``nvmlInit``
    failing (no driver, no library), gives ``gpus == ()`` and ``gpu_driver is None``. MIG instances are
    not handled: a MIG-enabled GPU is reported as its whole parent device.

    ``mps`` is true on macOS >= 12.3 on Apple silicon (``machine == "arm64"``), where every Mac has a
    Metal device; torch is not imported to find it. Intel Macs, and x86_64 Pythons under Rosetta (whose
    ``platform.machine()`` is ``"x86_64"``), get ``mps == False`` even where torch might find a Metal GPU.

    Args:
        root: directory that stands for ``/`` when reading ``/proc`` and the cgroup tree.
        nvml: an NVML module to use instead of importing ``pynvml`` (tests pass a fake).
        platform_name: ``sys.platform`` to assume (default: this process's).
        affinity: returns the set of CPUs this process may run on (default: ``os.sched_getaffinity(0)``
            where the OS has it, else all ``os.cpu_count()`` CPUs).
        host: host facts to use instead of asking psutil and ``platform``.

    Returns:
        The frozen hardware spec.

    Raises:
        HardwareError: a cgroup file holds something that is not a limit, or NVML started but failed to
            describe a GPU (a half-described machine would give a wrong plan).

    .. versionadded:: 0.1
    """
    root = Path(root)
    platform_name = platform_name or sys.platform
    host = host or HostFacts.current()
    affinity_cpus = len((affinity or _affinity)())

    hierarchies = _hierarchies(root) if platform_name.startswith("linux") else ()
    cpu_limit = _cpu_limit(root, hierarchies)
    memory_limit = _memory_limit(root, hierarchies)

    logical = max(1, host.cpus_logical)
    cpus_usable = max(1, min(affinity_cpus, logical))
    cgroup: str | None = None
    if cpu_limit is not None and cpu_limit[0] < cpus_usable:
        cpus_usable, cgroup = cpu_limit
    memory_total = host.memory_total
    memory_usable = memory_total
    if memory_limit is not None and memory_limit[0] < memory_total:
        memory_usable = memory_limit[0]
        cgroup = cgroup or memory_limit[1]

    gpus, driver = _nvml_gpus(nvml)
    return HardwareSpec(
        cpus_usable=cpus_usable,
        cpus_logical=logical,
        cores_physical=min(logical, host.cores_physical or logical),
        memory_mb=max(1, memory_usable // _MIB),
        memory_total_mb=max(1, memory_total // _MIB),
        gpus=gpus,
        gpu_driver=driver,
        mps=_has_mps(platform_name, host),
        platform=platform_name,
        machine=host.machine or "unknown",
        cgroup=cgroup,
    )


def probe_fingerprint(root: str | os.PathLike[str] = "/") -> str:  # tkplan: ignore[signature_default]
    """Return a sha256 hex digest of the raw facts that a `probe` result depends on.

    Cheap and import-light (neither psutil nor pynvml is imported): it hashes the platform, CPU count and
    affinity, physical memory size, ``/proc/meminfo``'s ``MemTotal`` line, the boot id, ``/proc/self/cgroup``,
    the cgroup mount lines of ``/proc/self/mountinfo``, the contents of every cgroup limit file on the walk
    that `probe` does, the names of ``/dev/nvidia*``, ``/proc/driver/nvidia/version`` and whether
    ``pynvml`` is installed. It is conservative: whenever a probe could give another spec the fingerprint
    changes (it also changes on every reboot, and on changes that leave the spec as it was). GPU changes
    that need no reboot and touch none of these files, such as MIG reconfiguration, are not seen.

    Args:
        root: directory that stands for ``/``, as for `probe`.

    Returns:
        64 hex characters.

    .. versionadded:: 0.1
    """
    root = Path(root)
    digest = hashlib.sha256()

    def add(label: str, value: object) -> None:
        digest.update(f"{label}\0{value}\0".encode("utf-8", "surrogateescape"))

    add("format", _FINGERPRINT_VERSION)
    add("platform", sys.platform)
    add("machine", _platform.machine())
    add("cpu_count", os.cpu_count())
    add("affinity", sorted(_affinity()))
    with contextlib.suppress(AttributeError, ValueError, OSError):
        add("phys_pages", os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    if sys.platform == "darwin":
        add("mac_version", _platform.mac_ver()[0])
    meminfo = _read(root, "/proc/meminfo") or ""
    add("memtotal", next((ln for ln in meminfo.splitlines() if ln.startswith("MemTotal:")), None))
    add("boot_id", _read(root, "/proc/sys/kernel/random/boot_id"))
    if sys.platform.startswith("linux"):
        add("proc_cgroup", _read(root, "/proc/self/cgroup"))
        for mount in _cgroup_mounts(root):
            add("mount", (mount.root, mount.point, mount.fstype, sorted(mount.options)))  # sets print in hash order
        for hierarchy in _hierarchies(root):
            for directory in hierarchy.dirs:
                for name in hierarchy.files:
                    add(posixpath.join(directory, name), _read(root, posixpath.join(directory, name)))
    add("dev_nvidia", sorted(p.name for p in (root / "dev").glob("nvidia*")))
    add("nvidia_version", _read(root, "/proc/driver/nvidia/version"))
    add("pynvml", importlib.util.find_spec("pynvml") is not None)
    return digest.hexdigest()


# -- CPU affinity and macOS ---------------------------------------------------------------------------


def _affinity() -> set[int]:
    """Return the CPUs this process may run on (all CPUs where the OS has no affinity call)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _has_mps(platform_name: str, host: HostFacts) -> bool:
    """Tell whether an Apple Metal (MPS) device is present: Apple silicon on macOS >= 12.3."""
    if platform_name != "darwin" or host.machine != "arm64":
        return False
    numbers = re.findall(r"\d+", host.mac_version)[:2]
    version = tuple(int(n) for n in numbers) + (0,) * (2 - len(numbers))
    return bool(numbers) and version >= _MPS_MIN_MACOS


# -- cgroups ----------------------------------------------------------------------------------------


@attrs.frozen
class _Hierarchy:
    """One cgroup hierarchy holding CPU or memory limits, and the directories `probe` walks in it.

    Attributes:
        version: ``"v1"`` or ``"v2"``.
        controllers: the v1 controllers of this hierarchy that matter (``cpu``, ``memory``); empty for v2.
        dirs: the process's cgroup directory first, then each parent up to the mount point (paths as
            seen from ``/``).
    """

    version: str
    controllers: frozenset[str]
    dirs: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """Return the limit files to read in each directory."""
        if self.version == "v2":
            return _V2_FILES
        return tuple(f for c in sorted(self.controllers) for f in _V1_FILES[c])


@attrs.frozen
class _Mount:
    """A cgroup mount from ``/proc/self/mountinfo``: the hierarchy path it shows, and where."""

    root: str
    point: str
    fstype: str
    options: frozenset[str]


def _read(root: Path, path: str) -> str | None:
    """Return the text of ``path`` (absolute, resolved under ``root``), or ``None`` if unreadable."""
    try:
        return (root / path.lstrip("/")).read_text(encoding="utf-8", errors="surrogateescape")
    except (OSError, ValueError):
        return None


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _cgroup_mounts(root: Path) -> tuple[_Mount, ...]:
    """Return the cgroup and cgroup2 mounts listed in ``/proc/self/mountinfo``."""
    mounts = []
    for line in (_read(root, "/proc/self/mountinfo") or "").splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        tail = fields[sep + 1 :]
        if len(tail) < 1 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(tail[2].split(",")) if len(tail) > 2 else frozenset()
        mounts.append(_Mount(_unescape(fields[3]), _unescape(fields[4]), tail[0], options))
    return tuple(mounts)


def _is_under(path: str, ancestor: str) -> bool:
    """Tell whether cgroup ``path`` is ``ancestor`` or below it."""
    return ancestor == "/" or path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def _walk(mount: _Mount, cgroup_path: str) -> tuple[str, ...]:
    """Return the directories from the process's cgroup up to the mount point, leaf first.

    A cgroup path outside the mounted part of the hierarchy (a container without a cgroup namespace that
    sees only its own cgroup) gives the mount point alone.
    """
    parts: list[str] = []
    if _is_under(cgroup_path, mount.root):
        rel = posixpath.relpath(posixpath.normpath(cgroup_path), posixpath.normpath(mount.root))
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            parts = []
    return tuple(posixpath.join(mount.point, *parts[:i]) for i in range(len(parts), -1, -1))


def _pick_mount(candidates: Iterable[_Mount], cgroup_path: str, fallback: str) -> _Mount:
    """Return the mount whose hierarchy path holds ``cgroup_path`` (or the first one, or ``fallback``)."""
    candidates = list(candidates)
    for mount in candidates:
        if _is_under(cgroup_path, mount.root):
            return mount
    if candidates:
        return candidates[0]
    return _Mount("/", fallback, "", frozenset())


def _hierarchies(root: Path) -> tuple[_Hierarchy, ...]:
    """Return the cgroup hierarchies of this process that can hold CPU or memory limits.

    Reads ``/proc/self/cgroup`` (v1 lines ``id:controllers:path``, the v2 line ``0::path``) and finds each
    hierarchy's mount in ``/proc/self/mountinfo``, falling back to ``/sys/fs/cgroup`` (v2) or
    ``/sys/fs/cgroup/<controllers>`` (v1) when it is not listed.
    """
    mounts = _cgroup_mounts(root)
    found = []
    for line in (_read(root, "/proc/self/cgroup") or "").splitlines():
        hierarchy_id, sep1, rest = line.partition(":")
        controllers_field, sep2, path = rest.partition(":")
        if not (sep1 and sep2 and path.startswith("/")):
            continue
        if hierarchy_id == "0" and not controllers_field:
            v2 = [m for m in mounts if m.fstype == "cgroup2"]
            mount = _pick_mount(v2, path, "/sys/fs/cgroup")
            found.append(_Hierarchy("v2", frozenset(), _walk(mount, path)))
            continue
        controllers = frozenset(controllers_field.split(","))
        wanted = controllers & _V1_FILES.keys()
        if not wanted:
            continue
        v1 = [m for m in mounts if m.fstype == "cgroup" and controllers <= m.options]
        mount = _pick_mount(v1, path, "/sys/fs/cgroup/" + controllers_field)
        found.append(_Hierarchy("v1", frozenset(wanted), _walk(mount, path)))
    return tuple(found)


def _limit_files(
    root: Path, hierarchies: Iterable[_Hierarchy], names: tuple[str, ...]
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Yield ``(version, directory, {name: text})`` for each walked directory holding any of ``names``."""
    for hierarchy in hierarchies:
        wanted = [n for n in names if n in hierarchy.files]
        for directory in hierarchy.dirs:
            texts = {n: _read(root, posixpath.join(directory, n)) for n in wanted}
            present = {n: t.strip() for n, t in texts.items() if t is not None}
            if present:
                yield hierarchy.version, directory, present


def _as_int(text: str, file: str, directory: str) -> int:
    """Parse a cgroup number, or raise `HardwareError` naming the file."""
    try:
        return int(text)
    except ValueError:
        raise HardwareError(
            f"cgroup file {posixpath.join(directory, file)} holds {text!r}, not a number; "
            "pass a saved spec with --hardware to plan without probing"
        ) from None


def _smallest(limits: Iterable[tuple[int, str]]) -> tuple[int, str] | None:
    """Return the smallest ``(limit, version)``, or ``None`` when there is none."""
    return min(limits, key=lambda item: item[0], default=None)


def _cpu_limit(root: Path, hierarchies: Iterable[_Hierarchy]) -> tuple[int, str] | None:
    """Return ``(cpus, version)`` for the smallest CPU quota on the walk, or ``None`` when unlimited."""
    return _smallest(_cpu_quotas(root, hierarchies))


def _cpu_quotas(root: Path, hierarchies: Iterable[_Hierarchy]) -> Iterator[tuple[int, str]]:
    """Yield ``(cpus, version)`` for each CPU quota set on the walk: ``max(1, quota // period)``."""
    names = ("cpu.max", *_V1_FILES["cpu"])
    for version, directory, texts in _limit_files(root, hierarchies, names):
        if "cpu.max" in texts:
            fields = texts["cpu.max"].split()
            if not fields or fields[0] == "max":
                continue
            quota = _as_int(fields[0], "cpu.max", directory)
            period = _as_int(fields[1], "cpu.max", directory) if len(fields) > 1 else _DEFAULT_PERIOD_US
        elif "cpu.cfs_quota_us" in texts:
            quota = _as_int(texts["cpu.cfs_quota_us"], "cpu.cfs_quota_us", directory)
            if quota < 0:
                continue
            period_text = texts.get("cpu.cfs_period_us")
            period = (
                _as_int(period_text, "cpu.cfs_period_us", directory) if period_text else _DEFAULT_PERIOD_US
            )
        else:
            continue
        if period <= 0:
            raise HardwareError(f"cgroup CPU period in {directory} is {period}, not a positive number")
        yield max(1, quota // period), version


def _memory_limit(root: Path, hierarchies: Iterable[_Hierarchy]) -> tuple[int, str] | None:
    """Return ``(bytes, version)`` for the smallest memory limit on the walk, or ``None`` when unlimited."""
    return _smallest(_memory_limits(root, hierarchies))


def _memory_limits(root: Path, hierarchies: Iterable[_Hierarchy]) -> Iterator[tuple[int, str]]:
    """Yield ``(bytes, version)`` for each memory limit set on the walk (v2 ``max`` and huge v1 values
    mean none)."""
    for version, directory, texts in _limit_files(root, hierarchies, ("memory.max", *_V1_FILES["memory"])):
        for name, text in texts.items():
            if text == "max":
                continue
            limit = _as_int(text, name, directory)
            if 0 <= limit < _NO_MEMORY_LIMIT:
                yield limit, version


# -- NVML -------------------------------------------------------------------------------------------


def _text(value: str | bytes) -> str:
    """Return NVML's string as ``str`` (older pynvml releases return ``bytes``)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _nvml_gpus(module: ModuleType | None) -> tuple[tuple[Gpu, ...], str | None]:
    """Return the GPUs NVML sees, in index order, and the driver version.

    No ``pynvml`` or a failing ``nvmlInit`` gives ``((), None)``. ``nvmlShutdown`` always follows a
    successful ``nvmlInit``.
    """
    nvml: Any = module
    if nvml is None:
        if sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia"):
            return (), None  # no NVIDIA kernel driver loaded: NVML cannot start, skip loading it
        try:
            import pynvml

            nvml = pynvml
        except ImportError:
            return (), None
    nvml_error: Any = getattr(nvml, "NVMLError", OSError)
    try:
        nvml.nvmlInit()
    except (nvml_error, OSError):
        return (), None
    try:
        try:
            driver = _text(nvml.nvmlSystemGetDriverVersion())
            count = int(nvml.nvmlDeviceGetCount())
        except nvml_error as exc:
            raise HardwareError(f"NVML started but could not list the GPUs: {exc}") from exc
        return tuple(_nvml_gpu(nvml, nvml_error, i) for i in range(count)), driver
    finally:
        with contextlib.suppress(nvml_error, OSError):
            nvml.nvmlShutdown()


def _nvml_gpu(nvml: Any, nvml_error: Any, index: int) -> Gpu:
    """Describe the GPU at NVML ``index``, or raise `HardwareError` naming it."""
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        return Gpu(
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            name=_text(nvml.nvmlDeviceGetName(handle)),
            memory_mb=int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // _MIB,
            compute_capability=f"{int(major)}.{int(minor)}",
        )
    except nvml_error as exc:
        raise HardwareError(
            f"NVML could not describe GPU {index}: {exc}; check it with nvidia-smi, "
            "or pass a saved spec with --hardware"
        ) from exc
