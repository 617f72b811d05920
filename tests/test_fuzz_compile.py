"""Fuzzing ``tkplan compile`` through the real command line with generated profiles, overrides and variables.

Whatever the input, the compile ends with an exit code from the documented set (0 a plan, 2 a bad
invocation, 3 an invalid configuration, 4 a plan the hardware cannot honour), never a traceback, a
signal death or a hang, and writes nothing but the plan it was asked for, inside its working directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tkplan.planner import plan_from_json
from tkplan.planner._overrides import LEGACY_ENV

SPEC = Path(__file__).parent / "specs" / "laptop_2core.yaml"
EXIT_CODES = {0, 2, 3, 4}

# Keys a profile really has, so that generated input reaches validation and planning, not only the parser.
KEYS = ["run", "threads", "max_parallel", "base_seed", "name", "campaign", "families", "targets", "seeds", "data",
        "synthetic", "symbols", "timestamps", "features", "limits", "timeout_s", "memory_cap_gb", "memory_threshold",
        "total_time_budget_h", "gpu", "devices", "lightgbm", "learning_rate", "num_leaves", "runtime", "entrypoint",
        "display_name", "extends", "env", "determinism", "python_hash_seed"]
PATHS = ["run.threads", "run.max_parallel", "run.base_seed", "run.name", "campaign.families", "campaign.seeds",
         "data.synthetic.symbols", "limits.timeout_s", "limits.memory_cap_gb", "limits.total_time_budget_h",
         "limits.memory_threshold", "families.lightgbm.learning_rate", "families.lightgbm.num_leaves", "gpu.devices",
         "determinism.python_hash_seed", "+families.mine.entrypoint", "+x.y"]
ENV_NAMES = [*sorted(set(LEGACY_ENV) - {"PYTHONHASHSEED"}),
             "TKPLAN__run__threads", "TKPLAN__limits__memory_cap_gb", "TKPLAN__run",
             "TKPLAN__families__lightgbm__num_leaves", "TKPLAN_PROFILE_PATH"]

YAML_TEXT = st.text(alphabet=st.sampled_from([*"[]{}:-,#&*!|>'\"%@?~ \n\t.0123456789eEaxyz_+/\\", "…", "é"]),
                    max_size=120)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["auto", "../../x", "", ".", "GPU-1", "random"]),
    st.text(max_size=12),
)
STRUCTURE = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner,
                                                     max_size=4)),
    max_leaves=30,
)


def as_yaml(data: object) -> str:
    """JSON is YAML; NaN and the infinities in YAML's own spelling."""
    text = json.dumps(data, allow_nan=True)
    return text.replace("-Infinity", "-.inf").replace("Infinity", ".inf").replace("NaN", ".nan")


PROFILE = st.one_of(STRUCTURE.map(as_yaml), YAML_TEXT, st.dictionaries(st.sampled_from(KEYS), STRUCTURE, max_size=5)
                    .map(as_yaml))
VALUE = st.one_of(YAML_TEXT, SCALARS.map(as_yaml), STRUCTURE.map(as_yaml))
OVERRIDES = st.lists(st.tuples(st.sampled_from(PATHS), VALUE).map("=".join), max_size=3)
# PYTHONHASHSEED is left out: the interpreter itself refuses a bad one before tkplan starts.
ENV = st.dictionaries(st.sampled_from(ENV_NAMES), VALUE.map(lambda v: v.replace("\x00", "")), max_size=3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=PROFILE, overrides=OVERRIDES, env=ENV)
def test_any_input_ends_cleanly(profile: str, overrides: list[str], env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as root:
        work = Path(root) / "work"
        work.mkdir()
        (work / "profile.yaml").write_text(profile, "utf-8")
        base = {k: v for k, v in os.environ.items() if not k.startswith("TKPLAN") and k not in LEGACY_ENV}
        base.update(HOME=root, TKPLAN_CACHE_DIR=str(work / ".cache"))
        hermetic = [] if env else ["--hermetic"]
        done = subprocess.run(
            [sys.executable, "-m", "tkplan.cli", "compile", *hermetic, "--no-cache", "--hardware", str(SPEC),
             "./profile.yaml", *overrides, "-o", "plan.json"],
            cwd=work, env={**base, **env}, capture_output=True, text=True, timeout=120)
        assert done.returncode in EXIT_CODES, (done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert [p.name for p in Path(root).iterdir()] == ["work"]
        written = sorted(p.name for p in work.iterdir() if p.name != ".cache")  # TKPLAN_CACHE_DIR
        if done.returncode == 0:
            assert written == ["plan.json", "profile.yaml"]
            plan_from_json((work / "plan.json").read_text("utf-8"))  # a whole plan whose hash holds
        else:
            assert written == ["profile.yaml"]
            assert done.stderr.startswith(("error: ", "Usage: ")), done.stderr
