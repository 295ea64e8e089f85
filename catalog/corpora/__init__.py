"""Corpora: one registered recipe per corpus (discovery, labels, class order, evaluation plan, demo copy).

Beside the storage code, not part of it: corpora may import :mod:`emofuse.catalog`
storage modules, storage never imports corpora. Each corpus is one module with one
:class:`CorpusRecipe` subclass registered by :func:`register_corpus` (:mod:`.registry`;
other packages register theirs through the entry-point group ``emofuse.corpora``). A recipe
turns a source tree into media-table candidates (:func:`discover`), says how models trained
on the corpus order their classes (:func:`class_order`; RAVDESS's is :data:`EMOTION_CLASSES`)
and how it is split for evaluation (:func:`evaluation_plan`, a typed :class:`EvaluationPlan`:
speaker folds, official splits or sessions; RAVDESS's is :func:`ravdess_plan`), and makes
a demo copy in its layout (:mod:`emofuse.catalog.corpora.demo` and its per-layout modules).

Example:
    >>> corpus_names()[:6]
    ['ravdess', 'archive', 'crema-d', 'iemocap', 'meld', 'affwild2']
    >>> len(EMOTION_CLASSES), len(ravdess_plan()), class_order("meld")[:2]
    (8, 5, ('neutral', 'joy'))
"""
from emofuse.catalog.corpora.entry import Entry
from emofuse.catalog.corpora.evaluation import PLAN_COLUMNS, EvaluationPlan, Fold
from emofuse.catalog.corpora.recipe import CorpusRecipe
from emofuse.catalog.corpora.registry import corpus_names, demo_layouts, get_corpus, labelled_corpora, register_corpus
from emofuse.catalog.corpora.ravdess import EMOTION_CLASSES, RAVDESS_ACTORS, is_ravdess, ravdess_plan
from emofuse.catalog.corpora.recipes import class_order, discover, evaluation_plan

__all__ = ["EMOTION_CLASSES", "PLAN_COLUMNS", "RAVDESS_ACTORS", "CorpusRecipe", "Entry", "EvaluationPlan", "Fold",
           "class_order", "corpus_names", "demo_layouts", "discover", "evaluation_plan", "get_corpus", "is_ravdess",
           "labelled_corpora", "ravdess_plan", "register_corpus"]
