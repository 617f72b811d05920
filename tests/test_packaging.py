"""A built wheel installs and works on its own: ``tkplan --help`` and a compile, profiles and schemas included.

The wheel is built from a copy of the source tree (so no build output lands in the checkout), installed
without dependencies into a fresh virtual environment that sees the site-packages of the interpreter running
the tests (so the dependencies need no network, wherever that interpreter keeps them: a venv of its own, or
the system's), and run from a directory outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import tkplan

ROOT = Path(__file__).parent.parent
IGNORED = shutil.ignore_patterns(".git", "*.egg-info", "build", "dist", "__pycache__", ".pytest_cache",
                                 ".hypothesis", ".venv", ".benchmarks", ".tkplan-cache", "runs", "plan.json")


def run(*args: str | os.PathLike[str], cwd: Path,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def build_wheel(src: Path, out: Path) -> Path:
    """Build with ``python -m build`` (isolated first); without network fall back to the installed backend."""
    attempts: list[list[str | Path]] = [
        [sys.executable, "-m", "build", "--wheel", "--outdir", out, src],
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, src],
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", out, src],
    ]
    errors: list[str] = []
    for command in attempts:
        proc = run(*command, cwd=src)
        wheels = sorted(out.glob("tkplan-*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[-1]
        errors.append(f"$ {' '.join(map(str, command))}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    pytest.fail("could not build the wheel:\n" + "\n".join(errors))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=IGNORED)
    return build_wheel(src, work / "dist")


def dependency_dirs() -> list[str]:
    """The site-packages directories this interpreter imports the dependencies from, in its order."""
    candidates = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(os.path.realpath(c) for c in candidates) if os.path.isdir(d)]


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; the dependencies come from this interpreter.

    ``--system-site-packages`` would show the base interpreter's packages, which miss everything installed in
    a venv of its own (where the README's commands put them). A ``.pth`` file lists this interpreter's
    site-packages instead: appended after the venv's own, as plain paths, so the wheel's ``tkplan`` wins and
    an editable install of the checkout (a ``.pth`` hook in those directories, not processed) never loads.
    """
    where = tmp_path_factory.mktemp("venv") / "venv"
    made = run(sys.executable, "-m", "venv", where, cwd=where.parent)
    assert made.returncode == 0, made.stderr
    purelib = run(where / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  cwd=where.parent).stdout.strip()
    Path(purelib, "_test_dependencies.pth").write_text("\n".join(dependency_dirs()) + "\n")
    installed = run(where / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", wheel,
                    cwd=where.parent)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return where


def clean_env(tmp: Path) -> dict[str, str]:
    """The environment without anything that would point Python or tkplan at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TKPLAN", "PYTHON")) and k not in ("VIRTUAL_ENV",)}
    env["TKPLAN_CACHE_DIR"] = str(tmp / "cache")
    return env


pytestmark = pytest.mark.slow


def test_the_wheel_holds_one_top_level_package_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"tkplan", f"tkplan-{tkplan.__version__}.dist-info"}
    assert not top & {"planner", "runtime", "families", "tools", "schema", "profiles"}
    for package in ("planner", "runtime", "families", "tools", "schema", "profiles"):
        assert f"tkplan/{package}/__init__.py" in names
    assert {"tkplan/py.typed", "tkplan/profiles/base.yaml", "tkplan/schema/config.schema.json",
            "tkplan/schema/hardware.schema.json"} <= set(names)
    shipped = {f"tkplan/profiles/{p.relative_to(ROOT / 'profiles').as_posix()}"
               for p in (ROOT / "profiles").rglob("*.yaml")}
    schemas = {f"tkplan/schema/{p.relative_to(ROOT / 'schema').as_posix()}" for p in (ROOT / "schema").rglob("*.json")}
    assert shipped <= set(names)
    assert schemas <= set(names)
    templates = {f"tkplan/tools/report/templates/{p.name}"
                 for p in (ROOT / "tools" / "report" / "templates").glob("*.j2")}
    assert templates and templates <= set(names)
    assert {"tkplan/tools/report/__init__.py", "tkplan/tools/track/__init__.py"} <= set(names)


def test_help_from_the_installed_wheel(venv, tmp_path):
    result = run(venv / "bin" / "tkplan", "--help", cwd=tmp_path, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Usage: tkplan [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert "compile" in result.stdout


def test_compile_from_the_installed_wheel(venv, tmp_path):
    result = run(venv / "bin" / "tkplan", "compile", "--hermetic", "-o", "plan.json", cwd=tmp_path,
                 env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["format"] == "tkplan.plan/1"
    assert plan["inputs"]["layers"][0]["file"] == "tkplan:profiles/base.yaml"
    assert plan["inputs"]["layers"][-1]["file"] == "tkplan:profiles/machines/laptop.yaml"
    assert f"plan written to plan.json (plan_hash {plan['plan_hash']})" in result.stdout


def test_the_installed_package_is_the_wheels_not_the_checkout(venv, tmp_path):
    probe = ("import json, tkplan, tkplan.planner._sources as s, tkplan.planner._schemas as schemas; "
             "print(json.dumps([tkplan.__file__, str(s.shipped_dir()), schemas.__file__]))")
    result = run(venv / "bin" / "python", "-c", probe, cwd=tmp_path, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    site = Path(run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=tmp_path, env=clean_env(tmp_path)).stdout.strip())
    for path in json.loads(result.stdout):
        assert Path(path).resolve().is_relative_to(site.resolve()), path
        assert not Path(path).resolve().is_relative_to(ROOT.resolve()), path
