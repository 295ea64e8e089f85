"""Corpora: one recipe per corpus (discovery, labels, standard splits) and the demo-corpus generator.

Beside the storage code, not part of it: corpora may import :mod:`emofuse.catalog`
storage modules, storage never imports corpora. Recipes turn a source tree into
media-table candidates (:func:`discover`); a corpus also says how models trained on it
order their classes (:func:`class_order`; RAVDESS's is :data:`EMOTION_CLASSES`) and how
it is split for evaluation (:func:`evaluation_plan`: speaker folds, official splits or
sessions; RAVDESS's is :func:`ravdess_plan`). The demo corpora in each corpus's layout
are made by :mod:`emofuse.catalog.corpora.demo` and its per-layout modules.

Example:
    >>> RECIPES
    ('ravdess', 'archive', 'crema-d', 'iemocap', 'meld', 'affwild2')
    >>> len(EMOTION_CLASSES), len(ravdess_plan()), class_order("meld")[:2]
    (8, 5, ('neutral', 'joy'))
"""
from emofuse.catalog.corpora.ravdess import EMOTION_CLASSES, RAVDESS_ACTORS, is_ravdess, ravdess_plan
from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.recipes import RECIPES, discover
from emofuse.catalog.corpora.plans import class_order, evaluation_plan

__all__ = ["EMOTION_CLASSES", "RAVDESS_ACTORS", "RECIPES", "Entry", "class_order", "discover", "evaluation_plan",
           "is_ravdess", "ravdess_plan"]
