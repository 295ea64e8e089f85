"""The emofuse modules as the repository lays them out: folder ``catalog/`` is ``emofuse.catalog``."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Repository folders that install as ``emofuse.<folder>`` (pyproject's package-dir).
TOP_LEVEL = ("catalog", "pipeline", "fusion", "flows")
#: The folder that installs as ``emofuse`` itself: the public API's thin facade (``emofuse/__init__.py``).
FACADE = "emofuse"


def _dotted(parts: tuple[str, ...]) -> str:
    """Import name of a path under the repository: ``catalog/x`` -> ``emofuse.catalog.x``, ``emofuse`` -> ``emofuse``."""
    return ".".join(parts if parts[0] == FACADE else ("emofuse", *parts))


def packages() -> list[str]:
    """Every package (folder with ``__init__.py``) under the facade and the top-level folders, as ``emofuse.…`` names."""
    out = []
    for top in (FACADE, *TOP_LEVEL):
        for init in sorted((REPO / top).rglob("__init__.py")):
            out.append(_dotted(init.parent.relative_to(REPO).parts))
    return out


def modules() -> list[str]:
    """Every module (``.py`` file) under the facade and the top-level folders, as ``emofuse.…`` names."""
    out = []
    for top in (FACADE, *TOP_LEVEL):
        for py in sorted((REPO / top).rglob("*.py")):
            rel = py.relative_to(REPO).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            if rel[-1] == "__main__":
                continue
            out.append(_dotted(rel))
    return out
