"""Process-wide settings applied once at start-up, before any model is built."""

import os
import warnings

import numpy as np
import torch

BLAS_THREADS_DEFAULT = 1
TORCH_THREADS = 4
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class Budget:
    def __init__(self, gpu_mem_mb, cpu_threads=None):
        self.gpu_mem_mb = gpu_mem_mb
        self.cpu_threads = cpu_threads


def apply_policy():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["MKL_NUM_THREADS"] = str(BLAS_THREADS_DEFAULT)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    np.set_printoptions(precision=4, suppress=True)
    torch.set_num_threads(4)
    torch.set_num_interop_threads(1)
    torch.backends.cudnn.benchmark = True
    warnings.filterwarnings("ignore", category=FutureWarning)
    return Budget(gpu_mem_mb=8192)


def executor_options():
    options = {"backend": "threads", "max_parallel": 2}
    options["timeout_s"] = 900
    return options


def describe(budget):
    lines = [f"gpu memory: {budget.gpu_mem_mb} MB"]
    if budget.cpu_threads is not None:
        lines.append(f"cpu threads: {budget.cpu_threads}")
    return "\n".join(lines)
