"""Evaluation metrics on numpy arrays: categorical, dimensional, and fold summaries.

Categorical: accuracy, unweighted average recall (UAR: mean per-class recall over the
classes present in ``y_true``), macro F1 (mean F1 over the classes present in ``y_true``
or ``y_pred``), confusion matrix (rows true, columns predicted). Dimensional: CCC and
RMSE per target over all valid frames. Per-frame labels (:func:`frame_regression_metrics`):
the ABAW convention, CCC over all valid frames of the evaluation set concatenated, plus the
mean over videos of each video's CCC. ``summarise_folds`` gives mean and sample std
(ddof=1; 0 for one fold) over folds.

Example:
    >>> from emofuse.fusion.metrics import accuracy, unweighted_average_recall
    >>> accuracy([0, 1, 1, 1], [0, 1, 0, 0])
    0.5
    >>> unweighted_average_recall([0, 1, 1, 1], [0, 1, 0, 0])
    0.6666666666666666
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def _labels(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true).astype(int).ravel(), np.asarray(y_pred).astype(int).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred {p.size}")
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of correct predictions."""
    t, p = _labels(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else float("nan")


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    t, p = _labels(y_true, y_pred)
    k = n_classes if n_classes is not None else int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def unweighted_average_recall(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean recall over the classes that occur in ``y_true`` (balanced accuracy)."""
    t, p = _labels(y_true, y_pred)
    classes = np.unique(t)
    return float(np.mean([np.mean(p[t == c] == c) for c in classes])) if classes.size else float("nan")


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean F1 over the classes that occur in ``y_true`` or ``y_pred`` (F1 = 0 when tp = 0)."""
    t, p = _labels(y_true, y_pred)
    scores = []
    for c in np.union1d(t, p):
        tp = np.sum((t == c) & (p == c))
        denom = np.sum(t == c) + np.sum(p == c)
        scores.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(scores)) if scores else float("nan")


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None) -> dict[str, Any]:
    """Accuracy, UAR, macro F1 and the confusion matrix in one dict."""
    return {
        "accuracy": accuracy(y_true, y_pred),
        "uar": unweighted_average_recall(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred),
        "confusion_matrix": confusion_matrix(y_true, y_pred, n_classes),
    }


def ccc(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Concordance correlation coefficient of two 1-D series (population moments)."""
    t, p = np.asarray(y_true, dtype=np.float64).ravel(), np.asarray(y_pred, dtype=np.float64).ravel()
    if t.size < 2:
        return float("nan")
    cov = np.mean((t - t.mean()) * (p - p.mean()))
    denom = t.var() + p.var() + (t.mean() - p.mean()) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    t, p = np.asarray(y_true, dtype=np.float64).ravel(), np.asarray(y_pred, dtype=np.float64).ravel()
    return float(np.sqrt(np.mean((t - p) ** 2))) if t.size else float("nan")


def regression_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    mask: ArrayLike | None = None,
    names: Sequence[str] = ("valence", "arousal"),
) -> dict[str, float]:
    """CCC and RMSE per target over valid frames, plus their means.

    y_true/y_pred: (..., K) with K == len(names); mask: the leading shape (..., ), True = valid.
    Keys: ``ccc_<name>``, ``rmse_<name>``, ``ccc_mean``, ``rmse_mean``.
    """
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.shape[-1] != len(names):
        raise ValueError(f"shapes {t.shape} / {p.shape} do not match {len(names)} targets")
    t, p = t.reshape(-1, len(names)), p.reshape(-1, len(names))
    if mask is not None:
        keep = np.asarray(mask, dtype=bool).ravel()
        t, p = t[keep], p[keep]
    out: dict[str, float] = {}
    for i, name in enumerate(names):
        out[f"ccc_{name}"] = ccc(t[:, i], p[:, i])
        out[f"rmse_{name}"] = rmse(t[:, i], p[:, i])
    out["ccc_mean"] = float(np.mean([out[f"ccc_{n}"] for n in names]))
    out["rmse_mean"] = float(np.mean([out[f"rmse_{n}"] for n in names]))
    return out


def frame_regression_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    video: ArrayLike,
    names: Sequence[str] = ("valence", "arousal"),
) -> dict[str, float]:
    """Per-frame scores: ABAW CCC/RMSE over all frames concatenated, and per-video mean CCC.

    y_true/y_pred (P, K) of the valid frames of every video, video (P,) their video. Keys: those of
    :func:`regression_metrics` (over all frames), ``ccc_video_<name>`` / ``ccc_video_mean`` (mean
    over videos with at least two frames of their CCC; a video whose CCC is undefined is left
    out) and ``n_frames``, ``n_videos``.

    >>> t = np.array([[0.0], [1.0], [0.0], [1.0]]); p = np.array([[0.0], [1.0], [1.0], [0.0]])
    >>> m = frame_regression_metrics(t, p, ["a", "a", "b", "b"], names=("valence",))
    >>> m["ccc_valence"], m["ccc_video_valence"]
    (0.0, 0.0)
    """
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    v = np.asarray(video).ravel()
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
    if len(v) != len(t):
        raise ValueError(f"{len(t)} frames but {len(v)} video labels")
    out = regression_metrics(t, p, names=names)
    per_video = {n: [] for n in names}
    for key in np.unique(v):
        sel = v == key
        if sel.sum() < 2:
            continue
        for i, n in enumerate(names):
            per_video[n].append(ccc(t[sel, i], p[sel, i]))
    for n in names:
        vals = np.asarray(per_video[n], np.float64)
        vals = vals[np.isfinite(vals)]
        out[f"ccc_video_{n}"] = float(vals.mean()) if vals.size else float("nan")
    out["ccc_video_mean"] = float(np.mean([out[f"ccc_video_{n}"] for n in names]))
    out["n_frames"] = int(len(t))
    out["n_videos"] = int(len(np.unique(v)))
    return out


def summarise_folds(folds: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample std (ddof=1) of every scalar metric over folds.

    Non-scalar entries (confusion matrices, ...) are skipped; a metric missing from some
    folds is summarised over the folds that have it. Returns name -> {mean, std, n}.
    """
    values: dict[str, list[float]] = {}
    for fold in folds:
        for name, value in fold.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                continue
            values.setdefault(name, []).append(float(value))
    out = {}
    for name, vals in values.items():
        arr = np.asarray(vals)
        out[name] = {
            "mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "n": int(arr.size),
        }
    return out


def format_summary(summary: Mapping[str, Mapping[str, float]], digits: int = 3) -> dict[str, str]:
    """``{"accuracy": "0.750 ± 0.021"}`` strings from :func:`summarise_folds` output."""
    return {k: f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}" for k, v in summary.items()}
