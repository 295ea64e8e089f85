"""Evaluation plans as typed records: which items train, validate and test each fold.

A :class:`Fold` lists values of one media column (``by``, one of :data:`PLAN_COLUMNS`:
``"speaker"`` for speaker-independent folds, ``"split"`` for official train/dev/test sets
such as MELD's, ``"session"`` for IEMOCAP's leave-one-session-out) for its train, val and
test parts; an :class:`EvaluationPlan` is the folds in order. A corpus recipe returns one
(:meth:`~emofuse.catalog.corpora.recipe.CorpusRecipe.evaluation_plan`), training saves it in
the run's ``config.json`` as a list of ``{"fold", "by", "train", "val", "test"}`` dicts
(:meth:`EvaluationPlan.to_dicts`), and :meth:`EvaluationPlan.from_dicts` reads that back,
also from runs saved before ``by`` existed (a fold without it is a speaker fold).

Example:
    >>> plan = EvaluationPlan.from_dicts([{"fold": 0, "train": ["A", "B"], "val": ["C"], "test": ["D"]}])
    >>> plan[0]
    Fold(index=0, by='speaker', train=('A', 'B'), val=('C',), test=('D',))
    >>> plan.to_dicts()
    [{'fold': 0, 'by': 'speaker', 'train': ['A', 'B'], 'val': ['C'], 'test': ['D']}]
    >>> EvaluationPlan.from_dicts(plan.to_dicts()) == plan, plan.indices
    (True, [0])
    >>> Fold(1, train=("A",), val=("A",), test=("B",)).check()
    Traceback (most recent call last):
    ...
    ValueError: fold 1: speakers ['A'] are in both train and val
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

#: Media columns a fold can select items by.
PLAN_COLUMNS = ("speaker", "split", "session")
#: The parts of a fold, in order.
PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Fold:
    """One fold: the values of the media column ``by`` whose items train, validate and test it."""

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    by: str = "speaker"

    def __post_init__(self) -> None:
        for part in PARTS:  # lists and numpy strings in, plain tuples of str kept
            object.__setattr__(self, part, tuple(str(v) for v in getattr(self, part)))
        object.__setattr__(self, "index", int(self.index))

    def __repr__(self) -> str:
        return f"Fold(index={self.index}, by={self.by!r}, train={self.train}, val={self.val}, test={self.test})"

    def part(self, name: str) -> list[str]:
        """The values of one part (``"train"``, ``"val"`` or ``"test"``) as a list."""
        if name not in PARTS:
            raise KeyError(f"a fold has parts {list(PARTS)}, not {name!r}")
        return list(getattr(self, name))

    def check(self) -> None:
        """Raise ValueError unless ``by`` is a plan column and the parts are non-empty and pairwise disjoint."""
        if self.by not in PLAN_COLUMNS:
            raise ValueError(f"fold {self.index}: by={self.by!r} is not a column folds can select items by "
                             f"({list(PLAN_COLUMNS)})")
        what = "speakers" if self.by == "speaker" else f"{self.by} values"
        for p in PARTS:
            if not getattr(self, p):
                raise ValueError(f"fold {self.index}: empty {p} split")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = set(getattr(self, a)) & set(getattr(self, b))
            if both:
                raise ValueError(f"fold {self.index}: {what} {sorted(both)} are in both {a} and {b}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form saved with a run."""
        return {"fold": self.index, "by": self.by, **{p: self.part(p) for p in PARTS}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fold:
        """A fold from its JSON form (``by`` absent: a speaker fold, as saved before ``by`` existed)."""
        return cls(int(d["fold"]), *(tuple(d.get(p) or ()) for p in PARTS), by=str(d.get("by") or "speaker"))


@dataclass(frozen=True)
class EvaluationPlan:
    """The folds of an evaluation, in order."""

    folds: tuple[Fold, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "folds", tuple(self.folds))

    def __iter__(self) -> Iterator[Fold]:
        return iter(self.folds)

    def __len__(self) -> int:
        return len(self.folds)

    def __getitem__(self, k: int) -> Fold:
        return self.folds[k]

    @property
    def indices(self) -> list[int]:
        """The folds' indices in order."""
        return [f.index for f in self.folds]

    def fold(self, index: int) -> Fold:
        """The fold with this index (KeyError if none)."""
        for f in self.folds:
            if f.index == index:
                return f
        raise KeyError(f"the plan has folds {self.indices}, not {index}")

    def check(self) -> None:
        """Raise ValueError unless the plan has folds, each valid (:meth:`Fold.check`), with distinct indices."""
        if not self.folds:
            raise ValueError("an evaluation plan needs at least one fold")
        if len(set(self.indices)) != len(self.folds):
            raise ValueError(f"fold indices {self.indices} repeat")
        for f in self.folds:
            f.check()

    def to_dicts(self) -> list[dict[str, Any]]:
        """The JSON form saved with a run (a list of fold dicts)."""
        return [f.to_dict() for f in self.folds]

    @classmethod
    def from_dicts(cls, folds: Iterable[Mapping[str, Any] | Fold]) -> EvaluationPlan:
        """A plan from saved fold dicts (or folds)."""
        return cls(tuple(f if isinstance(f, Fold) else Fold.from_dict(f) for f in folds))

    @classmethod
    def of(cls, plan: EvaluationPlan | Iterable[Mapping[str, Any] | Fold]) -> EvaluationPlan:
        """``plan`` as an :class:`EvaluationPlan` (a plan, folds or saved fold dicts)."""
        return plan if isinstance(plan, EvaluationPlan) else cls.from_dicts(plan)


__all__ = ["PARTS", "PLAN_COLUMNS", "EvaluationPlan", "Fold"]
