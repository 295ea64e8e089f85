"""Reading a feature set's features: frame-level sequences from Zarr shards, per-clip vectors.

Extraction stores a task's sequences as one Zarr v3 group (a *shard*: the rows of the
task's items concatenated; arrays ``times``, ``values`` and auxiliary ones such as
``mask``, ``bbox``, ``det_score``, ``start``, ``end``) plus index rows (item_id, shard,
offset, length, t_start, t_end). This module turns index rows into arrays:

* :func:`load_sequences` reads each shard once, whole (many short items);
* :class:`LazySequence` is one long item, read block by block and never whole;
* :func:`read_sequences` chooses: items longer than ``max_item_rows`` lazily, items of a
  shard with more than :data:`MAX_SHARD_ROWS` rows one by one (so a long neighbour is never
  loaded), the others shard by shard.

:func:`clip_vectors` makes one vector per item of a per-clip table. The functions take a
:class:`~emofuse.catalog.layout.Layout` and committed index rows;
:class:`~emofuse.catalog.store.Catalog` fronts them (``Catalog.read_sequences``,
``Catalog.sequence_arrays``, ``Catalog.clip_vectors``), so only catalog code opens a shard.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from emofuse.catalog.records import ExtractResult, Sequence
    >>> from emofuse.catalog.store import Catalog
    >>> cat = Catalog(tempfile.mkdtemp()).init()
    >>> t = np.arange(10) * 0.1
    >>> seq = Sequence(t, {"values": np.arange(20, dtype=np.float32).reshape(10, 2), "mask": t < 0.5})
    >>> cat.commit_task("demo-v1", "task-a", [ExtractResult("item-1", sequence=seq, n_frames=10)])
    1
    >>> cat.sequence_arrays("demo-v1")
    ['mask', 'values']
    >>> whole = cat.read_sequences("demo-v1", ["item-1"])["item-1"]       # short: in memory
    >>> whole["values"].shape, whole["mask"].astype(bool).tolist()[:6]   # masks are stored as uint8
    ((10, 2), [True, True, True, True, True, False])
    >>> long = cat.read_sequences("demo-v1", ["item-1"], max_item_rows=4)["item-1"]
    >>> long.width, [len(b["times"]) for b in long.blocks()]               # 4 rows at a time
    (2, [4, 4, 2])
    >>> long.read(0.25, 0.55)["values"][:, 0].tolist()
    [6.0, 8.0, 10.0]
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import zarr

from emofuse.catalog.layout import Layout

#: Items with more rows than this (in one feature set) are read block by block, never whole.
MAX_ITEM_ROWS = 65536
#: Shards with more rows than this are read item by item instead of whole.
MAX_SHARD_ROWS = 262144

#: One item's rows: ``times`` and the named arrays, or a :class:`LazySequence` for a long item.
Arrays = dict[str, np.ndarray]


def open_shard(layout: Layout, feature_set: str, shard: str) -> zarr.Group:
    """The Zarr group of one shard, read-only."""
    return zarr.open_group(layout.shard(feature_set, shard), mode="r")


def shard_arrays(layout: Layout, feature_set: str, shards: Iterable[str]) -> list[str]:
    """Sorted names of the arrays (besides ``times``) that every one of ``shards`` holds."""
    common: set[str] | None = None
    for shard in dict.fromkeys(shards):
        names = set(open_shard(layout, feature_set, shard).array_keys())
        common = names if common is None else common & names
    return sorted((common or set()) - {"times"})


def load_sequences(layout: Layout, feature_set: str, index: pd.DataFrame,
                   arrays: Iterable[str] | None = None) -> dict[str, Arrays]:
    """item_id -> {"times": …, "values": …, …} of the items in ``index``, reading each shard once, whole.

    ``arrays``: which arrays besides ``times`` (None: all of each shard).
    """
    out: dict[str, Arrays] = {}
    for shard, rows in index.groupby("shard"):
        g = open_shard(layout, feature_set, shard)
        names = ["times", *(arrays if arrays is not None else [n for n in g.array_keys() if n != "times"])]
        data = {n: g[n][:] for n in names}
        for item, off, length in zip(rows["item_id"], rows["offset"], rows["length"]):
            out[item] = {n: a[off:off + length] for n, a in data.items()}
    return out


class LazySequence:
    """One item's rows in a shard, read block by block (``block_rows`` rows at most), never whole.

    ``names``: the arrays read besides ``times``; ``t_start``/``t_end``: the item's first
    and last time (from the index, without reading the shard).
    """

    def __init__(self, layout: Layout, feature_set: str, shard: str, offset: int, length: int,
                 names: Sequence[str], t_start: float, t_end: float, block_rows: int = MAX_ITEM_ROWS) -> None:
        self.layout, self.feature_set, self.shard = layout, feature_set, shard
        self.offset, self.length, self.names = int(offset), int(length), list(names)
        self.t_start, self.t_end = float(t_start), float(t_end)
        self.block_rows = max(1, int(block_rows))
        self._group: zarr.Group | None = None
        self._spans: list[tuple[int, int, float, float]] | None = None

    def __repr__(self) -> str:
        return (f"LazySequence({self.feature_set!r}, shard={self.shard!r}, rows={self.length}, "
                f"arrays={self.names}, block_rows={self.block_rows})")

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            self._group = open_shard(self.layout, self.feature_set, self.shard)
        return self._group

    @property
    def width(self) -> int:
        """Feature width: the second dimension of ``values`` (1 for a 1-d array)."""
        shape = self.group["values"].shape
        return int(shape[1]) if len(shape) > 1 else 1

    def _read(self, name: str, a: int, b: int) -> np.ndarray:
        return np.asarray(self.group[name][self.offset + a: self.offset + b])

    def spans(self) -> list[tuple[int, int, float, float]]:
        """(first row, end row, min time, max time) of each block (one pass over ``times``, cached).

        A block with untimed rows (NaN times) spans all times: its untimed rows belong to every range.
        """
        if self._spans is None:
            out = []
            for a in range(0, self.length, self.block_rows):
                b = min(a + self.block_rows, self.length)
                t = self._read("times", a, b)
                fin = t[np.isfinite(t)]
                timed = fin.size == t.size
                out.append((a, b, float(fin.min()) if timed else -np.inf, float(fin.max()) if timed else np.inf))
            self._spans = out
        return self._spans

    def first_steps(self, n: int = 4096) -> np.ndarray:
        """Time steps between the first ``n`` rows (enough to estimate the frame period)."""
        return np.diff(self._read("times", 0, min(n, self.length)))

    def blocks(self, t0: float = -np.inf, t1: float = np.inf) -> Iterator[Arrays]:
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

    def read(self, t0: float = -np.inf, t1: float = np.inf) -> Arrays | None:
        """The rows in ``[t0, t1)`` as one set of arrays (None when there are none)."""
        parts = list(self.blocks(t0, t1))
        if not parts:
            return None
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def read_sequences(layout: Layout, feature_set: str, index: pd.DataFrame, item_ids: Iterable[str],
                   arrays: Sequence[str], *, max_item_rows: int = MAX_ITEM_ROWS,
                   max_shard_rows: int = MAX_SHARD_ROWS) -> dict[str, Arrays | LazySequence]:
    """item_id -> arrays (in memory) or :class:`LazySequence` (items with more than ``max_item_rows`` rows).

    ``index``: the feature set's whole committed index (shard sizes count every item);
    ``arrays``: the arrays read besides ``times``. Items absent from the index are absent.
    """
    if not len(index):
        return {}
    shard_rows = index.groupby("shard")["length"].sum()
    idx = index[index["item_id"].isin(set(item_ids))]
    long = idx["length"].to_numpy() > max_item_rows
    big = idx["shard"].map(shard_rows).to_numpy() > max_shard_rows
    out: dict[str, Arrays | LazySequence] = {}
    small = idx[~long & ~big]
    if len(small):
        out.update(load_sequences(layout, feature_set, small, arrays))
    for r in idx[long].itertuples():
        out[r.item_id] = LazySequence(layout, feature_set, r.shard, r.offset, r.length, arrays, r.t_start, r.t_end,
                                      block_rows=max_item_rows)
    for shard, rows in idx[~long & big].groupby("shard"):
        g = open_shard(layout, feature_set, shard)
        for item, off, length in zip(rows["item_id"], rows["offset"], rows["length"]):
            out[item] = {n: np.asarray(g[n][off:off + length]) for n in ["times", *arrays]}
    return out


def clip_vectors(clips: pd.DataFrame, row_columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """item_id -> float32 vector of a per-clip table: its ``embedding`` column, else its numeric feature columns.

    ``row_columns``: the feature columns the feature set declares (numeric ones present are
    used); without any, every numeric column but ``duration``.

    >>> df = pd.DataFrame({"item_id": ["a", "b"], "loudness": [1.0, 2.0], "pitch": [3, 4], "duration": [2.5, 3.0]})
    >>> {k: v.tolist() for k, v in clip_vectors(df).items()}
    {'a': [1.0, 3.0], 'b': [2.0, 4.0]}
    >>> clip_vectors(df, ["pitch"])["b"].tolist()
    [4.0]
    """
    if not len(clips):
        return {}
    if "embedding" in clips:
        return {i: np.asarray(v, np.float32) for i, v in zip(clips["item_id"], clips["embedding"])}
    cols = [c for c in (row_columns or []) if c in clips and pd.api.types.is_numeric_dtype(clips[c])]
    if not cols:
        cols = [c for c in clips.columns if c not in ("item_id", "duration")
                and pd.api.types.is_numeric_dtype(clips[c])]
    mat = clips[cols].to_numpy(np.float32)
    return dict(zip(clips["item_id"], mat))
