"""What measuring the data costs ``tkplan compile``: a 1 GiB CSV, first and second compile, next to ``sha256sum``.

Usage: ``python tools/bench/data_digest.py [--gib 1.0] [--dir /tmp]``

Writes a CSV of about the given size (a panel: symbol, ts, 8 features, target y) into a temporary directory under
``--dir`` with a ``tkplan.yaml`` that names it, then times, once each:

  * ``sha256sum FILE`` — the floor: reading and hashing every byte with coreutils;
  * ``tkplan compile --no-cache`` with an empty digest cache — the first compile, which hashes the file;
  * ``tkplan compile --no-cache`` again — the second compile, which reuses the digest (path, size, mtime and
    inode unchanged) and reads nothing of the file;
  * ``tkplan compile`` with unchanged inputs — answered from the compile cache.

It checks that the plan's digest is ``sha256sum``'s, prints the figures and the ratios, and deletes the
directory. The CSV is synced to disk and read once by an untimed ``sha256sum`` first, so the page cache is
warm for every row and the first compile is compared with ``sha256sum`` on equal terms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ROW_GROUP = 200_000


def write_csv(path: Path, size: int) -> None:
    """A CSV panel of about ``size`` bytes: one block of rows written over and over (a compile hashes the bytes
    and never parses them, so repeated rows cost nothing here and the file is written at disk speed)."""
    import numpy as np

    rng = np.random.default_rng(0)
    values = rng.standard_normal((_ROW_GROUP, 9))
    lines = [f"S{i % 50},{i // 50}," + ",".join(f"{v:.6f}" for v in row) for i, row in enumerate(values)]
    block = ("\n".join(lines) + "\n").encode("ascii")
    with open(path, "wb") as fh:
        fh.write(("symbol,ts," + ",".join(f"f{i}" for i in range(8)) + ",y\n").encode("ascii"))
        for _ in range(-(-size // len(block))):
            fh.write(block)


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="size of the CSV in GiB")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write it (deleted after)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tkplan-bench-digest-", dir=args.dir))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still delete the CSV
    try:
        csv = work / "panel.csv"
        write_csv(csv, int(args.gib * 2**30))
        (work / "tkplan.yaml").write_text(json.dumps({"data": {"source": "panel.csv", "tasks": {"y": "regression"}},
                                                      "campaign": {"families": ["lightgbm"], "targets": ["y"]}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN")}
        env["TKPLAN_CACHE_DIR"] = str(work / "cache")
        tkplan = [sys.executable, "-m", "tkplan.cli", "compile", "--hermetic"]
        subprocess.run(["sync"], check=False)  # the CSV's dirty pages reach the disk before anything is timed
        timed(["sha256sum", str(csv)], work, env)  # warms the page cache for every row alike
        floor, out = timed(["sha256sum", str(csv)], work, env)
        expected = out.split()[0]
        first, plan = timed([*tkplan, "--no-cache", "--format", "json"], work, env)
        second, _ = timed([*tkplan, "--no-cache", "--format", "json"], work, env)
        timed(tkplan, work, env)  # fills the compile cache
        cached, _ = timed(tkplan, work, env)
        found = json.loads(plan)["data"]["sha256"]
        assert found == expected, f"the plan's digest {found} is not sha256sum's {expected}"
        size = csv.stat().st_size
        print(f"CSV: {size / 2**30:.2f} GiB ({size} bytes); the plan's sha256 is sha256sum's")
        rows = [("sha256sum", floor), ("first compile (hashes the file)", first),
                ("second compile (digest reused)", second), ("compile, answered from the compile cache", cached)]
        for name, seconds in rows:
            print(f"  {name:<42} {seconds:7.3f} s   {seconds / floor:6.2f} × sha256sum")
        print(f"  first compile − second compile (the hashing): {first - second:.3f} s, "
              f"{size / 2**20 / max(first - second, 1e-9):.0f} MiB/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
