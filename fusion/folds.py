"""Fold plans (typed, saved with each run): which items train, validate and test each fold.

A plan is an :class:`~emofuse.catalog.corpora.evaluation.EvaluationPlan` of
:class:`~emofuse.catalog.corpora.evaluation.Fold` records: each lists values of the media
column ``by`` (one of :data:`PLAN_COLUMNS`: ``"speaker"``, ``"split"`` for official
train/dev/test sets, ``"session"`` for leave-one-session-out) for its train, val and test
parts, no value in two parts. A run's ``config.json`` holds it as a list of fold dicts
(:meth:`~emofuse.catalog.corpora.evaluation.EvaluationPlan.to_dicts`; plans saved before
``by`` existed are speaker folds).

:func:`default_plan` picks the plan a training run uses when none is given:

* all labelled items from one corpus whose recipe has a standard plan (its registered
  recipe's :meth:`~emofuse.catalog.corpora.recipe.CorpusRecipe.evaluation_plan`: RAVDESS
  with its 24 actors: the five official test folds; CREMA-D: five speaker folds; MELD: the
  official train/dev/test; IEMOCAP: leave one session out; …);
* otherwise :func:`generic_plan` over the speakers: speakers sorted and shuffled with
  ``seed``, dealt into ``k`` groups (``k <= number of speakers``); fold i tests on group i and
  validates on ``n_val`` speakers taken from the training speakers (starting at group i+1).

Example:
    >>> plan = generic_plan([f"S{i}" for i in range(6)], k=3, seed=0)
    >>> len(plan), plan[0].by, check_plan(plan) == plan
    (3, 'speaker', True)
    >>> check_plan([{"fold": 0, "train": ["A"], "val": ["A"], "test": ["B"]}])
    Traceback (most recent call last):
    ...
    ValueError: fold 0: speakers ['A'] are in both train and val
    >>> import pandas as pd
    >>> media = pd.DataFrame({"corpus": "meld", "speaker": ["Ross", "Rachel", "Ross"],
    ...                       "split": ["train", "dev", "test"]})
    >>> default_plan(media).to_dicts()
    [{'fold': 0, 'by': 'split', 'train': ['train'], 'val': ['dev'], 'test': ['test']}]
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from emofuse.catalog.corpora.evaluation import PLAN_COLUMNS, EvaluationPlan, Fold
from emofuse.catalog.corpora.recipes import evaluation_plan


def generic_plan(speakers: Sequence[str], *, k: int = 5, n_val: int | None = None, seed: int = 0) -> EvaluationPlan:
    """k-fold over speakers with a validation group drawn from each fold's training speakers.

    ``k`` is clamped to [2, number of speakers] and raised where a fold would otherwise keep
    fewer than two speakers outside its test group (3 speakers always give 3 folds).
    """
    spk = sorted(set(speakers))
    if len(spk) < 3:
        raise ValueError(f"speaker-independent train/val/test needs at least 3 speakers, got {len(spk)}: {spk}")
    k = max(2, min(int(k), len(spk)))
    while len(spk) - math.ceil(len(spk) / k) < 2:  # every fold keeps a train and a val speaker
        k += 1
    order = [spk[i] for i in np.random.default_rng(seed).permutation(len(spk))]
    groups = [order[i::k] for i in range(k)]
    folds = []
    for i in range(k):
        rest = [s for j in range(1, k) for s in groups[(i + j) % k]]
        nv = n_val if n_val is not None else max(1, int(math.ceil(len(spk) / k)))
        nv = max(1, min(nv, len(rest) - 1))
        folds.append(Fold(i, train=tuple(sorted(rest[nv:])), val=tuple(sorted(rest[:nv])),
                          test=tuple(sorted(groups[i]))))
    return EvaluationPlan(tuple(folds))


def default_plan(media: pd.DataFrame, *, k: int | None = None, seed: int = 0) -> EvaluationPlan:
    """The plan for these (labelled) media rows: their corpus's standard plan when they come from one
    corpus that has one and ``k`` is None, else :func:`generic_plan` over their speakers (``k`` folds,
    default 5)."""
    corpora = set(media["corpus"].dropna()) if "corpus" in media else set()
    if k is None and len(corpora) == 1:
        plan = evaluation_plan(corpora.pop(), media)
        if plan is not None:
            return plan
    if "speaker" not in media or media["speaker"].isna().any():
        raise ValueError("speaker-independent folds need a speaker for every labelled item; some have none "
                         "(give a fold plan with another 'by' column, e.g. the official 'split')")
    return generic_plan(sorted(set(media["speaker"])), k=k if k is not None else 5, seed=seed)


def check_plan(plan: EvaluationPlan | Iterable[Mapping[str, Any] | Fold]) -> EvaluationPlan:
    """``plan`` (a plan, folds or saved fold dicts) as an :class:`EvaluationPlan`; ValueError unless every
    fold names a known ``by`` column and has non-empty, pairwise disjoint train/val/test lists."""
    out = EvaluationPlan.of(plan)
    out.check()
    return out


__all__ = ["PLAN_COLUMNS", "check_plan", "default_plan", "generic_plan"]
