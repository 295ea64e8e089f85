"""emofuse from Python: the names a notebook needs, and the version.

``import emofuse`` is the public API; its names are listed in :data:`__all__` and stay
stable (``tests/test_public_api.py`` checks the list):

- :class:`Catalog` (:class:`emofuse.catalog.store.Catalog`): one catalog root, a folder or
  fsspec URL. Reads give pandas frames and numpy arrays: ``media()`` (labels per item),
  ``status()``, ``feature_sets()``, ``clips(feature_set)`` (per-clip features),
  ``load_sequences(feature_set)`` (item -> numpy arrays), ``frame_labels()``,
  ``predictions(model=…)``, ``time_attributions(run_id)``, ``runs()``.
- :func:`extract`, :func:`train`, :func:`score`: the flows that ``emofuse extract``,
  ``emofuse train`` and ``emofuse score`` / ``score-archive`` run, with the same parameters
  (the commands build their options from these functions' signatures; see
  :mod:`emofuse.flows.params`). Called from Python they run as Prefect flows, on a
  temporary local server unless a Prefect API is configured.
- ``__version__``: the installed distribution's version (pyproject's ``version``, the one
  place it is written).

This module is a facade: names resolve on first use (module ``__getattr__``), so
``import emofuse`` imports neither pandas, torch nor Prefect and changes no global state
(:mod:`emofuse.flows.prefect_env` applies Prefect's defaults when a flow is called).

Example (the flows as in ``tests/smoke_run.py``, which runs them on a generated corpus):
    >>> import emofuse
    >>> from importlib.metadata import version
    >>> emofuse.__version__ == version("emofuse")
    True
    >>> cat = emofuse.Catalog("emofuse-data/catalog")       # a folder or an fsspec URL
    >>> cat.media().empty, cat.feature_sets(), cat.runs()    # nothing extracted here yet
    (True, [], [])
    >>> emofuse.extract("demo-corpus", catalog=cat.root, feature_sets=["egemaps", "faces"])  # doctest: +SKIP
    >>> run = emofuse.train(catalog=cat.root, model="tacfn", epochs=5)                      # doctest: +SKIP
    >>> emofuse.score(run_id=run["run_id"], catalog=cat.root)                               # doctest: +SKIP
    >>> cat.predictions(model="tacfn").groupby("label").size()                             # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from emofuse.catalog.store import Catalog
    from emofuse.flows.extract import extract
    from emofuse.flows.score import score
    from emofuse.flows.train import train

#: Public name -> the module that defines it (imported on first use).
_EXPORTS: dict[str, str] = {
    "Catalog": "emofuse.catalog.store",
    "extract": "emofuse.flows.extract",
    "train": "emofuse.flows.train",
    "score": "emofuse.flows.score",
}

__all__ = ["__version__", "Catalog", "extract", "train", "score"]


def __getattr__(name: str) -> Any:
    """Resolve a public name on first use and keep it in the module's namespace."""
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version(__name__)
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
