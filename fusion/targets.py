"""Per-frame labels (Aff-Wild2 valence/arousal …) as targets per model step, aligned like the features.

The catalog's labels table holds one row per (item, video frame) with the frame's real
presentation time (:meth:`~emofuse.catalog.store.Catalog.frame_labels`). A label frame covers
``[t, t + hop)`` (``hop``: the item's median frame period) and is brought onto the model's
step edges by the same :func:`~emofuse.fusion.timeline.align_to_edges` pooling as a feature
frame: a step's target is the overlap-weighted mean of the annotated frames overlapping it.
A step is masked when no annotated frame overlaps it (unannotated frames, NaN in the table,
count as absent) and when no modality has a valid frame there (a label beyond the features'
span teaches nothing), see :func:`emofuse.fusion.align.align_items`.

* :func:`read_frame_targets`: one item's label frames per item id (annotated items only);
  :func:`label_rate`: the labels' frame rate (the default step rate of per-frame training).
* :func:`align_targets`: one item's frames on given step edges.
* :func:`stitch_steps`: windows back onto their item's step timeline (the mean where windows
  overlap), for per-frame metrics and per-step predictions; :func:`step_bounds`: the seconds
  each step covers.

Example (labels at 4 Hz, the second frame unannotated, on steps of 0.5 s):
    >>> import numpy as np
    >>> from emofuse.fusion.timeline import rate_edges
    >>> frames = {"times": np.arange(4) * 0.25, "values": np.array([[0.2], [np.nan], [0.6], [0.8]]), "hop": 0.25}
    >>> y, mask = align_targets(frames, rate_edges(1.5, 2.0))
    >>> [round(float(v), 3) for v in y[:, 0]], mask.tolist()   # the third step has no label frame
    ([0.2, 0.7, 0.0], [True, True, False])
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from emofuse.fusion.timeline import align_to_edges, frame_bounds, median_hop

if TYPE_CHECKING:
    from emofuse.catalog.store import Catalog
    from emofuse.fusion.data_config import AlignConfig

#: RCMA's per-frame training windows in the paper: 300 steps (frames) every 200.
FRAME_WINDOW_STEPS, FRAME_WINDOW_HOP = 300, 200

#: One item's label frames: ``times`` (T,), ``values`` (T, K) float64 with NaN = unannotated, ``hop`` (s).
TargetFrames = dict[str, np.ndarray | float]


def read_frame_targets(catalog: Catalog, item_ids: Iterable[str] | None,
                       names: Sequence[str] = ("valence", "arousal")) -> dict[str, TargetFrames]:
    """item_id -> its label frames (columns ``names``), for items with at least one annotated frame.

    A frame counts as annotated when every target in ``names`` is finite. An item's ``hop`` is
    its median frame period (items with one frame get the median over all items).
    """
    df = catalog.frame_labels(item_ids)
    missing = [n for n in names if n not in df]
    if missing:
        raise ValueError(f"the labels table of {catalog.root} has no column {missing[0]!r}; it has {list(df.columns)}")
    out: dict[str, TargetFrames] = {}
    if df.empty:
        return out
    for item, g in df.groupby("item_id", sort=False):
        values = g[list(names)].to_numpy(np.float64)
        if not np.isfinite(values).all(axis=1).any():
            continue
        times = g["time"].to_numpy(np.float64)
        out[str(item)] = {"times": times, "values": values,
                          "hop": median_hop({"one": {"times": times}})}
    fallback = median_hop({i: {"times": f["times"]} for i, f in out.items()}) or 1.0
    for f in out.values():
        if not f["hop"]:
            f["hop"] = fallback
    return out


def label_rate(targets: dict[str, TargetFrames]) -> float | None:
    """Frames per second of the labels (1 / the median frame period over items), None without labels.

    >>> label_rate({"a": {"times": np.arange(5) / 30.0}, "b": {"times": np.arange(3) / 30.0}})
    30.0
    """
    hop = median_hop({i: {"times": np.asarray(f["times"])} for i, f in targets.items()})
    return round(1.0 / hop, 6) if hop > 0 else None


def align_targets(frames: TargetFrames | None, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One item's label frames on the steps given by ``edges`` (L+1): (targets (L, K) float32, mask (L,)).

    The :func:`~emofuse.fusion.timeline.align_to_edges` ``pool`` of the annotated frames, each
    covering ``[t, t + hop)``; steps without an annotated frame are masked (and zero).
    """
    n = len(edges) - 1
    if frames is None:
        return np.zeros((n, 0), np.float32), np.zeros(n, bool)
    values = np.asarray(frames["values"], np.float64)
    fs, fe = frame_bounds(np.asarray(frames["times"], np.float64), hop=float(frames["hop"]), clip_end=float(edges[-1]))
    return align_to_edges(values, fs, fe, edges, method="pool")


def stitch_steps(item_of_row: np.ndarray, row_step: np.ndarray, values: np.ndarray,
                 mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (windows of ``L`` steps starting at ``row_step`` of their item) back on each item's steps.

    values (R, L, K), mask (R, L) -> (item (P,), step (P,), values (P, K) float64): one entry per
    (item, step) valid in some row, the mean over the rows that hold it; sorted by item, then step.

    >>> v = np.array([[[1.0], [2.0], [3.0]], [[5.0], [7.0], [9.0]]])   # two windows of item 0 ...
    >>> item, step, mean = stitch_steps(np.array([0, 0]), np.array([0, 1]), v, np.ones((2, 3), bool))
    >>> step.tolist(), mean[:, 0].tolist()                             # ... overlapping on steps 1 and 2
    ([0, 1, 2, 3], [1.0, 3.5, 5.0, 9.0])
    """
    r, j = np.nonzero(np.asarray(mask, bool))
    item = np.asarray(item_of_row, np.int64)[r]
    step = np.asarray(row_step, np.int64)[r] + j
    v = np.asarray(values, np.float64)[r, j]
    if not len(r):
        return item, step, v.reshape(0, *np.shape(values)[2:])
    span = int(step.max()) + 1
    keys, inverse = np.unique(item * span + step, return_inverse=True)
    sums = np.zeros((len(keys),) + v.shape[1:], np.float64)
    np.add.at(sums, inverse, v)
    counts = np.bincount(inverse, minlength=len(keys)).reshape((-1,) + (1,) * (v.ndim - 1))
    return keys // span, keys % span, sums / counts


def step_bounds(align: AlignConfig, seg_start: np.ndarray, seg_end: np.ndarray,
                step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds ``[start, end)`` of step ``step`` of segments ``[seg_start, seg_end)`` on ``align``'s timeline.

    ``window`` timelines: steps of ``1 / rate`` s (the last one ends at the segment's end);
    ``fixed``: ``steps`` equal steps over the segment.

    >>> from emofuse.fusion.data_config import AlignConfig
    >>> s, e = step_bounds(AlignConfig(mode="window", rate=10.0), np.zeros(3), np.full(3, 0.25), np.arange(3))
    >>> s.tolist(), e.tolist()
    ([0.0, 0.1, 0.2], [0.1, 0.2, 0.25])
    """
    s0, s1 = np.asarray(seg_start, np.float64), np.asarray(seg_end, np.float64)
    k = np.asarray(step, np.float64)
    if align.mode == "window":
        start, end = s0 + k / align.rate, s0 + (k + 1) / align.rate
    else:
        width = (s1 - s0) / align.steps
        start, end = s0 + k * width, s0 + (k + 1) * width
    return start, np.minimum(end, s1)


__all__ = ["FRAME_WINDOW_HOP", "FRAME_WINDOW_STEPS", "TargetFrames", "align_targets", "label_rate", "read_frame_targets", "step_bounds", "stitch_steps"]
