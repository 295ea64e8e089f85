"""``import emofuse``: a stable list of public names, each resolving to the code the CLI runs, imported lazily."""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib

import pytest

import emofuse
from emofuse.catalog.store import Catalog
from emofuse.flows.params import COMMANDS
from tests._modules import REPO

#: The public API. Changing it is a release note: add names, do not rename or remove them.
PUBLIC = ["__version__", "Catalog", "extract", "train", "score"]
#: Modules that ``import emofuse`` must not import (seconds of start-up, servers' settings).
HEAVY = ("torch", "prefect", "pandas", "pyarrow", "dask", "transformers", "onnxruntime", "emofuse.catalog",
         "emofuse.flows")


def test_all_is_the_public_list() -> None:
    assert emofuse.__all__ == PUBLIC
    assert set(PUBLIC) <= set(dir(emofuse))


def test_every_public_name_resolves() -> None:
    for name in emofuse.__all__:
        assert getattr(emofuse, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        emofuse.nope  # noqa: B018 (hasattr and getattr defaults must work)
    assert not hasattr(emofuse, "api")


def test_the_names_are_what_the_command_line_runs() -> None:
    """Same parameters as the CLI: the very flow objects whose signatures the commands' options come from."""
    assert emofuse.Catalog is Catalog
    assert emofuse.extract is COMMANDS["extract"].flow_object()
    assert emofuse.train is COMMANDS["train"].flow_object()
    assert emofuse.score is COMMANDS["score"].flow_object() is COMMANDS["score-archive"].flow_object()


def test_version_is_the_distribution_version() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert emofuse.__version__ == importlib.metadata.version("emofuse") == pyproject


def _imported_after(code: str, tmp_path) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True)
    return res.stdout.split()


def test_import_emofuse_imports_nothing_heavy(tmp_path) -> None:
    assert _imported_after("import emofuse; emofuse.__version__; dir(emofuse)", tmp_path) == []
    # the catalog needs pandas and pyarrow, not torch, Prefect or the flows
    catalog = set(_imported_after("import emofuse; emofuse.Catalog", tmp_path))
    assert {"pandas", "emofuse.catalog"} <= catalog and not {"torch", "prefect", "emofuse.flows"} & catalog
    # and the probe sees what a name does import: the flows bring Prefect
    assert {"prefect", "emofuse.flows"} <= set(_imported_after("import emofuse; emofuse.train", tmp_path))
