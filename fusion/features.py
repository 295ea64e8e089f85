"""Stages 1–3 of :func:`emofuse.fusion.align.load_aligned`: read, availability, labels.

1. read — :func:`select_media` (which items), :func:`read_features` (each feature set's
   frames through :class:`~emofuse.catalog.store.Catalog`: sequences with the
   :data:`AUX_ARRAYS` every shard holds, long items as
   :class:`~emofuse.catalog.sequences.LazySequence`; per-clip vectors; frame periods);
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
from emofuse.fusion.timeline import median_hop

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


def read_features(catalog: Catalog, cfg: DataConfig, item_ids: Iterable[str], *,
                  max_item_rows: int = MAX_ITEM_ROWS) -> Features:
    """Each modality's frames of the items whose status is ``ok`` (``cfg`` resolved to keys).

    Sequences come with ``values`` and the :data:`AUX_ARRAYS` every shard holds; empty ones are
    dropped. Each feature set's frame period is ``spec.hop`` or its median time step (long
    items contribute their first steps).
    """
    idset = set(item_ids)
    out = Features({})
    for spec in cfg.modalities:
        key = spec.feature_set
        out.feature_sets[spec.name] = key
        ok = catalog.done(key) & idset
        if spec.source == "clip":
            vecs = catalog.clip_vectors(key, ok)
            out.seqs[spec.name] = {i: {"values": v[None, :]} for i, v in vecs.items()}
            continue
        common = set(catalog.sequence_arrays(key, ok))
        names = ["values", *(a for a in AUX_ARRAYS if a in common)]
        seqs = catalog.read_sequences(key, ok, arrays=names, max_item_rows=max_item_rows)
        seqs = {i: s for i, s in seqs.items() if isinstance(s, LazySequence) or len(s["values"])}
        out.seqs[spec.name] = seqs
        if spec.hop is not None:
            out.hops[spec.name] = spec.hop
            continue
        in_memory = {i: s for i, s in seqs.items() if not isinstance(s, LazySequence)}
        lazy = [s for s in seqs.values() if isinstance(s, LazySequence)]
        # a few thousand steps of each long item join the median
        in_memory.update({f"\0lazy{k}": {"times": np.cumsum(np.r_[0.0, s.first_steps()])} for k, s in enumerate(lazy)})
        out.hops[spec.name] = median_hop(in_memory)
    return out


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
    dims = dict(dims or {})
    for spec in cfg.modalities:
        found = {_width(feats.seqs[spec.name][i]) for i in item_ids if i in feats.seqs[spec.name]}
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


def label_items(media: pd.DataFrame, cfg: DataConfig, durations: np.ndarray, avail: dict[str, np.ndarray], *,
                classes: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The items table (item_id, speaker, the plan columns ``split``/``session`` where the media
    has them, duration, label index or -1, dimensional targets, ``has_<modality>``) and the class
    order (``classes``, else ``cfg.classes``, else the order of the one corpus the items come from
    (its registered recipe's class order) for the classes present, then the others sorted by name)."""
    label_col = media[cfg.label] if cfg.label in media else pd.Series([None] * len(media))
    cls = classes if classes is not None else _label_classes(label_col, cfg.classes, _corpus_order(media, cfg))
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
