"""The emofuse modules as the repository lays them out: folder ``catalog/`` is ``emofuse.catalog``."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Repository folders that install as ``emofuse.<folder>`` (pyproject's package-dir).
TOP_LEVEL = ("catalog", "pipeline", "fusion", "flows")


def packages() -> list[str]:
    """Every package (folder with ``__init__.py``) under the top-level folders, as ``emofuse.…`` names."""
    out = []
    for top in TOP_LEVEL:
        for init in sorted((REPO / top).rglob("__init__.py")):
            rel = init.parent.relative_to(REPO).parts
            out.append(".".join(("emofuse", *rel)))
    return out


def modules() -> list[str]:
    """Every module (``.py`` file) under the top-level folders, as ``emofuse.…`` names."""
    out = []
    for top in TOP_LEVEL:
        for py in sorted((REPO / top).rglob("*.py")):
            rel = py.relative_to(REPO).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            if rel[-1] == "__main__":
                continue
            out.append(".".join(("emofuse", *rel)))
    return out
