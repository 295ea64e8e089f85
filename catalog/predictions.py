"""Predictions of fusion runs: ``predictions/model=<m>/run=<id>/part-<fold>[-w<window>]-<hash>.parquet``.

One part holds the rows of one fold label (``ensemble`` or a fold number) and one
``window`` kind (``"clip"``, ``"<length>s/<hop>s"``, or ``"frame"``: one row per model step of
a model trained per frame) for a set of items, in the one schema of every prediction part,
:data:`~emofuse.catalog.schemas.PREDICTION_SCHEMA` (class probabilities and attributions in
list columns, see :mod:`~emofuse.catalog.prediction_rows`). Part names are a hash of the item ids
they hold (:func:`part_name`), so writing the same predictions again replaces a part by
an identical one instead of adding a duplicate. Readers need no emofuse code:
``pandas.read_parquet(<catalog>/predictions)`` gives every run, with ``model`` and ``run``
columns from the Hive partitions; :func:`read_predictions` gives the wide frame
(``p_<class>``, ``attr_*`` columns) that scoring and the report use. Parts written by layout
version 1 (wide columns on disk) are read too, until ``Catalog.repair`` migrates them.

Example:
    >>> import tempfile
    >>> import pandas as pd
    >>> from emofuse.catalog.layout import Layout
    >>> layout = Layout.at(tempfile.mkdtemp())
    >>> rows = pd.DataFrame({"item_id": ["a", "b"], "fold": "ensemble", "window": "clip", "start": 0.0,
    ...                      "end": [2.0, 3.0], "label": ["happy", "sad"], "score": [0.9, 0.8],
    ...                      "valence": float("nan"), "arousal": float("nan"),
    ...                      "scored_at": pd.Timestamp("2025-01-01", tz="UTC"),
    ...                      "p_happy": [0.9, 0.2], "p_sad": [0.1, 0.8]})
    >>> path = write_predictions(layout, "tacfn", "run-1", rows, ["happy", "sad"], fold="ensemble")
    >>> path.rsplit("/", 3)[1:]
    ['model=tacfn', 'run=run-1', 'part-ensemble-7e18f737311b2dc3b2f2.parquet']
    >>> existing_predictions(layout, "tacfn", "run-1").values.tolist()
    [['a', 'ensemble', 'clip'], ['b', 'ensemble', 'clip']]
    >>> read_predictions(layout)[["model", "run", "item_id", "label"]].values.tolist()
    [['tacfn', 'run-1', 'a', 'happy'], ['tacfn', 'run-1', 'b', 'sad']]
    >>> pd.read_parquet(layout.predictions).explode(["classes", "probs"])[["item_id", "classes"]].values.tolist()
    [['a', 'happy'], ['a', 'sad'], ['b', 'happy'], ['b', 'sad']]
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from emofuse.catalog import atomic
from emofuse.catalog.layout import Layout
from emofuse.catalog.prediction_rows import is_current, to_table, to_wide
from emofuse.catalog.schemas import CLIP_WINDOW
from emofuse.catalog.urls import url_to_fs

_DONE_SCHEMA = pa.schema([("item_id", pa.string()), ("fold", pa.string()), ("window", pa.string())])


def window_label(windows: tuple[float, float] | Sequence[float] | None) -> str:
    """The ``window`` column value: ``"clip"`` for whole clips, ``"<length>s/<hop>s"`` for windows.

    >>> window_label(None), window_label((4, 2)), window_label((2.5, 1.25))
    ('clip', '4s/2s', '2.5s/1.25s')
    """
    if windows is None:
        return CLIP_WINDOW
    length, hop = (float(v) for v in windows)
    return f"{length:g}s/{hop:g}s"


def part_name(fold: str, item_ids: Iterable[str], window: str = CLIP_WINDOW) -> str:
    """Deterministic part name: fold label, window tag (windowed parts only) and a hash of the item ids.

    >>> part_name("ensemble", ["b", "a"]) == part_name("ensemble", ["a", "b"])
    True
    >>> part_name("ensemble", ["a"], "4s/2s").startswith("ensemble-w4s_2s-")
    True
    """
    h = hashlib.sha256("\n".join(sorted(item_ids)).encode()).hexdigest()[:20]
    if window == CLIP_WINDOW:
        return f"{fold}-{h}"
    tag = "".join(c if c.isalnum() or c in "._" else "_" for c in window.replace("/", "_"))
    return f"{fold}-w{tag}-{h}"


def prediction_parts(folder: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """(filesystem, sorted paths) of the prediction parts under ``folder`` (a run's or the whole table)."""
    fs, path = url_to_fs(folder)
    if not fs.exists(path):
        return fs, []
    return fs, sorted(f for f in fs.find(path) if os.path.basename(f).startswith("part-") and f.endswith(".parquet"))


def existing_predictions(layout: Layout, model: str, run_id: str, *, parts: bool = False) -> pd.DataFrame:
    """(item_id, fold, window) already written for one run (empty frame when none).

    Parts written before the ``window`` column existed count as ``"clip"``. With ``parts``
    also ``part`` (the file holding the row) and ``explained`` (whether that part holds
    attributions), one row per (item, fold, window, part).
    """
    cols = ["item_id", "fold", "window"] + (["part", "explained"] if parts else [])
    empty = pd.DataFrame({c: [] for c in cols})
    fs, files = prediction_parts(layout.predictions_dir(model, run_id))
    if not files:
        return empty
    dataset = pads.dataset(files, filesystem=fs, format="parquet", schema=_DONE_SCHEMA)
    if not parts:
        df = dataset.to_table(columns=["item_id", "fold", "window"]).to_pandas()
        df["window"] = df["window"].fillna(CLIP_WINDOW)
        return df.drop_duplicates()
    frames = []
    for frag in dataset.get_fragments():
        df = frag.to_table(schema=_DONE_SCHEMA, columns=["item_id", "fold", "window"]).to_pandas()
        df["part"] = frag.path
        df["explained"] = _explained(frag)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["window"] = df["window"].fillna(CLIP_WINDOW)
    return df.drop_duplicates()[cols].reset_index(drop=True)


def _explained(frag: pads.ParquetFileFragment) -> bool:
    """Whether a part holds attributions (non-null attribution lists; ``attr_*`` columns in layout 1)."""
    physical = frag.physical_schema
    if not is_current(physical):
        return any(n.startswith("attr_") for n in physical.names)
    column = frag.to_table(schema=physical, columns=["attribution"]).column("attribution")
    return column.null_count < len(column)


def write_predictions(layout: Layout, model: str, run_id: str, rows: pd.DataFrame, classes: Sequence[str], *,
                      fold: str, window: str = CLIP_WINDOW, attributions: Sequence[str] = ()) -> str:
    """Write one part of a run's predictions (rows of one fold label and window kind); return its path.

    ``rows``: the wide frame (base fields, ``p_<class>`` per class, the ``attributions``
    columns ``attr_*`` of an explained scoring; others are ignored), stored in the parts' one
    schema (:func:`~emofuse.catalog.prediction_rows.to_table`); no ``attributions``: not explained.
    """
    table = to_table(rows, list(classes), list(attributions))
    return atomic.write_parquet(table, layout.predictions_dir(model, run_id),
                                part_name(str(fold), set(rows["item_id"]), window))


def read_predictions(layout: Layout, *, model: str | None = None, run_id: str | None = None) -> pd.DataFrame:
    """Predictions of every run (or one model / run) as the wide frame, with ``model`` and ``run`` columns.

    Columns: the base fields, ``p_<class>`` of every class of the runs read, the ``attr_*``
    columns of explained ones (NaN in rows without them), then ``model`` and ``run`` (first,
    for one run).
    """
    if model is not None and run_id is not None:
        df = _read_wide(layout.predictions_dir(model, run_id), hive=False)
        if len(df):
            df.insert(0, "run", run_id)
            df.insert(0, "model", model)
        return df
    df = _read_wide(layout.predictions, hive=True)
    if len(df):
        for col in ("model", "run"):
            df[col] = df[col].astype(str)
        if model is not None:
            df = df[df["model"] == model].reset_index(drop=True)
        if run_id is not None:
            df = df[df["run"] == run_id].reset_index(drop=True)
    return df


def _read_wide(folder: str, *, hive: bool) -> pd.DataFrame:
    """A prediction folder as the wide frame: current parts pivoted, layout-1 parts read as they are."""
    fs, files = prediction_parts(folder)
    if not files:
        return pd.DataFrame()
    _, base = url_to_fs(folder)
    options = {"partitioning": "hive", "partition_base_dir": base} if hive else {}
    dataset = pads.dataset(files, filesystem=fs, format="parquet", **options)
    current, legacy = [], []
    for frag in dataset.get_fragments():
        (current if is_current(frag.physical_schema) else legacy).append(frag.path)
    frames = []
    if current:
        frames.append(to_wide(pads.dataset(current, filesystem=fs, format="parquet", **options).to_table()))
    if legacy:
        schemas = [pads.dataset(f, filesystem=fs, format="parquet").schema for f in legacy]
        parts = pads.dataset(legacy, filesystem=fs, format="parquet", **options)
        unified = pa.unify_schemas(schemas + [parts.schema])
        frames.append(pads.dataset(legacy, filesystem=fs, format="parquet", schema=unified,
                                   **options).to_table().to_pandas())
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    probs = [c for c in df.columns if c.startswith("p_")]
    attrs = [c for c in df.columns if c.startswith("attr_")]
    rest = [c for c in df.columns if c not in probs and c not in attrs]
    keys = [c for c in ("model", "run") if c in rest]
    order = [c for c in rest if c not in keys] + probs + attrs + keys
    return df[order]


__all__ = ["existing_predictions", "part_name", "prediction_parts", "read_predictions", "window_label", "write_predictions"]
