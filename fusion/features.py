"""Stages 1–3 of :func:`emofuse.fusion.align.load_aligned`: read, availability, labels.

1. read — :func:`select_media` (which items), :class:`FeatureReader` (each feature set's
   frames through :class:`~emofuse.catalog.store.Catalog`, any batch of items at a time: sequences
   with the :data:`AUX_ARRAYS` every shard holds, long items as
   :class:`~emofuse.catalog.sequences.LazySequence`; per-clip vectors; frame periods),
   :func:`read_features` (everything in one read), :func:`survey_features` (a pass over every
   item, batch by batch: availability, widths, frame periods);
2. availability — :func:`availability` (which items have which modality) and
   :func:`select_items` (``missing="drop"`` removes items lacking one; items with none are
   always removed);
3. labels — :func:`feature_widths`, :func:`item_durations`, :func:`label_items` (the
   ``items`` table: label index, dimensional targets, ``has_<modality>``).

Example (stages 2 and 3 on hand-made frames; stage 1 needs a catalog, see ``load_aligned``):
    >>> import numpy as np, pandas as pd
    >>> from emofuse.fusion.data_config import DataConfig, ModalitySpec
    >>> cfg = DataConfig([ModalitySpec("audio", "egemaps"), ModalitySpec("face", "faces")], missing="drop")
    >>> feats = Features({"audio": {"a": {"times": np.r_[0.0, 0.5], "values": np.zeros((2, 3))},
    ...                             "b": {"times": np.r_[0.0, 0.5], "values": np.ones((2, 3))}},
    ...                   "face": {"a": {"times": np.r_[0.0], "values": np.zeros((1, 8))}}}, hops={"audio": 0.5})
    >>> avail = availability(feats, ["a", "b"])
    >>> {m: a.tolist() for m, a in avail.items()}
    {'audio': [True, True], 'face': [True, False]}
    >>> select_items(cfg, avail)[0].tolist(), select_items(cfg, avail)[1]
    ([True, False], {'missing_face': 1})
    >>> feature_widths(cfg, feats, ["a", "b"])
    {'audio': 3, 'face': 8}
    >>> media = pd.DataFrame({"item_id": ["a", "b"], "speaker": ["s1", "s2"], "emotion": ["sad", None]})
    >>> item_durations(media, feats).tolist()              # no duration column: last frame + hop
    [1.0, 1.0]
    >>> items, classes = label_items(media, cfg, np.r_[1.0, 1.0], avail)
    >>> classes, items["label"].tolist(), items["has_face"].tolist()
    (['sad'], [0, -1], [True, False])
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emofuse.catalog.corpora.recipes import class_order
from emofuse.catalog.sequences import MAX_ITEM_ROWS, LazySequence
from emofuse.catalog.store import Catalog
from emofuse.fusion.data_config import DataConfig
from emofuse.fusion.folds import PLAN_COLUMNS
from emofuse.fusion.timeline import median_hop, median_of_counts, step_counts

log = logging.getLogger(__name__)

#: Arrays read per feature set besides ``times``/``values`` (only those every shard holds).
AUX_ARRAYS = ("mask", "start", "end")

#: One item's frames of one modality: arrays in memory, or a long item read block by block.
Frames = dict[str, np.ndarray] | LazySequence


@dataclass
class Features:
    """The read stage's output: per modality, item_id -> frames (items without data absent)."""

    seqs: dict[str, dict[str, Frames]]
    #: Frame period (s) of each sequence modality (per-clip modalities have none).
    hops: dict[str, float] = field(default_factory=dict)
    #: Modality -> exact feature-set key.
    feature_sets: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- 1. read
def select_media(media: pd.DataFrame, item_ids: Iterable[str] | None) -> pd.DataFrame:
    """The media rows of ``item_ids`` in that order (all rows when None); unknown ids raise KeyError."""
    if item_ids is None:
        return media
    wanted = list(dict.fromkeys(item_ids))
    missing_ids = sorted(set(wanted) - set(media["item_id"]))
    if missing_ids:
        raise KeyError(f"{len(missing_ids)} item ids are not in the catalog's media table, e.g. {missing_ids[:3]}")
    return media.set_index("item_id").loc[wanted].reset_index()


class FeatureReader:
    """Reads the frames of any batch of ``item_ids`` (items whose status is ``ok``), with the
    catalog's tables (status, sequence index, per-clip vectors) read once, so a corpus can be
    read a batch of items at a time: every batch sees the same arrays and frame periods as
    one read of everything would.
    """

    def __init__(self, catalog: Catalog, cfg: DataConfig, item_ids: Iterable[str], *,
                 max_item_rows: int = MAX_ITEM_ROWS) -> None:
        self.catalog, self.cfg, self.max_item_rows = catalog, cfg, max_item_rows
        idset = set(item_ids)
        self.ok: dict[str, set[str]] = {}
        self.names: dict[str, list[str]] = {}
        self.index: dict[str, pd.DataFrame] = {}
        self.vectors: dict[str, dict[str, np.ndarray]] = {}
        for spec in cfg.modalities:
            key = spec.feature_set
            ok = self.ok[spec.name] = catalog.done(key) & idset
            if spec.source == "clip":
                self.vectors[spec.name] = catalog.clip_vectors(key, ok)
                continue
            common = set(catalog.sequence_arrays(key, ok))
            self.names[spec.name] = ["values", *(a for a in AUX_ARRAYS if a in common)]
            self.index[spec.name] = catalog.sequence_index(key)

    def locality_order(self, item_ids: Sequence[str]) -> np.ndarray:
        """Positions of ``item_ids`` in the order their frames are stored (shard, then offset, of the
        first sequence feature set; items without frames there last, in their order): batches taken
        in this order read each shard about once, where the media table's order (by item id) would
        touch every shard in every batch."""
        n = len(item_ids)
        if not self.index:
            return np.arange(n)
        idx = next(iter(self.index.values())).set_index("item_id")  # one row per item (Catalog.sequence_index)
        loc = idx[["shard", "offset"]].reindex(list(item_ids))
        shard = pd.Categorical(loc["shard"]).codes.astype(np.int64)
        shard[shard < 0] = shard.max(initial=0) + 1
        offset = loc["offset"].to_numpy(np.float64, na_value=np.inf)
        return np.lexsort((np.arange(n), offset, shard))

    def read(self, item_ids: Iterable[str], hops: dict[str, float] | None = None) -> Features:
        """The frames of ``item_ids`` (empty sequences dropped). ``hops``: each sequence modality's
        frame period when known (:func:`survey_features` finds it over every item); else
        ``spec.hop`` or the median time step of these items (long items contribute their first steps)."""
        idset = set(item_ids)
        out = Features({})
        for spec in self.cfg.modalities:
            out.feature_sets[spec.name] = spec.feature_set
            ok = self.ok[spec.name] & idset
            if spec.source == "clip":
                vecs = self.vectors[spec.name]
                out.seqs[spec.name] = {i: {"values": vecs[i][None, :]} for i in ok if i in vecs}
                continue
            seqs = self.catalog.read_sequences(spec.feature_set, ok, arrays=self.names[spec.name],
                                               max_item_rows=self.max_item_rows, index=self.index[spec.name])
            out.seqs[spec.name] = {i: s for i, s in seqs.items() if isinstance(s, LazySequence) or len(s["values"])}
            if spec.hop is not None:
                out.hops[spec.name] = spec.hop
            elif hops is not None:
                out.hops[spec.name] = hops[spec.name]
            else:
                out.hops[spec.name] = median_hop(hop_sample(out.seqs[spec.name]))
        return out


def hop_sample(seqs: dict[str, Frames]) -> dict[str, dict[str, np.ndarray]]:
    """The times a frame period is estimated from: in-memory items whole, long items their first
    few thousand steps."""
    sample: dict[str, dict[str, np.ndarray]] = {i: s for i, s in seqs.items() if not isinstance(s, LazySequence)}
    lazy = [s for s in seqs.values() if isinstance(s, LazySequence)]
    sample.update({f"\0lazy{k}": {"times": np.cumsum(np.r_[0.0, s.first_steps()])} for k, s in enumerate(lazy)})
    return sample


def read_features(catalog: Catalog, cfg: DataConfig, item_ids: Iterable[str], *,
                  max_item_rows: int = MAX_ITEM_ROWS) -> Features:
    """Each modality's frames of the items whose status is ``ok`` (``cfg`` resolved to keys), in one read.

    Sequences come with ``values`` and the :data:`AUX_ARRAYS` every shard holds; empty ones are
    dropped. Each feature set's frame period is ``spec.hop`` or its median time step (long
    items contribute their first steps).
    """
    ids = list(item_ids)
    return FeatureReader(catalog, cfg, ids, max_item_rows=max_item_rows).read(ids)


@dataclass
class Survey:
    """What every item brings, found before any is aligned (:func:`survey_features`)."""

    #: modality -> bool per item: the item has frames of it.
    avail: dict[str, np.ndarray]
    #: modality -> feature width per item (-1: no frames).
    widths: dict[str, np.ndarray]
    #: sequence modality -> frame period over every item (as :func:`read_features` finds it).
    hops: dict[str, float]


def survey_features(reader: FeatureReader, item_ids: Sequence[str], *, batch_items: int) -> Survey:
    """Availability, widths and frame periods of ``item_ids``, read ``batch_items`` at a time in
    the order they are stored (the frames of one batch in memory at once; the steps are kept as
    distinct values and counts)."""
    n = len(item_ids)
    order = reader.locality_order(item_ids)
    avail = {s.name: np.zeros(n, bool) for s in reader.cfg.modalities}
    widths = {s.name: np.full(n, -1, np.int64) for s in reader.cfg.modalities}
    empty = (np.zeros(0), np.zeros(0, np.int64))
    counts: dict[str, tuple[np.ndarray, np.ndarray]] = dict.fromkeys(reader.names, empty)
    no_hops = dict.fromkeys(reader.names, 0.0)  # found below, over every batch
    for lo in range(0, n, batch_items):
        at = order[lo:lo + batch_items]
        batch = [item_ids[k] for k in at]
        feats = reader.read(batch, no_hops)
        for m, a in availability(feats, batch).items():
            avail[m][at] = a
            widths[m][at] = [_width(feats.seqs[m][i]) if i in feats.seqs[m] else -1 for i in batch]
        for m, (v0, c0) in counts.items():  # merged as it goes: as many entries as distinct steps
            v1, c1 = step_counts(hop_sample(feats.seqs[m]))
            values, where = np.unique(np.r_[v0, v1], return_inverse=True)
            counts[m] = values, np.bincount(where, weights=np.r_[c0, c1], minlength=len(values)).astype(np.int64)
    hops = {spec.name: spec.hop if spec.hop is not None else median_of_counts(*counts[spec.name])
            for spec in reader.cfg.modalities if spec.name in counts}
    return Survey(avail, widths, hops)


# --------------------------------------------------------------------------- 2. availability
def availability(feats: Features, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """modality -> bool per item: whether the item has frames of it."""
    return {m: np.array([i in s for i in item_ids], bool) for m, s in feats.seqs.items()}


def select_items(cfg: DataConfig, avail: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, int]]:
    """Which items stay (bool per item) and the counts of those dropped, by reason.

    ``missing="drop"`` drops items lacking any modality (``missing_<name>``); items with none
    of the modalities are always dropped (``no_modality``).
    """
    keep = np.ones(len(next(iter(avail.values()))), bool)
    dropped: dict[str, int] = {}
    if cfg.missing == "drop":
        for spec in cfg.modalities:
            n_miss = int((~avail[spec.name]).sum())
            if n_miss:
                keep &= avail[spec.name]
                dropped[f"missing_{spec.name}"] = n_miss
    none = ~np.any(np.stack(list(avail.values())), axis=0)
    if (none & keep).any():
        log.warning("%d items have none of the modalities %s: dropped", int((none & keep).sum()), list(avail))
        dropped["no_modality"] = int((none & keep).sum())
    return keep & ~none, dropped


def warn_missing(catalog: Catalog, cfg: DataConfig, item_ids: Sequence[str], avail: dict[str, np.ndarray]) -> None:
    """Log, per modality, how many items lack it and why (their status; ``no data``: ok but empty)."""
    for spec in cfg.modalities:
        absent = [i for i, a in zip(item_ids, avail[spec.name]) if not a]
        if not absent:
            continue
        why = catalog.status_counts(spec.feature_set, absent)
        if "ok" in why:
            why["no data"] = why.pop("ok")
        action = "dropped" if cfg.missing == "drop" else "kept with the modality masked"
        log.warning("%s (%s): %d of %d items have no features (%s): %s", spec.name, spec.feature_set,
                    len(absent), len(item_ids), ", ".join(f"{k}={v}" for k, v in sorted(why.items())), action)


# --------------------------------------------------------------------------- 3. labels
def _width(seq: Frames) -> int:
    return seq.width if isinstance(seq, LazySequence) else int(seq["values"].shape[1])


def feature_widths(cfg: DataConfig, feats: Features, item_ids: Sequence[str],
                   dims: dict[str, int] | None = None) -> dict[str, int]:
    """Feature width per modality; items must agree, and match ``dims`` (a run's widths) when given."""
    return check_widths(cfg, {spec.name: {_width(feats.seqs[spec.name][i]) for i in item_ids
                                          if i in feats.seqs[spec.name]} for spec in cfg.modalities}, dims)


def check_widths(cfg: DataConfig, widths: dict[str, set[int]], dims: dict[str, int] | None = None) -> dict[str, int]:
    """The one width per modality of ``widths`` (modality -> the widths its items have), checked
    against ``dims`` (a run's widths) when given; raises when items disagree or none has features."""
    dims = dict(dims or {})
    for spec in cfg.modalities:
        found = set(widths[spec.name])
        if len(found) > 1:
            raise ValueError(f"{spec.feature_set}: items disagree on the feature width: {sorted(found)}")
        if spec.name in dims and found and found != {dims[spec.name]}:
            raise ValueError(f"{spec.feature_set}: width {found.pop()} does not match the run's {dims[spec.name]}")
        if spec.name not in dims:
            if not found:
                raise ValueError(f"no item has features of {spec.feature_set} for modality {spec.name!r}")
            dims[spec.name] = found.pop()
    return dims


def item_durations(media: pd.DataFrame, feats: Features) -> np.ndarray:
    """Each item's duration: the media table's, else the last frame's end over its sequences (else 1 s)."""
    ids = media["item_id"].tolist()
    durations = (media["duration"].to_numpy(np.float64, na_value=np.nan) if "duration" in media
                 else np.full(len(ids), np.nan))
    for n, i in enumerate(ids):
        if not np.isfinite(durations[n]) or durations[n] <= 0:
            ends = []
            for m, hop in feats.hops.items():
                seq = feats.seqs[m].get(i)
                if seq is None:
                    continue
                last = seq.t_end if isinstance(seq, LazySequence) else float(seq["times"][-1])
                if np.isfinite(last):
                    ends.append(last + hop)
            durations[n] = max(ends) if ends else 1.0
    return durations


def _label_classes(labels: pd.Series, classes: list[str] | None, order: Sequence[str] | None = None) -> list[str]:
    if classes is not None:
        return list(classes)
    present = set(labels.dropna().astype(str))
    ordered = [c for c in (order or ()) if c in present]
    return ordered + sorted(present - set(ordered))


def _corpus_order(media: pd.DataFrame, cfg: DataConfig) -> tuple[str, ...] | None:
    """The class order of the corpus every item comes from (its registered recipe's), when the label is
    its ``emotion``; None (the classes are then sorted, and the log says so) for items of several corpora,
    of none, or of a corpus without an order."""
    corpora = sorted(set(media["corpus"].dropna())) if "corpus" in media else []
    order = class_order(corpora[0]) if cfg.label == "emotion" and len(corpora) == 1 else None
    if order is None and cfg.classes is None:
        log.info("no class order for the %s of corpus %s: the classes are sorted by name", cfg.label,
                 ", ".join(corpora) or "(none)")
    return order


def item_classes(media: pd.DataFrame, cfg: DataConfig, classes: list[str] | None = None) -> list[str]:
    """The class order of these items' labels (see :func:`label_items`)."""
    if classes is not None:
        return list(classes)
    label_col = media[cfg.label] if cfg.label in media else pd.Series([None] * len(media))
    return _label_classes(label_col, cfg.classes, _corpus_order(media, cfg))


def label_items(media: pd.DataFrame, cfg: DataConfig, durations: np.ndarray, avail: dict[str, np.ndarray], *,
                classes: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The items table (item_id, speaker, the plan columns ``split``/``session`` where the media
    has them, duration, label index or -1, dimensional targets, ``has_<modality>``) and the class
    order (``classes``, else ``cfg.classes``, else the order of the one corpus the items come from
    (its registered recipe's class order) for the classes present, then the others sorted by name)."""
    label_col = media[cfg.label] if cfg.label in media else pd.Series([None] * len(media))
    cls = item_classes(media, cfg, classes)
    lookup = {c: k for k, c in enumerate(cls)}
    labels = np.array([lookup.get(str(v), -1) if v is not None and not pd.isna(v) else -1 for v in label_col], np.int64)
    items = pd.DataFrame({"item_id": media["item_id"].tolist(),
                          "speaker": media["speaker"].to_numpy() if "speaker" in media else None,
                          "duration": durations, "label": labels})
    for c in PLAN_COLUMNS[1:]:  # what fold plans select items by besides the speaker
        if c in media:
            items[c] = media[c].to_numpy()
    for c in cfg.dimensional:
        items[c] = media[c].astype("float64").to_numpy() if c in media else np.nan
    for m, a in avail.items():
        items[f"has_{m}"] = a
    return items, cls
