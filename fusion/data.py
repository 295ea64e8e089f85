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

z-normalisation (:class:`NormStats`) uses valid steps of the training rows only and is
stored with a run.

Example:
    >>> from catalog.store import Catalog                                        # doctest: +SKIP
    >>> cfg = DataConfig(modalities=[ModalitySpec("face", "faces"), ModalitySpec("audio", "egemaps")])
    >>> data = load_aligned(Catalog("emofuse-data/catalog"), cfg)                # doctest: +SKIP
    >>> train = data.rows_of_items(data.items_of_speakers(["Actor_01", "Actor_02"]))  # doctest: +SKIP
    >>> ds = FusionDataset(data, train, NormStats.compute(data, train))         # doctest: +SKIP
    >>> batch = ds.batch(torch.arange(4))                                        # doctest: +SKIP
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

from catalog.ravdess import EMOTION_CLASSES
from catalog.schemas import Status
from catalog.store import Catalog

log = logging.getLogger(__name__)

#: Modality name the models see, per feature-set name.
DEFAULT_MODALITY_NAMES: dict[str, str] = {"egemaps": "audio", "faces": "face", "text": "text", "logmel": "logmel"}
#: Arrays read per feature-set name besides ``times``/``values`` (only those that exist are read).
_AUX_ARRAYS = ("mask", "start", "end")
_EPS = 1e-9


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
    ok = np.ones(len(v), bool) if valid is None else np.asarray(valid, bool).copy()
    ok &= np.isfinite(v).all(axis=1) & (fend > fstart)
    if not ok.any() or n_bins <= 0:
        return out.astype(np.float32), np.zeros(n_bins, bool)
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
    frame, bins, w = frame[keep], bins[keep], w[keep]
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
    targets, ``has_<modality>``). Rows (one per clip, or per window) point to items by
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


def load_aligned(catalog: Catalog, config: DataConfig, item_ids: Iterable[str] | None = None, *,
                 classes: list[str] | None = None, dims: dict[str, int] | None = None) -> AlignedData:
    """Read the configured feature sets once and align every item (see module docstring).

    ``item_ids``: restrict to these items (default: every item of the media table).
    ``classes``/``dims``: fix the label order and feature widths (when scoring with a run).
    """
    t0 = time.perf_counter()
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
    # ---- read everything once (each shard once) ---------------------------------
    raw: dict[str, dict[str, dict[str, np.ndarray]]] = {}
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
        seqs = catalog.load_sequences(key, ok, arrays=names)
        raw[spec.name] = {i: s for i, s in seqs.items() if len(s["values"])}
        hops[spec.name] = spec.hop if spec.hop is not None else median_hop(raw[spec.name])
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
        found = {raw[spec.name][i]["values"].shape[1] for i in ids if i in raw[spec.name]}
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
            ends = [float(raw[m][i]["times"][-1]) + hops[m] for m in hops if i in raw[m]
                    and np.isfinite(raw[m][i]["times"][-1])]
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
    for n, i in enumerate(ids):
        dur = float(durations[n])
        if al.mode == "fixed":
            for spec in cfg.modalities:
                x, mk = _align_one(raw[spec.name].get(i), spec, fixed_edges(dur, al.steps_for(spec.name)),
                                   dims[spec.name], hops.get(spec.name, 0.0), dur)
                xs[spec.name].append(x[None])
                ms[spec.name].append(mk[None])
            row_item.append(n)
            row_se.append((0.0, dur))
        else:
            edges = rate_edges(dur, al.rate)
            n_steps = len(edges) - 1
            starts = window_starts(n_steps, al.steps, al.hop)
            for spec in cfg.modalities:
                x, mk = _align_one(raw[spec.name].get(i), spec, edges, dims[spec.name], hops.get(spec.name, 0.0), dur)
                if n_steps < al.steps:
                    x = np.concatenate([x, np.zeros((al.steps - n_steps, x.shape[1]), np.float32)])
                    mk = np.concatenate([mk, np.zeros(al.steps - n_steps, bool)])
                xs[spec.name].append(np.stack([x[s:s + al.steps] for s in starts]))
                ms[spec.name].append(np.stack([mk[s:s + al.steps] for s in starts]))
            for s in starts:
                row_item.append(n)
                row_se.append((s / al.rate, min(dur, (s + al.steps) / al.rate)))
    x_all = {m: (np.concatenate(v) if v else np.zeros((0, al.steps_for(m), dims[m]), np.float32))
             for m, v in xs.items()}
    m_all = {m: (np.concatenate(v) if v else np.zeros((0, al.steps_for(m)), bool)) for m, v in ms.items()}
    se = np.asarray(row_se, np.float64).reshape(-1, 2)
    timings = {"read_s": t_read, "align_s": time.perf_counter() - t1, "total_s": time.perf_counter() - t0,
               "items": float(len(ids))}
    log.info("loaded %d items (%d rows) of %s in %.2f s (read %.2f s, align %.2f s)", len(ids), len(row_item),
             feature_sets, timings["total_s"], t_read, timings["align_s"])
    return AlignedData(config=cfg, items=items, row_item=np.asarray(row_item, np.int64), row_start=se[:, 0],
                       row_end=se[:, 1], x=x_all, mask=m_all, classes=cls, dims=dims,
                       feature_sets=feature_sets, timings=timings, dropped=dropped)


def _align_one(seq: dict[str, np.ndarray] | None, spec: ModalitySpec, edges: np.ndarray, dim: int,
               hop: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    n_bins = len(edges) - 1
    if seq is None:
        return np.zeros((n_bins, dim), np.float32), np.zeros(n_bins, bool)
    values = seq["values"]
    if spec.source == "clip":
        return np.repeat(values.astype(np.float32), n_bins, axis=0), np.ones(n_bins, bool)
    valid = seq["mask"].astype(bool) if "mask" in seq else None
    if "start" in seq:
        fs, fe = frame_bounds(seq["times"], hop=hop, clip_end=max(duration, float(edges[-1])),
                              starts=seq["start"], ends=seq.get("end"))
    else:
        fs, fe = frame_bounds(seq["times"], hop=hop if hop > 0 else max(duration, _EPS), clip_end=duration)
    return align_to_edges(values, fs, fe, edges, method=spec.method, valid=valid)


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
    "align_to_edges", "default_modalities", "fixed_edges", "frame_bounds", "load_aligned", "loader_throughput",
    "rate_edges", "window_starts",
]
