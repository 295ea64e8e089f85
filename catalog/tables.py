"""Parquet tables of a catalog: read a folder of parts into pandas, turn per-clip rows into Arrow.

A table is a folder of immutable ``part-*.parquet`` files (hidden ``.tmp-*`` names are
writers at work and are skipped). These helpers are shared by the media, status,
per-clip and prediction tables of :class:`~emofuse.catalog.store.Catalog`.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from emofuse.catalog import atomic
    >>> folder = tempfile.mkdtemp() + "/clips"
    >>> read_table(folder, pa.schema([("item_id", pa.string())])).columns.tolist()   # absent: empty frame
    ['item_id']
    >>> table = rows_to_table([{"item_id": "a", "mean": 1.0, "vec": np.ones(2)},
    ...                        {"item_id": "b", "mean": 2.0, "vec": np.zeros(2)}])
    >>> table.schema.field("vec").type
    ListType(list<item: float>)
    >>> _ = atomic.write_parquet(table, folder, "task-1")
    >>> read_table(folder)["mean"].tolist()
    [1.0, 2.0]
"""
from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from fsspec.core import url_to_fs


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC (the time columns of every table)."""
    return dt.datetime.now(dt.timezone.utc)


def read_table(folder: str, schema: pa.Schema | None = None, *, partitioning: str | None = None) -> pd.DataFrame:
    """Read a Parquet folder into pandas (empty frame with the schema's columns when absent)."""
    fs, path = url_to_fs(folder)
    if not fs.exists(path) or not any(not os.path.basename(p).startswith((".", "_")) for p in fs.find(path)):
        return schema.empty_table().to_pandas() if schema is not None else pd.DataFrame()
    dataset = ds.dataset(path, filesystem=fs, format="parquet", schema=schema, partitioning=partitioning)
    return dataset.to_table().to_pandas()


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Per-clip rows to Arrow: numpy vectors become list<float32>, names stay as given."""
    cols: dict[str, list[Any]] = defaultdict(list)
    names = list(rows[0])
    for r in rows:
        if list(r) != names:
            raise ValueError(f"per-clip rows disagree on columns: {list(r)} vs {names}")
        for k, v in r.items():
            cols[k].append(v)
    arrays = {}
    for k, vals in cols.items():
        first = vals[0]
        if isinstance(first, np.ndarray) and first.ndim == 1:
            arrays[k] = pa.array([np.asarray(v, np.float32) for v in vals], type=pa.list_(pa.float32()))
        elif isinstance(first, (np.floating, float)):
            arrays[k] = pa.array(np.asarray(vals, np.float64))
        else:
            arrays[k] = pa.array(vals)
    return pa.table(arrays)


__all__ = ["read_table", "rows_to_table", "utcnow"]
