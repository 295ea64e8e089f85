"""Speaker-independent fold plans (plain data, saved with each run).

A plan is a list of dicts ``{"fold": k, "train": [...], "val": [...], "test": [...]}`` of
speaker names; no speaker is in two of train/val/test of a fold.

* RAVDESS (speakers ``Actor_01`` .. ``Actor_24`` all present): the official protocol's five
  test folds of four actors (1-4, 5-8, ..., 17-20; actors 21-24 always train). The
  official code has no validation split; ours takes the next fold's four actors
  (fold k validates on the test actors of fold k+1 mod 5), so training keeps 16 actors.
* Otherwise: speakers sorted and shuffled with ``seed``, dealt into ``k`` groups
  (``k <= number of speakers``); fold i tests on group i and validates on ``n_val``
  speakers taken from the training speakers (starting at group i+1).

Example:
    >>> plan = make_plan([f"S{i}" for i in range(6)], k=3, seed=0)
    >>> len(plan), sorted(plan[0]) == ["fold", "test", "train", "val"]
    (3, True)
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

RAVDESS_ACTORS = [f"Actor_{i:02d}" for i in range(1, 25)]
_ACTOR = re.compile(r"^Actor_(\d{2})$")


def ravdess_plan(speakers: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The official 5-fold RAVDESS actor split with a validation group per fold (see module)."""
    groups = [[f"Actor_{a:02d}" for a in range(4 * g + 1, 4 * g + 5)] for g in range(5)]
    always = [f"Actor_{a:02d}" for a in range(21, 25)]
    plan = []
    for k in range(5):
        val = groups[(k + 1) % 5]
        train = [s for g, grp in enumerate(groups) if g not in (k, (k + 1) % 5) for s in grp] + always
        plan.append({"fold": k, "train": sorted(train), "val": list(val), "test": list(groups[k])})
    return plan


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


def is_ravdess(speakers: Iterable[str]) -> bool:
    """True when all 24 RAVDESS actors are present."""
    return set(RAVDESS_ACTORS) <= set(speakers)


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


__all__ = ["RAVDESS_ACTORS", "check_plan", "generic_plan", "is_ravdess", "make_plan", "ravdess_plan"]
