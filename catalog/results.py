"""The results table ``<catalog>/results/``: metrics of training runs and evaluations, with intervals.

One part per evaluation (``part-<evaluation>.parquet``), every part in
:data:`~emofuse.catalog.schemas.RESULTS_SCHEMA`, so ``pandas.read_parquet(<catalog>/results)``
reads the whole table without emofuse code. An evaluation id names what was scored (a run on
its own folds, or a run on another corpus): writing the same id again changes nothing (the
part already there is kept), so an evaluation re-run after a crash neither duplicates nor
rewrites rows. Parts are written whole and atomically (:func:`emofuse.catalog.atomic.write_parquet`).

Example:
    >>> import tempfile
    >>> import pandas as pd
    >>> from emofuse.catalog.layout import Layout
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> rows = pd.DataFrame({"run": ["r1"], "model": ["tacfn"], "fold": ["pooled"], "split": ["test"],
    ...                      "metric": ["accuracy"], "value": [0.8], "low": [0.7], "high": [0.9], "n_items": [40]})
    >>> path = write_results(layout, "train-r1", rows)
    >>> write_results(layout, "train-r1", rows.assign(value=0.1)) == path     # same id: nothing changes
    True
    >>> pd.read_parquet(layout.results)[["evaluation", "run", "metric", "value"]].values.tolist()
    [['train-r1', 'r1', 'accuracy', 0.8]]
"""
from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.schemas import RESULTS_SCHEMA
from emofuse.catalog.tables import read_table, utcnow
from emofuse.catalog.urls import url_to_fs


def part_stem(evaluation: str) -> str:
    """The part name of an evaluation id: its characters that are safe in a file name.

    >>> part_stem("tacfn-1 on crema-d")
    'tacfn-1_on_crema-d'
    """
    stem = re.sub(r"[^A-Za-z0-9._=-]", "_", evaluation)
    if not stem:
        raise ValueError("an evaluation id must not be empty")
    return stem


def results_table(evaluation: str, rows: pd.DataFrame) -> pa.Table:
    """``rows`` as a table of :data:`RESULTS_SCHEMA`; absent columns are null, ``evaluation`` and
    ``written_at`` filled; a column the schema lacks is an error (one schema for the folder)."""
    extra = [c for c in rows.columns if c not in RESULTS_SCHEMA.names]
    if extra:
        raise ValueError(f"columns {extra} are not in the results schema {RESULTS_SCHEMA.names}")
    df = rows.copy()
    df["evaluation"] = evaluation
    if "written_at" not in df:
        df["written_at"] = pd.Timestamp(utcnow())
    cols = {}
    for f in RESULTS_SCHEMA:
        if f.name in df:
            values = df[f.name].tolist()
            values = [None if (not isinstance(v, (list, tuple)) and pd.isna(v)) else v for v in values] \
                if not pa.types.is_list(f.type) else [list(v) if v is not None else None for v in values]
            cols[f.name] = pa.array(values, type=f.type)
        else:
            cols[f.name] = pa.nulls(len(df), f.type)
    return pa.Table.from_arrays(list(cols.values()), schema=RESULTS_SCHEMA)


def write_results(layout: Layout, evaluation: str, rows: pd.DataFrame) -> str:
    """Write an evaluation's rows as one part; an evaluation already written is kept as it is."""
    stem = part_stem(evaluation)
    final = f"{layout.results}/part-{stem}.parquet"
    fs, path = url_to_fs(final)
    if fs.exists(path):
        return final
    return atomic.write_parquet(results_table(evaluation, rows), layout.results, stem)


def has_results(layout: Layout, evaluation: str) -> bool:
    """Whether the evaluation's part is written."""
    fs, path = url_to_fs(f"{layout.results}/part-{part_stem(evaluation)}.parquet")
    return bool(fs.exists(path))


def read_results(layout: Layout) -> pd.DataFrame:
    """Every results row (an empty frame with the schema's columns when there is none)."""
    return read_table(layout.results, RESULTS_SCHEMA)


__all__ = ["has_results", "part_stem", "read_results", "results_table", "write_results"]
