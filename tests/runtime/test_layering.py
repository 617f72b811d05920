"""The runtime's imports: no ML library and no family code in the executor; a light child; a complete API."""

from __future__ import annotations

import json
import subprocess
import sys

import tkplan.runtime

HEAVY = ("torch", "tensorflow", "lightgbm", "xgboost", "sklearn", "ngboost", "ray", "pandas", "scipy", "numpy")


def modules_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def test_the_executor_loads_no_ml_library_and_no_family_adapter():
    loaded = modules_after("import tkplan.runtime._executor, tkplan.runtime._local, tkplan._cli_run")
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []
    assert [m for m in loaded if m.startswith("tkplan.families")] == []


def test_the_child_module_imports_nothing_before_it_runs_a_step():
    loaded = modules_after("import tkplan.runtime._child")
    assert [m for m in loaded
            if m.startswith("tkplan.") and m != "tkplan.runtime._child"] == ["tkplan._lazy", "tkplan.runtime"]
    assert not {"cattrs", "attrs", "psutil", "threadpoolctl", "click"} & set(loaded)


def test_every_exported_name_resolves():
    for name in tkplan.runtime.__all__:
        assert getattr(tkplan.runtime, name) is not None, name
    assert sorted(dir(tkplan.runtime)) == sorted(tkplan.runtime.__all__)
