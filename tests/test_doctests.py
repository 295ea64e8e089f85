"""Run the docstring examples of every emofuse module (they are documentation that must stay true)."""
from __future__ import annotations

import doctest
import importlib
import os
import sys

import pytest

from tests._modules import modules


@pytest.mark.parametrize("name", modules())
def test_doctests(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("EMOFUSE_DATA", os.fspath(tmp_path / "emofuse-data"))
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=True, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
    # examples import emofuse.*: a generic top-level name would be a second copy of a module
    assert not {"catalog", "pipeline", "fusion", "flows"} & set(sys.modules)
