"""Timeline math: bin edges, windows, frame intervals, and bringing frames onto bins.

Pure numpy, no catalog: what :mod:`emofuse.fusion.align` uses to put every clip on the
model's timeline.

* :func:`fixed_edges`: ``steps`` equal bins over a clip (TACFN); :func:`rate_edges`: bins of
  ``1/rate`` s (RCMA), cut into model windows by :func:`window_starts`.
* :func:`clip_windows`: time windows of a long file (scoring), the last one aligned to the end.
* :func:`frame_bounds`: the interval each frame covers — ``[t, t + hop)``, or a text
  segment's own ``[start, end)`` (untimed segments the whole clip).
* :func:`align_to_edges`: ``pool`` (overlap-weighted mean of the valid frames overlapping a
  bin) or ``interp`` (linear interpolation of valid frames at bin centres); a bin is valid
  when a valid frame overlaps it. :func:`pool_sums` is the same pooling in pieces, for items
  read block by block.

Example:
    >>> import numpy as np
    >>> t = np.arange(4) * 0.25                       # 4 frames at 4 Hz over 1 s
    >>> s, e = frame_bounds(t, hop=0.25, clip_end=1.0)
    >>> out, mask = align_to_edges(np.arange(4.0)[:, None], s, e, fixed_edges(1.0, 2))
    >>> out[:, 0].tolist(), mask.tolist()
    ([0.5, 2.5], [True, True])
"""
from __future__ import annotations

import math

import numpy as np

_EPS = 1e-9


def fixed_edges(duration: float, steps: int) -> np.ndarray:
    """Bin edges of ``steps`` equal bins over ``[0, duration)``.

    >>> fixed_edges(2.0, 4).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    return np.linspace(0.0, float(duration), int(steps) + 1)


def rate_edges(duration: float, rate: float) -> np.ndarray:
    """Bin edges at ``rate`` Hz covering ``[0, duration)`` (the last bin may pass the end).

    >>> rate_edges(0.25, 10.0).tolist()
    [0.0, 0.1, 0.2, 0.3]
    """
    n = max(1, int(math.ceil(float(duration) * rate - 1e-6)))
    return np.arange(n + 1, dtype=np.float64) / rate


def window_starts(n_steps: int, window: int, hop: int) -> list[int]:
    """Start steps of windows of ``window`` steps every ``hop`` steps covering ``n_steps``.

    The last window ends at the last step; a clip shorter than a window gets one window at 0.

    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(11, 4, 3)
    [0, 3, 6, 7]
    >>> window_starts(3, 4, 3)
    [0]
    """
    if n_steps <= window:
        return [0]
    starts = list(range(0, n_steps - window, hop))
    starts.append(n_steps - window)
    return starts


def clip_windows(duration: float, length: float, hop: float) -> np.ndarray:
    """(n, 2) start/end seconds of windows of ``length`` s every ``hop`` s over ``[0, duration]``.

    The last window ends at ``duration`` (it may overlap its neighbour by more than
    ``length - hop``); a clip no longer than ``length`` is one window ``[0, duration]``.

    >>> clip_windows(10.0, 4.0, 2.0).tolist()
    [[0.0, 4.0], [2.0, 6.0], [4.0, 8.0], [6.0, 10.0]]
    >>> clip_windows(3.0, 4.0, 2.0).tolist()
    [[0.0, 3.0]]
    """
    length, hop, duration = float(length), float(hop), max(float(duration), 0.0)
    if length <= 0 or hop <= 0:
        raise ValueError(f"window length and hop must be positive, got {length}, {hop}")
    if duration <= length + 1e-9:
        return np.array([[0.0, duration]])
    n = int(math.ceil((duration - length) / hop - 1e-9))
    starts = np.r_[np.arange(n, dtype=np.float64) * hop, duration - length]
    return np.stack([starts, starts + length], axis=1)

def frame_bounds(times: np.ndarray, *, hop: float, clip_end: float,
                 starts: np.ndarray | None = None, ends: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interval ``[s, e)`` each frame covers: ``[t, t + hop)``, or a segment's own start/end.

    Untimed segments (NaN start) cover the whole clip; a NaN end runs to the clip end.

    >>> s, e = frame_bounds(np.array([0.0, 0.1]), hop=0.1, clip_end=0.2)
    >>> s.tolist(), e.tolist()
    ([0.0, 0.1], [0.1, 0.2])
    >>> seg = np.array([0.5, np.nan])
    >>> s, e = frame_bounds(seg, hop=0.0, clip_end=3.0, starts=seg, ends=np.array([1.5, np.nan]))
    >>> s.tolist(), e.tolist()
    ([0.5, 0.0], [1.5, 3.0])
    """
    t = np.asarray(times, np.float64)
    if starts is not None:
        s = np.asarray(starts, np.float64)
        e = np.asarray(ends, np.float64) if ends is not None else np.full_like(s, np.nan)
        untimed = ~np.isfinite(s)
        s = np.where(untimed, 0.0, s)
        e = np.where(untimed | ~np.isfinite(e), max(clip_end, float(np.nanmax(s, initial=0.0))), e)
        return s, np.maximum(e, s)
    return t, t + hop


def _overlap_pairs(v: np.ndarray, fstart: np.ndarray, fend: np.ndarray, edges: np.ndarray,
                   valid: np.ndarray | None) -> tuple[np.ndarray, ...] | None:
    """Valid frames and their overlapping (frame, bin, overlap seconds) pairs; None when there are none."""
    n_bins = len(edges) - 1
    ok = np.ones(len(v), bool) if valid is None else np.asarray(valid, bool).copy()
    ok &= np.isfinite(v).all(axis=1) & (fend > fstart)
    if not ok.any() or n_bins <= 0:
        return None
    v, fs, fe = v[ok], np.asarray(fstart, np.float64)[ok], np.asarray(fend, np.float64)[ok]
    # (frame, bin) pairs that overlap: frame j spans bins first[j] .. last[j]
    first = np.clip(np.searchsorted(edges, fs, side="right") - 1, 0, n_bins - 1)
    last = np.clip(np.searchsorted(edges, fe, side="left") - 1, 0, n_bins - 1)
    counts = np.maximum(last - first + 1, 0)
    frame = np.repeat(np.arange(len(v)), counts)
    offs = np.repeat(np.cumsum(counts) - counts, counts)
    bins = first[frame] + (np.arange(len(frame)) - offs)
    w = np.minimum(fe[frame], edges[bins + 1]) - np.maximum(fs[frame], edges[bins])
    widths = np.diff(edges)
    keep = w > _EPS * np.maximum(widths[bins], 1.0)
    if not keep.any():  # valid frames, but none overlaps a bin (e.g. one starting at the clip end)
        return None
    return v, fs, fe, frame[keep], bins[keep], w[keep]


def pool_sums(values: np.ndarray, fstart: np.ndarray, fend: np.ndarray, edges: np.ndarray, *,
              valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Overlap-weighted sums (L, d) and weights (L,) of frames per bin, float64.

    The ``pool`` alignment of frames given in several pieces is ``sum(sums) / sum(weights)``
    over the pieces (bins with weight 0 are invalid): how long items are pooled block by block.

    >>> v, t = np.array([[0.0], [2.0], [4.0], [6.0]]), np.arange(4) * 0.5
    >>> edges = fixed_edges(2.0, 2)
    >>> s1, w1 = pool_sums(v[:2], t[:2], t[:2] + 0.5, edges)    # first piece
    >>> s2, w2 = pool_sums(v[2:], t[2:], t[2:] + 0.5, edges)    # second piece
    >>> ((s1 + s2)[:, 0] / (w1 + w2)).tolist()
    [1.0, 5.0]
    >>> align_to_edges(v, t, t + 0.5, edges)[0][:, 0].tolist()  # the same in one go
    [1.0, 5.0]
    """
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        v = v[:, None]
    n_bins = len(edges) - 1
    sums, wsum = np.zeros((max(n_bins, 0), v.shape[1]), np.float64), np.zeros(max(n_bins, 0), np.float64)
    pairs = _overlap_pairs(v, fstart, fend, edges, valid)
    if pairs is not None:
        v, _, _, frame, bins, w = pairs
        np.add.at(sums, bins, v[frame] * w[:, None])
        np.add.at(wsum, bins, w)
    return sums, wsum


def align_to_edges(values: np.ndarray, fstart: np.ndarray, fend: np.ndarray, edges: np.ndarray, *,
                   method: str = "pool", valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bring frames (values (T, d) on intervals [fstart, fend)) to bins given by ``edges`` (L+1).

    Returns (out (L, d) float32, mask (L,) bool). ``pool``: overlap-weighted mean of the
    valid frames overlapping each bin. ``interp``: linear interpolation of the valid frames
    (at their interval centres) at each bin centre, clamped at the ends. Either way a bin
    is valid when a valid frame overlaps it; invalid bins are zero.

    >>> v, t = np.array([[0.0], [10.0]]), np.array([0.0, 0.5])
    >>> align_to_edges(v, t, t + 0.5, fixed_edges(1.0, 4), method="interp")[0][:, 0].tolist()
    [0.0, 2.5, 7.5, 10.0]
    >>> out, mask = align_to_edges(v + 4, t, t + 0.5, fixed_edges(1.0, 4), valid=np.array([True, False]))
    >>> out[:, 0].tolist(), mask.tolist()                        # the second frame is invalid
    ([4.0, 4.0, 0.0, 0.0], [True, True, False, False])
    """
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        v = v[:, None]
    n_bins = len(edges) - 1
    out = np.zeros((n_bins, v.shape[1]), np.float64)
    pairs = _overlap_pairs(v, fstart, fend, edges, valid)
    if pairs is None:
        return out.astype(np.float32), np.zeros(n_bins, bool)
    v, fs, fe, frame, bins, w = pairs
    mask = np.zeros(n_bins, bool)
    mask[bins] = True
    if method == "pool":
        order = np.argsort(bins, kind="stable")
        frame, bins, w = frame[order], bins[order], w[order]
        heads = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
        sums = np.add.reduceat(v[frame] * w[:, None], heads, axis=0)
        wsum = np.add.reduceat(w, heads)
        out[bins[heads]] = sums / wsum[:, None]
    elif method == "interp":
        centres = 0.5 * (fs + fe)
        order = np.argsort(centres, kind="stable")
        centres, v = centres[order], v[order]
        q = 0.5 * (edges[:-1] + edges[1:])
        hi = np.clip(np.searchsorted(centres, q, side="right"), 1, max(len(centres) - 1, 1))
        lo = hi - 1
        if len(centres) == 1:
            est = np.repeat(v[:1], n_bins, axis=0)
        else:
            span = centres[hi] - centres[lo]
            a = np.clip((q - centres[lo]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
            est = v[lo] * (1.0 - a)[:, None] + v[hi] * a[:, None]
        out[mask] = est[mask]
    else:
        raise ValueError(f"unknown method {method!r}")
    return out.astype(np.float32), mask


def step_counts(seqs: dict[str, dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct positive finite time steps of the items' ``times`` and how often each occurs:
    what :func:`median_hop` needs, small enough to gather chunk by chunk over a large corpus.

    >>> v, c = step_counts({"a": {"times": np.r_[0.0, 0.5, 1.0, 3.0]}, "b": {"times": np.r_[0.0, 0.5]}})
    >>> v.tolist(), c.tolist()
    ([0.5, 2.0], [3, 1])
    """
    steps = [np.diff(s["times"]) for s in seqs.values() if len(s["times"]) > 1]
    steps = [d[np.isfinite(d) & (d > 0)] for d in steps]
    allsteps = np.concatenate(steps) if steps else np.array([])
    return np.unique(allsteps, return_counts=True)


def median_of_counts(values: np.ndarray, counts: np.ndarray) -> float:
    """The median of a sample given as values and their counts (exactly ``np.median`` of the
    sample, the mean of the two middle values when it has an even size); 0.0 when empty.

    >>> median_of_counts(np.r_[0.04, 0.01], np.r_[1, 2]), median_of_counts(np.r_[0.01, 0.04], np.r_[1, 1])
    (0.01, 0.025)
    """
    n = int(np.sum(counts))
    if n == 0:
        return 0.0
    order = np.argsort(values, kind="stable")
    v, ends = np.asarray(values, np.float64)[order], np.cumsum(np.asarray(counts)[order])
    at = lambda k: v[np.searchsorted(ends, k, side="right")]  # noqa: E731 - the k-th (0-based) value
    return float(at(n // 2)) if n % 2 else float(np.mean([at(n // 2 - 1), at(n // 2)]))


def median_hop(seqs: dict[str, dict[str, np.ndarray]]) -> float:
    """Median time step over all items of a feature set (its frame period).

    >>> median_hop({"a": {"times": np.arange(5) * 0.01}, "b": {"times": np.array([0.0])}})
    0.01
    """
    return median_of_counts(*step_counts(seqs))
