"""Fold plans (plain data, saved with each run): which items train, validate and test each fold.

A plan is a list of dicts ``{"fold": k, "by": column, "train": [...], "val": [...],
"test": [...]}``: the lists hold values of the media column ``by``, one of
:data:`PLAN_COLUMNS` (``"speaker"`` when the key is absent, so plans saved before it
existed still load; ``"split"`` for official train/dev/test sets; ``"session"`` for
leave-one-session-out). No value is in two of train/val/test of a fold.

:func:`default_plan` picks the plan a training run uses when none is given:

* all labelled items from one corpus whose recipe has a standard plan
  (:func:`emofuse.catalog.corpora.plans.evaluation_plan`): that plan (RAVDESS with its 24
  actors: the five official test folds; CREMA-D: five speaker folds; MELD: the official
  train/dev/test; IEMOCAP: leave one session out; …);
* otherwise :func:`make_plan` over the speakers: RAVDESS's plan when actors 1-24 are all
  there, else :func:`generic_plan`: speakers sorted and shuffled with ``seed``, dealt into
  ``k`` groups (``k <= number of speakers``); fold i tests on group i and validates on
  ``n_val`` speakers taken from the training speakers (starting at group i+1).

Example:
    >>> plan = make_plan([f"S{i}" for i in range(6)], k=3, seed=0)
    >>> len(plan), sorted(plan[0]) == ["fold", "test", "train", "val"], plan_by(plan[0])
    (3, True, 'speaker')
    >>> check_plan(plan)
    >>> check_plan([{"fold": 0, "train": ["A"], "val": ["A"], "test": ["B"]}])
    Traceback (most recent call last):
    ...
    ValueError: fold 0: speakers ['A'] are in both train and val
    >>> import pandas as pd
    >>> media = pd.DataFrame({"corpus": "meld", "speaker": ["Ross", "Rachel", "Ross"],
    ...                       "split": ["train", "dev", "test"]})
    >>> default_plan(media)
    [{'fold': 0, 'by': 'split', 'train': ['train'], 'val': ['dev'], 'test': ['test']}]
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from emofuse.catalog.corpora.plans import evaluation_plan

#: Media columns a plan can select items by (the items table of the fusion loader carries them).
PLAN_COLUMNS = ("speaker", "split", "session")


def plan_by(fold: Mapping[str, Any]) -> str:
    """The media column a fold's lists hold values of (``"speaker"`` for plans without ``by``)."""
    return str(fold.get("by") or "speaker")


def generic_plan(speakers: Sequence[str], *, k: int = 5, n_val: int | None = None,
                 seed: int = 0) -> list[dict[str, Any]]:
    """k-fold over speakers with a validation group drawn from each fold's training speakers."""
    spk = sorted(set(speakers))
    if len(spk) < 3:
        raise ValueError(f"speaker-independent train/val/test needs at least 3 speakers, got {len(spk)}: {spk}")
    k = max(2, min(int(k), len(spk)))
    order = [spk[i] for i in np.random.default_rng(seed).permutation(len(spk))]
    groups = [order[i::k] for i in range(k)]
    plan = []
    for i in range(k):
        rest = [s for j in range(1, k) for s in groups[(i + j) % k]]
        nv = n_val if n_val is not None else max(1, int(math.ceil(len(spk) / k)))
        nv = max(1, min(nv, len(rest) - 1))
        plan.append({"fold": i, "train": sorted(rest[nv:]), "val": sorted(rest[:nv]), "test": sorted(groups[i])})
    return plan


def make_plan(speakers: Sequence[str], *, k: int | None = None, n_val: int | None = None,
              seed: int = 0) -> list[dict[str, Any]]:
    """RAVDESS plan when actors 1-24 exist (and ``k`` is None or 5), else :func:`generic_plan`."""
    if k in (None, 5) and n_val is None:
        plan = evaluation_plan("ravdess", pd.DataFrame({"speaker": list(speakers)}))
        if plan is not None:
            return plan
    return generic_plan(speakers, k=k if k is not None else 5, n_val=n_val, seed=seed)


def default_plan(media: pd.DataFrame, *, k: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The plan for these (labelled) media rows: their corpus's standard plan when they come from one
    corpus that has one and ``k`` is None, else :func:`make_plan` over their speakers."""
    corpora = set(media["corpus"].dropna()) if "corpus" in media else set()
    if k is None and len(corpora) == 1:
        plan = evaluation_plan(corpora.pop(), media)
        if plan is not None:
            return plan
    if "speaker" not in media or media["speaker"].isna().any():
        raise ValueError("speaker-independent folds need a speaker for every labelled item; some have none "
                         "(give a fold plan with another 'by' column, e.g. the official 'split')")
    return make_plan(sorted(set(media["speaker"])), k=k, seed=seed)


def check_plan(plan: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError unless every fold names a known ``by`` column and has non-empty, pairwise
    disjoint train/val/test lists."""
    for f in plan:
        by = plan_by(f)
        if by not in PLAN_COLUMNS:
            raise ValueError(f"fold {f.get('fold')}: by={by!r} is not a column folds can select items by "
                             f"({list(PLAN_COLUMNS)})")
        what = "speakers" if by == "speaker" else f"{by} values"
        parts = {p: set(f.get(p) or []) for p in ("train", "val", "test")}
        for p, s in parts.items():
            if not s:
                raise ValueError(f"fold {f.get('fold')}: empty {p} split")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = parts[a] & parts[b]
            if both:
                raise ValueError(f"fold {f.get('fold')}: {what} {sorted(both)} are in both {a} and {b}")


__all__ = ["PLAN_COLUMNS", "check_plan", "default_plan", "generic_plan", "make_plan", "plan_by"]
