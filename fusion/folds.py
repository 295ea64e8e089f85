"""Speaker-independent fold plans (plain data, saved with each run).

A plan is a list of dicts ``{"fold": k, "train": [...], "val": [...], "test": [...]}`` of
speaker names; no speaker is in two of train/val/test of a fold.

* RAVDESS (speakers ``Actor_01`` .. ``Actor_24`` all present): the corpus's own plan,
  :func:`emofuse.catalog.corpora.ravdess_plan` (five official test folds of four actors,
  a validation group per fold).
* Otherwise: speakers sorted and shuffled with ``seed``, dealt into ``k`` groups
  (``k <= number of speakers``); fold i tests on group i and validates on ``n_val``
  speakers taken from the training speakers (starting at group i+1).

Example:
    >>> plan = make_plan([f"S{i}" for i in range(6)], k=3, seed=0)
    >>> len(plan), sorted(plan[0]) == ["fold", "test", "train", "val"]
    (3, True)
    >>> check_plan(plan)
    >>> check_plan([{"fold": 0, "train": ["A"], "val": ["A"], "test": ["B"]}])
    Traceback (most recent call last):
    ...
    ValueError: fold 0: speakers ['A'] are in both train and val
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from emofuse.catalog.corpora import RAVDESS_ACTORS, is_ravdess, ravdess_plan


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
    if is_ravdess(speakers) and k in (None, 5) and n_val is None:
        extra = sorted(set(speakers) - set(RAVDESS_ACTORS))
        plan = ravdess_plan()
        for f in plan:  # speakers beyond the 24 actors (unusual) always train
            f["train"] = sorted(f["train"] + extra)
        return plan
    return generic_plan(speakers, k=k if k is not None else 5, n_val=n_val, seed=seed)


def check_plan(plan: Sequence[dict[str, Any]]) -> None:
    """Raise ValueError unless every fold has non-empty, pairwise disjoint train/val/test speakers."""
    for f in plan:
        parts = {p: set(f.get(p) or []) for p in ("train", "val", "test")}
        for p, s in parts.items():
            if not s:
                raise ValueError(f"fold {f.get('fold')}: empty {p} split")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = parts[a] & parts[b]
            if both:
                raise ValueError(f"fold {f.get('fold')}: speakers {sorted(both)} are in both {a} and {b}")


__all__ = ["check_plan", "generic_plan", "make_plan"]
