"""One item's frames on bin edges: what :func:`emofuse.fusion.align.align_items` does per item and modality.

:func:`align_whole` puts an item's frames (in memory) on the edges of its timeline;
:func:`align_lazy` does it block by block for a long item read lazily; :func:`window_frames` and
:func:`align_window` take the frames overlapping a group of windows and align each window. A frame
covers ``[t, t + hop)`` (:func:`frame_intervals`), a text segment ``[start, end)``; per-clip
vectors are repeated over the bins. Missing frames give zeros and a False mask.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from emofuse.catalog.sequences import LazySequence
from emofuse.fusion.data_config import ModalitySpec
from emofuse.fusion.features import Frames
from emofuse.fusion.timeline import _EPS, align_to_edges, frame_bounds, pool_sums


def align_whole(seq: dict[str, np.ndarray] | None, spec: ModalitySpec, edges: np.ndarray, dim: int,
               hop: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    n_bins = len(edges) - 1
    if seq is None:
        return np.zeros((n_bins, dim), np.float32), np.zeros(n_bins, bool)
    values = seq["values"]
    if spec.source == "clip":
        return np.repeat(values.astype(np.float32), n_bins, axis=0), np.ones(n_bins, bool)
    valid = seq["mask"].astype(bool) if "mask" in seq else None
    fs, fe = frame_intervals(seq, hop, duration, float(edges[-1]))
    return align_to_edges(values, fs, fe, edges, method=spec.method, valid=valid)


def frame_intervals(seq: dict[str, np.ndarray], hop: float, duration: float, edges_end: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval each frame of ``seq`` covers (see :func:`frame_bounds`), relative to the whole clip."""
    if "start" in seq:
        return frame_bounds(seq["times"], hop=hop, clip_end=max(duration, edges_end),
                            starts=seq["start"], ends=seq.get("end"))
    return frame_bounds(seq["times"], hop=hop if hop > 0 else max(duration, _EPS), clip_end=duration)


def align_lazy(seq: LazySequence, spec: ModalitySpec, edges: np.ndarray, dim: int, hop: float,
                duration: float) -> tuple[np.ndarray, np.ndarray]:
    """A long item on one timeline: ``pool`` block by block (bounded memory); ``interp`` reads it whole."""
    if spec.method != "pool":
        return align_whole(seq.read(), spec, edges, dim, hop, duration)
    n_bins = len(edges) - 1
    sums, wsum = np.zeros((n_bins, dim), np.float64), np.zeros(n_bins, np.float64)
    for block in seq.blocks():
        fs, fe = frame_intervals(block, hop, duration, float(edges[-1]))
        valid = block["mask"].astype(bool) if "mask" in block else None
        s_, w_ = pool_sums(block["values"], fs, fe, edges, valid=valid)
        sums += s_
        wsum += w_
    mask = wsum > 0
    out = np.zeros((n_bins, dim), np.float64)
    out[mask] = sums[mask] / wsum[mask, None]
    return out.astype(np.float32), mask


def window_frames(seq: Frames | None, spec: ModalitySpec, hop: float, duration: float, t0: float,
            t1: float) -> dict[str, Any] | None:
    """Frames of ``seq`` that overlap ``[t0, t1)`` with their intervals (``fs``/``fe``), for window alignment."""
    if seq is None:
        return None
    if spec.source == "clip":
        return {"clip": seq["values"]}
    if isinstance(seq, LazySequence):
        pad = max(2.0 * hop, 1e-3) if hop > 0 else np.inf
        seq = seq.read(t0 - pad, t1)
        if seq is None:
            return {"values": np.zeros((0, 1), np.float32), "fs": np.zeros(0), "fe": np.zeros(0), "valid": None}
    fs, fe = frame_intervals(seq, hop, duration, duration)
    sel = (fe > t0) & (fs < t1)
    valid = seq["mask"].astype(bool)[sel] if "mask" in seq else None
    return {"values": seq["values"][sel], "fs": fs[sel], "fe": fe[sel], "valid": valid}


def align_window(frames: dict[str, Any] | None, spec: ModalitySpec, edges: np.ndarray,
                  dim: int) -> tuple[np.ndarray, np.ndarray]:
    """One window aligned like a clip: only the frames that overlap it (per-clip vectors repeated)."""
    n_bins = len(edges) - 1
    if frames is None:
        return np.zeros((n_bins, dim), np.float32), np.zeros(n_bins, bool)
    if "clip" in frames:
        return np.repeat(frames["clip"].astype(np.float32), n_bins, axis=0), np.ones(n_bins, bool)
    fs, fe = frames["fs"], frames["fe"]
    sel = (fe > edges[0]) & (fs < edges[-1])
    if not sel.any():
        return np.zeros((n_bins, dim), np.float32), np.zeros(n_bins, bool)
    valid = frames["valid"][sel] if frames["valid"] is not None else None
    return align_to_edges(frames["values"][sel], fs[sel], fe[sel], edges, method=spec.method, valid=valid)
