"""Installed, the project is one namespace: ``emofuse.catalog`` … and no generic top-level names."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests._modules import FACADE, REPO, TOP_LEVEL, packages
from tests.test_public_api import PUBLIC


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert listed == set(packages()), "pyproject [tool.setuptools] packages must list every package folder"


def test_package_dirs_map_the_top_level_folders_under_emofuse() -> None:
    dirs = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert dirs == {f"emofuse.{top}": top for top in TOP_LEVEL}  # emofuse itself: the folder emofuse/


def test_the_facade_is_thin() -> None:
    """``emofuse/`` holds the public API's one module and nothing else: code lives in the fixed folders."""
    files = sorted(p.relative_to(REPO / FACADE).as_posix() for p in (REPO / FACADE).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    assert files == ["__init__.py"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # build from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", FACADE, *TOP_LEVEL):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(
            REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True)
    (whl,) = out.glob("emofuse-*.whl")
    return whl


def test_wheel_has_only_the_emofuse_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"emofuse"}
    for pkg in packages():
        assert f"{pkg.replace('.', '/')}/__init__.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "emofuse = emofuse.flows.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_wheel_in_a_fresh_venv_has_emofuse_and_no_generic_names(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    # install the wheel's files by unpacking (no network, no dependencies needed for this check)
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import importlib.util as u; "
             "print([n for n in ('catalog', 'pipeline', 'fusion', 'flows') if u.find_spec(n)]); "
             "import emofuse.catalog, emofuse.pipeline, emofuse.fusion, emofuse.flows; "
             "import emofuse; print(emofuse.__version__, sorted(emofuse.__all__)); print('ok')")
    res = subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    version = _pyproject()["project"]["version"]  # the one place it is written; the dist-info carries it
    assert res.stdout.splitlines() == ["[]", f"{version} {sorted(PUBLIC)}", "ok"], res.stderr
