"""Cached catalog features -> aligned, normalised tensors for the fusion models.

Reads only what extraction stored in the catalog (sequences and per-clip rows of chosen
feature sets, labels from the media table); never media files. Loading happens once:
each feature set's sequences are read shard by shard (:meth:`Catalog.load_sequences`),
every clip is brought to a fixed timeline, and a split becomes a set of tensors on one
device, so a training batch is a single index gather.

Timelines (:class:`AlignConfig`):

* ``mode="fixed"`` (TACFN): ``steps`` equal bins over the clip ``[0, duration)``
  (per-modality overrides in ``steps_per_modality``); one row per clip.
* ``mode="window"`` (RCMA): bins of ``1/rate`` s over the whole clip, cut into windows of
  ``steps`` bins every ``hop`` bins; the last window is aligned to the clip end, a clip
  shorter than one window is zero-padded and the padding masked. One row per window.

Each sequence frame covers ``[t, t + hop)`` (``hop``: the set's frame period, median time
step by default); text segments cover ``[start, end)`` (untimed segments the whole clip).
``method="pool"`` averages the valid frames overlapping a bin, weighted by overlap;
``method="interp"`` linearly interpolates valid frames (at their centres) at the bin
centre. A bin is valid (mask True) when a valid frame overlaps it: face frames without a
face (the faces ``mask`` array), bins without a speech segment, and modalities whose
status is not ``ok`` are masked (``missing="mask"``) or the item dropped
(``missing="drop"``, logged with counts). Per-clip vectors (``source="clip"``: pooled
embeddings, eGeMAPS functionals) are repeated over the steps.

Time windows (``load_aligned(..., windows=(length_s, hop_s))``, for scoring long files):
each clip is cut into windows of ``length_s`` seconds every ``hop_s`` seconds
(:func:`clip_windows`: the last window is aligned to the clip end, a clip no longer than
one window is one window ``[0, duration]``) and every window is aligned exactly like a
clip of its own (only the frames overlapping it; per-clip vectors repeated). ``items``
then holds one row per (item, window) with its ``start``, ``end`` and ``window`` number;
rows, masks and :class:`FusionDataset` work on those rows unchanged. Without windows
``items`` is one row per item with ``start = 0`` and ``end = duration``.

Memory: an item with more than ``max_item_rows`` frames in a feature set (default
:data:`MAX_ITEM_ROWS`, 65 536: 11 minutes of eGeMAPS LLDs) is never read whole; its rows
are read block by block from the Zarr shard (shards are chunked by 65 536 rows), pooled
bin by bin for a per-clip timeline, or read one group of windows (at most
:data:`WINDOW_SPAN_S` seconds) at a time. ``time_range=(t0, t1)`` keeps only the windows
that start in it, so a caller (``emofuse.fusion.score``) can walk a long file in bounded pieces.
Shards with more than :data:`MAX_SHARD_ROWS` rows are read item by item, never whole.
The ``interp`` method reads a long item whole.

z-normalisation (:class:`NormStats`) uses valid steps of the training rows only and is
stored with a run.

Example:
    >>> from catalog.store import Catalog                                        # doctest: +SKIP
    >>> cfg = DataConfig(modalities=[ModalitySpec("face", "faces"), ModalitySpec("audio", "egemaps")])
    >>> data = load_aligned(Catalog("emofuse-data/catalog"), cfg)                # doctest: +SKIP
    >>> train = data.rows_of_items(data.items_of_speakers(["Actor_01", "Actor_02"]))  # doctest: +SKIP
    >>> ds = FusionDataset(data, train, NormStats.compute(data, train))         # doctest: +SKIP
    >>> batch = ds.batch(torch.arange(4))                                        # doctest: +SKIP
    >>> windows = load_aligned(Catalog("emofuse-data/catalog"), cfg, windows=(4.0, 2.0))  # doctest: +SKIP
    >>> windows.items[["item_id", "window", "start", "end"]].head()              # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from emofuse.catalog.ravdess import EMOTION_CLASSES
from emofuse.catalog.schemas import Status
from emofuse.catalog.store import Catalog

log = logging.getLogger(__name__)

#: Modality name the models see, per feature-set name.
DEFAULT_MODALITY_NAMES: dict[str, str] = {"egemaps": "audio", "faces": "face", "text": "text", "logmel": "logmel"}
#: Arrays read per feature-set name besides ``times``/``values`` (only those that exist are read).
_AUX_ARRAYS = ("mask", "start", "end")
_EPS = 1e-9
#: Items with more frames than this (in one feature set) are read block by block, never whole.
MAX_ITEM_ROWS = 65536
#: Shards with more rows than this are read item by item instead of whole.
MAX_SHARD_ROWS = 262144
#: The windows of a long item are aligned in groups that span at most this many seconds.
WINDOW_SPAN_S = 600.0


# --------------------------------------------------------------------------- configs
@dataclass
class ModalitySpec:
    """One model input: which feature set feeds modality ``name`` and how it is aligned.

    ``feature_set`` is a name (``faces``) or an exact key; runs store the key.
    ``source``: ``sequence`` (frame-level) or ``clip`` (per-clip vector repeated over steps).
    ``hop``: frame period in seconds (None: the median time step of the set).
    """

    name: str
    feature_set: str
    source: str = "sequence"
    method: str = "pool"
    hop: float | None = None

    def __post_init__(self) -> None:
        if self.source not in ("sequence", "clip"):
            raise ValueError(f"source must be 'sequence' or 'clip', got {self.source!r}")
        if self.method not in ("pool", "interp"):
            raise ValueError(f"method must be 'pool' or 'interp', got {self.method!r}")


@dataclass
class AlignConfig:
    """Common timeline: ``fixed`` L steps per clip, or ``window``s of ``steps`` bins at ``rate`` Hz every ``hop`` bins."""

    mode: str = "fixed"
    steps: int = 32
    hop: int = 16
    rate: float = 25.0
    steps_per_modality: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", "window"):
            raise ValueError(f"mode must be 'fixed' or 'window', got {self.mode!r}")
        if self.steps < 1 or self.hop < 1 or self.rate <= 0:
            raise ValueError(f"steps, hop and rate must be positive: {self}")
        if self.mode == "window" and self.steps_per_modality:
            raise ValueError("steps_per_modality applies to mode='fixed' only")

    def steps_for(self, modality: str) -> int:
        return int(self.steps_per_modality.get(modality, self.steps))


@dataclass
class DataConfig:
    """What to load: modalities, timeline, what to do with items lacking a modality, labels.

    ``missing``: ``mask`` keeps an item with the absent modality fully masked, ``drop``
    removes it (items with no modality at all are always dropped). ``classes``: label order
    (None: RAVDESS order for RAVDESS emotions present, then others sorted).
    """

    modalities: list[ModalitySpec]
    align: AlignConfig = field(default_factory=AlignConfig)
    missing: str = "mask"
    label: str = "emotion"
    classes: list[str] | None = None
    dimensional: tuple[str, ...] = ("valence", "arousal")

    def __post_init__(self) -> None:
        self.modalities = [m if isinstance(m, ModalitySpec) else ModalitySpec(**m) for m in self.modalities]
        if isinstance(self.align, dict):
            self.align = AlignConfig(**self.align)
        self.dimensional = tuple(self.dimensional)
        if self.missing not in ("mask", "drop"):
            raise ValueError(f"missing must be 'mask' or 'drop', got {self.missing!r}")
        names = [m.name for m in self.modalities]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"modality names must be distinct and non-empty: {names}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataConfig":
        return cls(**d)

    def resolved(self, catalog: Catalog) -> "DataConfig":
        """A copy whose feature sets are exact keys of ``catalog`` (names resolved)."""
        mods = [dataclasses.replace(m, feature_set=catalog.find_feature_set(m.feature_set)) for m in self.modalities]
        return dataclasses.replace(self, modalities=mods)


# --------------------------------------------------------------------------- alignment
def fixed_edges(duration: float, steps: int) -> np.ndarray:
    """Bin edges of ``steps`` equal bins over ``[0, duration)``."""
    return np.linspace(0.0, float(duration), int(steps) + 1)


def rate_edges(duration: float, rate: float) -> np.ndarray:
    """Bin edges at ``rate`` Hz covering ``[0, duration)`` (the last bin may pass the end)."""
    n = max(1, int(math.ceil(float(duration) * rate - 1e-6)))
    return np.arange(n + 1, dtype=np.float64) / rate


def window_starts(n_steps: int, window: int, hop: int) -> list[int]:
    """Start steps of windows of ``window`` steps every ``hop`` steps covering ``n_steps``.

    The last window ends at the last step; a clip shorter than a window gets one window at 0.
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


def _window_arg(windows: tuple[float, float] | Sequence[float] | None) -> tuple[float, float] | None:
    if windows is None:
        return None
    length, hop = (float(v) for v in windows)
    if not (length > 0 and hop > 0):
        raise ValueError(f"windows=(length_s, hop_s) must be positive, got {windows!r}")
    return length, hop


def frame_bounds(times: np.ndarray, *, hop: float, clip_end: float,
                 starts: np.ndarray | None = None, ends: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interval ``[s, e)`` each frame covers: ``[t, t + hop)``, or a segment's own start/end.

    Untimed segments (NaN start) cover the whole clip; a NaN end runs to the clip end.
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
    return v, fs, fe, frame[keep], bins[keep], w[keep]


def pool_sums(values: np.ndarray, fstart: np.ndarray, fend: np.ndarray, edges: np.ndarray, *,
              valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Overlap-weighted sums (L, d) and weights (L,) of frames per bin, float64.

    The ``pool`` alignment of frames given in several pieces is ``sum(sums) / sum(weights)``
    over the pieces (bins with weight 0 are invalid): how long items are pooled block by block.
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


def median_hop(seqs: dict[str, dict[str, np.ndarray]]) -> float:
    """Median time step over all items of a feature set (its frame period)."""
    steps = [np.diff(s["times"]) for s in seqs.values() if len(s["times"]) > 1]
    steps = [d[np.isfinite(d) & (d > 0)] for d in steps]
    allsteps = np.concatenate(steps) if steps else np.array([])
    return float(np.median(allsteps)) if allsteps.size else 0.0


# --------------------------------------------------------------------------- loading
@dataclass
class AlignedData:
    """Every selected item on the common timeline, in memory (numpy, float32).

    ``items``: one row per item (item_id, speaker, duration, label index or -1, dimensional
    targets, ``has_<modality>``, ``start``/``end`` = 0/duration), or with ``windows`` one row
    per (item, window) (plus ``window``, the window's number in its clip, and its bounds). Rows (one per clip, or per window) point to items by
    ``row_item``; ``x[m]`` (rows, L_m, d_m), ``mask[m]`` (rows, L_m).
    """

    config: DataConfig
    items: pd.DataFrame
    row_item: np.ndarray
    row_start: np.ndarray
    row_end: np.ndarray
    x: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    classes: list[str]
    dims: dict[str, int]
    feature_sets: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    #: ``(length_s, hop_s)`` when ``items`` holds time windows of the clips, else None.
    windows: tuple[float, float] | None = None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_rows(self) -> int:
        return len(self.row_item)

    @property
    def has_categories(self) -> bool:
        return bool((self.items["label"] >= 0).any())

    @property
    def has_dimensional(self) -> bool:
        cols = list(self.config.dimensional)
        return bool(cols) and all(c in self.items for c in cols) and bool(self.items[cols].notna().all(axis=1).any())

    def rows_of_items(self, item_index: Iterable[int]) -> np.ndarray:
        """Row indices (sorted) of the given item positions."""
        wanted = np.zeros(self.n_items, bool)
        wanted[np.fromiter((int(i) for i in item_index), np.int64)] = True
        return np.flatnonzero(wanted[self.row_item])

    def items_of_speakers(self, speakers: Iterable[str], *, labelled: bool = True) -> np.ndarray:
        """Item positions of these speakers (labelled items only by default)."""
        sel = self.items["speaker"].isin(set(speakers)).to_numpy()
        if labelled:
            sel &= self.labelled()
        return np.flatnonzero(sel)

    def labelled(self) -> np.ndarray:
        """Bool per item: has the training target (a class when the corpus has classes, else all dimensions)."""
        if self.has_categories:
            return (self.items["label"] >= 0).to_numpy()
        if self.has_dimensional:
            return self.items[list(self.config.dimensional)].notna().all(axis=1).to_numpy()
        return np.zeros(self.n_items, bool)


def _label_classes(labels: pd.Series, classes: list[str] | None) -> list[str]:
    if classes is not None:
        return list(classes)
    present = set(labels.dropna().astype(str))
    ordered = [c for c in EMOTION_CLASSES if c in present]
    return ordered + sorted(present - set(ordered))


def _clip_vectors(catalog: Catalog, key: str, item_ids: set[str]) -> dict[str, np.ndarray]:
    """item_id -> per-clip vector of a feature set (``embedding`` column or its numeric columns)."""
    clips = catalog.clips(key)
    if not len(clips):
        return {}
    clips = clips[clips["item_id"].isin(item_ids)]
    if "embedding" in clips:
        return {i: np.asarray(v, np.float32) for i, v in zip(clips["item_id"], clips["embedding"])}
    try:
        cols = catalog.feature_set_info(key).get("row_columns") or []
    except FileNotFoundError:
        cols = []
    cols = [c for c in cols if c in clips and pd.api.types.is_numeric_dtype(clips[c])]
    if not cols:
        cols = [c for c in clips.columns if c not in ("item_id", "duration")
                and pd.api.types.is_numeric_dtype(clips[c])]
    mat = clips[cols].to_numpy(np.float32)
    return dict(zip(clips["item_id"], mat))


def _status_summary(catalog: Catalog, key: str, ids: list[str], present: set[str]) -> dict[str, int]:
    st = catalog.status(key)
    st = st[st["item_id"].isin(ids)].set_index("item_id")["status"]
    out: dict[str, int] = {}
    for i in ids:
        if i in present:
            continue
        s = str(st.get(i, "not extracted"))
        if s == Status.OK.value:
            s = "no data"
        out[s] = out.get(s, 0) + 1
    return out


class _LazySequence:
    """One long item's rows in a Zarr shard, read block by block (never whole)."""

    def __init__(self, catalog: Catalog, key: str, shard: str, offset: int, length: int, names: list[str],
                 t_start: float, t_end: float, block_rows: int) -> None:
        self.catalog, self.key, self.shard = catalog, key, shard
        self.offset, self.length, self.names = int(offset), int(length), list(names)
        self.t_start, self.t_end = float(t_start), float(t_end)
        self.block_rows = max(1, int(block_rows))
        self._group: Any = None
        self._spans: list[tuple[int, int, float, float]] | None = None

    @property
    def group(self) -> Any:
        if self._group is None:
            self._group = self.catalog.open_shard(self.key, self.shard)
        return self._group

    @property
    def width(self) -> int:
        shape = self.group["values"].shape
        return int(shape[1]) if len(shape) > 1 else 1

    def _read(self, name: str, a: int, b: int) -> np.ndarray:
        return np.asarray(self.group[name][self.offset + a: self.offset + b])

    def spans(self) -> list[tuple[int, int, float, float]]:
        """(first row, end row, min time, max time) of each block (one pass over ``times``)."""
        if self._spans is None:
            out = []
            for a in range(0, self.length, self.block_rows):
                b = min(a + self.block_rows, self.length)
                t = self._read("times", a, b)
                fin = t[np.isfinite(t)]
                out.append((a, b, float(fin.min()) if fin.size else -np.inf, float(fin.max()) if fin.size else np.inf))
            self._spans = out
        return self._spans

    def first_steps(self, n: int = 4096) -> np.ndarray:
        return np.diff(self._read("times", 0, min(n, self.length)))

    def blocks(self, t0: float = -np.inf, t1: float = np.inf) -> Iterator[dict[str, np.ndarray]]:
        """Rows whose time lies in ``[t0, t1)`` (untimed rows always), one block at a time."""
        for a, b, tmin, tmax in self.spans():
            if tmax < t0 or tmin >= t1:
                continue
            t = self._read("times", a, b)
            sel = ~np.isfinite(t) | ((t >= t0) & (t < t1))
            if not sel.any():
                continue
            lo, hi = int(np.flatnonzero(sel)[0]), int(np.flatnonzero(sel)[-1]) + 1
            block = {"times": t[lo:hi]}
            for n in self.names:
                block[n] = self._read(n, a + lo, a + hi)
            keep = sel[lo:hi]
            yield block if keep.all() else {k: v[keep] for k, v in block.items()}

    def read(self, t0: float = -np.inf, t1: float = np.inf) -> dict[str, np.ndarray] | None:
        parts = list(self.blocks(t0, t1))
        if not parts:
            return None
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _read_sequences(catalog: Catalog, key: str, ok: set[str], names: list[str],
                    max_item_rows: int) -> dict[str, Any]:
    """item_id -> arrays (in memory) or :class:`_LazySequence` (items longer than ``max_item_rows``).

    Small shards are read whole (:meth:`Catalog.load_sequences`); items in shards above
    :data:`MAX_SHARD_ROWS` rows are read one by one, so a long neighbour is never loaded.
    """
    idx_all = catalog.sequence_index(key)
    if not len(idx_all):
        return {}
    shard_rows = idx_all.groupby("shard")["length"].sum()
    idx = idx_all[idx_all["item_id"].isin(ok)]
    long = idx["length"].to_numpy() > max_item_rows
    big = idx["shard"].map(shard_rows).to_numpy() > MAX_SHARD_ROWS
    out: dict[str, Any] = {}
    small = idx[~long & ~big]
    if len(small):
        out.update(catalog.load_sequences(key, small["item_id"], arrays=names))
    for r in idx[long].itertuples():
        out[r.item_id] = _LazySequence(catalog, key, r.shard, r.offset, r.length, names, r.t_start, r.t_end,
                                       block_rows=max_item_rows)
    for shard, rows in idx[~long & big].groupby("shard"):
        g = catalog.open_shard(key, shard)
        for item, off, length in zip(rows["item_id"], rows["offset"], rows["length"]):
            out[item] = {n: np.asarray(g[n][off:off + length]) for n in ["times", *names]}
    return out


def _width(seq: Any) -> int:
    return seq.width if isinstance(seq, _LazySequence) else int(seq["values"].shape[1])


def load_aligned(catalog: Catalog, config: DataConfig, item_ids: Iterable[str] | None = None, *,
                 classes: list[str] | None = None, dims: dict[str, int] | None = None,
                 windows: tuple[float, float] | Sequence[float] | None = None,
                 time_range: tuple[float, float] | None = None,
                 max_item_rows: int | None = None) -> AlignedData:
    """Read the configured feature sets once and align every item (see module docstring).

    ``item_ids``: restrict to these items (default: every item of the media table).
    ``classes``/``dims``: fix the label order and feature widths (when scoring with a run).
    ``windows``: ``(length_s, hop_s)`` to align every window of every clip as a clip of its
    own (``items`` then has one row per (item, window)); None: one timeline per clip.
    ``time_range``: with ``windows``, keep only the windows that start in ``[t0, t1)``.
    ``max_item_rows``: items with more frames are read block by block (default
    :data:`MAX_ITEM_ROWS`).
    """
    t0 = time.perf_counter()
    win = _window_arg(windows)
    if time_range is not None and win is None:
        raise ValueError("time_range needs windows=(length_s, hop_s)")
    max_rows = int(max_item_rows or MAX_ITEM_ROWS)
    cfg = config.resolved(catalog)
    media = catalog.media()
    if item_ids is not None:
        wanted = list(dict.fromkeys(item_ids))
        missing_ids = sorted(set(wanted) - set(media["item_id"]))
        if missing_ids:
            raise KeyError(f"{len(missing_ids)} item ids are not in the catalog's media table, e.g. {missing_ids[:3]}")
        media = media.set_index("item_id").loc[wanted].reset_index()
    ids = media["item_id"].tolist()
    idset = set(ids)
    # ---- read everything once (each shard once; long items lazily) -----------------
    raw: dict[str, dict[str, Any]] = {}
    hops: dict[str, float] = {}
    feature_sets: dict[str, str] = {}
    for spec in cfg.modalities:
        key = spec.feature_set
        feature_sets[spec.name] = key
        ok = catalog.done(key) & idset
        if spec.source == "clip":
            vecs = _clip_vectors(catalog, key, ok)
            raw[spec.name] = {i: {"values": v[None, :]} for i, v in vecs.items()}
            continue
        idx = catalog.sequence_index(key)
        idx = idx[idx["item_id"].isin(ok)]
        names = ["values"]
        if len(idx):  # auxiliary arrays that every shard holds
            common = set(_AUX_ARRAYS)
            for shard in idx["shard"].unique():
                common &= set(catalog.open_shard(key, shard).array_keys())
            names += [a for a in _AUX_ARRAYS if a in common]
        seqs = _read_sequences(catalog, key, ok, names, max_rows)
        raw[spec.name] = {i: s for i, s in seqs.items() if isinstance(s, _LazySequence) or len(s["values"])}
        if spec.hop is not None:
            hops[spec.name] = spec.hop
        else:
            in_memory = {i: s for i, s in raw[spec.name].items() if not isinstance(s, _LazySequence)}
            lazy = [s for s in raw[spec.name].values() if isinstance(s, _LazySequence)]
            if lazy:  # a few thousand steps of each long item join the median
                in_memory.update({f"\0lazy{k}": {"times": np.cumsum(np.r_[0.0, s.first_steps()])}
                                  for k, s in enumerate(lazy)})
            hops[spec.name] = median_hop(in_memory)
    t_read = time.perf_counter() - t0
    # ---- availability, dropping ------------------------------------------------------
    avail = {m: np.array([i in raw[m] for i in ids], bool) for m in raw}
    keep = np.ones(len(ids), bool)
    dropped: dict[str, int] = {}
    for spec in cfg.modalities:
        n_miss = int((~avail[spec.name]).sum())
        if n_miss:
            why = _status_summary(catalog, spec.feature_set, ids, set(raw[spec.name]))
            action = "dropped" if cfg.missing == "drop" else "kept with the modality masked"
            log.warning("%s (%s): %d of %d items have no features (%s): %s", spec.name, spec.feature_set,
                        n_miss, len(ids), ", ".join(f"{k}={v}" for k, v in sorted(why.items())), action)
            if cfg.missing == "drop":
                keep &= avail[spec.name]
                dropped[f"missing_{spec.name}"] = n_miss
    none = ~np.any(np.stack(list(avail.values())), axis=0)
    if (none & keep).any():
        log.warning("%d items have none of the modalities %s: dropped", int((none & keep).sum()), list(avail))
        dropped["no_modality"] = int((none & keep).sum())
    keep &= ~none
    media = media[keep].reset_index(drop=True)
    ids = media["item_id"].tolist()
    avail = {m: a[keep] for m, a in avail.items()}
    # ---- widths, durations, labels -----------------------------------------------------
    dims = dict(dims or {})
    for spec in cfg.modalities:
        found = {_width(raw[spec.name][i]) for i in ids if i in raw[spec.name]}
        if len(found) > 1:
            raise ValueError(f"{spec.feature_set}: items disagree on the feature width: {sorted(found)}")
        if spec.name in dims and found and found != {dims[spec.name]}:
            raise ValueError(f"{spec.feature_set}: width {found.pop()} does not match the run's {dims[spec.name]}")
        if spec.name not in dims:
            if not found:
                raise ValueError(f"no item has features of {spec.feature_set} for modality {spec.name!r}")
            dims[spec.name] = found.pop()
    durations = (media["duration"].to_numpy(np.float64, na_value=np.nan) if "duration" in media
                 else np.full(len(ids), np.nan))
    for n, i in enumerate(ids):
        if not np.isfinite(durations[n]) or durations[n] <= 0:
            ends = []
            for m in hops:
                seq = raw[m].get(i)
                last = (seq.t_end if isinstance(seq, _LazySequence) else float(seq["times"][-1])) if seq is not None else np.nan
                if np.isfinite(last):
                    ends.append(last + hops[m])
            durations[n] = max(ends) if ends else 1.0
    label_col = media[cfg.label] if cfg.label in media else pd.Series([None] * len(media))
    cls = classes if classes is not None else _label_classes(label_col, cfg.classes)
    lookup = {c: k for k, c in enumerate(cls)}
    labels = np.array([lookup.get(str(v), -1) if v is not None and not pd.isna(v) else -1 for v in label_col], np.int64)
    items = pd.DataFrame({"item_id": ids,
                          "speaker": media["speaker"].to_numpy() if "speaker" in media else None,
                          "duration": durations, "label": labels})
    for c in cfg.dimensional:
        items[c] = media[c].astype("float64").to_numpy() if c in media else np.nan
    for m, a in avail.items():
        items[f"has_{m}"] = a
    # ---- align --------------------------------------------------------------------------
    t1 = time.perf_counter()
    al = cfg.align
    xs: dict[str, list[np.ndarray]] = {s.name: [] for s in cfg.modalities}
    ms: dict[str, list[np.ndarray]] = {s.name: [] for s in cfg.modalities}
    row_item: list[int] = []
    row_se: list[tuple[float, float]] = []
    seg_item: list[int] = []
    seg_bounds: list[tuple[float, float, int]] = []

    def add(n_seg: int, x: dict[str, np.ndarray], mk: dict[str, np.ndarray], ws: float, we: float) -> None:
        """One segment ([ws, we), its bins already aligned per modality) as one row or RCMA windows."""
        if al.mode == "fixed":
            for m in xs:
                xs[m].append(x[m][None])
                ms[m].append(mk[m][None])
            row_item.append(n_seg)
            row_se.append((ws, we))
            return
        n_steps = len(next(iter(x.values())))
        starts = window_starts(n_steps, al.steps, al.hop)
        for m in xs:
            xm, mm = x[m], mk[m]
            if n_steps < al.steps:
                xm = np.concatenate([xm, np.zeros((al.steps - n_steps, xm.shape[1]), np.float32)])
                mm = np.concatenate([mm, np.zeros(al.steps - n_steps, bool)])
            xs[m].append(np.stack([xm[s:s + al.steps] for s in starts]))
            ms[m].append(np.stack([mm[s:s + al.steps] for s in starts]))
        for s in starts:
            row_item.append(n_seg)
            row_se.append((ws + s / al.rate, min(we, ws + (s + al.steps) / al.rate)))

    def seg_edges(spec: ModalitySpec, ws: float, we: float) -> np.ndarray:
        if al.mode == "fixed":
            return ws + fixed_edges(we - ws, al.steps_for(spec.name)) if ws else fixed_edges(we, al.steps_for(spec.name))
        return ws + rate_edges(we - ws, al.rate) if ws else rate_edges(we, al.rate)

    for n, i in enumerate(ids):
        dur = float(durations[n])
        seqs = {spec.name: raw[spec.name].get(i) for spec in cfg.modalities}
        lazy = any(isinstance(q, _LazySequence) for q in seqs.values())
        if win is None:
            n_seg = len(seg_item)
            seg_item.append(n)
            seg_bounds.append((0.0, dur, -1))
            x, mk = {}, {}
            for spec in cfg.modalities:
                edges = seg_edges(spec, 0.0, dur)
                if isinstance(seqs[spec.name], _LazySequence):
                    x[spec.name], mk[spec.name] = _align_lazy(seqs[spec.name], spec, edges, dims[spec.name],
                                                              hops.get(spec.name, 0.0), dur)
                else:
                    x[spec.name], mk[spec.name] = _align_one(seqs[spec.name], spec, edges, dims[spec.name],
                                                             hops.get(spec.name, 0.0), dur)
            add(n_seg, x, mk, 0.0, dur)
            continue
        bounds = clip_windows(dur, *win)
        ks = [k for k in range(len(bounds))
              if time_range is None or time_range[0] <= bounds[k, 0] < time_range[1]]
        span = WINDOW_SPAN_S if lazy else np.inf
        k0 = 0
        while k0 < len(ks):  # groups of windows spanning at most ``span`` seconds (one group unless lazy)
            k1 = k0 + 1
            while k1 < len(ks) and bounds[ks[k1], 1] - bounds[ks[k0], 0] <= max(span, win[0]):
                k1 += 1
            g0, g1 = float(bounds[ks[k0], 0]), float(bounds[ks[k1 - 1], 1])
            frames = {spec.name: _frames(seqs[spec.name], spec, hops.get(spec.name, 0.0), dur, g0, g1)
                      for spec in cfg.modalities}
            for k in ks[k0:k1]:
                ws, we = float(bounds[k, 0]), float(bounds[k, 1])
                n_seg = len(seg_item)
                seg_item.append(n)
                seg_bounds.append((ws, we, k))
                x, mk = {}, {}
                for spec in cfg.modalities:
                    x[spec.name], mk[spec.name] = _align_frames(frames[spec.name], spec, seg_edges(spec, ws, we),
                                                                dims[spec.name])
                add(n_seg, x, mk, ws, we)
            k0 = k1
    # ---- one row of ``items`` per segment (the clip, or each window) ------------------------
    sb = np.asarray(seg_bounds, np.float64).reshape(-1, 3)
    if win is None:
        items["start"] = sb[:, 0]
        items["end"] = sb[:, 1]
    else:
        items = items.iloc[np.asarray(seg_item, np.int64)].reset_index(drop=True)
        items["window"] = sb[:, 2].astype(np.int64)
        items["start"] = sb[:, 0]
        items["end"] = sb[:, 1]
    x_all = {m: (np.concatenate(v) if v else np.zeros((0, al.steps_for(m), dims[m]), np.float32))
             for m, v in xs.items()}
    m_all = {m: (np.concatenate(v) if v else np.zeros((0, al.steps_for(m)), bool)) for m, v in ms.items()}
    se = np.asarray(row_se, np.float64).reshape(-1, 2)
    timings = {"read_s": t_read, "align_s": time.perf_counter() - t1, "total_s": time.perf_counter() - t0,
               "items": float(len(ids))}
    log.info("loaded %d items (%d segments, %d rows) of %s in %.2f s (read %.2f s, align %.2f s)", len(ids),
             len(items), len(row_item), feature_sets, timings["total_s"], t_read, timings["align_s"])
    return AlignedData(config=cfg, items=items, row_item=np.asarray(row_item, np.int64), row_start=se[:, 0],
                       row_end=se[:, 1], x=x_all, mask=m_all, classes=cls, dims=dims,
                       feature_sets=feature_sets, timings=timings, dropped=dropped, windows=win)


def _align_one(seq: dict[str, np.ndarray] | None, spec: ModalitySpec, edges: np.ndarray, dim: int,
               hop: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    n_bins = len(edges) - 1
    if seq is None:
        return np.zeros((n_bins, dim), np.float32), np.zeros(n_bins, bool)
    values = seq["values"]
    if spec.source == "clip":
        return np.repeat(values.astype(np.float32), n_bins, axis=0), np.ones(n_bins, bool)
    valid = seq["mask"].astype(bool) if "mask" in seq else None
    fs, fe = _bounds(seq, hop, duration, float(edges[-1]))
    return align_to_edges(values, fs, fe, edges, method=spec.method, valid=valid)


def _bounds(seq: dict[str, np.ndarray], hop: float, duration: float, edges_end: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval each frame of ``seq`` covers (see :func:`frame_bounds`), relative to the whole clip."""
    if "start" in seq:
        return frame_bounds(seq["times"], hop=hop, clip_end=max(duration, edges_end),
                            starts=seq["start"], ends=seq.get("end"))
    return frame_bounds(seq["times"], hop=hop if hop > 0 else max(duration, _EPS), clip_end=duration)


def _align_lazy(seq: _LazySequence, spec: ModalitySpec, edges: np.ndarray, dim: int, hop: float,
                duration: float) -> tuple[np.ndarray, np.ndarray]:
    """A long item on one timeline: ``pool`` block by block (bounded memory); ``interp`` reads it whole."""
    if spec.method != "pool":
        return _align_one(seq.read(), spec, edges, dim, hop, duration)
    n_bins = len(edges) - 1
    sums, wsum = np.zeros((n_bins, dim), np.float64), np.zeros(n_bins, np.float64)
    for block in seq.blocks():
        fs, fe = _bounds(block, hop, duration, float(edges[-1]))
        valid = block["mask"].astype(bool) if "mask" in block else None
        s_, w_ = pool_sums(block["values"], fs, fe, edges, valid=valid)
        sums += s_
        wsum += w_
    mask = wsum > 0
    out = np.zeros((n_bins, dim), np.float64)
    out[mask] = sums[mask] / wsum[mask, None]
    return out.astype(np.float32), mask


def _frames(seq: Any, spec: ModalitySpec, hop: float, duration: float, t0: float, t1: float) -> dict[str, Any] | None:
    """Frames of ``seq`` that overlap ``[t0, t1)`` with their intervals (``fs``/``fe``), for window alignment."""
    if seq is None:
        return None
    if spec.source == "clip":
        return {"clip": seq["values"]}
    if isinstance(seq, _LazySequence):
        pad = max(2.0 * hop, 1e-3) if hop > 0 else np.inf
        seq = seq.read(t0 - pad, t1)
        if seq is None:
            return {"values": np.zeros((0, 1), np.float32), "fs": np.zeros(0), "fe": np.zeros(0), "valid": None}
    fs, fe = _bounds(seq, hop, duration, duration)
    sel = (fe > t0) & (fs < t1)
    valid = seq["mask"].astype(bool)[sel] if "mask" in seq else None
    return {"values": seq["values"][sel], "fs": fs[sel], "fe": fe[sel], "valid": valid}


def _align_frames(frames: dict[str, Any] | None, spec: ModalitySpec, edges: np.ndarray,
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


# --------------------------------------------------------------------------- normalisation
@dataclass
class NormStats:
    """Per-feature mean and std of each modality over valid steps of the training rows."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def compute(cls, data: AlignedData, rows: np.ndarray, *, min_std: float = 1e-6) -> "NormStats":
        """Statistics from ``rows`` only (the training split), valid steps only, in float64."""
        mean, std = {}, {}
        for m, x in data.x.items():
            sel = data.mask[m][rows]
            vals = x[rows][sel].astype(np.float64)
            if len(vals):
                mu, sd = vals.mean(axis=0), vals.std(axis=0)
            else:
                mu, sd = np.zeros(x.shape[-1]), np.ones(x.shape[-1])
            mean[m] = mu.astype(np.float32)
            std[m] = np.where(sd < min_std, 1.0, sd).astype(np.float32)
        return cls(mean, std)

    def apply(self, modality: str, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(x - mean) / std on valid steps, zero elsewhere (float32)."""
        z = (x - self.mean[modality]) / self.std[modality]
        return np.where(mask[..., None], z, np.float32(0.0)).astype(np.float32)

    def to_tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        out = {}
        for m in self.mean:
            out[f"{prefix}{m}.mean"] = torch.from_numpy(np.ascontiguousarray(self.mean[m]))
            out[f"{prefix}{m}.std"] = torch.from_numpy(np.ascontiguousarray(self.std[m]))
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str = "") -> "NormStats":
        mean, std = {}, {}
        for k, t in tensors.items():
            if not k.startswith(prefix):
                continue
            m, what = k[len(prefix):].rsplit(".", 1)
            (mean if what == "mean" else std)[m] = t.numpy().astype(np.float32)
        if not mean or set(mean) != set(std):
            raise ValueError(f"no complete normalisation statistics under {prefix!r}")
        return cls(mean, std)


# --------------------------------------------------------------------------- datasets
@dataclass
class Batch:
    """One batch: model inputs and masks, labels (N,) (-1 = none), dimensional targets (N, K), row ids."""

    inputs: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    labels: torch.Tensor
    targets: torch.Tensor
    rows: torch.Tensor


class FusionDataset(torch.utils.data.Dataset):
    """A split as normalised tensors on one device; batches are index gathers.

    ``rows``: row indices of ``data`` (clips or windows). Items come back in the order
    given; ``item_of_row`` maps each local row to its position in ``data.items``.
    """

    def __init__(self, data: AlignedData, rows: np.ndarray, norm: NormStats, *,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.rows = np.asarray(rows, np.int64)
        self.modalities = list(data.x)
        self.x = {m: torch.from_numpy(norm.apply(m, data.x[m][self.rows], data.mask[m][self.rows])).to(
            device=self.device, dtype=torch.float32) for m in self.modalities}
        self.mask = {m: torch.from_numpy(data.mask[m][self.rows]).to(device=self.device, dtype=torch.bool)
                     for m in self.modalities}
        self.item_of_row = data.row_item[self.rows]
        items = data.items.iloc[self.item_of_row]
        self.labels = torch.as_tensor(items["label"].to_numpy(np.int64), dtype=torch.long, device=self.device)
        dcols = [c for c in data.config.dimensional if c in items]
        tgt = items[dcols].to_numpy(np.float32) if dcols else np.zeros((len(items), 0), np.float32)
        self.targets = torch.as_tensor(tgt, dtype=torch.float32, device=self.device)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        b = self.batch(torch.tensor([i], device=self.device))
        return {"inputs": {m: t[0] for m, t in b.inputs.items()}, "masks": {m: t[0] for m, t in b.masks.items()},
                "label": b.labels[0], "targets": b.targets[0]}

    def batch(self, idx: torch.Tensor) -> Batch:
        """Gather rows ``idx`` (local positions) into a batch."""
        idx = idx.to(self.device)
        return Batch({m: t.index_select(0, idx) for m, t in self.x.items()},
                     {m: t.index_select(0, idx) for m, t in self.mask.items()},
                     self.labels.index_select(0, idx), self.targets.index_select(0, idx), idx)

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_single: bool = False) -> Iterator[Batch]:
        """Batches in order or shuffled (CPU ``generator``); ``drop_single`` skips a trailing batch of one."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            if drop_single and len(idx) == 1 and n > 1:
                continue
            yield self.batch(idx)


def loader_throughput(ds: FusionDataset, batch_size: int = 16, *, repeats: int = 3) -> float:
    """Items per second of shuffled batch gathering (what the training loop pays for data)."""
    g = torch.Generator().manual_seed(0)
    n = 0
    t0 = time.perf_counter()
    for _ in range(repeats):
        for b in ds.batches(batch_size, shuffle=True, generator=g):
            n += len(b.rows)
    if ds.device.type == "cuda":
        torch.cuda.synchronize(ds.device)
    return n / max(time.perf_counter() - t0, 1e-9)


def default_modalities(names: Sequence[str]) -> list[ModalitySpec]:
    """ModalitySpecs for feature-set names with their default modality names (faces -> face ...)."""
    return [ModalitySpec(DEFAULT_MODALITY_NAMES.get(n, n), n) for n in names]


__all__ = [
    "AlignConfig", "AlignedData", "Batch", "DataConfig", "FusionDataset", "ModalitySpec", "NormStats",
    "align_to_edges", "clip_windows", "default_modalities", "fixed_edges", "frame_bounds", "load_aligned",
    "loader_throughput", "pool_sums", "rate_edges", "window_starts",
]
