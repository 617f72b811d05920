"""The VRAM cap of a CUDA step is really applied in its child: within the cap it trains, past it torch refuses.

Needs an NVIDIA GPU and a CUDA build of torch; skipped elsewhere.
"""

from __future__ import annotations

import importlib.util

import pytest

from tkplan.planner import probe
from tkplan.runtime import execute

from .projects import compile_project, family, write_project

CAP_MB = 2048


def cuda_ready() -> bool:
    if importlib.util.find_spec("torch") is None or not probe().gpus:
        return False
    import torch

    return torch.cuda.is_available()


pytestmark = pytest.mark.skipif(not cuda_ready(), reason="needs an NVIDIA GPU and a CUDA build of torch")


def gpu_family(allocate_mb: int) -> dict:
    traits = family("fill_gpu", threads=1, policy="torch", backends=("torch",), allocate_mb=allocate_mb)
    traits["runtime"].update(gpu="required", vram_cap_mb=CAP_MB,
                             isolation={"mode": "process", "reason": "a CUDA step gets its own VRAM cap"})
    return traits


def test_a_torch_step_gets_its_vram_cap_as_a_memory_fraction_and_cannot_pass_it(tmp_path):
    project = write_project(tmp_path, {"fits": gpu_family(CAP_MB // 2), "exceeds": gpu_family(CAP_MB * 2)},
                            gpu={"require": "cuda"}, campaign={"families": ["fits", "exceeds"], "targets": ["y"],
                                                                "seeds": [1], "nn_backend": "torch"})
    plan = compile_project(project)
    gpu = plan.hardware.gpus[0]
    assert {(s.resources.device, s.limits.vram_cap_mb, s.env["CUDA_VISIBLE_DEVICES"]) for s in plan.steps} == {
        ("cuda", CAP_MB, gpu.uuid)}

    results = {r.step_id.split(".")[0]: r for r in execute(plan, tmp_path / "run").results}

    fits, exceeds = results["fits"], results["exceeds"]
    assert fits.status == "ok", fits.error
    fraction = fits.applied["torch"]["memory_fraction"][0]
    assert fits.applied["torch"]["vram_cap_mb"] == CAP_MB
    assert fraction == pytest.approx(CAP_MB / gpu.memory_mb, rel=0.02)
    assert fits.output["seen"]["device_count"] == 1
    assert fits.output["seen"]["allocated_mb"] == CAP_MB // 2
    if fits.output["seen"]["fraction"] is not None:  # torch >= 2.9 can read it back
        assert fits.output["seen"]["fraction"] == pytest.approx(fraction, rel=1e-3)
    assert exceeds.status == "failed"
    assert exceeds.detail.startswith("torch.OutOfMemoryError: CUDA out of memory")
    assert "2.00 GiB allowed" in exceeds.detail
