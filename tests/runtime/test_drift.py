"""Hardware drift: what differs between the plan's machine and this one, one readable line per fact."""

from __future__ import annotations

import attrs
import pytest

from tkplan.errors import DriftError
from tkplan.planner import Gpu, HardwareSpec
from tkplan.runtime import ExecutorSettings, check_drift, hardware_differences

H100 = Gpu(0, "GPU-aaaa", "NVIDIA H100 80GB HBM3", 81559, "9.0")
T4 = Gpu(1, "GPU-bbbb", "Tesla T4", 15360, "7.5")
BOX = HardwareSpec(cpus_usable=16, cpus_logical=32, cores_physical=16, memory_mb=200_000, memory_total_mb=200_000,
                   gpus=(H100,), gpu_driver="550.54", mps=False, platform="linux", machine="x86_64", cgroup=None)


def test_the_same_machine_has_no_differences():
    assert hardware_differences(BOX, BOX) == []
    check_drift(BOX, BOX)


def test_memory_within_the_tolerance_is_not_drift():
    here = attrs.evolve(BOX, memory_mb=199_000, memory_total_mb=199_000)
    assert hardware_differences(BOX, here) == []
    assert hardware_differences(BOX, here, ExecutorSettings(memory_tolerance_pct=0.1)) == [
        "memory_mb: plan 200000 MB, here 199000 MB (more than 0.1% apart)",
        "memory_total_mb: plan 200000 MB, here 199000 MB (more than 0.1% apart)",
    ]


def test_cpus_and_gpus_are_compared_field_by_field():
    here = attrs.evolve(BOX, cpus_usable=2, gpus=(attrs.evolve(H100, memory_mb=40960), T4), gpu_driver="560.0")
    assert hardware_differences(BOX, here) == [
        "cpus_usable: plan 16, here 2",
        "gpu GPU-aaaa memory_mb: plan 81559, here 40960",
        "gpu GPU-bbbb: plan none, here Tesla T4 (15360 MB)",
    ]


def test_a_missing_gpu_is_named():
    assert hardware_differences(BOX, attrs.evolve(BOX, gpus=())) == [
        "gpu GPU-aaaa: plan NVIDIA H100 80GB HBM3 (81559 MB), here missing"]


def test_check_drift_raises_with_every_difference():
    here = attrs.evolve(BOX, platform="darwin", machine="arm64", mps=True)
    with pytest.raises(DriftError) as raised:
        check_drift(BOX, here)
    assert raised.value.differences == ("mps: plan False, here True", "platform: plan linux, here darwin",
                                        "machine: plan x86_64, here arm64")
    assert str(raised.value).splitlines()[0] == "this machine differs from the one the plan was compiled for:"
