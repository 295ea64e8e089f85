"""Uncertainty of evaluation scores: bootstrap intervals and paired comparisons of two runs.

A score on a test set is one draw: :func:`bootstrap_interval` resamples the test items (or
whole groups of them, e.g. the frames of one video, with ``groups``) with replacement and
reports the percentile interval of the metric. :func:`paired_bootstrap` compares two runs
scored on the *same* items: it resamples items once per draw for both runs, so the interval
and the two-sided p-value are of the difference ``metric(b) - metric(a)``. :func:`mcnemar`
is the exact test for two classifiers' accuracy on the same items. Every function takes a
``seed``: the same inputs give the same interval.

Example:
    >>> from emofuse.fusion.metrics import accuracy
    >>> y = [0, 1, 1, 0, 1, 0, 1, 1, 0, 0] * 10
    >>> p = [0, 1, 0, 0, 1, 0, 1, 1, 1, 0] * 10
    >>> ci = bootstrap_interval(accuracy, y, p, n_boot=500, seed=0)
    >>> round(ci.estimate, 2), ci.low < 0.8 < ci.high
    (0.8, True)
    >>> mcnemar(y, p, y).p_value < 0.001      # b corrects 20 errors a makes, a corrects none of b's
    True
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: A metric of (y_true, y_pred) arrays, as those of :mod:`emofuse.fusion.metrics`.
Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A metric's estimate on all items and its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    level: float
    n: int
    n_boot: int


@dataclass(frozen=True)
class PairedComparison:
    """``metric(b) - metric(a)`` on the same items: estimate, interval and two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    level: float
    n: int
    n_boot: int


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test: ``a_only`` items only run a gets right, ``b_only`` only run b."""

    a_only: int
    b_only: int
    p_value: float


def _resamples(n: int, groups: ArrayLike | None, n_boot: int, seed: int) -> list[np.ndarray]:
    """Index arrays of ``n_boot`` resamples: items, or whole groups, drawn with replacement."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return list(rng.integers(0, n, size=(n_boot, n)))
    g = np.asarray(groups).ravel()
    if len(g) != n:
        raise ValueError(f"{n} items but {len(g)} group labels")
    members = [np.flatnonzero(g == key) for key in np.unique(g)]
    picks = rng.integers(0, len(members), size=(n_boot, len(members)))
    return [np.concatenate([members[i] for i in row]) for row in picks]


def _check(level: float, n_boot: int, n: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    if n == 0:
        raise ValueError("no items to score")


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_interval(metric: Metric, y_true: ArrayLike, y_pred: ArrayLike, *, groups: ArrayLike | None = None,
                       n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``metric(y_true, y_pred)`` over items (or ``groups``).

    ``y_true``/``y_pred`` are indexed along their first axis (labels, or (N, K) targets).
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} rows, y_pred {len(p)}")
    _check(level, n_boot, len(t))
    draws = np.array([metric(t[idx], p[idx]) for idx in _resamples(len(t), groups, n_boot, seed)], np.float64)
    low, high = _percentiles(draws, level)
    return Interval(float(metric(t, p)), low, high, level, len(t), n_boot)


def paired_bootstrap(metric: Metric, y_true: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike, *,
                     groups: ArrayLike | None = None, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0) -> PairedComparison:
    """Paired bootstrap of ``metric(b) - metric(a)``: both runs see the same resampled items.

    The p-value is two-sided, ``2 * min(P(d* <= 0), P(d* >= 0))`` over the draws, capped at 1
    (ties count on both sides, so it errs on the side of no difference).
    """
    t, a, b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    if not len(t) == len(a) == len(b):
        raise ValueError(f"y_true, pred_a and pred_b have {len(t)}, {len(a)} and {len(b)} rows")
    _check(level, n_boot, len(t))
    diffs = np.array([metric(t[i], b[i]) - metric(t[i], a[i]) for i in _resamples(len(t), groups, n_boot, seed)],
                     np.float64)
    diffs = diffs[np.isfinite(diffs)]
    low, high = _percentiles(diffs, level)
    p = min(1.0, 2.0 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))) if diffs.size else float("nan")
    return PairedComparison(float(metric(t, b) - metric(t, a)), low, high, float(p), level, len(t), n_boot)


def _binomial_tail(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (exact for any n)."""
    log_half_n = -n * math.log(2.0)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n for i in range(k + 1)]
    top = max(terms)
    return math.exp(top) * sum(math.exp(x - top) for x in terms)


def mcnemar(y_true: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike) -> McNemar:
    """Exact (binomial) two-sided McNemar test of two classifiers' accuracy on the same items."""
    t, a, b = (np.asarray(x).ravel() for x in (y_true, pred_a, pred_b))
    if not len(t) == len(a) == len(b):
        raise ValueError(f"y_true, pred_a and pred_b have {len(t)}, {len(a)} and {len(b)} labels")
    ra, rb = a == t, b == t
    a_only, b_only = int(np.sum(ra & ~rb)), int(np.sum(rb & ~ra))
    n = a_only + b_only
    p = 1.0 if n == 0 else min(1.0, 2.0 * _binomial_tail(min(a_only, b_only), n))
    return McNemar(a_only, b_only, p)


__all__ = ["Interval", "McNemar", "Metric", "PairedComparison", "bootstrap_interval", "mcnemar", "paired_bootstrap"]
