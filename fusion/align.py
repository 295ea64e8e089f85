"""Cached catalog features -> every item on the model's timeline (:func:`load_aligned`).

Reads only what extraction stored (sequences and per-clip rows of the chosen feature sets,
labels from the media table, all through :class:`~emofuse.catalog.store.Catalog`); never
media files. :func:`load_aligned` runs four stages, each a function that can run alone:

1. read — :func:`~emofuse.fusion.features.select_media`, a
   :class:`~emofuse.fusion.features.FeatureReader` (the catalog's tables once; each feature
   set's sequences shard by shard, long items lazily; per-clip vectors) and
   :func:`~emofuse.fusion.features.survey_features` (a first pass, batch by batch: which
   items have which modality, widths, frame periods);
2. availability — :func:`~emofuse.fusion.features.availability`,
   :func:`~emofuse.fusion.features.select_items` (``missing="mask"`` keeps an item whose
   modality is absent, fully masked; ``"drop"`` removes it; items with no modality at all are
   always dropped, with counts logged);
3. labels — :func:`~emofuse.fusion.features.check_widths`,
   :func:`~emofuse.fusion.features.item_durations`, :func:`~emofuse.fusion.features.label_items`;
4. align — :func:`align_items` here, batch by batch (the timeline math is
   :mod:`emofuse.fusion.timeline`), into scratch files (:mod:`~emofuse.fusion.row_store`).

Timelines (:class:`~emofuse.fusion.data_config.AlignConfig`): ``mode="fixed"`` (TACFN) puts
``steps`` equal bins over the clip ``[0, duration)``, one row per clip; ``mode="window"``
(RCMA) takes bins of ``1/rate`` s over the whole clip and cuts them into windows of
``steps`` bins every ``hop`` bins (the last aligned to the clip end; a clip shorter than one
window is zero-padded and the padding masked), one row per window. A frame covers
``[t, t + hop)`` (``hop``: the set's frame period, the median time step by default), a text
segment ``[start, end)``. A bin is valid when a valid frame overlaps it: face frames without
a face (the ``mask`` array), bins without speech and modalities whose status is not ``ok`` are
masked. Per-clip vectors (``source="clip"``) are repeated over the steps.

Time windows (``windows=(length_s, hop_s)``, for scoring long files): each clip is cut by
:func:`~emofuse.fusion.timeline.clip_windows` and every window is aligned like a clip of its
own; ``items`` then holds one row per (item, window) with ``start``, ``end`` and ``window``.
Without windows ``items`` is one row per item with ``start = 0`` and ``end = duration``.

Per-frame targets (``DataConfig.targets="frame"``): the catalog's per-frame labels are put
on the same step edges as the features (:mod:`emofuse.fusion.targets`) and windowed like
them: ``frame_targets`` (rows, L, K) and ``frame_mask`` (rows, L); a step is masked when no
annotated frame overlaps it or when no modality is valid there. ``row_step`` gives each
row's first step in its clip, so windows can be stitched back onto the clip's steps.

Memory: the aligned features live in scratch files and the frames of at most ``batch_items``
items (:data:`BATCH_ITEMS`) are read at a time, so loading holds the tables, the masks and one
batch whatever the corpus size. An item with more than ``max_item_rows`` frames in a feature set (default
:data:`~emofuse.catalog.sequences.MAX_ITEM_ROWS`: 11 minutes of eGeMAPS LLDs) is never read
whole: it is pooled block by block for a per-clip timeline, or read one group of windows (at
most :data:`WINDOW_SPAN_S` seconds) at a time. ``time_range=(t0, t1)`` keeps only the windows
that start in it, so a caller can walk a long file in bounded pieces. ``interp`` reads a long
item whole.

Example (a catalog of two 2 s clips with 100 Hz features):
    >>> import tempfile
    >>> import numpy as np
    >>> from emofuse.catalog.records import ExtractResult, Sequence
    >>> from emofuse.catalog.store import Catalog
    >>> from emofuse.fusion.data_config import AlignConfig, DataConfig, ModalitySpec
    >>> cat = Catalog(tempfile.mkdtemp()).init()
    >>> cat.add_media([{"item_id": f"clip{k}", "path": f"/v/clip{k}.mp4", "relpath": f"clip{k}.mp4", "corpus": "demo",
    ...                 "speaker": "s1", "emotion": e, "duration": 2.0} for k, e in enumerate(["sad", "happy"])])
    2
    >>> t = np.arange(200) * 0.01
    >>> cat.commit_task("egemaps-v1", "task-1", [
    ...     ExtractResult(f"clip{k}", sequence=Sequence(t, {"values": np.full((200, 3), k, np.float32)}), n_frames=200)
    ...     for k in range(2)])
    2
    >>> cfg = DataConfig([ModalitySpec("audio", "egemaps-v1")], align=AlignConfig(steps=4))
    >>> data = load_aligned(cat, cfg)
    >>> data.x["audio"].shape, data.classes, data.items["label"].tolist()
    ((2, 4, 3), ['happy', 'sad'], [1, 0])
    >>> w = load_aligned(cat, cfg, ["clip1"], windows=(1.0, 0.5))
    >>> w.items[["item_id", "window", "start", "end"]].values.tolist()
    [['clip1', 0, 0.0, 1.0], ['clip1', 1, 0.5, 1.5], ['clip1', 2, 1.0, 2.0]]
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from emofuse.catalog.sequences import MAX_ITEM_ROWS, LazySequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.data_config import DataConfig
from emofuse.fusion.dataset import AlignedData
from emofuse.fusion.item_align import align_lazy, align_whole, align_window, window_frames
from emofuse.fusion.row_batches import in_item_order, join_rows, new_writers
from emofuse.fusion.row_store import RowArray, RowWriter
from emofuse.fusion.targets import TargetFrames, align_targets, read_frame_targets
from emofuse.fusion.features import (
    FeatureReader,
    Features,
    check_widths,
    item_classes,
    item_durations,
    label_items,
    select_items,
    select_media,
    survey_features,
    warn_missing,
)
from emofuse.fusion.timeline import (
    clip_windows,
    fixed_edges,
    rate_edges,
    window_starts,
)

log = logging.getLogger(__name__)

#: Items whose frames :func:`load_aligned` reads and aligns at a time (~50 MB of frames for
#: 2-second clips with eGeMAPS, faces and text).
BATCH_ITEMS = 1024

#: The windows of a long item are aligned in groups that span at most this many seconds.
WINDOW_SPAN_S = 600.0


# --------------------------------------------------------------------------- 4. align
def segment_edges(cfg: DataConfig, modality: str, ws: float, we: float) -> np.ndarray:
    """Bin edges of ``modality`` over the segment ``[ws, we)`` (a clip from 0, or one time window).

    >>> from emofuse.fusion.data_config import AlignConfig, ModalitySpec
    >>> cfg = DataConfig([ModalitySpec("audio", "egemaps")], align=AlignConfig(steps=2))
    >>> segment_edges(cfg, "audio", 2.0, 3.0).tolist()
    [2.0, 2.5, 3.0]
    """
    al = cfg.align
    if al.mode == "fixed":
        return ws + fixed_edges(we - ws, al.steps_for(modality)) if ws else fixed_edges(we, al.steps_for(modality))
    return ws + rate_edges(we - ws, al.rate) if ws else rate_edges(we, al.rate)


def align_items(cfg: DataConfig, items: pd.DataFrame, feats: Features, dims: dict[str, int], *,
                windows: tuple[float, float] | None = None,
                time_range: tuple[float, float] | None = None,
                targets: dict[str, TargetFrames] | None = None,
                writers: dict[str, RowWriter] | None = None) -> AlignedData:
    """Every item of ``items`` (item_id, duration, …) on the timeline of ``cfg.align``.

    Without ``windows`` a clip is one segment ``[0, duration)``; with ``(length_s, hop_s)``
    each time window (starting in ``time_range`` when given) is one. A segment is one row
    (``fixed``) or several RCMA windows (``window``). Returned ``items`` has one row per
    segment, with its ``start``/``end`` (and ``window`` number with ``windows``); the label
    order (``classes``), timings and drop counts are :func:`load_aligned`'s to fill in.
    ``targets`` (item_id -> label frames, :func:`~emofuse.fusion.targets.read_frame_targets`;
    whole clips only): per-step targets on the same edges, windowed like the features.
    ``writers``: append the features to these (a caller aligning a corpus batch by batch; ``x``
    of the result is then empty), else to new ones whose rows ``x`` holds.
    """
    al = cfg.align
    if targets is not None and windows is not None:
        raise ValueError("per-frame targets are aligned on whole clips, not with windows=(length_s, hop_s)")
    n_targets = len(cfg.dimensional)
    ys: list[np.ndarray] = []
    yms: list[np.ndarray] = []
    row_step: list[int] = []
    ids, durations = items["item_id"].tolist(), items["duration"].to_numpy(np.float64)
    xs = writers if writers is not None else new_writers(cfg, dims)
    ms: dict[str, list[np.ndarray]] = {s.name: [] for s in cfg.modalities}
    row_item: list[int] = []
    row_se: list[tuple[float, float]] = []
    seg_item: list[int] = []
    seg_bounds: list[tuple[float, float, int]] = []

    def add(n_seg: int, x: dict[str, np.ndarray], mk: dict[str, np.ndarray], ws: float, we: float) -> None:
        """One segment ([ws, we), its bins already aligned per modality) as one row or RCMA windows."""
        y = _segment_targets(n_seg, x, mk, ws, we)
        if al.mode == "fixed":
            for m in xs:
                xs[m].append(x[m][None])
                ms[m].append(mk[m][None])
            if y is not None:
                ys.append(y[0][None])
                yms.append(y[1][None])
            row_item.append(n_seg)
            row_se.append((ws, we))
            row_step.append(0)
            return
        n_steps = len(next(iter(x.values())))
        starts = window_starts(n_steps, al.steps, al.hop)

        def cut(v: np.ndarray, vm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if n_steps < al.steps:
                v = np.concatenate([v, np.zeros((al.steps - n_steps, v.shape[1]), np.float32)])
                vm = np.concatenate([vm, np.zeros(al.steps - n_steps, bool)])
            return np.stack([v[s:s + al.steps] for s in starts]), np.stack([vm[s:s + al.steps] for s in starts])

        for m in xs:
            xw, mw = cut(x[m], mk[m])
            xs[m].append(xw)
            ms[m].append(mw)
        if y is not None:
            yw, ymw = cut(*y)
            ys.append(yw)
            yms.append(ymw)
        for s in starts:
            row_item.append(n_seg)
            row_se.append((ws + s / al.rate, min(we, ws + (s + al.steps) / al.rate)))
            row_step.append(s)

    def _segment_targets(n_seg: int, x: dict[str, np.ndarray], mk: dict[str, np.ndarray], ws: float,
                         we: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-step targets of a clip on the features' edges; masked where no modality is valid."""
        if targets is None:
            return None
        y, ym = align_targets(targets.get(ids[seg_item[n_seg]]), segment_edges(cfg, "", ws, we))
        if y.shape[1] != n_targets:
            y = np.zeros((len(ym), n_targets), np.float32)
        feats_valid = [mk[m] for m in mk if len(mk[m]) == len(ym)]
        if feats_valid:
            ym = ym & np.any(feats_valid, axis=0)
        return y, ym

    for n, i in enumerate(ids):
        dur = float(durations[n])
        seqs = {spec.name: feats.seqs[spec.name].get(i) for spec in cfg.modalities}
        hops = {spec.name: feats.hops.get(spec.name, 0.0) for spec in cfg.modalities}
        if windows is None:
            n_seg = len(seg_item)
            seg_item.append(n)
            seg_bounds.append((0.0, dur, -1))
            x, mk = {}, {}
            for spec in cfg.modalities:
                edges = segment_edges(cfg, spec.name, 0.0, dur)
                one = align_lazy if isinstance(seqs[spec.name], LazySequence) else align_whole
                x[spec.name], mk[spec.name] = one(seqs[spec.name], spec, edges, dims[spec.name], hops[spec.name], dur)
            add(n_seg, x, mk, 0.0, dur)
            continue
        bounds = clip_windows(dur, *windows)
        ks = [k for k in range(len(bounds)) if time_range is None or time_range[0] <= bounds[k, 0] < time_range[1]]
        span = WINDOW_SPAN_S if any(isinstance(q, LazySequence) for q in seqs.values()) else np.inf
        k0 = 0
        while k0 < len(ks):  # groups of windows spanning at most ``span`` seconds (one group unless lazy)
            k1 = k0 + 1
            while k1 < len(ks) and bounds[ks[k1], 1] - bounds[ks[k0], 0] <= max(span, windows[0]):
                k1 += 1
            g0, g1 = float(bounds[ks[k0], 0]), float(bounds[ks[k1 - 1], 1])
            frames = {spec.name: window_frames(seqs[spec.name], spec, hops[spec.name], dur, g0, g1)
                      for spec in cfg.modalities}
            for k in ks[k0:k1]:
                ws, we = float(bounds[k, 0]), float(bounds[k, 1])
                n_seg = len(seg_item)
                seg_item.append(n)
                seg_bounds.append((ws, we, k))
                x, mk = {}, {}
                for spec in cfg.modalities:
                    x[spec.name], mk[spec.name] = align_window(frames[spec.name], spec,
                                                                segment_edges(cfg, spec.name, ws, we), dims[spec.name])
                add(n_seg, x, mk, ws, we)
            k0 = k1
    # one row of ``items`` per segment (the clip, or each window)
    sb = np.asarray(seg_bounds, np.float64).reshape(-1, 3)
    items = items.copy()
    if windows is not None:
        items = items.iloc[np.asarray(seg_item, np.int64)].reset_index(drop=True)
        items["window"] = sb[:, 2].astype(np.int64)
    items["start"] = sb[:, 0]
    items["end"] = sb[:, 1]
    x_all: dict[str, np.ndarray | RowArray] = {} if writers is not None else {m: w.finish() for m, w in xs.items()}
    m_all = {m: (np.concatenate(v) if v else np.zeros((0, al.steps_for(m)), bool)) for m, v in ms.items()}
    se = np.asarray(row_se, np.float64).reshape(-1, 2)
    rows = AlignedData(config=cfg, items=items, row_item=np.asarray(row_item, np.int64), row_start=se[:, 0],
                       row_end=se[:, 1], x=x_all, mask=m_all, classes=[], dims=dims,
                       feature_sets=dict(feats.feature_sets), windows=windows, row_step=np.asarray(row_step, np.int64))
    if targets is not None:
        rows.frame_targets = (np.concatenate(ys) if ys else np.zeros((0, al.steps, n_targets), np.float32))
        rows.frame_mask = np.concatenate(yms) if yms else np.zeros((0, al.steps), bool)
        has = np.zeros(len(items), bool)
        has[rows.row_item[rows.frame_mask.any(axis=1)]] = True
        rows.items["has_frame_targets"] = has
    return rows


# --------------------------------------------------------------------------- the four stages
def _window_arg(windows: tuple[float, float] | Sequence[float] | None) -> tuple[float, float] | None:
    if windows is None:
        return None
    length, hop = (float(v) for v in windows)
    if not (length > 0 and hop > 0):
        raise ValueError(f"windows=(length_s, hop_s) must be positive, got {windows!r}")
    return length, hop


def load_aligned(catalog: Catalog, config: DataConfig, item_ids: Iterable[str] | None = None, *,
                 classes: list[str] | None = None, dims: dict[str, int] | None = None,
                 windows: tuple[float, float] | Sequence[float] | None = None,
                 time_range: tuple[float, float] | None = None,
                 max_item_rows: int | None = None, frame_targets: bool | None = None,
                 batch_items: int | None = None) -> AlignedData:
    """Read the configured feature sets once and align every item (see the module docstring).

    ``item_ids``: restrict to these items (default: every item of the media table).
    ``classes``/``dims``: fix the label order and feature widths (when scoring with a run).
    ``windows``: ``(length_s, hop_s)`` to align every window of every clip as a clip of its
    own (``items`` then has one row per (item, window)); None: one timeline per clip.
    ``time_range``: with ``windows``, keep only the windows that start in ``[t0, t1)``.
    ``max_item_rows``: items with more frames are read block by block (default
    :data:`~emofuse.catalog.sequences.MAX_ITEM_ROWS`). ``frame_targets``: align the per-frame
    labels too (default: when ``config.targets == "frame"`` and without ``windows``; scoring
    passes False). ``batch_items``: items whose frames are read and aligned at a time (default
    :data:`BATCH_ITEMS`): a first pass finds which items have which modality, the widths and
    the frame periods, a second aligns batch by batch into the scratch files of
    :mod:`~emofuse.fusion.row_store`, so memory holds one batch's frames and the tables.
    """
    t0 = time.perf_counter()
    win = _window_arg(windows)
    if time_range is not None and win is None:
        raise ValueError("time_range needs windows=(length_s, hop_s)")
    cfg = config.resolved(catalog)
    media = select_media(catalog.media(), item_ids)
    ids = media["item_id"].tolist()
    batch = max(1, int(batch_items or BATCH_ITEMS))
    reader = FeatureReader(catalog, cfg, ids, max_item_rows=int(max_item_rows or MAX_ITEM_ROWS))
    survey = survey_features(reader, ids, batch_items=batch)
    t_read = time.perf_counter() - t0
    warn_missing(catalog, cfg, ids, survey.avail)
    keep, dropped = select_items(cfg, survey.avail)
    media = media[keep].reset_index(drop=True)
    ids = media["item_id"].tolist()
    avail = {m: a[keep] for m, a in survey.avail.items()}
    dims = check_widths(cfg, {m: set(w[keep][w[keep] >= 0].tolist()) for m, w in survey.widths.items()}, dims)
    cls = item_classes(media, cfg, classes)
    t1 = time.perf_counter()
    if frame_targets is None:
        frame_targets = cfg.targets == "frame" and win is None
    targets = read_frame_targets(catalog, ids, cfg.dimensional) if frame_targets else None
    writers = new_writers(cfg, dims)
    parts = []
    order = reader.locality_order(ids)
    for lo in range(0, max(len(ids), 1), batch):  # one batch's frames in memory at a time, shard by shard
        at = order[lo:lo + batch]
        part = media.iloc[at].reset_index(drop=True)
        feats = reader.read(part["item_id"].tolist(), survey.hops)
        items, _ = label_items(part, cfg, item_durations(part, feats), {m: a[at] for m, a in avail.items()},
                               classes=cls)
        parts.append(align_items(cfg, items, feats, dims, windows=win, time_range=time_range, targets=targets,
                                 writers=writers))
    rows = join_rows(parts, {m: w.finish() for m, w in writers.items()})
    rows = in_item_order(rows, pd.Index(ids).get_indexer(rows.items["item_id"]))
    timings = {"read_s": t_read, "align_s": time.perf_counter() - t1, "total_s": time.perf_counter() - t0,
               "items": float(len(ids))}
    log.info("loaded %d items (%d segments, %d rows) of %s in %.2f s (read %.2f s, align %.2f s, batches of %d)",
             len(ids), len(rows.items), len(rows.row_item), {s.name: s.feature_set for s in cfg.modalities},
             timings["total_s"], t_read, timings["align_s"], batch)
    return dataclasses.replace(rows, classes=cls, timings=timings, dropped=dropped)
