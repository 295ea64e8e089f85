"""Time attributions of an explained scoring: one weight per step of every prediction row.

Scoring with ``explain`` (:func:`emofuse.fusion.score.score_items`) stores, for each
prediction row (item, fold, window, window start) and each target (the predicted class, or
``valence``/``arousal``), a profile over time: TACFN's attention weights over its face
steps (``kind="attention"``) or an occlusion profile (``kind="occlusion"``: the drop of the
prediction when one time range is masked). The profiles of one prediction part are one
Zarr v3 shard (arrays ``times`` = step start, ``end``, ``weight``; profiles concatenated)
and one index part (:data:`~emofuse.catalog.schemas.TIME_ATTRIBUTION_INDEX_SCHEMA`) under
``attributions/run=<run_id>/``, both named after the prediction part they explain. The
shard is written first and the index part last (atomically), so a reader never follows an
index row to a missing shard. This module is the only code that writes or reads them;
plain zarr/pandas read them too (see docs/guides/report.md).

Example:
    >>> import tempfile
    >>> from emofuse.catalog.layout import Layout
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> rows = pd.DataFrame({"item_id": "a", "fold": "ensemble", "window": "clip", "window_start": 0.0,
    ...                      "window_end": 2.0, "start": [0.0, 1.0], "end": [1.0, 2.0], "weight": [0.25, 0.75],
    ...                      "kind": "attention", "target": "happy"})
    >>> path = write_time_attributions(layout, "run-1", rows, fold="ensemble", window="clip")
    >>> path.rsplit("/", 3)[1:]
    ['run=run-1', 'index', 'part-ensemble-ca978112ca1bbdcafac2.parquet']
    >>> read_time_attributions(layout, "run-1")[["item_id", "start", "end", "weight", "kind"]].values.tolist()
    [['a', 0.0, 1.0, 0.25, 'attention'], ['a', 1.0, 2.0, 0.75, 'attention']]
    >>> idx = pd.read_parquet(layout.attribution_index("run-1")).iloc[0]       # the same, without emofuse
    >>> import zarr
    >>> zarr.open_group(layout.attribution_shard("run-1", idx.shard))["weight"][idx.offset:idx.offset + idx.length]
    array([0.25, 0.75], dtype=float32)
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import zarr

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.predictions import part_name
from emofuse.catalog.schemas import TIME_ATTRIBUTION_COLUMNS, TIME_ATTRIBUTION_INDEX_SCHEMA
from emofuse.catalog.tables import read_table

#: The columns that identify one profile (one sequence of a shard).
PROFILE_KEYS = ["item_id", "fold", "window", "window_start", "target"]


def write_time_attributions(layout: Layout, run_id: str, rows: pd.DataFrame, *, fold: str, window: str) -> str | None:
    """Store the profiles of one prediction part (long rows in :data:`TIME_ATTRIBUTION_COLUMNS`).

    The index part gets the name of the prediction part of the same items, fold and window
    (so re-explaining them replaces it); the shard name adds a hash of its content. Returns
    the index part's path (None when ``rows`` is empty).
    """
    missing = [c for c in TIME_ATTRIBUTION_COLUMNS if c not in rows]
    if missing:
        raise ValueError(f"time attribution rows lack columns {missing}")
    if not len(rows):
        return None
    rows = rows.sort_values(PROFILE_KEYS + ["start"], kind="stable").reset_index(drop=True)
    times = rows["start"].to_numpy(np.float64)
    end = rows["end"].to_numpy(np.float64)
    weight = rows["weight"].to_numpy(np.float32)
    name = part_name(str(fold), set(rows["item_id"]), window)
    digest = hashlib.sha256(b"".join(a.tobytes() for a in (times, end, weight))).hexdigest()[:10]
    shard = f"{name}-{digest}"
    atomic.write_zarr_shard(layout.attribution_shard(run_id, shard), times, {"end": end, "weight": weight},
                            {"run_id": run_id, "fold": str(fold), "window": window})
    groups = rows.groupby(PROFILE_KEYS, sort=False, dropna=False)
    first = groups.head(1).index.to_numpy()
    lengths = groups.size().to_numpy()
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    head = rows.loc[first].reset_index(drop=True)
    index = pd.DataFrame({
        "item_id": head["item_id"].astype(str), "fold": head["fold"].astype(str), "window": head["window"].astype(str),
        "window_start": head["window_start"].astype(np.float64), "window_end": head["window_end"].astype(np.float64),
        "kind": head["kind"].astype(str), "target": head["target"].astype(str), "shard": shard,
        "offset": offsets.astype(np.int64), "length": lengths.astype(np.int64),
        "t_start": times[offsets], "t_end": end[offsets + lengths - 1],
    })
    table = pa.Table.from_pandas(index, schema=TIME_ATTRIBUTION_INDEX_SCHEMA, preserve_index=False)
    return atomic.write_parquet(table, layout.attribution_index(run_id), name)


def read_time_attribution_index(layout: Layout, run_id: str) -> pd.DataFrame:
    """The index rows of a run's profiles (one per profile; a re-written profile counts once)."""
    idx = read_table(layout.attribution_index(run_id), TIME_ATTRIBUTION_INDEX_SCHEMA)
    if len(idx):
        idx = idx.drop_duplicates(PROFILE_KEYS, keep="last").reset_index(drop=True)
    return idx


def read_time_attributions(layout: Layout, run_id: str, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Every step of a run's profiles (``item_ids`` or all) as rows in :data:`TIME_ATTRIBUTION_COLUMNS`.

    Sorted by item, fold, window, window start, target and step start; an empty frame
    with those columns when the run has none.
    """
    idx = read_time_attribution_index(layout, run_id)
    if item_ids is not None:
        idx = idx[idx["item_id"].isin(set(item_ids))]
    if not len(idx):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _DTYPES.items()})
    frames = []
    for shard, sub in idx.groupby("shard", sort=True):
        g = zarr.open_group(layout.attribution_shard(run_id, shard), mode="r")
        arrays = {n: np.asarray(g[n][:]) for n in ("times", "end", "weight")}
        take = np.concatenate([np.arange(o, o + n) for o, n in zip(sub["offset"], sub["length"])])
        reps = sub["length"].to_numpy()
        frame = {c: np.repeat(sub[c].to_numpy(), reps) for c in ("item_id", "fold", "window", "window_start",
                                                                   "window_end", "kind", "target")}
        frame.update(start=arrays["times"][take], end=arrays["end"][take], weight=arrays["weight"][take])
        frames.append(pd.DataFrame(frame))
    out = pd.concat(frames, ignore_index=True)[TIME_ATTRIBUTION_COLUMNS]
    out = out.astype(_DTYPES)
    return out.sort_values(PROFILE_KEYS + ["start"], kind="stable").reset_index(drop=True)


_DTYPES = {"item_id": object, "fold": object, "window": object, "window_start": np.float64,
           "window_end": np.float64, "start": np.float64, "end": np.float64, "weight": np.float32,
           "kind": object, "target": object}


__all__ = ["PROFILE_KEYS", "read_time_attribution_index", "read_time_attributions", "write_time_attributions"]
