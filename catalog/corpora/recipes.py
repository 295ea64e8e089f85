"""Corpus recipes by name: the calls the pipeline, flows and training make with a ``corpus`` value.

Each looks the recipe up in the registry (:func:`~emofuse.catalog.corpora.registry.get_corpus`)
and asks it; no code outside a recipe's module decides anything by a corpus's name.
Recipes only look at names and annotation files; probing and hashing happen in
:mod:`emofuse.pipeline.ingest`.

Example:
    >>> os.makedirs("src/Actor_01")
    >>> open("src/Actor_01/01-01-03-01-01-01-01.mp4", "wb").close()
    >>> [(os.path.basename(e.path), e.columns["emotion"]) for e in discover("ravdess", "src")]
    [('01-01-03-01-01-01-01.mp4', 'happy')]
    >>> [e.columns for e in discover("archive", "src")]
    [{'corpus': 'archive'}]
    >>> import pandas as pd
    >>> actors = pd.DataFrame({"speaker": [f"Actor_{i:02d}" for i in range(1, 25)]})
    >>> evaluation_plan("ravdess", actors)[0].test
    ('Actor_01', 'Actor_02', 'Actor_03', 'Actor_04')
    >>> evaluation_plan("ravdess", actors.head(6)) is None   # not the whole corpus: no official plan
    True
    >>> evaluation_plan("archive", actors) is None, class_order("archive"), class_order("no-such-corpus")
    (True, None, None)
    >>> class_order("ravdess")[:3]
    ('neutral', 'calm', 'happy')
"""
from __future__ import annotations

import os  # noqa: F401 - used by the doctests
from typing import Any, Iterator

import numpy as np
import pandas as pd

from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import EvaluationPlan
from emofuse.catalog.corpora.registry import get_corpus


def discover(corpus: str, source: str, selection: list[str] | None = None) -> Iterator[Entry]:
    """Entries of ``source`` for the named recipe; ``selection`` narrows the run (e.g. RAVDESS's ``["audio-only"]``)."""
    yield from get_corpus(corpus).discover(source, selection)


def frame_labels(corpus: str, annotations: dict[str, str], times: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(Per-frame label rows, media columns summarising them) of one item of ``corpus``.

    ``annotations`` is the item's :attr:`Entry.annotations`; ``times`` its frames' presentation
    times (s): one label row per frame, as FRAME_LABELS_SCHEMA without ``item_id``. Raises
    ``ValueError`` naming ``file:line`` for a malformed annotation line.
    """
    return get_corpus(corpus).frame_labels(annotations, times)


def evaluation_plan(corpus: str, media: pd.DataFrame) -> EvaluationPlan | None:
    """The corpus's standard folds for these media rows (its labelled items), or None where it has none.

    None for unknown names and recipes without a plan (unlabelled ones, a RAVDESS catalog
    without all 24 actors); callers then fall back to a generic speaker k-fold. A recipe whose
    plan cannot be built from these rows raises ValueError saying why.
    """
    try:
        recipe = get_corpus(corpus)
    except ValueError:
        return None
    return recipe.evaluation_plan(media) if recipe.labelled else None


def class_order(corpus: str) -> tuple[str, ...] | None:
    """The order of the corpus's ``emotion`` classes (models trained on it use it), None if it has none."""
    try:
        return get_corpus(corpus).class_order()
    except ValueError:
        return None


__all__ = ["class_order", "discover", "evaluation_plan", "frame_labels"]
