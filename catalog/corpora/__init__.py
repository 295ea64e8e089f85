"""Corpora: one recipe per corpus (discovery, labels, standard splits) and the demo-corpus generator.

Beside the storage code, not part of it: corpora may import :mod:`emofuse.catalog`
storage modules, storage never imports corpora. Recipes turn a source tree into
media-table candidates (:func:`discover`); a corpus also says how models trained on it
order their classes (:data:`EMOTION_CLASSES`) and how it is split into speaker
folds (:func:`ravdess_plan`). The generator of the RAVDESS-shaped demo corpus is
:mod:`emofuse.catalog.corpora.demo`.

Example:
    >>> RECIPES
    ('ravdess', 'archive', 'crema-d', 'iemocap', 'meld', 'affwild2')
    >>> len(EMOTION_CLASSES), len(ravdess_plan())
    (8, 5)
"""
from emofuse.catalog.corpora.ravdess import EMOTION_CLASSES, RAVDESS_ACTORS, is_ravdess, ravdess_plan
from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.recipes import RECIPES, discover

__all__ = ["EMOTION_CLASSES", "RAVDESS_ACTORS", "RECIPES", "Entry", "discover", "is_ravdess", "ravdess_plan"]
