"""The hardware probe: CPUs from affinity and cgroup quotas, memory limits, NVML GPUs, Apple MPS."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest

from tests.planner.fakes import H100, T4, FakeNvml, cgroup_v1, cgroup_v2
from tkplan.errors import HardwareError
from tkplan.planner._convert import converter
from tkplan.planner._hardware import Gpu, HardwareSpec
from tkplan.planner._probe import HostFacts, probe, probe_fingerprint

GiB = 2**30
HOST = HostFacts(cpus_logical=16, cores_physical=8, memory_total=64 * GiB, machine="x86_64")


def ALL_CPUS() -> set[int]:
    return set(range(16))


def fake_probe(root: Path, **kwargs: Any) -> HardwareSpec:
    """Probe a fake Linux box: 16 logical CPUs, 8 cores, 64 GiB, no GPU, unless told otherwise."""
    options: dict[str, Any] = {
        "root": root,
        "nvml": FakeNvml(),
        "platform_name": "linux",
        "affinity": ALL_CPUS,
        "host": HOST,
    }
    options.update(kwargs)
    return probe(**options)


def hardware_schema() -> dict[str, Any]:
    """Load the shipped schema/hardware.schema.json."""
    text = resources.files("tkplan.schema").joinpath("hardware.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


class TestCpus:
    """cpus_usable is the affinity set lowered by the smallest cgroup CPU quota."""

    def test_v2_quota(self, tmp_path: Path) -> None:
        """A v2 cpu.max of 200000/100000 allows 2 CPUs."""
        cgroup_v2(tmp_path, "/job", {"/job": {"cpu.max": "200000 100000"}})
        spec = fake_probe(tmp_path)
        assert (spec.cpus_usable, spec.cpus_logical, spec.cgroup) == (2, 16, "v2")

    def test_v2_parent_quota_wins(self, tmp_path: Path) -> None:
        """Walking up from the process's cgroup, the smallest quota wins even when a parent sets it."""
        cgroup_v2(
            tmp_path,
            "/kubepods/pod1/ctr",
            {
                "/kubepods": {"cpu.max": "max 100000"},
                "/kubepods/pod1": {"cpu.max": "300000 100000"},
                "/kubepods/pod1/ctr": {"cpu.max": "800000 100000"},
            },
        )
        assert fake_probe(tmp_path).cpus_usable == 3

    def test_v2_fractional_quota_floors_to_at_least_one(self, tmp_path: Path) -> None:
        """1.5 CPUs of quota give 1 CPU (floor), and 0.5 CPU still gives 1."""
        cgroup_v2(tmp_path, "/a/b", {"/a": {"cpu.max": "150000 100000"}, "/a/b": {"cpu.max": "50000 100000"}})
        assert fake_probe(tmp_path).cpus_usable == 1

    def test_v1_quota(self, tmp_path: Path) -> None:
        """A v1 cfs quota of 400000 over a 100000 period allows 4 CPUs."""
        cgroup_v1(
            tmp_path,
            "/docker/abc",
            {
                "cpu,cpuacct": {
                    "/": {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"},
                    "/docker/abc": {"cpu.cfs_quota_us": "400000", "cpu.cfs_period_us": "100000"},
                }
            },
        )
        spec = fake_probe(tmp_path)
        assert (spec.cpus_usable, spec.cgroup) == (4, "v1")

    def test_v1_in_container_without_cgroup_namespace(self, tmp_path: Path) -> None:
        """When the mount shows only the process's own cgroup, its limits are read at the mount point."""
        files = {"cpu,cpuacct": {"/docker/abc": {"cpu.cfs_quota_us": "250000", "cpu.cfs_period_us": "50000"}}}
        cgroup_v1(tmp_path, "/docker/abc", files, mount_root="/docker/abc")
        assert fake_probe(tmp_path).cpus_usable == 5

    def test_hybrid_v1_controllers_with_empty_unified_hierarchy(self, tmp_path: Path) -> None:
        """systemd's hybrid mode: limits come from the v1 controllers, the bare v2 hierarchy adds none."""
        files = {
            "cpu,cpuacct": {"/job": {"cpu.cfs_quota_us": "600000", "cpu.cfs_period_us": "100000"}},
            "memory": {"/job": {"memory.limit_in_bytes": str(8 * GiB)}},
        }
        cgroup_v1(tmp_path, "/job", files, unified=True)
        spec = fake_probe(tmp_path)
        assert (spec.cpus_usable, spec.memory_mb, spec.cgroup) == (6, 8192, "v1")

    def test_no_quota_gives_affinity(self, tmp_path: Path) -> None:
        """cpu.max "max" sets no quota: every CPU of the affinity set is usable."""
        cgroup_v2(tmp_path, "/job", {"/job": {"cpu.max": "max 100000"}})
        spec = fake_probe(tmp_path, affinity=lambda: {0, 1, 2, 3, 4, 5})
        assert (spec.cpus_usable, spec.cgroup) == (6, None)

    def test_affinity_smaller_than_quota(self, tmp_path: Path) -> None:
        """An affinity of 2 CPUs under a quota of 8 leaves 2 usable, and the cgroup is not the reason."""
        cgroup_v2(tmp_path, "/job", {"/job": {"cpu.max": "800000 100000"}})
        spec = fake_probe(tmp_path, affinity=lambda: {3, 7})
        assert (spec.cpus_usable, spec.cgroup) == (2, None)

    def test_missing_mountinfo_falls_back_to_sys_fs_cgroup(self, tmp_path: Path) -> None:
        """Without /proc/self/mountinfo the unified hierarchy is looked for at /sys/fs/cgroup."""
        cgroup_v2(tmp_path, "/job", {"/job": {"cpu.max": "200000 100000"}}, mountinfo=False)
        assert fake_probe(tmp_path).cpus_usable == 2

    def test_no_proc_at_all(self, tmp_path: Path) -> None:
        """An empty root (no /proc, no cgroup) gives the host's figures."""
        spec = fake_probe(tmp_path)
        assert (spec.cpus_usable, spec.memory_mb, spec.cgroup) == (16, 65536, None)

    def test_garbage_quota_is_an_error(self, tmp_path: Path) -> None:
        """A cgroup file that holds no number is reported, naming the file."""
        cgroup_v2(tmp_path, "/job", {"/job": {"cpu.max": "lots 100000"}})
        with pytest.raises(HardwareError, match=r"sys/fs/cgroup/job/cpu.max holds 'lots'"):
            fake_probe(tmp_path)

    def test_physical_cores_unknown(self, tmp_path: Path) -> None:
        """When psutil cannot count physical cores, the logical count stands in."""
        host = attrs.evolve(HOST, cores_physical=None)
        assert fake_probe(tmp_path, host=host).cores_physical == 16


class TestMemory:
    """memory_mb is host RAM, or the cgroup memory limit when that is lower."""

    def test_v2_limit_below_ram(self, tmp_path: Path) -> None:
        """memory.max of 12 GiB on a 64 GiB host gives 12288 MiB usable."""
        cgroup_v2(tmp_path, "/job", {"/job": {"memory.max": str(12 * GiB)}})
        spec = fake_probe(tmp_path)
        assert (spec.memory_mb, spec.memory_total_mb, spec.cgroup) == (12288, 65536, "v2")

    def test_v2_max_is_ram(self, tmp_path: Path) -> None:
        """memory.max "max" sets no limit."""
        cgroup_v2(tmp_path, "/job", {"/job": {"memory.max": "max"}})
        spec = fake_probe(tmp_path)
        assert (spec.memory_mb, spec.cgroup) == (65536, None)

    def test_v2_limit_above_ram_is_ram(self, tmp_path: Path) -> None:
        """A limit larger than the host's RAM does not raise memory_mb above RAM."""
        cgroup_v2(tmp_path, "/job", {"/": {"memory.max": str(128 * GiB)}})
        assert fake_probe(tmp_path).memory_mb == 65536

    def test_v2_parent_limit_wins(self, tmp_path: Path) -> None:
        """A parent's smaller memory.max bounds the child."""
        cgroup_v2(tmp_path, "/a/b", {"/a": {"memory.max": str(3 * GiB)}, "/a/b": {"memory.max": "max"}})
        assert fake_probe(tmp_path).memory_mb == 3072

    def test_v1_huge_limit_is_ram(self, tmp_path: Path) -> None:
        """v1's "unlimited" (9223372036854771712) means host RAM."""
        cgroup_v1(tmp_path, "/job", {"memory": {"/job": {"memory.limit_in_bytes": "9223372036854771712"}}})
        spec = fake_probe(tmp_path)
        assert (spec.memory_mb, spec.cgroup) == (65536, None)

    def test_v1_limit(self, tmp_path: Path) -> None:
        """A v1 memory.limit_in_bytes below RAM is the usable memory."""
        cgroup_v1(tmp_path, "/job", {"memory": {"/": {"memory.limit_in_bytes": str(16 * GiB + 5)}}})
        assert fake_probe(tmp_path).memory_mb == 16384


class TestGpus:
    """GPUs come from NVML in index order; no NVML is a normal, GPU-less result."""

    def test_h100_and_t4(self, tmp_path: Path) -> None:
        """Each device is described by index, UUID, name, MiB and compute capability."""
        nvml = FakeNvml([H100, T4], driver="550.54.15")
        spec = fake_probe(tmp_path, nvml=nvml)
        assert spec.gpus == (
            Gpu(0, "GPU-5b2c0e7a-1d2f-4a9b-8c3e-000000000001", "NVIDIA H100 80GB HBM3", 81559, "9.0"),
            Gpu(1, "GPU-0f1e2d3c-4b5a-6978-8a9b-000000000002", "Tesla T4", 15109, "7.5"),
        )
        assert spec.gpu_driver == "550.54.15"
        assert (nvml.calls[0], nvml.calls[-1], nvml.initialized) == ("nvmlInit", "nvmlShutdown", False)

    def test_init_failure_is_no_gpu(self, tmp_path: Path) -> None:
        """nvmlInit raising NVMLError (no driver) gives no GPUs and no driver."""
        nvml = FakeNvml([H100], fail_init=True)
        spec = fake_probe(tmp_path, nvml=nvml)
        assert (spec.gpus, spec.gpu_driver, nvml.calls) == ((), None, ["nvmlInit"])

    def test_no_pynvml_is_no_gpu(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without pynvml installed the probe reports no GPUs."""
        monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
        spec = fake_probe(tmp_path, nvml=None)
        assert (spec.gpus, spec.gpu_driver) == ((), None)

    def test_driver_without_gpus(self, tmp_path: Path) -> None:
        """A driver with no device reports the driver and no GPUs."""
        spec = fake_probe(tmp_path, nvml=FakeNvml([], driver="535.104.05"))
        assert (spec.gpus, spec.gpu_driver) == ((), "535.104.05")

    def test_bytes_from_old_pynvml(self, tmp_path: Path) -> None:
        """Older pynvml returns bytes; the spec holds str."""
        spec = fake_probe(tmp_path, nvml=FakeNvml([T4], driver="470.82.01", as_bytes=True))
        assert (spec.gpus[0].name, spec.gpus[0].uuid, spec.gpu_driver) == ("Tesla T4", T4.uuid, "470.82.01")

    def test_failing_device_is_an_error(self, tmp_path: Path) -> None:
        """A GPU NVML cannot describe is reported rather than left out, and NVML is still shut down."""
        nvml = FakeNvml([H100, T4], fail_device=1)
        with pytest.raises(HardwareError, match="NVML could not describe GPU 1: GPU is lost"):
            fake_probe(tmp_path, nvml=nvml)
        assert (nvml.calls[-1], nvml.initialized) == ("nvmlShutdown", False)


class TestMps:
    """Apple silicon on macOS 12.3 or later has a Metal (MPS) device."""

    @pytest.mark.parametrize(
        ("machine", "mac_version", "expected"),
        [
            ("arm64", "14.2.1", True),
            ("arm64", "12.3", True),
            ("arm64", "12.2", False),
            ("x86_64", "14.2", False),
        ],
    )
    def test_darwin(self, tmp_path: Path, machine: str, mac_version: str, expected: bool) -> None:
        """mps depends on the machine and the macOS version; cgroups are not read on macOS."""
        cgroup_v2(tmp_path, "/job", {"/job": {"cpu.max": "100000 100000"}})
        host = HostFacts(10, 10, 32 * GiB, machine=machine, mac_version=mac_version)
        spec = fake_probe(
            tmp_path,
            platform_name="darwin",
            host=host,
            nvml=FakeNvml(fail_init=True),
            affinity=lambda: set(range(10)),
        )
        assert spec == HardwareSpec(
            cpus_usable=10,
            cpus_logical=10,
            cores_physical=10,
            memory_mb=32768,
            memory_total_mb=32768,
            gpus=(),
            gpu_driver=None,
            mps=expected,
            platform="darwin",
            machine=machine,
            cgroup=None,
        )

    def test_linux_arm64_has_no_mps(self, tmp_path: Path) -> None:
        """An arm64 Linux box is not a Mac."""
        host = attrs.evolve(HOST, machine="arm64", mac_version="")
        assert fake_probe(tmp_path, host=host).mps is False


class TestSpecData:
    """A spec converts to a plain dict that the hardware schema accepts, and back."""

    def spec(self, tmp_path: Path) -> HardwareSpec:
        cgroup_v2(tmp_path, "/job", {"/job": {"cpu.max": "200000 100000", "memory.max": str(8 * GiB)}})
        return fake_probe(tmp_path, nvml=FakeNvml([H100, T4]))

    def test_round_trip(self, tmp_path: Path) -> None:
        """converter.structure(converter.unstructure(spec)) gives the spec back."""
        spec = self.spec(tmp_path)
        assert converter.structure(converter.unstructure(spec), HardwareSpec) == spec

    def test_unstructured_form(self, tmp_path: Path) -> None:
        """The dict form is JSON-ready and matches schema/hardware.schema.json."""
        data = converter.unstructure(self.spec(tmp_path))
        assert data == {
            "cpus_usable": 2,
            "cpus_logical": 16,
            "cores_physical": 8,
            "memory_mb": 8192,
            "memory_total_mb": 65536,
            "gpus": [
                {"index": 0, "uuid": H100.uuid, "name": H100.name, "memory_mb": 81559,
                 "compute_capability": "9.0"},
                {"index": 1, "uuid": T4.uuid, "name": T4.name, "memory_mb": 15109,
                 "compute_capability": "7.5"},
            ],
            "gpu_driver": "550.54.15",
            "mps": False,
            "platform": "linux",
            "machine": "x86_64",
            "cgroup": "v2",
        }
        jsonschema.Draft202012Validator(hardware_schema()).validate(json.loads(json.dumps(data)))

    def test_schema_is_valid_and_strict(self, tmp_path: Path) -> None:
        """The schema itself is valid draft 2020-12 and refuses unknown keys and bad capabilities."""
        schema = hardware_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        data = converter.unstructure(self.spec(tmp_path))
        validator = jsonschema.Draft202012Validator(schema)
        assert not validator.is_valid({**data, "cpus": 4})
        assert not validator.is_valid({**data, "gpus": [{**data["gpus"][0], "compute_capability": "9"}]})
        assert not validator.is_valid({**data, "cpus_usable": 0})

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"cpus_usable": 0}, "cpus_usable must be an int >= 1, got 0"),
            ({"cpus_usable": 32}, r"cpus_usable must be <= cpus_logical \(16\), got 32"),
            ({"memory_mb": 70000}, r"memory_mb must be <= memory_total_mb \(65536\), got 70000"),
            ({"mps": 1}, "mps must be a bool, got 1"),
            ({"cgroup": "v3"}, "cgroup must be one of 'v1', 'v2' or None, got 'v3'"),
        ],
    )
    def test_validators_name_the_field(self, tmp_path: Path, change: dict[str, Any], message: str) -> None:
        """An invalid field is refused with its name, the expected and the actual value."""
        with pytest.raises((TypeError, ValueError), match=message):
            attrs.evolve(self.spec(tmp_path), **change)

    def test_gpu_validators(self) -> None:
        """A Gpu refuses a malformed compute capability."""
        expected = r"compute_capability must look like '9.0' \(major.minor\), got '9'"
        with pytest.raises(ValueError, match=expected):
            Gpu(0, "GPU-x", "X", 1024, "9")


class TestFingerprint:
    """probe_fingerprint changes whenever a probe could, and imports neither psutil nor pynvml."""

    def test_changes_with_a_cgroup_file(self, tmp_path: Path) -> None:
        """Editing a limit file on the walk changes the fingerprint; re-reading does not."""
        cgroup_v2(tmp_path, "/a/b", {"/a": {"cpu.max": "200000 100000"}, "/a/b": {"memory.max": "max"}})
        before = probe_fingerprint(tmp_path)
        assert probe_fingerprint(tmp_path) == before
        (tmp_path / "sys/fs/cgroup/a/cpu.max").write_text("100000 100000\n")
        assert probe_fingerprint(tmp_path) != before

    def test_changes_with_gpu_device_nodes(self, tmp_path: Path) -> None:
        """A new /dev/nvidia* node or driver version changes the fingerprint."""
        before = probe_fingerprint(tmp_path)
        (tmp_path / "dev").mkdir()
        (tmp_path / "dev/nvidia0").write_text("")
        with_gpu = probe_fingerprint(tmp_path)
        (tmp_path / "proc/driver/nvidia").mkdir(parents=True)
        (tmp_path / "proc/driver/nvidia/version").write_text("NVRM version: 550.54.15\n")
        assert len({before, with_gpu, probe_fingerprint(tmp_path)}) == 3

    def test_imports_neither_psutil_nor_pynvml(self) -> None:
        """Fingerprinting the real machine loads no psutil and no pynvml."""
        code = (
            "import sys; from tkplan.planner._probe import probe_fingerprint; "
            "fp = probe_fingerprint(); "
            "print(len(fp), sorted(m for m in ('psutil', 'pynvml') if m in sys.modules))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.split() == ["64", "[]"]


class TestRealMachine:
    """The real probe on the machine running the tests."""

    def test_probe(self) -> None:
        """The probe returns a valid, schema-conforming spec; no GPU device means no GPUs."""
        spec = probe()
        assert spec.cpus_usable >= 1 and spec.memory_mb > 0
        assert spec.platform == sys.platform
        jsonschema.Draft202012Validator(hardware_schema()).validate(converter.unstructure(spec))
        assert converter.structure(converter.unstructure(spec), HardwareSpec) == spec
        if sys.platform.startswith("linux") and not list(Path("/dev").glob("nvidia[0-9]*")):
            assert (spec.gpus, spec.gpu_driver) == ((), None)

    def test_gpus(self) -> None:
        """Where NVML sees GPUs, each has a UUID, memory and a compute capability."""
        spec = probe()
        if not spec.gpus:
            pytest.skip("no NVIDIA GPU on this machine")
        assert spec.gpu_driver
        assert [g.index for g in spec.gpus] == list(range(len(spec.gpus)))
        assert all(g.uuid.startswith(("GPU-", "MIG-")) and g.memory_mb > 0 for g in spec.gpus)
