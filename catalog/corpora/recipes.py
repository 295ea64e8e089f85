"""Corpus recipes by name: which files of a source tree are items, and their label columns.

Each recipe yields :class:`Entry` objects (path, MEDIA_SCHEMA corpus columns, or why
the file was rejected). Recipes only look at names; probing and hashing happen in
:mod:`emofuse.pipeline.ingest`.

Example:
    >>> os.makedirs("src/Actor_01")
    >>> open("src/Actor_01/01-01-03-01-01-01-01.mp4", "wb").close()
    >>> [(os.path.basename(e.path), e.columns["emotion"]) for e in discover("ravdess", "src")]
    [('01-01-03-01-01-01-01.mp4', 'happy')]
    >>> [e.columns for e in discover("archive", "src")]
    [{'corpus': 'archive'}]
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Iterator

import numpy as np
import pandas as pd

from emofuse.catalog.corpora import archive, ravdess
from emofuse.catalog.corpora.entry import Entry

#: Recipe names :func:`discover` takes (the ``corpus`` parameter of the flows and the CLI).
RECIPES = ("ravdess", "archive", "crema-d", "iemocap", "meld", "affwild2")


def recipe_module(corpus: str):  # noqa: ANN201 - a module
    """The module of a labelled corpus beyond RAVDESS (``crema-d`` -> ``emofuse.catalog.corpora.crema_d``)."""
    if corpus not in RECIPES or corpus in ("ravdess", "archive"):
        raise ValueError(f"unknown corpus recipe {corpus!r}: use one of {list(RECIPES)}")
    return importlib.import_module(f"emofuse.catalog.corpora.{corpus.replace('-', '_')}")


def frame_labels(corpus: str, annotations: dict[str, str], times: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(Per-frame label rows, media columns summarising them) of one item of ``corpus``.

    ``annotations`` is the item's :attr:`Entry.annotations`; ``times`` its frames' presentation
    times (s): one label row per frame, as FRAME_LABELS_SCHEMA without ``item_id``. Raises
    ``ValueError`` naming ``file:line`` for a malformed annotation line.
    """
    module = recipe_module(corpus)
    if not hasattr(module, "frame_labels"):
        raise ValueError(f"corpus recipe {corpus!r} has no per-frame annotations")
    rows = module.frame_labels(annotations, times)
    return rows, module.clip_columns(rows)


def discover(corpus: str, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
    """Entries of ``source`` for the named recipe; ``selection`` narrows RAVDESS (e.g. ``["audio-only"]``)."""
    if corpus == "ravdess":
        for f in ravdess.discover(source, ravdess.parse_selection(selection)):
            yield Entry(f.path, ravdess.media_columns(f.fields) if f.fields else {}, f.error)
    elif corpus == "archive":
        for path in archive.files(source):
            yield Entry(path, archive.media_columns())
    else:
        yield from recipe_module(corpus).discover(source, selection)

