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

from emofuse.catalog.urls import url_to_fs


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC (the time columns of every table)."""
    return dt.datetime.now(dt.timezone.utc)


def read_table(folder: str, schema: pa.Schema | None = None, *, partitioning: str | None = None) -> pd.DataFrame:
    """Read a Parquet folder into pandas (empty frame with the schema's columns when absent).

    The parts a compacted part replaces are left out (see :mod:`~emofuse.catalog.compaction`);
    a part deleted by a compaction between listing and reading makes it list and read again.
    """
    table = read_arrow(folder, schema, partitioning=partitioning)
    if table is None:
        return schema.empty_table().to_pandas() if schema is not None else pd.DataFrame()
    return table.to_pandas()


def read_arrow(folder: str, schema: pa.Schema | None = None, *, columns: list[str] | None = None,
               partitioning: str | None = None) -> pa.Table | None:
    """The visible parts of a Parquet folder as one Arrow table (only ``columns``, when given), as
    :func:`read_table` reads them; None when the folder holds none. Arrow, for readers that need a few
    columns of a large table without a Python object per value."""
    from emofuse.catalog.compaction import visible_parts

    fs, path = url_to_fs(folder)
    for attempt in range(_READ_TRIES):
        try:
            files = visible_parts(fs, path)
            if not files:
                return None
            dataset = ds.dataset(files, filesystem=fs, format="parquet", schema=schema, partitioning=partitioning,
                                 partition_base_dir=path)
            return dataset.to_table(columns=columns)
        except FileNotFoundError:
            if attempt == _READ_TRIES - 1:
                raise
    raise AssertionError("unreachable")


#: Listings a read of a folder tries while compactions delete the parts it listed.
_READ_TRIES = 5


def _arrow_type(values: list[Any]) -> pa.DataType:
    """The column type of per-clip values, from the first one that says it (not from the first row:
    a task whose first item has no transcript must not write a part of another schema).

    Vectors are list<float32>, Python floats float64; a column with no value at all is a string
    column, one of empty lists only a list of strings (the only optional per-clip fields are text).
    """
    for v in values:
        if v is None:
            continue
        if isinstance(v, np.ndarray) and v.ndim == 1:
            return pa.list_(pa.float32())
        if isinstance(v, (bool, np.bool_)):
            return pa.bool_()
        if isinstance(v, (np.floating, float)):
            return pa.float64()
        if isinstance(v, (int, np.integer)):
            return pa.int64()
        if isinstance(v, str):
            return pa.string()
        if isinstance(v, (list, tuple)):
            if not len(v):
                continue
            return pa.list_(_arrow_type(list(v)))
        return pa.array([v]).type
    return pa.list_(pa.string()) if any(isinstance(v, (list, tuple)) for v in values) else pa.string()


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Per-clip rows to Arrow: numpy vectors become list<float32>, names stay as given.

    >>> rows_to_table([{"item_id": "a", "transcript": None, "texts": []}]).schema.types
    [DataType(string), DataType(string), ListType(list<item: string>)]
    """
    cols: dict[str, list[Any]] = defaultdict(list)
    names = list(rows[0])
    for r in rows:
        if list(r) != names:
            raise ValueError(f"per-clip rows disagree on columns: {list(r)} vs {names}")
        for k, v in r.items():
            cols[k].append(v)
    arrays = {}
    for k, vals in cols.items():
        kind = _arrow_type(vals)
        if kind == pa.list_(pa.float32()):
            vals = [None if v is None else np.asarray(v, np.float32) for v in vals]
        arrays[k] = pa.array(vals, type=kind)
    return pa.table(arrays)


def folder_schema(folder: str) -> pa.Schema | None:
    """The schema of a folder's first part (what pyarrow and DuckDB take for the folder), or None."""
    fs, path = url_to_fs(folder)
    if not fs.exists(path):
        return None
    parts = sorted(p for p in fs.ls(path, detail=False)
                   if os.path.basename(p).startswith("part-") and p.endswith(".parquet"))
    return ds.dataset(parts[0], filesystem=fs, format="parquet").schema if parts else None


def conform(table: pa.Table, schema: pa.Schema | None) -> pa.Table:
    """``table`` in ``schema`` (the folder's), so every part of a folder has one schema.

    Columns the folder has and the table lacks are null; a column the folder lacks, or one that
    does not cast, raises ValueError (the writer changed its output without a new feature set).
    """
    if schema is None or table.schema.equals(schema):
        return table
    extra = [n for n in table.schema.names if n not in schema.names]
    if extra:
        raise ValueError(f"columns {extra} are not in the table's schema {schema.names}: "
                         "a changed output needs a new feature-set version")
    try:
        columns = [table.column(f.name).cast(f.type) if f.name in table.schema.names
                   else pa.nulls(len(table), f.type) for f in schema]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ValueError(f"a part does not fit its table's schema: {e}") from e
    return pa.Table.from_arrays(columns, schema=schema)


__all__ = ["conform", "folder_schema", "read_arrow", "read_table", "rows_to_table", "utcnow"]
