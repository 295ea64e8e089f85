"""Each labelled corpus's standard evaluation plan and class order, looked up by recipe name.

A plan is a list of folds ``{"fold": k, "by": column, "train": [...], "val": [...],
"test": [...]}``: the lists hold values of the media column ``by`` (``"speaker"`` when the
key is absent, as in plans saved before it existed; ``"split"`` for official
train/dev/test sets such as MELD's; ``"session"`` for IEMOCAP's leave-one-session-out).
Training (:mod:`emofuse.fusion.folds`) takes a corpus's plan when all labelled items come
from that corpus. Every recipe module beyond RAVDESS defines ``CLASSES`` (the class
order of its ``emotion`` column) and ``evaluation_plan(media)``.

Example:
    >>> import pandas as pd
    >>> actors = pd.DataFrame({"speaker": [f"Actor_{i:02d}" for i in range(1, 25)]})
    >>> [f["test"] for f in evaluation_plan("ravdess", actors)][0]
    ['Actor_01', 'Actor_02', 'Actor_03', 'Actor_04']
    >>> evaluation_plan("ravdess", actors.head(6)) is None   # not the whole corpus: no official plan
    True
    >>> evaluation_plan("archive", actors) is None, class_order("archive"), class_order("no-such-corpus")
    (True, None, None)
    >>> class_order("ravdess")[:3]
    ('neutral', 'calm', 'happy')
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from emofuse.catalog.corpora.ravdess import EMOTION_CLASSES, RAVDESS_ACTORS, is_ravdess, ravdess_plan
from emofuse.catalog.corpora.recipes import RECIPES, recipe_module

#: Recipes without labels, hence without a plan or a class order.
UNLABELLED = ("archive",)


def evaluation_plan(corpus: str, media: pd.DataFrame) -> list[dict[str, Any]] | None:
    """The corpus's standard folds for these media rows (its labelled items), or None where it has none.

    None for unknown names, unlabelled recipes and a RAVDESS catalog without all 24 actors
    (its official folds need them); callers then fall back to a generic speaker k-fold.
    A recipe whose plan cannot be built from these rows raises ValueError saying why.
    """
    if corpus not in RECIPES or corpus in UNLABELLED:
        return None
    if corpus == "ravdess":
        speakers = set(media["speaker"].dropna()) if "speaker" in media else set()
        if not is_ravdess(speakers):
            return None
        extra = sorted(speakers - set(RAVDESS_ACTORS))
        return [{**f, "train": sorted(f["train"] + extra)} for f in ravdess_plan()]
    return recipe_module(corpus).evaluation_plan(media)


def class_order(corpus: str) -> tuple[str, ...] | None:
    """The order of the corpus's ``emotion`` classes (models trained on it use it), None if it has none."""
    if corpus not in RECIPES or corpus in UNLABELLED:
        return None
    if corpus == "ravdess":
        return tuple(EMOTION_CLASSES)
    return tuple(recipe_module(corpus).CLASSES)


__all__ = ["UNLABELLED", "class_order", "evaluation_plan"]
